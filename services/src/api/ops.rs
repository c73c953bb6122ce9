//! Operations routes: health, readiness, metrics, the OpenAPI document, the audit log.

use super::AppState;
use super::caller::Caller;
use super::params::Params;
use super::problem::ApiError;
use crate::access::Role;
use crate::audit_log::time_text;
use crate::layer::Layer;
use crate::store::{AuditFilter, AuditQuery, AuditRow};
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
pub async fn metrics(State(st): State<AppState>) -> Response {
    let mut extra = st.shed.series();
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

/// The audit log's filters, each named in a 400 when its value is bad.
const AUDIT_LOG_PARAMS: &[&str] =
    &["limit", "before", "actor", "role", "layer", "subject", "action", "kind", "since", "until", "format"];

/// `GET /api/v1/audit_log[?actor=…&role=…&layer=…&subject=…&action=…&kind=…&since=…&until=…
/// &before=…&limit=…&format=json|csv]` (admin, auditor): newest first, the filters combined
/// (`since`: rows reaching it or later, `last_at` counted for a row of repeats; `until`: rows
/// begun before it). `format=csv` is RFC 4180 text with a header row; the next page's cursor is
/// then in `X-Next-Before`. Every answer, errors included, is `Cache-Control: no-store`.
pub async fn audit_log(State(st): State<AppState>, Caller(_who): Caller, uri: OriginalUri) -> Response {
    let mut r = audit_log_answer(&st, &uri).await.unwrap_or_else(IntoResponse::into_response);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn audit_log_answer(st: &AppState, uri: &OriginalUri) -> Result<Response, ApiError> {
    let p = Params::parse(uri.0.query(), AUDIT_LOG_PARAMS)?;
    let csv = match p.get("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(v) => return Err(ApiError::invalid("format", v, "expected json or csv")),
    };
    let limit = if csv { p.bounded("limit", 10_000, 1, 100_000)? } else { p.bounded("limit", 100, 1, 1000)? };
    let before: Option<i64> = p.optional("before", "an audit row id")?;
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match p.get(name) {
            None => Ok(None),
            Some(v) if v.is_empty() || v.chars().count() > 200 => {
                Err(ApiError::invalid(name, v, "expected 1 to 200 characters"))
            }
            Some(v) => Ok(Some(v.to_owned())),
        }
    };
    let role = match p.get("role") {
        None => None,
        Some(v) => Some(v.parse::<Role>().map_err(|e| ApiError::invalid("role", v, e))?.name().to_owned()),
    };
    let layer = match p.get("layer") {
        None => None,
        Some(v) => {
            Some(v.parse::<Layer>().map_err(|e| ApiError::invalid("layer", v, e.to_string()))?.name().to_owned())
        }
    };
    let kind = match p.get("kind") {
        None => None,
        Some(v @ ("read" | "write")) => Some(v.to_owned()),
        Some(v) => return Err(ApiError::invalid("kind", v, "expected read or write")),
    };
    let subject: Option<i64> = p.optional("subject", "a person's or unit's id (a whole number)")?;
    // `until` before `since` is an empty interval: no rows, not an error.
    let since = p.time("since")?;
    let until = p.time("until")?;
    let filter =
        AuditFilter { actor: text("actor")?, role, layer, subject, action: text("action")?, kind, since, until };
    // Repeats whose window has ended are written first, so the answer is as complete as can be.
    st.service.flush_ended_audit().await;
    let rows = st.service.store().audit_search(&filter, AuditQuery { before_id: before, limit: limit as i64 }).await?;
    let next = (rows.len() == limit).then(|| rows.last().map(|r| r.id)).flatten();
    if !csv {
        return Ok((StatusCode::OK, Json(json!({"rows": rows, "next_before": next}))).into_response());
    }
    let body = audit_csv(&rows).map_err(|e| {
        tracing::error!(error = %e, "could not write the audit log as CSV");
        ApiError::internal()
    })?;
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8; header=present"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"audit_log.csv\""));
    if let Some(n) = next {
        h.insert("x-next-before", HeaderValue::from(n));
    }
    Ok(r)
}

/// The columns of the CSV export.
pub const AUDIT_CSV_HEADER: [&str; 15] = [
    "id",
    "at",
    "last_at",
    "repeats",
    "kind",
    "outcome",
    "actor",
    "role",
    "action",
    "layer",
    "subjects",
    "request",
    "result_count",
    "prev_hash",
    "hash",
];

/// RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote or line break. Text a
/// caller chose (token names, request text) that a spreadsheet would run as a formula (`=`, `+`,
/// `-`, `@`, tab, CR first) gets a leading `'`; the JSON answer has the exact text. Subject ids
/// are separated by spaces; times are RFC 3339, UTC, microseconds.
fn audit_csv(rows: &[AuditRow]) -> Result<Vec<u8>, csv::Error> {
    let safe = |s: &str| -> String {
        if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() }
    };
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    w.write_record(AUDIT_CSV_HEADER)?;
    for r in rows {
        let subjects: Vec<String> = r.subjects.iter().map(i64::to_string).collect();
        w.write_record([
            r.id.to_string(),
            time_text(r.at),
            r.last_at.map(time_text).unwrap_or_default(),
            r.repeats.to_string(),
            r.kind.clone(),
            r.outcome.clone(),
            safe(&r.actor),
            r.role.clone(),
            safe(&r.action),
            r.layer.clone().unwrap_or_default(),
            subjects.join(" "),
            safe(&r.request),
            r.result_count.to_string(),
            r.prev_hash.clone().unwrap_or_default(),
            r.hash.clone().unwrap_or_default(),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}
