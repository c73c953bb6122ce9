//! `GET /api/v1/dispatch/nearest?lon=…&lat=…&k=…[&kind=…&capability=…&include=…&crs=…]`: the
//! k best units for a place by road travel time ([`crate::dispatch::nearest`]).
//!
//! `include` is a comma list of `stale`, `lost`, `untracked` and `busy`: by default only
//! available units with a live fix are ranked. Each result says how its ETA was found
//! (`eta_source`: `road` or `estimate`). Positions of units are whereabouts: every answer is
//! audited.

use super::AppState;
use super::caller::Caller;
use super::items::request_text;
use super::problem::ApiError;
use super::query::{self, AppQuery, Bounded};
use crate::dispatch::nearest::{NearestQuery, rank};
use crate::layer::{Layer, Props};
use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use safegrid_geodata::{Crs, GridCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// Where the units are needed, how many, of which kind, and which may be ranked besides the
/// available and tracked ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchQuery {
    lon: f64,
    lat: f64,
    #[serde(default)]
    k: Option<Bounded<1, 50>>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    capability: Option<String>,
    #[serde(default)]
    include: Option<String>,
    #[serde(default, deserialize_with = "query::parsed")]
    crs: Crs,
}

/// `GET /api/v1/dispatch/nearest`
///
/// # Errors
/// 400 for an unknown or malformed parameter (`kind`, `include`, the position, `k` from 1
/// to 50); 503 + `Retry-After` past the bound on road searches; 500 or 503 (with `Retry-After`) when the store fails (the audit row that
/// must precede the answer).
async fn nearest(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppQuery(p): AppQuery<DispatchQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let crs = p.crs;
    let at = query::point(p.lon, p.lat, crs)?;
    let mut q =
        NearestQuery { k: Bounded::or(p.k, 5), kind: p.kind, capability: p.capability, ..NearestQuery::default() };
    if let Some(kind) = &q.kind
        && !crate::layer::ResponderKind::NAMES.contains(&kind.as_str())
    {
        return Err(ApiError::invalid(
            "kind",
            kind.as_str(),
            format!("expected one of {}", crate::layer::ResponderKind::NAMES.join(", ")),
        ));
    }
    if let Some(list) = &p.include {
        for part in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match part {
                "stale" => q.include_stale = true,
                "lost" => q.include_lost = true,
                "untracked" => q.include_untracked = true,
                "busy" => q.include_busy = true,
                other => {
                    return Err(ApiError::invalid("include", other, "expected a list of stale, lost, untracked, busy"));
                }
            }
        }
    }
    let now = Utc::now();
    let _race = st.shed.start(super::guard::Work::RoadRace)?;
    let roads = st.roads.as_deref();
    let covered = roads.and_then(|r| r.drive.snap(at)).is_some();
    let features: Vec<Value> = {
        let responders = st.service.layer(Layer::Responders);
        let live = st.service.live_units();
        rank(at, responders.iter().filter(|it| who.covers_item(it)), &live, roads, &q, now)
            .into_iter()
            .map(|r| {
                let Props::Responder(u) = &r.item.props else { return Value::Null };
                let pos = crs.from_wgs84(r.item.pos);
                json!({
                    "type": "Feature",
                    "id": r.item.id,
                    "geometry": {"type": "Point", "coordinates": [pos.lon(), pos.lat()]},
                    "properties": {
                        "callsign": u.callsign, "kind": u.kind.name(), "status": u.status.name(),
                        "capabilities": u.capabilities,
                        "grid_code": r.item.grid.as_ref().map(GridCode::as_str),
                        "eta_s": (r.eta_s * 10.0).round() / 10.0,
                        "eta_source": r.source,
                        "distance_m": r.distance_m.round(),
                        "straight_m": r.straight_m.round(),
                        "freshness": r.freshness.name(),
                        "age_s": r.age_s.map(f64::round),
                    }
                })
            })
            .collect()
    };
    let entry = crate::audit_log::AuditEntry {
        action: "dispatch_nearest",
        request: &request_text(&uri, "GET"),
        layer: Some(Layer::Responders),
        subjects: features.iter().filter_map(|f| f["id"].as_i64()).collect(),
        result_count: features.len(),
        ..Default::default()
    };
    st.service.audit_entry(&who, entry).await?;
    let body = json!({
        "type": "FeatureCollection",
        "features": features,
        "road_network": roads.map(|r| json!({"source": r.source, "covers_this_place": covered, "attribution": crate::roads::ATTRIBUTION})),
    });
    Ok(super::items::geojson_response(axum::http::StatusCode::OK, &body))
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/dispatch/nearest", get(nearest))
}
