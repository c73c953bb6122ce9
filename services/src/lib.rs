//! # safegrid-services — the running system
//!
//! - [`layer`]: the five point layers and their typed properties.
//! - [`access`]: roles, grid scope and tokens.
//! - [`policy`]: the access policy: action × role → grant, route → action and load class.
//! - [`store`]: the `Store` trait with its SQLite and PostGIS implementations.
//! - [`live`]: the in-memory state reads are served from.
//! - [`positions`]: tracker fixes: decoding, noise, live state, grid crossings, device secrets.
//! - [`service`]: store + live state, kept in step.
//! - [`ingest`]: durable group-commit ingest of fixes onto the service; MQTT.
//! - [`dispatch`]: ranking units by road ETA, and the dispatch desk.
//! - [`tile_source`]: the vector-tile layers, built from the live state.
//! - [`api`]: the axum HTTP API (`api::app`).
//! - [`import`]: bulk import from GeoJSON and CSV.
//! - [`audit`]: coverage audit reports (JSON, GeoJSON, HTML) and `safegrid audit`.
//! - [`audit_log`]: the audit log's hash chain, its check, and the collapsing of repeated reads.
//! - [`demo`]: Shenzhen demo grids and population.
//! - [`metrics`]: Prometheus metrics.
#![cfg_attr(test, allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed"))]

pub mod access;
pub mod api;
pub mod audit;
pub mod audit_log;
pub mod basemap;
pub mod demo;
pub mod dispatch;
mod fnv;
pub mod import;
pub mod ingest;
pub mod layer;
pub mod live;
pub mod metrics;
pub mod policy;
pub mod positions;
pub mod records;
pub mod roads;
pub mod service;
pub mod store;
pub mod tile_source;
