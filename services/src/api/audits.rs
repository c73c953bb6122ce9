//! Coverage audits of the live grid layer over HTTP (`/api/v1/audit/…`).
//!
//! - `GET /api/v1/audit/geometry`: gaps, overlaps, slivers, grids outside their parent, codes,
//!   staffing — the same audit as `safegrid audit`, on the layer the service runs.
//! - `GET /api/v1/audit/workload`: households and people (from rental housing) and incidents
//!   per grid against the norm.
//! - `GET /api/v1/audit/patrol`: the share of each grid's ground the responders' traces passed
//!   through in a window, patrol hours, grids nobody patrolled in the last 24 hours. It reads
//!   everyone's whereabouts, so it is written to the audit log like any read of them.
//!
//! Both answer JSON (the whole report) or, with `format=geojson`, the findings as GeoJSON
//! features (what the map wall's audit overlay draws). Who may ask is the access policy's
//! (`crate::policy`). Each computation takes the audit permit (`api::guard::Work::Audit`: past
//! the bound, 503 + `Retry-After`), and the pure ones (geometry, workload, response) are kept
//! per data version, so the same question asked again costs nothing until the data changes.

use super::AppState;
use super::caller::Caller;
use super::guard::{Work, run_heavy};
use super::items::geojson_response;
use super::problem::ApiError;
use super::query::{self, AppQuery, Bounded};
use crate::audit::Report;
use crate::audit_log::AuditEntry;
use crate::layer::{Layer, Props};
use crate::positions::{Subject, flags};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use safegrid_geodata::audit::input::{AuditFeature, AuditLayer};
use safegrid_geodata::audit::layers;
use safegrid_geodata::audit::patrol::{self, PatrolFix, PatrolOptions};
use safegrid_geodata::audit::response::{self, Reach};
use safegrid_geodata::audit::workload::{self, Dwelling, Norm};
use safegrid_geodata::audit::{Silent, Thresholds, geometry};
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

/// Households as the rental-housing layer records them (units = households).
fn live_dwellings(st: &AppState) -> Vec<Dwelling> {
    st.service
        .layer(Layer::RentalHousing)
        .iter()
        .filter_map(|it| match &it.props {
            Props::RentalHousing(r) => Some(Dwelling { at: it.pos, households: r.units, people: r.tenant_count }),
            _ => None,
        })
        .collect()
}

/// A number ≥ 0 (a threshold in square metres or metres).
fn opt_non_negative<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = f64::deserialize(d)?;
    if v >= 0.0 && v.is_finite() { Ok(Some(v)) } else { Err(serde::de::Error::custom("expected a number ≥ 0")) }
}

/// The whole report as JSON, or its findings as GeoJSON features (the wall's overlay).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Json,
    GeoJson,
}

/// `GET /api/v1/audit/geometry`: what counts as a sliver.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometryQuery {
    #[serde(default)]
    format: Format,
    #[serde(default, deserialize_with = "opt_non_negative")]
    sliver_m2: Option<f64>,
    #[serde(default, deserialize_with = "opt_non_negative")]
    sliver_width_m: Option<f64>,
}

impl GeometryQuery {
    fn thresholds(&self) -> Thresholds {
        let d = Thresholds::default();
        Thresholds {
            sliver_m2: self.sliver_m2.unwrap_or(d.sliver_m2),
            sliver_width_m: self.sliver_width_m.unwrap_or(d.sliver_width_m),
            ..d
        }
    }
}

/// `GET /api/v1/audit/workload`: the norm a grid's load is held to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadQuery {
    #[serde(default)]
    format: Format,
    #[serde(default)]
    min_households: Option<u64>,
    #[serde(default)]
    max_households: Option<u64>,
    #[serde(default)]
    max_people: Option<u64>,
}

impl WorkloadQuery {
    fn norm(&self) -> Result<Norm, ApiError> {
        let d = Norm::default();
        let n = Norm {
            min_households: self.min_households.unwrap_or(d.min_households),
            max_households: self.max_households.unwrap_or(d.max_households),
            max_people: self.max_people.unwrap_or(d.max_people),
        };
        if n.min_households > n.max_households {
            return Err(ApiError::invalid(
                "min_households",
                n.min_households,
                format!("above max_households {}", n.max_households),
            ));
        }
        Ok(n)
    }
}

/// `GET /api/v1/audit/patrol`: the window, and the share of a grid that counts as patrolled.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatrolQuery {
    #[serde(default)]
    format: Format,
    #[serde(default)]
    hours: Option<Bounded<1, { 24 * 31 }>>,
    #[serde(default, deserialize_with = "query::opt_time")]
    until: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    min_share: Option<f64>,
}

/// `POST /api/v1/audit/layers`: how far apart two layers' boundaries may be.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayersQuery {
    #[serde(default)]
    format: Format,
    #[serde(default, deserialize_with = "opt_non_negative")]
    tolerance_m: Option<f64>,
}

/// `GET /api/v1/audit/response`: the time within which help must reach.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseQuery {
    #[serde(default)]
    format: Format,
    #[serde(default)]
    minutes: Option<f64>,
}

fn answer(report: &Report, layer: &AuditLayer, f: Format) -> Response {
    let (body, ct) = answer_bytes(report, layer, f);
    with_type(body, ct)
}

/// The report as bytes and its media type. Reports are plain structs and maps with string
/// keys, which cannot fail to serialise; an empty body would show such a bug at once.
fn answer_bytes(report: &Report, layer: &AuditLayer, f: Format) -> (Bytes, &'static str) {
    match f {
        Format::Json => (serde_json::to_vec(report).unwrap_or_default().into(), "application/json"),
        Format::GeoJson => {
            (serde_json::to_vec(&report.to_geojson(layer)).unwrap_or_default().into(), "application/geo+json")
        }
    }
}

fn with_type(body: Bytes, content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The cache key of an audit's answer: the request and every data version it reads, so an
/// answer is reused only while nothing it was built from has changed.
fn result_key(st: &AppState, uri: &OriginalUri, layers: &[Layer]) -> String {
    let mut key = format!("{}|grids {}", uri.0, st.service.grids().version);
    for l in layers {
        key.push_str(&format!("|{l} {}", st.service.layer(*l).version()));
    }
    key
}

/// Runs an audit at most once per data version: a cached answer, or `run` under the audit
/// permit (503 past the bound) and its answer kept.
async fn once_per_version<F>(st: &AppState, key: String, f: Format, run: F) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<(Report, AuditLayer), ApiError>>,
{
    if let Some((body, ct)) = st.results.get(&key) {
        return Ok(with_type(body, ct));
    }
    let (report, layer) = run.await?;
    let (body, ct) = answer_bytes(&report, &layer, f);
    st.results.put(key, body.clone(), ct);
    Ok(with_type(body, ct))
}

/// Audits the live layer's geometry on a thread of lower priority (3,000 grids take about a
/// third of a second of CPU; the async workers stay free), then lets `more` add an audit of its
/// grids. It runs under the audit permit: `permit` when the caller took it early (before
/// reading whereabouts and writing their audit row, so that a refused request costs nothing),
/// else taken here.
async fn on_live_layer(
    st: &AppState,
    permit: Option<OwnedSemaphorePermit>,
    t: Thresholds,
    more: impl FnOnce(Report, &[&AuditFeature]) -> Result<Report, ApiError> + Send + 'static,
) -> Result<(Report, AuditLayer), ApiError> {
    let grids = st.service.grids();
    let permit = match permit {
        Some(p) => p,
        None => st.shed.start(Work::Audit)?,
    };
    run_heavy(move || {
        let _permit = permit;
        let layer = AuditLayer::from_units(grids.hierarchy.units());
        let g = geometry::audit(&layer, None, t, &Silent).map_err(|e| ApiError::conflict(e.to_string()))?;
        let cells: Vec<&AuditFeature> = g.grid_features.iter().map(|&i| &layer.features[i]).collect();
        let report = more(Report::new("live grid layer".into(), &layer, t, g), &cells)?;
        Ok((report, layer))
    })
    .await?
}

/// `GET /api/v1/audit/geometry[?format=json|geojson&sliver_m2=&sliver_width_m=]`
///
/// # Errors
/// 400 for an unknown or malformed parameter; 409 when the live layer cannot be audited;
/// 503 + `Retry-After` past the audit bound; 500 when the audit thread fails.
async fn geometry_audit(
    State(st): State<AppState>,
    Caller(_): Caller,
    AppQuery(q): AppQuery<GeometryQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let (f, t) = (q.format, q.thresholds());
    let key = result_key(&st, &uri, &[]);
    once_per_version(&st, key, f, on_live_layer(&st, None, t, |r, _| Ok(r))).await
}

/// `GET /api/v1/audit/workload[?format=…&min_households=&max_households=&max_people=]`:
/// the geometry audit and the workload audit together.
///
/// # Errors
/// 400 for an unknown or malformed parameter (`min_households` above `max_households`
/// included); 409 when the live layer cannot be audited; 503 + `Retry-After` past the audit
/// bound; 500 when the audit thread fails.
async fn workload_audit(
    State(st): State<AppState>,
    Caller(_): Caller,
    AppQuery(q): AppQuery<WorkloadQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let (f, n) = (q.format, q.norm()?);
    let key = result_key(&st, &uri, &[Layer::RentalHousing, Layer::Incidents]);
    if let Some((body, ct)) = st.results.get(&key) {
        return Ok(with_type(body, ct));
    }
    let (dwellings, incidents) =
        (live_dwellings(&st), st.service.layer(Layer::Incidents).iter().map(|it| it.pos).collect::<Vec<_>>());
    let run = on_live_layer(&st, None, Thresholds::default(), move |r, cells| {
        Ok(r.with_workload(workload::audit(cells, &dwellings, &incidents, n, &Silent)))
    });
    once_per_version(&st, key, f, run).await
}

/// Fixes a unit may hold in one audit window: a fix a second for 31 days.
const MAX_FIXES_PER_UNIT: usize = 31 * 86_400;

/// `GET /api/v1/audit/patrol[?format=…&hours=24&until=RFC3339&min_share=0.25]`: patrol coverage
/// of the live layer from the responders' stored traces (jumps, inaccurate and invalid fixes
/// left out; late ones kept — they are where a unit really was).
///
/// # Errors
/// 400 for an unknown or malformed parameter; 503 + `Retry-After` past the audit bound;
/// 409 when the live layer cannot be audited; 500 or 503 (with `Retry-After`) when the store fails (the traces, or the audit row that
/// must precede the answer).
async fn patrol_audit(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppQuery(q): AppQuery<PatrolQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let f = q.format;
    let hours = i64::try_from(Bounded::or(q.hours, 24)).unwrap_or(24);
    let until = q.until.unwrap_or_else(chrono::Utc::now);
    let min_share = q.min_share.unwrap_or(0.25);
    if !(0.0..=1.0).contains(&min_share) {
        return Err(ApiError::invalid("min_share", min_share, "expected a share from 0 to 1"));
    }
    let opts = PatrolOptions { min_share, ..PatrolOptions::last_hours(until.timestamp_millis(), hours) };
    // Recency (24 h) may reach back before a shorter window.
    let from = until - chrono::Duration::hours(hours.max(opts.recent_hours));
    let permit = st.shed.start(Work::Audit)?;
    let units: Vec<i64> = st.service.layer(Layer::Responders).iter().map(|it| it.id).collect();
    let mut fixes = Vec::new();
    for id in units {
        let trace = st.service.store().trace(Subject::Responder, id, from, until, MAX_FIXES_PER_UNIT).await?;
        fixes.extend(
            trace
                .into_iter()
                .filter(|tp| tp.flags & (flags::JUMP | flags::INACCURATE | flags::INVALID) == 0)
                .map(|tp| PatrolFix { unit: id, t_ms: tp.time.timestamp_millis(), at: tp.pos }),
        );
    }
    // Whereabouts were read: logged, naming whose, before anything derived from them leaves.
    let mut seen: Vec<i64> = fixes.iter().map(|f| f.unit).collect();
    seen.dedup();
    let request = uri.0.to_string();
    let entry = AuditEntry {
        action: "audit patrol",
        request: &request,
        layer: Some(Layer::Responders),
        subjects: seen,
        result_count: fixes.len(),
        ..AuditEntry::default()
    };
    st.service.audit_entry(&who, entry).await?;
    let (report, layer) = on_live_layer(&st, Some(permit), Thresholds::default(), move |r, cells| {
        Ok(r.with_patrol(patrol::audit(cells, &fixes, opts, &Silent)))
    })
    .await?;
    Ok(answer(&report, &layer, f))
}

/// `POST /api/v1/gridding` (admin, auditor): `{"communities": FeatureCollection,
/// "min_households"?, "max_households"?, "res"?}` → the communities and their generated grids
/// as GeoJSON, households counted from the live rental-housing layer. Nothing is stored: the
/// result is reviewed, staffed and then imported as the grid layer; grids mostly covering a
/// current grid keep its code.
///
/// # Errors
/// 400 for a body that is not JSON or a field out of range (`min_households` 0 or above
/// `max_households`, `res` outside 9–13, `communities` missing or not polygons, or not
/// griddable); 503 + `Retry-After` past the audit bound; 500 when the gridding thread fails.
async fn gridding(
    State(st): State<AppState>,
    Caller(_): Caller,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::malformed_json(e.to_string()))?;
    let num = |k: &str, d: u64| -> Result<u64, ApiError> {
        match v.get(k) {
            None => Ok(d),
            Some(x) => x.as_u64().ok_or_else(|| ApiError::invalid(k, x.clone(), "expected a whole number")),
        }
    };
    let (min, max, res) = (num("min_households", 300)?, num("max_households", 500)?, num("res", 11)?);
    if min == 0 || min > max {
        return Err(ApiError::invalid(
            "min_households",
            min,
            format!("must be at least 1 and at most max_households {max}"),
        ));
    }
    let res_u8 = u8::try_from(res)
        .ok()
        .filter(|r| (9..=13).contains(r))
        .ok_or_else(|| ApiError::invalid("res", res, "expected 9 to 13"))?;
    let opts = crate::audit::gridding::options(min, max, res_u8).map_err(|e| ApiError::invalid("res", res, e))?;
    let fc = v.get("communities").ok_or_else(|| {
        ApiError::invalid("communities", serde_json::Value::Null, "required: a FeatureCollection of community polygons")
    })?;
    let communities = crate::audit::gridding::communities_from_text(&fc.to_string(), safegrid_geodata::Crs::Wgs84)
        .map_err(|e| ApiError::invalid("communities", serde_json::Value::Null, e))?;
    let dwellings = live_dwellings(&st);
    let grids = st.service.grids();
    let permit = st.shed.start(Work::Audit)?;
    let out = run_heavy(move || {
        let _permit = permit;
        let previous: Vec<safegrid_geodata::GridUnit> =
            grids.hierarchy.units().iter().filter(|u| u.level == safegrid_geodata::GridLevel::Grid).cloned().collect();
        let (made, summary) = safegrid_geodata::gridding::grid_communities(&communities, &dwellings, opts, &previous)
            .map_err(|e| ApiError::invalid("communities", serde_json::Value::Null, e.to_string()))?;
        let mut fc = crate::audit::gridding::to_feature_collection(&communities, &made);
        let mut m = serde_json::Map::new();
        m.insert("summary".into(), serde_json::to_value(summary).unwrap_or_default());
        fc.foreign_members = Some(m);
        Ok::<_, ApiError>(fc)
    })
    .await??;
    Ok(geojson_response(StatusCode::OK, &serde_json::to_value(out).unwrap_or_default()))
}

/// `POST /api/v1/audit/layers[?tolerance_m=5&format=…]`: another grid layer of the territory
/// (a GeoJSON FeatureCollection — the river-chief grids, say) compared with the live layer
/// (三网合一): which grids intersect which, and where boundaries disagree beyond the tolerance.
/// The posted layer is read as an audit reads a file: its own faults are reported, not refused.
///
/// # Errors
/// 400 for an unknown or malformed parameter, or a body that is not UTF-8 or not a
/// readable GeoJSON layer; 409 when the live layer cannot be audited; 503 + `Retry-After`
/// past the audit bound; 500 when the audit thread fails.
async fn layers_audit(
    State(st): State<AppState>,
    Caller(_): Caller,
    AppQuery(q): AppQuery<LayersQuery>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (f, tolerance_m) = (q.format, q.tolerance_m.unwrap_or(5.0));
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::malformed_json("the body is not UTF-8"))?;
    let other =
        safegrid_geodata::audit::input::read_layer(text, &safegrid_geodata::audit::input::ReadOptions::default())
            .map_err(|e| ApiError::invalid("body", serde_json::Value::Null, e.to_string()))?;
    let (report, layer) = on_live_layer(&st, None, Thresholds::default(), move |r, cells| {
        let g2 = geometry::audit(&other, None, Thresholds::default(), &Silent)
            .map_err(|e| ApiError::invalid("body", serde_json::Value::Null, e.to_string()))?;
        let b: Vec<_> = g2.grid_features.iter().map(|&i| &other.features[i]).collect();
        Ok(r.with_layers(layers::audit(("live", cells), ("posted", &b), tolerance_m, &Silent)))
    })
    .await?;
    Ok(answer(&report, &layer, f))
}

/// `GET /api/v1/audit/response[?minutes=5&format=…]`: the share of the territory and of the
/// households (rental housing) within `minutes` of the nearest security post or available
/// responder — by road when the server has a road network, else in a straight line — the
/// uncovered areas, and where one more post would reach the most uncovered households.
///
/// # Errors
/// 400 for an unknown or malformed parameter (`minutes` outside 1–60 included); 503 +
/// `Retry-After` past the audit bound; 409 when the live layer cannot be audited; 500 or 503 (with `Retry-After`) when the store fails
/// (the audit row that must precede the answer).
async fn response_audit(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppQuery(q): AppQuery<ResponseQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let f = q.format;
    let minutes = q.minutes.unwrap_or(5.0);
    if !(1.0..=60.0).contains(&minutes) {
        return Err(ApiError::invalid("minutes", minutes, "expected 1 to 60"));
    }
    let key = result_key(&st, &uri, &[Layer::Posts, Layer::Responders, Layer::RentalHousing]);
    // A cached answer needs no permit; a computation takes it before anything is read, so a
    // refused request costs no audit row and no copy of every position.
    let permit = match st.results.get(&key) {
        Some(_) => None,
        None => Some(st.shed.start(Work::Audit)?),
    };
    let mut sources: Vec<safegrid_geodata::LonLat> = st.service.layer(Layer::Posts).iter().map(|it| it.pos).collect();
    let mut units = Vec::new();
    for it in st.service.layer(Layer::Responders).iter() {
        if matches!(&it.props, Props::Responder(r) if r.status == crate::layer::ResponderStatus::Available) {
            sources.push(it.pos);
            units.push(it.id);
        }
    }
    let dwellings = live_dwellings(&st);
    // Available units' positions were read: logged, naming whose, before anything derived from
    // them leaves.
    let request = uri.0.to_string();
    let entry = AuditEntry {
        action: "audit response",
        request: &request,
        layer: Some(Layer::Responders),
        subjects: units,
        result_count: sources.len(),
        ..AuditEntry::default()
    };
    st.service.audit_entry(&who, entry).await?;
    let roads = st.roads.clone();
    let run = on_live_layer(&st, permit, Thresholds::default(), move |r, cells| {
        let reach =
            roads.as_deref().map_or(Reach::Distance { kmh: response::STRAIGHT_LINE_KMH }, |r| Reach::Road(&r.drive));
        Ok(r.with_response(response::audit(cells, &sources, &dwellings, reach, minutes, &Silent)))
    });
    once_per_version(&st, key, f, run).await
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit/geometry", get(geometry_audit))
        .route("/api/v1/audit/workload", get(workload_audit))
        .route("/api/v1/audit/patrol", get(patrol_audit))
        .route("/api/v1/audit/layers", post(layers_audit))
        .route("/api/v1/audit/response", get(response_audit))
        .route("/api/v1/gridding", post(gridding))
}
