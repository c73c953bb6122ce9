//! Shared test fixtures: a small grid layer, temporary stores (each test owns its own SQLite
//! file or PostGIS database), and the PostGIS switch.
//!
//! PostGIS tests read their server from `SAFEGRID_TEST_DATABASE_URL`. Without it they print
//! that they are skipped — unless `SAFEGRID_REQUIRE_POSTGIS=1` (set by `.ci/run`), in which case
//! a missing server is a failure, so CI can never pass by skipping them.

#![allow(dead_code, reason = "not every fixture is used by every build of the tests")]

pub mod process;

use geo::{MultiPolygon, polygon};
use safegrid_geodata::{GridCode, GridHierarchy, GridLevel, GridUnit, Manager};
use safegrid_services::store::{self, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

pub fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> MultiPolygon<f64> {
    MultiPolygon(vec![polygon![(x: x0, y: y0), (x: x1, y: y0), (x: x1, y: y1), (x: x0, y: y1)]])
}

fn unit(code: &str, name: &str, level: GridLevel, g: MultiPolygon<f64>, manager: Option<&str>) -> GridUnit {
    GridUnit {
        code: GridCode::parse(code).expect("fixture code"),
        name: name.into(),
        level,
        manager: manager.map(|m| Manager { name: m.into(), phone: Some("13800000000".into()) }),
        geometry: g,
    }
}

/// Two districts side by side; 福田 split into a west and an east grid along lon 114.05,
/// 罗湖 one grid. Everything outside 114.00–114.20 × 22.50–22.60 is outside every grid.
pub fn fixture_grids() -> GridHierarchy {
    GridHierarchy::new(vec![
        unit("440304", "福田区", GridLevel::District, square(114.00, 22.50, 114.10, 22.60), None),
        unit("440304001", "福田第001网格", GridLevel::Grid, square(114.00, 22.50, 114.05, 22.60), Some("张伟")),
        unit("440304002", "福田第002网格", GridLevel::Grid, square(114.05, 22.50, 114.10, 22.60), Some("李娜")),
        unit("440303", "罗湖区", GridLevel::District, square(114.10, 22.50, 114.20, 22.60), None),
        unit("440303001", "罗湖第001网格", GridLevel::Grid, square(114.10, 22.50, 114.20, 22.60), Some("王芳")),
    ])
    .expect("fixture hierarchy")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh SQLite store in its own temporary directory (kept alive by the returned guard).
pub async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = store::open(&url).await.expect("open sqlite store");
    (store, dir, url)
}

/// The PostGIS server URL, or `None` (after saying so) when PostGIS tests are to be skipped.
///
/// # Panics
/// When `SAFEGRID_REQUIRE_POSTGIS=1` and no server is configured.
pub fn postgis_url(test: &str) -> Option<String> {
    match std::env::var("SAFEGRID_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("SAFEGRID_REQUIRE_POSTGIS").as_deref() != Ok("1"),
                "{test}: SAFEGRID_REQUIRE_POSTGIS=1 but SAFEGRID_TEST_DATABASE_URL is not set"
            );
            eprintln!("{test}: skipped — set SAFEGRID_TEST_DATABASE_URL=postgres://… to run it against PostGIS");
            None
        }
    }
}

/// A fresh, empty database on the PostGIS server, owned by one test. Returns its URL.
pub async fn fresh_pg_database(server_url: &str) -> String {
    use sqlx::Connection;
    let name = format!(
        "safegrid_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    let mut conn = sqlx::PgConnection::connect(server_url).await.expect("connect to the PostGIS test server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
    conn.close().await.ok();
    with_database(server_url, &name)
}

/// The same server URL pointing at another database.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Opens a fresh PostGIS store, or `None` when skipped.
pub async fn pg_store(test: &str) -> Option<(Arc<dyn Store>, String)> {
    let server = postgis_url(test)?;
    let url = fresh_pg_database(&server).await;
    let store = store::open(&url).await.expect("open PostGIS store (is the postgis extension installed?)");
    Some((store, url))
}

/// `../shared/data` beside the repository: real data written by others, which tests may read
/// but the repository may not hold.
pub fn shared_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// `../shared/data/<rel>` when present; `None` (after saying so) otherwise. CI always has it.
pub fn shared_data(test: &str, rel: &str) -> Option<std::path::PathBuf> {
    let p = shared_root().join(rel);
    if p.exists() {
        Some(p)
    } else {
        assert!(std::env::var("CI").is_err(), "{test}: {} is missing, and CI always has ../shared/data", p.display());
        eprintln!("{test}: skipped — {} is absent (it lives in ../shared/data beside the repository)", p.display());
        None
    }
}
