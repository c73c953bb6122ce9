//! Operations routes: health, readiness, metrics, the OpenAPI document, the audit log.

use super::AppState;
use super::caller::Caller;
use super::params::Params;
use super::problem::ApiError;
use crate::layer::Layer;
use crate::store::AuditQuery;
use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the store answers, so requests can be served.
pub async fn readyz(State(st): State<AppState>) -> Response {
    match st.service.store().ping().await {
        Ok(()) => Json(json!({"status": "ready", "store": st.service.store().backend()})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::unavailable(5).into_response()
        }
    }
}

/// `GET /metrics`: Prometheus text format, for admin and auditor tokens (configure the scraper
/// with a bearer token): the figures include how many key personnel are followed.
pub async fn metrics(State(st): State<AppState>, Caller(who): Caller) -> Response {
    if !who.may_read_audit() {
        return if who.role == crate::access::Role::Public {
            ApiError::unauthorized("/metrics needs an admin or auditor bearer token")
        } else {
            ApiError::forbidden(format!("role {} may not read metrics", who.role))
        }
        .into_response();
    }
    let mut extra = Vec::new();
    for (layer, n) in st.service.counts() {
        extra.push((
            "safegrid_layer_items",
            "Items held in the live state, by layer.",
            format!("{{layer=\"{layer}\"}}"),
            n as f64,
        ));
    }
    for layer in Layer::ALL {
        let bytes = st.service.layer(layer).index_bytes();
        extra.push((
            "safegrid_point_index_bytes",
            "Approximate heap bytes of each layer's point index.",
            format!("{{layer=\"{layer}\"}}"),
            bytes as f64,
        ));
    }
    extra.push(("safegrid_grid_units", "Grid units loaded.", String::new(), st.service.grids().hierarchy.len() as f64));
    let (hits, misses, bytes) = st.tiles.stats();
    extra.push((
        "safegrid_tile_cache_requests",
        "Tile cache lookups by result: whole tiles, and on a miss each of its layers.",
        "{result=\"hit\"}".into(),
        hits as f64,
    ));
    extra.push((
        "safegrid_tile_cache_requests",
        "Tile cache lookups by result: whole tiles, and on a miss each of its layers.",
        "{result=\"miss\"}".into(),
        misses as f64,
    ));
    extra.push(("safegrid_tile_cache_bytes", "Bytes of encoded tiles held.", String::new(), bytes as f64));
    // Counters since start-up, rendered as gauges (the renderer has one TYPE line per name).
    for (outcome, n) in st.ingest.counters().snapshot() {
        extra.push((
            "safegrid_fixes_total",
            "Position fixes by outcome since start-up: live, history flags (late, jump, inaccurate, invalid), refusals.",
            format!("{{outcome=\"{outcome}\"}}"),
            n as f64,
        ));
    }
    let (commits, failures) = st.ingest.counters().commits();
    extra.push(("safegrid_fix_commits", "Group commits of fixes since start-up.", String::new(), commits as f64));
    extra.push((
        "safegrid_fix_commit_failures",
        "Failed group commits since start-up.",
        String::new(),
        failures as f64,
    ));
    extra.push(("safegrid_fix_queue", "Fixes waiting to be stored.", String::new(), st.ingest.queued() as f64));
    extra.push((
        "safegrid_live_units",
        "Responders with a live fix.",
        String::new(),
        st.service.live_units().len() as f64,
    ));
    let mut r = st.metrics.render(&extra).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

/// `GET /api/v1/openapi.json`
pub async fn openapi() -> Response {
    Json(super::openapi::document()).into_response()
}

/// `GET /api/v1/audit_log[?limit=…&before=…]` (admin, auditor): newest first.
pub async fn audit_log(
    State(st): State<AppState>,
    Caller(who): Caller,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let p = Params::parse(uri.0.query(), &["limit", "before"])?;
    if !who.may_read_audit() {
        return Err(if who.role == crate::access::Role::Public {
            ApiError::unauthorized("the audit log needs a bearer token")
        } else {
            ApiError::forbidden(format!("role {} may not read the audit log", who.role))
        });
    }
    let limit = p.bounded("limit", 100, 1, 1000)?;
    let before: Option<i64> = p.optional("before", "an audit row id")?;
    let rows = st.service.store().audit_rows(AuditQuery { before_id: before, limit: limit as i64 }).await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|r| r.id)).flatten();
    Ok((StatusCode::OK, Json(json!({"rows": rows, "next_before": next}))).into_response())
}
