//! `GET /api/v1/search?q=`: the wall's search box. One text finds an incident by its number, a
//! unit by its callsign, a grid by its code or name, a security post by its name, a place by
//! an address safegrid holds (incidents' and rental housing's), and a street or place of the
//! basemap by its OpenStreetMap name — each with where it is, so the wall can fly there. What a role may not read is not searched; a grid worker finds what lies
//! in its grids; units found are written to the audit log like any read of where they are.

use super::AppState;
use super::caller::Caller;
use super::problem::ApiError;
use super::query::{AppQuery, Bounded};
use crate::access::Principal;
use crate::audit_log::AuditEntry;
use crate::layer::{Item, Layer, Props};
use crate::policy::{self, Action, Grant};
use axum::extract::{OriginalUri, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use geo::BoundingRect;
use serde::Deserialize;
use serde_json::{Value, json};

/// Results of one kind at most.
const PER_KIND: usize = 5;

/// The text, and how many results at most.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: String,
    #[serde(default)]
    limit: Option<Bounded<1, 50>>,
}

fn may(who: &Principal, action: Action) -> bool {
    policy::grant(action, who.role) != Grant::Deny
}

fn place(kind: &str, it: &Item, label: &str) -> Value {
    json!({"kind": kind, "id": it.id, "label": label, "lon": it.pos.lon(), "lat": it.pos.lat(),
           "grid_code": it.grid.as_ref().map(safegrid_geodata::GridCode::as_str)})
}

/// Items of a layer the caller may read, in its scope, that `label` names, the best first
/// (a label that starts with the text before one that merely holds it).
fn matching(
    st: &AppState,
    who: &Principal,
    layer: Layer,
    q: &str,
    label: impl Fn(&Item) -> Option<String>,
) -> Vec<(Item, String)> {
    if !may(who, Action::ReadLayer(layer)) {
        return Vec::new();
    }
    let state = st.service.layer(layer);
    let mut found: Vec<(bool, Item, String)> = state
        .iter()
        .filter(|it| who.covers_item(it))
        .filter_map(|it| {
            let l = label(it)?;
            let lower = l.to_lowercase();
            lower.contains(q).then(|| (!lower.starts_with(q), it.clone(), l))
        })
        .collect();
    found.sort_by(|a, b| (a.0, a.2.len(), &a.2).cmp(&(b.0, b.2.len(), &b.2)));
    found.into_iter().take(PER_KIND).map(|(_, it, l)| (it, l)).collect()
}

/// `GET /api/v1/search?q=…[&limit=]`: see the module's documentation.
///
/// # Errors
/// 400 for an empty or over-long text, or an unknown parameter; 500 or 503 (with
/// `Retry-After`) when the store fails (the audit row of units found must precede the answer).
async fn search(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppQuery(q): AppQuery<SearchQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let text = q.q.trim().to_lowercase();
    if text.is_empty() || text.chars().count() > 100 {
        return Err(ApiError::invalid("q", q.q.as_str(), "expected 1 to 100 characters"));
    }
    let limit = Bounded::or(q.limit, 20);
    let mut results: Vec<Value> = Vec::new();
    // An incident by its number.
    if let Ok(id) = text.trim_start_matches('#').parse::<i64>()
        && may(&who, Action::ReadLayer(Layer::Incidents))
        && let Some(it) = st.service.layer(Layer::Incidents).get(id).filter(|it| who.covers_item(it))
        && let Props::Incident(i) = &it.props
    {
        results.push(place("incident", it, &format!("#{id} {} {}", i.incident_type, i.status.name())));
    }
    // Grids by code (a prefix) or name.
    if may(&who, Action::ReadGrids) {
        let grids = st.service.grids();
        let mut hits: Vec<&safegrid_geodata::GridUnit> = grids
            .hierarchy
            .units()
            .iter()
            .filter(|u| who.covers(Some(&u.code)))
            .filter(|u| u.code.as_str().starts_with(&text) || u.name.to_lowercase().contains(&text))
            .collect();
        hits.sort_by_key(|u| (u.code.as_str().len(), u.code.clone()));
        for u in hits.into_iter().take(PER_KIND) {
            let Some(b) = u.geometry.bounding_rect() else { continue };
            let c = b.center();
            results.push(json!({"kind": "grid", "code": u.code.as_str(), "label": format!("{} {}", u.code, u.name),
                "lon": c.x, "lat": c.y, "bbox": [b.min().x, b.min().y, b.max().x, b.max().y]}));
        }
    }
    // Units by callsign: where a unit is, so audited.
    let units = if may(&who, Action::ReadWhereabouts) {
        matching(&st, &who, Layer::Responders, &text, |it| match &it.props {
            Props::Responder(r) => Some(r.callsign.clone()),
            _ => None,
        })
    } else {
        Vec::new()
    };
    results.extend(units.iter().map(|(it, l)| place("unit", it, l)));
    for (it, l) in matching(&st, &who, Layer::Posts, &text, |it| match &it.props {
        Props::Post(p) => Some(p.name.clone()),
        _ => None,
    }) {
        results.push(place("post", &it, &l));
    }
    // Places by an address safegrid holds.
    for layer in [Layer::Incidents, Layer::RentalHousing] {
        for (it, l) in matching(&st, &who, layer, &text, |it| match &it.props {
            Props::Incident(i) => i.address.clone(),
            Props::RentalHousing(h) => Some(h.address.clone()),
            _ => None,
        }) {
            results.push(place("address", &it, &l));
        }
    }
    // Streets and places of the basemap (OpenStreetMap's names, Chinese or English).
    let mut streets: Vec<&crate::basemap::Street> = st
        .basemap
        .streets()
        .await
        .iter()
        .filter(|s| {
            s.name.to_lowercase().contains(&text)
                || s.name_en.as_ref().is_some_and(|e| e.to_lowercase().contains(&text))
        })
        .collect();
    streets.sort_by_key(|s| (!s.name.to_lowercase().starts_with(&text), s.name.len()));
    for s in streets.into_iter().take(PER_KIND) {
        let label = s.name_en.as_ref().map_or_else(|| s.name.clone(), |en| format!("{} ({en})", s.name));
        results.push(json!({"kind": "street", "label": label, "lon": s.at.lon(), "lat": s.at.lat()}));
    }
    results.truncate(limit);
    let unit_ids: Vec<i64> = results.iter().filter(|r| r["kind"] == "unit").filter_map(|r| r["id"].as_i64()).collect();
    if !unit_ids.is_empty() {
        let request = format!("GET {}", uri.0);
        let entry = AuditEntry {
            action: "search",
            request: &request,
            layer: Some(Layer::Responders),
            result_count: unit_ids.len(),
            subjects: unit_ids,
            ..AuditEntry::default()
        };
        st.service.audit_entry(&who, entry).await?;
    }
    let mut r = Json(json!({"q": q.q, "results": results})).into_response();
    // Where units are, and addresses: never kept by a cache on the way.
    r.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(r)
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/search", get(search))
}
