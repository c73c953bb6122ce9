//! safegrid's integration tests: one binary (one link of the whole crate instead of one per
//! file), a module per area, run by `cargo test --workspace` like any other test.
//!
//! Tests register beside their function with [`test!`] ([`harness`]); a test that needs what
//! this machine lacks (a PostGIS server, Chromium, an MQTT broker, `../shared/data`) is listed
//! as *ignored* with the need as its kind — `[needs PostGIS: SAFEGRID_TEST_DATABASE_URL]` —
//! so the summary says what did not run. With `SAFEGRID_REQUIRE_POSTGIS=1`,
//! `SAFEGRID_REQUIRE_BROWSER=1`, `SAFEGRID_REQUIRE_MQTT=1` or `CI` set (as `.ci/run` does) it
//! runs instead, and fails on the missing need.
//!
//! Filter as with the standard harness: `cargo test --test it -- stores::` runs one area.
#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, and says where")]
#![allow(
    clippy::wildcard_imports,
    reason = "each api area takes the fixture and helpers of api/mod.rs with use super::*"
)]

mod harness;
mod support;

mod api;
mod audits;
mod browser;
mod demo_city;
mod files;
mod positions;
mod postgis_locate;
mod postgis_tiles;
mod restart;
mod roads;
mod simulation;
mod stores;

fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    libtest_mimic::run(&args, harness::trials()).exit_code()
}
