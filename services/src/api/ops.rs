//! Operations routes: health, readiness, metrics, the OpenAPI document, the audit log.

use super::AppState;
use super::caller::Caller;
use super::problem::ApiError;
use super::query::{self, Bounded};
use crate::access::Role;
use crate::audit_log::time_text;
use crate::layer::Layer;
use crate::metrics::Sample;
use crate::store::{AuditFilter, AuditQuery, AuditRow};
use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

/// `GET /healthz`: the process is up.
async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the store answers, so requests can be served.
async fn readyz(State(st): State<AppState>) -> Response {
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
async fn metrics(State(st): State<AppState>) -> Response {
    let mut extra = st.shed.series();
    for (layer, n) in st.service.counts() {
        extra.push(Sample::gauge(
            "safegrid_layer_items",
            "Items held in the live state, by layer.",
            format!("{{layer=\"{layer}\"}}"),
            n as f64,
        ));
    }
    for layer in Layer::ALL {
        let bytes = st.service.layer(layer).index_bytes();
        extra.push(Sample::gauge(
            "safegrid_point_index_bytes",
            "Approximate heap bytes of each layer's point index.",
            format!("{{layer=\"{layer}\"}}"),
            bytes as f64,
        ));
    }
    extra.push(Sample::gauge(
        "safegrid_grid_units",
        "Grid units loaded.",
        String::new(),
        st.service.grids().hierarchy.len() as f64,
    ));
    let (hits, misses, bytes) = st.tiles.stats();
    for (result, n) in [("hit", hits), ("miss", misses)] {
        extra.push(Sample::counter(
            "safegrid_tile_cache_requests_total",
            "Tile cache lookups by result since start-up: whole tiles, and on a miss each of its layers.",
            format!("{{result=\"{result}\"}}"),
            n as f64,
        ));
    }
    extra.push(Sample::gauge("safegrid_tile_cache_bytes", "Bytes of encoded tiles held.", String::new(), bytes as f64));
    for (outcome, n) in st.ingest.counters().snapshot() {
        extra.push(Sample::counter(
            "safegrid_fixes_total",
            "Position fixes by outcome since start-up: live, history flags (late, jump, inaccurate, invalid), refusals.",
            format!("{{outcome=\"{outcome}\"}}"),
            n as f64,
        ));
    }
    let (commits, failures) = st.ingest.counters().commits();
    extra.push(Sample::counter(
        "safegrid_fix_commits_total",
        "Group commits of fixes since start-up.",
        String::new(),
        commits as f64,
    ));
    extra.push(Sample::counter(
        "safegrid_fix_commit_failures_total",
        "Failed group commits of fixes since start-up.",
        String::new(),
        failures as f64,
    ));
    extra.push(Sample::gauge(
        "safegrid_fix_queue",
        "Fixes waiting to be stored.",
        String::new(),
        st.ingest.queued() as f64,
    ));
    extra.push(Sample::gauge(
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
async fn openapi() -> Response {
    Json(super::openapi::document()).into_response()
}

/// The audit log's filters, each named in a 400 when its value is bad.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLogQuery {
    #[serde(default)]
    limit: Option<Bounded<1, 100_000>>,
    #[serde(default)]
    before: Option<i64>,
    #[serde(default, deserialize_with = "text_filter")]
    actor: Option<String>,
    #[serde(default, deserialize_with = "query::opt_parsed")]
    role: Option<Role>,
    #[serde(default, deserialize_with = "query::opt_parsed")]
    layer: Option<Layer>,
    #[serde(default)]
    subject: Option<i64>,
    #[serde(default, deserialize_with = "text_filter")]
    action: Option<String>,
    #[serde(default)]
    kind: Option<AccessKind>,
    #[serde(default, deserialize_with = "query::opt_time")]
    since: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, deserialize_with = "query::opt_time")]
    until: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    format: LogFormat,
}

/// Reads or writes.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AccessKind {
    Read,
    Write,
}

/// JSON pages, or CSV for a spreadsheet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogFormat {
    #[default]
    Json,
    Csv,
}

/// A text filter: 1 to 200 characters.
fn text_filter<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = String::deserialize(d)?;
    if v.is_empty() || v.chars().count() > 200 {
        return Err(serde::de::Error::custom("expected 1 to 200 characters"));
    }
    Ok(Some(v))
}

/// `GET /api/v1/audit_log[?actor=…&role=…&layer=…&subject=…&action=…&kind=…&since=…&until=…
/// &before=…&limit=…&format=json|csv]` (admin, auditor): newest first, the filters combined
/// (`since`: rows reaching it or later, `last_at` counted for a row of repeats; `until`: rows
/// begun before it). `format=csv` is RFC 4180 text with a header row; the next page's cursor is
/// then in `X-Next-Before`. Every answer, errors included, is `Cache-Control: no-store`.
async fn audit_log(State(st): State<AppState>, Caller(_who): Caller, uri: OriginalUri) -> Response {
    // Parsed here, not by an extractor: a refusal is `no-store` too.
    let answer = match query::from_query(uri.0.query()) {
        Ok(q) => audit_log_answer(&st, q).await,
        Err(e) => Err(e),
    };
    let mut r = answer.unwrap_or_else(IntoResponse::into_response);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn audit_log_answer(st: &AppState, q: AuditLogQuery) -> Result<Response, ApiError> {
    let csv = q.format == LogFormat::Csv;
    let limit = match (q.limit, csv) {
        (None, true) => 10_000,
        (None, false) => 100,
        (Some(n), false) if n.get() > 1000 => {
            return Err(ApiError::invalid("limit", n.get(), "must be from 1 to 1000 (100000 with format=csv)"));
        }
        (Some(n), _) => n.get(),
    };
    let kind = q.kind.map(|k| match k {
        AccessKind::Read => "read".to_owned(),
        AccessKind::Write => "write".to_owned(),
    });
    // `until` before `since` is an empty interval: no rows, not an error.
    let filter = AuditFilter {
        actor: q.actor,
        role: q.role.map(|r| r.name().to_owned()),
        layer: q.layer.map(|l| l.name().to_owned()),
        subject: q.subject,
        action: q.action,
        kind,
        since: q.since,
        until: q.until,
    };
    let before = q.before;
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

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/audit_log", get(audit_log))
}
