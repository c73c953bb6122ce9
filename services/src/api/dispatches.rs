//! The dispatch lifecycle over HTTP ([`crate::dispatch::desk`]):
//!
//! - `POST /api/v1/dispatches` `{"incident_id": 12, "units": [3, 5], "note": "…"}` → 201
//! - `GET  /api/v1/dispatches[?open=true&limit=N]`, `GET /api/v1/dispatches/{id}`
//! - `POST /api/v1/dispatches/{id}/units` `{"units": [7]}`: send more units
//! - `POST /api/v1/dispatches/{id}/units/{unit}` `{"step": "acknowledged" | "en_route" | "on_scene" | "cleared"}`
//! - `POST /api/v1/dispatches/{id}/city_wide` `{"radius_m": 3000}` or `{"within_s": 300}`: 全城响应
//! - `GET  /api/v1/incidents/{id}/timeline`: every dispatch event of an incident, in order
//! - `GET|PUT /api/v1/dispatch/deadlines`: acknowledge / arrive deadlines by grid (admin writes)
//!
//! Dispatchers and admins change; auditors read everything; grid workers read the dispatches
//! of incidents in their grids.

use super::AppState;
use super::caller::Caller;
use super::extract::{AppJson, AppPath, ItemId};
use super::problem::ApiError;
use super::query::{AppQuery, Bounded};
use crate::access::Principal;
use crate::dispatch::board::{DeadlineConfig, Dispatch, Step};
use crate::dispatch::desk::DeskError;
use crate::layer::{IncidentStatus, Layer, Props};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use safegrid_geodata::GridCode;
use serde::Deserialize;
use serde_json::json;

impl From<DeskError> for ApiError {
    fn from(e: DeskError) -> Self {
        match e {
            DeskError::NotFound { what, id } => ApiError::not_found("id", id, format!("no {what} with this id")),
            DeskError::Forbidden(r) => ApiError::forbidden(r),
            DeskError::Conflict(r) => ApiError::conflict(r),
            DeskError::Invalid { field, value, reason } => ApiError::invalid(field, value, reason),
            DeskError::Store(s) => s.into(),
            DeskError::Service(s) => s.into(),
        }
    }
}

/// Grid workers see the dispatches of incidents in their grids.
pub(super) fn visible(who: &Principal, d: &Dispatch) -> bool {
    let grid = d.grid_code.as_deref().and_then(|c| GridCode::parse(c).ok());
    who.covers(grid.as_ref())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDispatch {
    incident_id: i64,
    units: Vec<i64>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoreUnits {
    units: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    step: String,
}

/// Why a dispatch is called off, and whether its incident is done with.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cancel {
    reason: String,
    #[serde(default)]
    close_incident: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CityWide {
    #[serde(default)]
    radius_m: Option<f64>,
    #[serde(default)]
    within_s: Option<f64>,
}

/// `POST /api/v1/dispatches`
///
/// # Errors
/// 400 for a malformed body, no units, or a unit named twice; 403 for a role that may not
/// dispatch; 404 for an unknown incident or unit; 409 for a unit that is busy or off duty; 500 or 503 (with `Retry-After`) when the store fails.
async fn create(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppJson(b): AppJson<NewDispatch>,
) -> Result<Response, ApiError> {
    let d = st.desk.create(&who, b.incident_id, &b.units, b.note).await?;
    Ok((StatusCode::CREATED, Json(d)).into_response())
}

/// Open dispatches only, or all; how many.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    open: bool,
    #[serde(default)]
    limit: Option<Bounded<1, 1000>>,
}

/// `GET /api/v1/dispatches`
///
/// # Errors
/// 400 for an unknown or malformed parameter; 500 or 503 (with `Retry-After`) when the store fails.
async fn list(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppQuery(ListQuery { open, limit }): AppQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = Bounded::or(limit, 100);
    let all: Vec<Dispatch> =
        st.desk.list(open, usize::MAX).await?.into_iter().filter(|d| visible(&who, d)).take(limit).collect();
    Ok(Json(json!({"dispatches": all})).into_response())
}

async fn visible_dispatch(st: &AppState, who: &Principal, id: i64) -> Result<Dispatch, ApiError> {
    st.desk
        .get(id)
        .await?
        .filter(|d| visible(who, d))
        .ok_or_else(|| ApiError::not_found("id", id, "no dispatch with this id"))
}

/// `GET /api/v1/dispatches/{id}`
///
/// # Errors
/// 400 for an id that is not a positive whole number; 404 for an unknown dispatch or one
/// outside the caller's grids; 500 or 503 (with `Retry-After`) when the store fails.
async fn get_one(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath(ItemId(id)): AppPath<ItemId>,
) -> Result<Response, ApiError> {
    let d = visible_dispatch(&st, &who, id).await?;
    Ok(Json(d).into_response())
}

/// `POST /api/v1/dispatches/{id}/units`
///
/// # Errors
/// 400 for a malformed id or body, or a unit named twice; 403 for a role that may not
/// dispatch; 404 for an unknown dispatch or unit; 409 for a closed dispatch, or a unit that is
/// busy, off duty or already on it; 500 or 503 (with `Retry-After`) when the store fails.
async fn add_units(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath(ItemId(id)): AppPath<ItemId>,
    AppJson(b): AppJson<MoreUnits>,
) -> Result<Response, ApiError> {
    let d = st.desk.add_units(&who, id, &b.units).await?;
    Ok(Json(d).into_response())
}

/// `POST /api/v1/dispatches/{id}/units/{unit}`
///
/// # Errors
/// 400 for a malformed id or body, or a step other than acknowledged, en_route, on_scene
/// or cleared; 403 for a role that may not dispatch; 404 for an unknown dispatch or unit;
/// 409 for a unit not on the dispatch, a step back or repeated, or a closed dispatch; 500 or 503 (with `Retry-After`) when the store fails.
async fn step(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath((ItemId(id), ItemId(unit))): AppPath<(ItemId, ItemId)>,
    AppJson(b): AppJson<StepBody>,
) -> Result<Response, ApiError> {
    let step = Step::parse(&b.step).filter(|s| *s != Step::Dispatched).ok_or_else(|| {
        ApiError::invalid("step", b.step.as_str(), "expected acknowledged, en_route, on_scene or cleared")
    })?;
    let d = st.desk.step(&who, id, unit, step).await?;
    Ok(Json(d).into_response())
}

/// `POST /api/v1/dispatches/{id}/city_wide`
///
/// # Errors
/// 400 for a malformed id or body, or not exactly one of `radius_m` (up to 50,000 m) and
/// `within_s` (up to 7,200 s); 503 + `Retry-After` past the bound on road searches; 403 for a
/// role that may not dispatch; 404 for an unknown dispatch or incident; 500 or 503 (with `Retry-After`) when the store fails.
async fn city_wide(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath(ItemId(id)): AppPath<ItemId>,
    AppJson(b): AppJson<CityWide>,
) -> Result<Response, ApiError> {
    let _race = st.shed.start(super::guard::Work::RoadRace)?;
    let n = st.desk.city_wide(&who, id, b.radius_m, b.within_s, st.roads.as_deref()).await?;
    Ok(Json(n).into_response())
}

/// `POST /api/v1/dispatches/{id}/cancel`
///
/// # Errors
/// 400 for a malformed id or body, or no reason; 403 for a role that may not dispatch; 404 for
/// an unknown dispatch; 409 for a closed one; 500 or 503 (with `Retry-After`) when the store
/// fails.
async fn cancel(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath(ItemId(id)): AppPath<ItemId>,
    AppJson(b): AppJson<Cancel>,
) -> Result<Response, ApiError> {
    let d = st.desk.cancel(&who, id, &b.reason, b.close_incident).await?;
    Ok(Json(d).into_response())
}

/// How much of the queue, in which coordinates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    #[serde(default)]
    limit: Option<Bounded<1, 500>>,
    #[serde(default, deserialize_with = "super::query::parsed")]
    crs: safegrid_geodata::Crs,
}

/// `GET /api/v1/dispatch/queue`: the incidents waiting for a unit — open, no open dispatch —
/// in the caller's grids, most urgent first (priority, then the longest waiting), each with
/// how long it has waited.
///
/// # Errors
/// 400 for an unknown or malformed parameter; 500 or 503 (with `Retry-After`) when the store
/// fails (the dispatch log is read on first use).
async fn queue(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppQuery(q): AppQuery<QueueQuery>,
) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let limit = Bounded::or(q.limit, 50);
    let in_hand = st.desk.incidents_in_hand().await?;
    let (matched, features) = {
        let incidents = st.service.layer(Layer::Incidents);
        let mut waiting: Vec<(&crate::layer::Item, u32, chrono::DateTime<chrono::Utc>)> = incidents
            .iter()
            .filter(|it| who.covers_item(it))
            .filter_map(|it| match &it.props {
                Props::Incident(i) if i.status == IncidentStatus::Open && !in_hand.contains(&it.id) => {
                    Some((it, i.priority, i.reported_at))
                }
                _ => None,
            })
            .collect();
        waiting.sort_by_key(|&(it, priority, reported)| (priority, reported, it.id));
        let features: Vec<serde_json::Value> = waiting
            .iter()
            .take(limit)
            .map(|&(it, _, reported)| {
                let mut f = serde_json::to_value(super::items::feature(it, q.crs, None)).unwrap_or_default();
                f["properties"]["waiting_s"] = (now - reported).num_seconds().max(0).into();
                f
            })
            .collect();
        (waiting.len(), features)
    };
    let body = json!({
        "type": "FeatureCollection",
        "features": features,
        "numberReturned": features.len(),
        "numberMatched": matched,
        "generated_at": now,
    });
    Ok(super::items::geojson_response(StatusCode::OK, &body))
}

/// `GET /api/v1/incidents/{id}/timeline`
///
/// # Errors
/// 400 for an id that is not a positive whole number; 404 for an unknown incident or one
/// outside the caller's grids; 500 or 503 (with `Retry-After`) when the store fails.
async fn timeline(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath(ItemId(id)): AppPath<ItemId>,
) -> Result<Response, ApiError> {
    let incident = st
        .service
        .layer(Layer::Incidents)
        .get(id)
        .filter(|it| who.covers_item(it))
        .cloned()
        .ok_or_else(|| ApiError::not_found("id", id, "no incidents item with this id"))?;
    let events = st.desk.timeline(id).await?;
    Ok(Json(json!({"incident_id": id, "created_at": incident.created_at, "events": events})).into_response())
}

/// `GET /api/v1/dispatch/deadlines`
///
/// # Errors
/// 500 or 503 (with `Retry-After`) when the store fails (the dispatch log is read on first use).
async fn deadlines(State(st): State<AppState>, Caller(_): Caller) -> Result<Response, ApiError> {
    Ok(Json(st.desk.deadlines().await?).into_response())
}

/// `PUT /api/v1/dispatch/deadlines`
///
/// # Errors
/// 400 for a malformed configuration, or deadlines that are zero or have acknowledging after
/// arriving; 403 for a role other than admin;
/// 500 or 503 (with `Retry-After`) when the store fails.
async fn set_deadlines(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppJson(config): AppJson<DeadlineConfig>,
) -> Result<Response, ApiError> {
    st.desk.set_deadlines(&who, config).await?;
    Ok(Json(st.desk.deadlines().await?).into_response())
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/dispatch/deadlines", get(deadlines).put(set_deadlines))
        .route("/api/v1/dispatch/queue", get(queue))
        .route("/api/v1/dispatches", get(list).post(create))
        .route("/api/v1/dispatches/{id}", get(get_one))
        .route("/api/v1/dispatches/{id}/units", post(add_units))
        .route("/api/v1/dispatches/{id}/units/{unit}", post(step))
        .route("/api/v1/dispatches/{id}/city_wide", post(city_wide))
        .route("/api/v1/dispatches/{id}/cancel", post(cancel))
        .route("/api/v1/incidents/{id}/timeline", get(timeline))
}
