//! What the map wall needs beyond items and tiles: who the caller is and what it may see
//! (`/api/v1/whoami`) and the statistics panel (`/api/v1/stats`). Its live feed is
//! [`super::feed`].

use super::AppState;
use super::caller::Caller;
use super::problem::ApiError;
use super::query::AppQuery;
use crate::access::{Principal, Role};
use crate::layer::{IncidentStatus, Layer, Props};
use crate::policy::{self, Action, Grant};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The layers a caller may read, by the access policy: what the wall asks tiles for.
pub(super) fn readable(who: &Principal) -> Vec<Layer> {
    Layer::ALL.into_iter().filter(|&l| policy::grant(Action::ReadLayer(l), who.role) != Grant::Deny).collect()
}

/// `GET /api/v1/whoami`: the caller's name, role, grid scope and readable layers.
async fn whoami(Caller(who): Caller) -> Response {
    Json(json!({
        "name": who.name,
        "role": who.role.name(),
        "grids": who.grids.iter().map(safegrid_geodata::GridCode::as_str).collect::<Vec<_>>(),
        "layers": readable(&who).iter().map(|l| l.name()).collect::<Vec<_>>(),
        "may_read_audit": policy::grant(Action::ReadAuditLog, who.role) != Grant::Deny,
        "may_dispatch": policy::grant(Action::Dispatch, who.role) != Grant::Deny,
        "may_read_dispatches": policy::grant(Action::ReadDispatches, who.role) != Grant::Deny,
        "may_read_whereabouts": policy::grant(Action::ReadWhereabouts, who.role) != Grant::Deny,
        "may_read_wall": policy::grant(Action::ReadWall, who.role) != Grant::Deny,
    }))
    .into_response()
}

/// The incidents the statistics count: the wall's time window and state switch, as its tiles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    #[serde(default, deserialize_with = "super::query::opt_time")]
    since: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, deserialize_with = "super::query::opt_time")]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// Incident statuses counted; unresolved ones (open, dispatched, on scene) by default.
    #[serde(default, deserialize_with = "super::query::opt_list")]
    status: Option<Vec<IncidentStatus>>,
}

/// `GET /api/v1/stats`: counts for the statistics panel, within the caller's grid scope.
/// Incidents in the window by status; those of the asked statuses (unresolved ones — open,
/// dispatched, on scene — by default) by priority and by district, and the ten grids with the
/// most; item counts per readable layer. Key personnel are counted only as a total, and not at
/// all for roles that may not read them.
///
/// # Errors
/// 400 for an unknown or malformed parameter.
async fn stats(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppQuery(q): AppQuery<StatsQuery>,
) -> Result<Response, ApiError> {
    let grids = st.service.grids();
    let wanted =
        q.status.unwrap_or_else(|| vec![IncidentStatus::Open, IncidentStatus::Dispatched, IncidentStatus::OnScene]);
    let mut by_status: BTreeMap<&'static str, usize> = IncidentStatus::NAMES.iter().map(|n| (*n, 0)).collect();
    let mut by_priority = [0_usize; 4];
    let mut by_district: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_grid: BTreeMap<String, usize> = BTreeMap::new();
    {
        let incidents = st.service.layer(Layer::Incidents);
        for it in incidents.iter().filter(|it| who.covers_item(it)) {
            let Props::Incident(i) = &it.props else { continue };
            if q.since.is_some_and(|s| i.reported_at < s) || q.until.is_some_and(|u| i.reported_at >= u) {
                continue;
            }
            *by_status.entry(i.status.name()).or_default() += 1;
            if !wanted.contains(&i.status) {
                continue;
            }
            by_priority[(i.priority.clamp(1, 4) - 1) as usize] += 1;
            let code = it.grid.as_ref().map_or("", |g| g.as_str());
            *by_district.entry(code.get(..6).unwrap_or("").to_owned()).or_default() += 1;
            *by_grid.entry(code.to_owned()).or_default() += 1;
        }
    }
    let name_of = |code: &str| -> Value {
        safegrid_geodata::GridCode::parse(code)
            .ok()
            .and_then(|c| grids.unit(&c).map(|u| Value::from(u.name.clone())))
            .unwrap_or(Value::Null)
    };
    let districts: Vec<Value> =
        by_district.iter().map(|(code, n)| json!({"code": code, "name": name_of(code), "open": n})).collect();
    let mut top: Vec<(&String, &usize)> = by_grid.iter().filter(|(c, _)| !c.is_empty()).collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<Value> =
        top.into_iter().take(10).map(|(code, n)| json!({"code": code, "name": name_of(code), "open": n})).collect();
    let mut counts = serde_json::Map::new();
    for layer in readable(&who) {
        let state = st.service.layer(layer);
        let n = if who.role == Role::GridWorker {
            state.iter().filter(|it| who.covers_item(it)).count()
        } else {
            state.len()
        };
        counts.insert(layer.name().into(), n.into());
    }
    Ok(Json(json!({
        "incidents_by_status": by_status,
        "open_incidents": {
            "statuses": wanted.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "total": by_priority.iter().sum::<usize>(),
            "by_priority": {"1": by_priority[0], "2": by_priority[1], "3": by_priority[2], "4": by_priority[3]},
            "by_district": districts,
            "top_grids": top,
        },
        "counts": counts,
    }))
    .into_response())
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/whoami", get(whoami)).route("/api/v1/stats", get(stats))
}
