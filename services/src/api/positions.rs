//! Positions over HTTP.
//!
//! - `GET|POST /api/v1/osmand` (and `/` on the OsmAnd port, 5055 by default): the OsmAnd /
//!   Traccar Client protocol. No token: the device proves itself with its secret, sent in the
//!   identifier as `id=DEVICE_ID:SECRET` ([`crate::positions::devices`]). An unknown device and
//!   a missing, wrong or revoked secret get one answer, 403 `unauthenticated-device` (not 401:
//!   no HTTP authentication scheme applies, so there is no challenge to send), counted as
//!   `unauthenticated_device`. Over the per-address, per-failure or per-device limit: 429 with
//!   `Retry-After`. `200` means stored — or refused as noise (a duplicate, a clock in the
//!   future, older than the history keeps), because a tracker retries anything else forever
//!   and would never send its next fix.
//! - `POST /api/v1/positions`: a gateway's JSON batch (roles admin, dispatcher, gateway),
//!   answered with what became of each fix.
//! - `GET /api/v1/positions/live`: every responder with its latest fix and freshness (audited).
//! - `GET /api/v1/responders/{id}/trace`: a unit's history as JSON, GeoJSON or GPX (audited).
//!
//! Every ingest answers only once the fixes are committed; a full queue answers 503 with
//! `Retry-After`.

use super::AppState;
use super::caller::Caller;
use super::extract::{AppPath, ItemId};
use super::items::{geojson_response, request_text};
use super::problem::{ApiError, is_json};
use super::query::{self, AppQuery, Bounded};
use crate::access::Principal;
use crate::ingest::{IngestError, Receipt, UNAUTHENTICATED};
use crate::layer::{Layer, Props};
use crate::positions::geofence::GridEvent;
use crate::positions::live::Freshness;
use crate::positions::{Subject, TracePoint, batch, flags, osmand};
use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Duration, Utc};
use geo::{Coord, LineString, SimplifyIdx};
use safegrid_geodata::{Crs, GridCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Largest OsmAnd request body (a form of a dozen parameters).
const OSMAND_BODY_LIMIT: usize = 16 << 10;
/// Largest batch body: [`batch::MAX_FIXES`] fixes with a few attributes each.
const BATCH_BODY_LIMIT: usize = 4 << 20;
/// Most points one trace request returns.
const MAX_TRACE_POINTS: usize = 100_000;

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Overloaded { retry_after_s } => {
                let mut a = ApiError::unavailable(retry_after_s);
                a.set_detail("the ingest queue is full; nothing of this request was stored, retry after the delay");
                a
            }
            IngestError::TooLarge { got, max } => {
                ApiError::invalid("fixes", got, format!("at most {max} fixes per request"))
            }
            IngestError::RateLimited { retry_after_s } => ApiError::rate_limited(
                retry_after_s,
                format!("too many reports from this device or address; retry in {retry_after_s} s"),
            ),
            IngestError::StoreFailed | IngestError::Stopped => {
                let mut a = ApiError::unavailable(1);
                a.set_detail("the fixes could not be stored; nothing of this request was acknowledged, retry");
                a
            }
        }
    }
}

/// `GET|POST /api/v1/osmand` and the OsmAnd port.
pub(super) async fn osmand(
    State(st): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    req: Request,
) -> Response {
    // The peer's address, never a forwarded header a client could set.
    let client = peer.map(|p| p.0.0.ip());
    match osmand_inner(&st, req, client).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn osmand_inner(st: &AppState, req: Request, client: Option<std::net::IpAddr>) -> Result<Response, ApiError> {
    let received = Utc::now();
    let mut params = osmand::pairs(req.uri().query().unwrap_or(""));
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let form = ct.starts_with("application/x-www-form-urlencoded");
    let body = axum::body::to_bytes(req.into_body(), OSMAND_BODY_LIMIT)
        .await
        .map_err(|_| ApiError::too_large(OSMAND_BODY_LIMIT))?;
    // Traccar Client 9 posts JSON; older clients and OsmAnd use the query or a form.
    // A JSON content type with an empty body falls back to the query's parameters.
    let json = (is_json(&ct) && !body.trim_ascii().is_empty())
        || (!form && params.is_empty() && body.trim_ascii_start().first() == Some(&b'{'));
    if !json && (form || (!body.is_empty() && params.is_empty())) {
        let text = std::str::from_utf8(&body).map_err(|_| ApiError::invalid("body", Value::Null, "not UTF-8"))?;
        params.extend(osmand::pairs(text));
    }
    let decoded = if json { osmand::decode_json(&body, received) } else { osmand::decode(&params, received) };
    let fix = decoded.map_err(|e| {
        st.ingest.counters().count_malformed();
        ApiError::invalid(e.field, e.value, e.reason)
    })?;
    let time = fix.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let receipt = st.ingest.submit_report(fix, client).await?;
    // A fix outside the time the history keeps is an error a person replaying history must see:
    // a 200 would read as "stored". A repeat of the stored live fix is stored, so it is a 200.
    let noise = st.ingest.noise();
    match receipt.refused.first().map(|r| r.reason) {
        Some(UNAUTHENTICATED) => Err(ApiError::unauthenticated_device()),
        Some("too_old") => Err(ApiError::invalid(
            "timestamp",
            time,
            format!(
                "older than the {} days of history kept (safegrid serve --retention-days); nothing was stored",
                noise.max_age.num_days()
            ),
        )),
        Some("future") => Err(ApiError::invalid(
            "timestamp",
            time,
            format!(
                "more than {} s ahead of the server's clock; check the device's clock; nothing was stored",
                noise.future_tolerance.num_seconds()
            ),
        )),
        Some(other) => Ok((StatusCode::OK, format!("refused: {other}\n")).into_response()),
        None => Ok(StatusCode::OK.into_response()),
    }
}

/// `POST /api/v1/positions`
///
/// # Errors
/// 415 for a body not declared as JSON; 413 past the batch body limit; 400 for a malformed
/// batch (naming the fix and field) or more fixes than one request may carry; 503 +
/// `Retry-After` when the ingest queue is full or the fixes could not be stored (nothing of
/// the request is then acknowledged).
async fn batch(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if !(ct.is_empty() || is_json(&ct)) {
        return Err(ApiError::unsupported_media_type(&ct));
    }
    let body: Body = req.into_body();
    let bytes =
        axum::body::to_bytes(body, BATCH_BODY_LIMIT).await.map_err(|_| ApiError::too_large(BATCH_BODY_LIMIT))?;
    let fixes = batch::decode(&bytes).map_err(|e| {
        st.ingest.counters().count_malformed();
        ApiError::invalid(e.field, e.value, e.reason)
    })?;
    let sent = fixes.len();
    let receipt: Receipt = st.ingest.submit(fixes).await?;
    let body = json!({
        "received": sent,
        "stored": receipt.live + receipt.history,
        "live": receipt.live,
        "history": receipt.history,
        "refused": receipt.refused,
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// The live units the wall asks for: some freshness tiers, in some grid.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    #[serde(default, deserialize_with = "query::opt_list")]
    freshness: Option<Vec<Freshness>>,
    #[serde(default, deserialize_with = "query::opt_parsed")]
    grid: Option<GridCode>,
    #[serde(default, deserialize_with = "query::parsed")]
    crs: Crs,
}

/// `GET /api/v1/positions/live`
///
/// # Errors
/// 400 for an unknown or malformed parameter; 500 or 503 (with `Retry-After`) when the store fails (the audit row that must precede
/// the answer).
async fn live(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppQuery(LiveQuery { freshness: wanted, grid, crs }): AppQuery<LiveQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let features: Vec<Value> = {
        let units = st.service.live_units();
        let responders = st.service.layer(Layer::Responders);
        let mut items: Vec<_> = responders
            .iter()
            .filter(|it| who.covers_item(it))
            .filter(|it| grid.as_ref().is_none_or(|g| it.grid.as_ref().is_some_and(|c| g.covers(c))))
            .filter(|it| wanted.as_ref().is_none_or(|w| w.contains(&units.freshness(it.id, now))))
            .collect();
        items.sort_by_key(|it| it.id);
        items
            .into_iter()
            .map(|it| {
                let Props::Responder(r) = &it.props else { return Value::Null };
                let fix = units.get(it.id);
                let at = crs.from_wgs84(it.pos);
                json!({
                    "type": "Feature",
                    "id": it.id,
                    "geometry": {"type": "Point", "coordinates": [at.lon(), at.lat()]},
                    "properties": {
                        "callsign": r.callsign, "kind": r.kind.name(), "status": r.status.name(),
                        "capabilities": r.capabilities,
                        "grid_code": it.grid.as_ref().map(GridCode::as_str),
                        "freshness": units.freshness(it.id, now).name(),
                        "fix": fix,
                        "age_s": fix.map(|f| (now - f.time).num_milliseconds() as f64 / 1000.0),
                    }
                })
            })
            .collect()
    };
    let entry = crate::audit_log::AuditEntry {
        action: "live",
        request: &request_text(&uri, "GET"),
        layer: Some(Layer::Responders),
        subjects: features.iter().filter_map(|f| f["id"].as_i64()).collect(),
        result_count: features.len(),
        ..Default::default()
    };
    st.service.audit_entry(&who, entry).await?;
    Ok(geojson_response(
        StatusCode::OK,
        &json!({"type": "FeatureCollection", "features": features, "generated_at": now}),
    ))
}

/// How a trace is answered.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceFormat {
    /// Points with their times, flags and accuracy.
    Json,
    /// One feature: a line and its times.
    #[default]
    Geojson,
    /// GPX 1.1, for desktop GIS and playback tools.
    Gpx,
}

/// A window of a unit's trace, how to answer it, and how much of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    #[serde(default, deserialize_with = "query::opt_time")]
    since: Option<chrono::DateTime<Utc>>,
    #[serde(default, deserialize_with = "query::opt_time")]
    until: Option<chrono::DateTime<Utc>>,
    #[serde(default)]
    format: TraceFormat,
    #[serde(default)]
    simplify_m: Option<f64>,
    #[serde(default)]
    flagged: bool,
    #[serde(default)]
    limit: Option<Bounded<1, MAX_TRACE_POINTS>>,
    #[serde(default)]
    gap_s: Option<Bounded<1, 604_800>>,
    #[serde(default, deserialize_with = "query::parsed")]
    crs: Crs,
}

/// Fixes further apart in time than this start a new segment (a new trip) unless `gap_s` says.
const DEFAULT_GAP_S: usize = 600;

/// `GET /api/v1/responders/{id}/trace`
///
/// # Errors
/// 400 for an unknown or malformed parameter (`since` not before `until`, `format`,
/// `simplify_m`, `flagged`, `limit`); 404 for an unknown unit or one outside the caller's
/// grids; 500 or 503 (with `Retry-After`) when the store fails (the trace, or the audit row that must precede it).
async fn trace(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath(ItemId(id)): AppPath<ItemId>,
    AppQuery(q): AppQuery<TraceQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let crs = q.crs;
    let until = q.until.unwrap_or_else(Utc::now);
    let since = q.since.unwrap_or(until - Duration::hours(24));
    if since >= until {
        return Err(ApiError::invalid("since", since.to_rfc3339(), "must be before until"));
    }
    let simplify_m = q.simplify_m.unwrap_or(0.0);
    if !(0.0..=10_000.0).contains(&simplify_m) {
        return Err(ApiError::invalid("simplify_m", simplify_m, "from 0 to 10000 metres"));
    }
    let (format, with_flagged, limit) = (q.format, q.flagged, Bounded::or(q.limit, 20_000));
    let callsign = {
        let responders = st.service.layer(Layer::Responders);
        match responders.get(id).filter(|it| who.covers_item(it)) {
            Some(it) => match &it.props {
                Props::Responder(r) => r.callsign.clone(),
                _ => String::new(),
            },
            None => return Err(ApiError::not_found("id", id, "no responders item with this id")),
        }
    };
    let mut points = st.service.store().trace(Subject::Responder, id, since, until, limit + 1).await?;
    let truncated = points.len() > limit;
    points.truncate(limit);
    if !with_flagged {
        points.retain(|p| p.flags == 0);
    }
    // Trips: split where the unit reported nothing for longer than gap_s, each simplified on
    // its own, so that a line never joins two trips across the hours between them.
    let gap = Duration::seconds(i64::try_from(Bounded::or(q.gap_s, DEFAULT_GAP_S)).unwrap_or(i64::MAX));
    let segments: Vec<Vec<TracePoint>> = safegrid_geodata::trace_file::segments(&points, |p| p.time, gap)
        .into_iter()
        .map(|seg| if simplify_m > 0.0 { simplify(seg, simplify_m) } else { seg.to_vec() })
        .collect();
    let shown: Vec<TracePoint> = segments.iter().flatten().cloned().collect();
    let entry = crate::audit_log::AuditEntry {
        action: "trace",
        request: &request_text(&uri, "GET"),
        layer: Some(Layer::Responders),
        subjects: vec![id],
        result_count: shown.len(),
        ..Default::default()
    };
    st.service.audit_entry(&who, entry).await?;
    Ok(match format {
        TraceFormat::Gpx => gpx(&callsign, id, &segments),
        TraceFormat::Json => axum::Json(json!({
            "unit_id": id, "callsign": callsign, "since": since, "until": until,
            "truncated": truncated, "stored": points.len(),
            "points": shown.iter().map(|p| point_json(p, crs)).collect::<Vec<_>>(),
        }))
        .into_response(),
        TraceFormat::Geojson => {
            let line = |seg: &[TracePoint]| -> Vec<[f64; 2]> {
                // A trip of one fix is a line of two equal positions (a LineString has two).
                let reps = if seg.len() == 1 { 2 } else { 1 };
                seg.iter()
                    .flat_map(|p| std::iter::repeat_n(p, reps))
                    .map(|p| crs.from_wgs84(p.pos))
                    .map(|q| [q.lon(), q.lat()])
                    .collect()
            };
            let times: Vec<_> = segments
                .iter()
                .flat_map(|seg| {
                    seg.iter().flat_map(move |p| std::iter::repeat_n(p.time, if seg.len() == 1 { 2 } else { 1 }))
                })
                .collect();
            let geometry = match segments.as_slice() {
                [] => Value::Null,
                [one] if one.len() == 1 => {
                    let q = crs.from_wgs84(one[0].pos);
                    json!({"type": "Point", "coordinates": [q.lon(), q.lat()]})
                }
                [one] => json!({"type": "LineString", "coordinates": line(one)}),
                many => {
                    json!({"type": "MultiLineString", "coordinates": many.iter().map(|s| line(s)).collect::<Vec<_>>()})
                }
            };
            let times =
                if matches!(segments.as_slice(), [one] if one.len() == 1) { vec![shown[0].time] } else { times };
            let feature = json!({
                "type": "Feature", "id": id,
                "geometry": geometry,
                "properties": {
                    "unit_id": id, "callsign": callsign, "since": since, "until": until,
                    "truncated": truncated, "stored": points.len(), "shown": shown.len(),
                    "simplify_m": simplify_m, "segments": segments.len(),
                    "times": times,
                }
            });
            geojson_response(StatusCode::OK, &feature)
        }
    })
}

fn point_json(p: &TracePoint, crs: Crs) -> Value {
    let at = crs.from_wgs84(p.pos);
    json!({
        "time": p.time, "lon": at.lon(), "lat": at.lat(),
        "speed_mps": p.speed_mps, "bearing_deg": p.bearing_deg, "altitude_m": p.altitude_m,
        "accuracy_m": p.accuracy_m, "battery_pct": p.battery_pct,
        "flags": flags::names(p.flags),
    })
}

/// Douglas–Peucker in a local metric frame (equirectangular about the trace's first point),
/// keeping the chosen fixes whole so that times survive.
fn simplify(points: &[TracePoint], tolerance_m: f64) -> Vec<TracePoint> {
    let Some(first) = points.first() else { return Vec::new() };
    let k = first.pos.lat().to_radians().cos();
    let m_per_deg = 111_320.0;
    let line: LineString<f64> = points
        .iter()
        .map(|p| Coord {
            x: (p.pos.lon() - first.pos.lon()) * k * m_per_deg,
            y: (p.pos.lat() - first.pos.lat()) * m_per_deg,
        })
        .collect();
    line.simplify_idx(tolerance_m).into_iter().map(|i| points[i].clone()).collect()
}

/// GPX 1.1: one track, a segment per trip, a point per fix (WGS-84, as GPX requires), with
/// speed (m/s) and course in Garmin's TrackPointExtension, which GPX 1.1 readers know.
fn gpx(callsign: &str, id: i64, segments: &[Vec<TracePoint>]) -> Response {
    let n: usize = segments.iter().map(Vec::len).sum();
    let mut out = String::with_capacity(200 + n * 200);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"safegrid\" xmlns=\"http://www.topografix.com/GPX/1/1\" xmlns:gpxtpx=\"http://www.garmin.com/xmlschemas/TrackPointExtension/v2\">\n",
    );
    let _ = writeln!(out, "  <trk><name>{} ({id})</name>", xml_escape(callsign));
    for seg in segments {
        out.push_str("    <trkseg>\n");
        for p in seg {
            let _ = write!(out, "      <trkpt lat=\"{:.7}\" lon=\"{:.7}\">", p.pos.lat(), p.pos.lon());
            if let Some(e) = p.altitude_m {
                let _ = write!(out, "<ele>{e}</ele>");
            }
            let _ = write!(out, "<time>{}</time>", p.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            if p.speed_mps.is_some() || p.bearing_deg.is_some() {
                out.push_str("<extensions><gpxtpx:TrackPointExtension>");
                if let Some(v) = p.speed_mps {
                    let _ = write!(out, "<gpxtpx:speed>{v}</gpxtpx:speed>");
                }
                if let Some(c) = p.bearing_deg {
                    let _ = write!(out, "<gpxtpx:course>{c}</gpxtpx:course>");
                }
                out.push_str("</gpxtpx:TrackPointExtension></extensions>");
            }
            out.push_str("</trkpt>\n");
        }
        out.push_str("    </trkseg>\n");
    }
    out.push_str("  </trk>\n</gpx>\n");
    let mut r = (StatusCode::OK, out).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/gpx+xml"));
    r
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Most grid crossings one page returns.
const MAX_EVENTS: usize = 10_000;
/// Pages a stream replays before it ends and lets the client resume (100,000 crossings).
const REPLAY_PAGES: usize = 10;

/// Records a read of grid crossings: a row per kind of person seen (key persons, responders),
/// naming each, so an auditor finds who saw whom; one row naming nobody when none was seen.
async fn audit_crossings(
    st: &AppState,
    who: &Principal,
    action: &str,
    request: &str,
    events: &[GridEvent],
) -> Result<(), ApiError> {
    let mut named = false;
    for subject in [Subject::KeyPerson, Subject::Responder] {
        let ids: Vec<i64> = events.iter().filter(|e| e.subject == subject).map(|e| e.unit_id).collect();
        if ids.is_empty() {
            continue;
        }
        named = true;
        let entry = crate::audit_log::AuditEntry {
            action,
            request,
            layer: Some(subject.layer()),
            result_count: ids.len(),
            subjects: ids,
            ..Default::default()
        };
        st.service.audit_entry(who, entry).await?;
    }
    if !named {
        st.service.audit(who, action, request, 0).await?;
    }
    Ok(())
}

/// A page of grid crossings after an event id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<Bounded<1, MAX_EVENTS>>,
}

/// Where a stream of grid crossings resumes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    #[serde(default)]
    after: Option<i64>,
}

/// `GET /api/v1/geofence/events?after=ID&limit=N`: grid crossings after an id, oldest first,
/// within the caller's grids.
///
/// # Errors
/// 400 for an unknown or malformed parameter; 500 or 503 (with `Retry-After`) when the store fails (the events, or the audit rows
/// that must precede them).
async fn geofence_events(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppQuery(q): AppQuery<EventsQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let (after, limit) = (q.after.unwrap_or(0), Bounded::or(q.limit, 1_000));
    let page = st.service.store().geofence_events(after, limit).await?;
    // The last id read, shown or not: a grid worker pages past other grids' crossings.
    let last = page.last().map_or(after, |e| e.id);
    let events: Vec<GridEvent> = page.into_iter().filter(|e| who.covers(Some(&e.grid_code))).collect();
    audit_crossings(&st, &who, "geofence_events", &request_text(&uri, "GET"), &events).await?;
    Ok(axum::Json(json!({"events": events, "last_id": last})).into_response())
}

/// `GET /api/v1/geofence/stream`: the same as server-sent events (`event: enter|exit`, `id:`
/// the event id). A client resumes with `Last-Event-ID` (browsers send it on reconnect) or
/// `?after=ID`: what it missed is replayed from the store, then crossings follow live.
///
/// # Errors
/// 400 for an unknown or malformed parameter or `Last-Event-ID`; 401 for an
/// Authorization header that is not `Bearer <token>`; 500 or 503 (with `Retry-After`) when the store fails while replaying what the
/// client missed. Once streaming, a failure ends the stream instead.
async fn geofence_stream(
    State(st): State<AppState>,
    Caller(who): Caller,
    headers: axum::http::HeaderMap,
    AppQuery(q): AppQuery<StreamQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt as _;
    let from_header = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim);
    let after: i64 = match (q.after, from_header) {
        (Some(after), _) => after,
        (None, Some(h)) => h.parse().map_err(|_| ApiError::invalid("Last-Event-ID", h, "expected an event id"))?,
        (None, None) => st.service.store().max_geofence_event_id().await?,
    };
    // Subscribe before reading the store, then drop live events already replayed: nothing is
    // missed in between and nothing is sent twice.
    let live = st.ingest.subscribe();
    // Everything missed, page by page; a client that is very far behind gets the first
    // REPLAY_PAGES pages and the stream ends, so it reconnects from its last id for the rest.
    let mut missed: Vec<GridEvent> = Vec::new();
    let mut complete = false;
    let mut from = after;
    for _ in 0..REPLAY_PAGES {
        let page = st.service.store().geofence_events(from, MAX_EVENTS).await?;
        let full = page.len() == MAX_EVENTS;
        from = page.last().map_or(from, |e| e.id);
        missed.extend(page);
        if !full {
            complete = true;
            break;
        }
    }
    let replayed_to = from;
    missed.retain(|e| who.covers(Some(&e.grid_code)));
    audit_crossings(&st, &who, "geofence_stream", &request_text(&uri, "GET"), &missed).await?;
    let to_event = |e: &GridEvent| {
        Event::default().id(e.id.to_string()).event(e.kind.name()).data(serde_json::to_string(e).unwrap_or_default())
    };
    let token = super::caller::bearer(&headers)?.unwrap_or_default().to_owned();
    let replay = futures_util::stream::iter(missed.into_iter().map(move |e| to_event(&e)));
    let follow = futures_util::stream::unfold((live, who, st, token), move |(mut live, who, st, token)| async move {
        if !complete {
            return None; // a truncated replay: the client resumes from its last id
        }
        loop {
            // Fell behind (or shutting down): end the stream; the client reconnects with its
            // Last-Event-ID and is replayed the rest from the store.
            let Ok(e) = live.recv().await else { return None };
            // As on the wall's feed, a revoked or changed token ends the stream.
            if st.service.authenticate(&token).as_ref() != Some(&who) {
                return None;
            }
            if e.id > replayed_to && who.covers(Some(&e.grid_code)) {
                // Each crossing streamed is a read of a unit's whereabouts: audited before it
                // is sent, and the stream ends if the audit cannot be written.
                let what = format!("GET /api/v1/geofence/stream event {}", e.id);
                audit_crossings(&st, &who, "geofence_stream", &what, std::slice::from_ref(&e)).await.ok()?;
                return Some((to_event(&e), (live, who, st, token)));
            }
        }
    });
    let stream = replay.chain(follow).map(Ok::<_, std::convert::Infallible>);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))).into_response())
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/osmand", get(osmand).post(osmand))
        .route("/api/v1/positions", post(batch))
        .route("/api/v1/positions/live", get(live))
        .route("/api/v1/geofence/events", get(geofence_events))
        .route("/api/v1/geofence/stream", get(geofence_stream))
        .route("/api/v1/responders/{id}/trace", get(trace))
}
