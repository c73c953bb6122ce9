//! The five point layers over HTTP: GeoJSON in and out.
//!
//! - `GET    /api/v1/{layer}`          query (bbox, radius, grid, time window, type, status…), paginated
//! - `POST   /api/v1/{layer}`          create from a GeoJSON Feature with a Point
//! - `GET    /api/v1/{layer}/nearest`  k nearest, each with `distance_m`
//! - `GET    /api/v1/{layer}/{id}`     one item
//! - `PUT    /api/v1/{layer}/{id}`     replace position and properties
//! - `DELETE /api/v1/{layer}/{id}`     delete
//!
//! Positions follow `crs=` both ways: a caller that speaks GCJ-02 sends and receives GCJ-02.

use super::AppState;
use super::caller::Caller;
use super::extract::{AppPath, ItemId};
use super::problem::{ApiError, JsonBody};
use super::query::{self, AppQuery, Bounded, BoxParam};
use crate::access::Role;
use crate::layer::{Item, Layer, Props};
use crate::live::ItemQuery;
use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use safegrid_geodata::{Crs, GridCode, LonLat};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Properties the server computes; ignored on input so a client may send back what it got.
const SERVER_OWNED: [&str; 5] = ["id", "grid_code", "created_at", "updated_at", "distance_m"];

/// An item as a GeoJSON Feature, positions in the caller's CRS. Serialised straight to the
/// response bytes: building a `serde_json::Value` first cost a third of a nearest request.
#[derive(Serialize)]
pub struct FeatureOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: i64,
    geometry: PointOut,
    properties: PropertiesOut<'a>,
}

#[derive(Serialize)]
struct PointOut {
    #[serde(rename = "type")]
    kind: &'static str,
    coordinates: [f64; 2],
}

#[derive(Serialize)]
struct PropertiesOut<'a> {
    #[serde(flatten)]
    props: &'a Props,
    grid_code: Option<&'a str>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    distance_m: Option<f64>,
}

/// Distances are reported to the decimetre: GPS is good to metres, and shorter numbers are
/// easier to read.
fn decimetres(d: f64) -> f64 {
    (d * 10.0).round() / 10.0
}

/// See [`FeatureOut`].
pub fn feature(it: &Item, crs: Crs, distance_m: Option<f64>) -> FeatureOut<'_> {
    let p = crs.from_wgs84(it.pos);
    FeatureOut {
        kind: "Feature",
        id: it.id,
        geometry: PointOut { kind: "Point", coordinates: [p.lon(), p.lat()] },
        properties: PropertiesOut {
            props: &it.props,
            grid_code: it.grid.as_ref().map(GridCode::as_str),
            created_at: it.created_at,
            updated_at: it.updated_at,
            distance_m: distance_m.map(decimetres),
        },
    }
}

/// A page of features.
#[derive(Serialize)]
struct CollectionOut<T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    features: Vec<T>,
    #[serde(rename = "numberMatched", skip_serializing_if = "Option::is_none")]
    number_matched: Option<usize>,
    #[serde(rename = "numberReturned")]
    number_returned: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<i64>,
}

impl<T: Serialize> CollectionOut<T> {
    fn new(features: Vec<T>, number_matched: Option<usize>, next_cursor: Option<i64>) -> Self {
        Self { kind: "FeatureCollection", number_returned: features.len(), features, number_matched, next_cursor }
    }
}

/// Reads a Feature with a Point geometry and this layer's properties. An incident without
/// `reported_at` is given `reported_at` (the time a new one arrived, or an existing one's own):
/// a dispatcher typing in a call should not have to type the clock.
fn parse_feature(
    body: &JsonBody,
    layer: Layer,
    crs: Crs,
    reported_at: Option<DateTime<Utc>>,
) -> Result<(LonLat, Props), ApiError> {
    let v = body.json()?;
    let Value::Object(mut obj) = v else {
        return Err(ApiError::invalid("body", Value::Null, "expected a GeoJSON Feature object"));
    };
    if obj.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err(ApiError::invalid("type", obj.get("type").cloned().unwrap_or(Value::Null), "expected \"Feature\""));
    }
    let geometry = obj.remove("geometry").unwrap_or(Value::Null);
    let pos = parse_point(&geometry)?;
    let mut props = match obj.remove("properties") {
        Some(Value::Object(m)) => m,
        other => return Err(ApiError::invalid("properties", other.unwrap_or(Value::Null), "expected an object")),
    };
    for k in SERVER_OWNED {
        props.remove(k);
    }
    if layer == Layer::Incidents
        && let Some(t) = reported_at
        && props.get("reported_at").is_none_or(Value::is_null)
    {
        props.insert("reported_at".into(), Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
    }
    let original: Map<String, Value> = props.clone();
    let props = Props::parse(layer, Value::Object(props)).map_err(|e| {
        let value = original.get(&e.field).cloned().unwrap_or(Value::Null);
        ApiError::invalid(format!("properties.{}", e.field), value, e.reason)
    })?;
    Ok((crs.to_wgs84(pos), props))
}

fn parse_point(g: &Value) -> Result<LonLat, ApiError> {
    let ty = g.get("type").and_then(Value::as_str);
    if ty != Some("Point") {
        return Err(ApiError::invalid_geometry(
            "geometry.type",
            g.get("type").cloned().unwrap_or(Value::Null),
            "items of this layer are points: expected a Point geometry",
        ));
    }
    let coords = g.get("coordinates").and_then(Value::as_array).ok_or_else(|| {
        ApiError::invalid_geometry(
            "geometry.coordinates",
            g.get("coordinates").cloned().unwrap_or(Value::Null),
            "expected [lon, lat]",
        )
    })?;
    let num = |i: usize| -> Result<f64, ApiError> {
        coords.get(i).and_then(Value::as_f64).ok_or_else(|| {
            ApiError::invalid_geometry(
                format!("geometry.coordinates[{i}]"),
                coords.get(i).cloned().unwrap_or(Value::Null),
                "expected a number",
            )
        })
    };
    let (lon, lat) = (num(0)?, num(1)?);
    LonLat::new(lon, lat).map_err(|e| {
        let i = usize::from(e.field() != "lon");
        ApiError::invalid_geometry(format!("geometry.coordinates[{i}]"), e.value(), e.to_string())
    })
}

/// Declares a query struct (`deny_unknown_fields`) with its own fields and the filters every
/// read of items shares — `type` (or `kind`, `category`), `status`, `priority`, `capability`,
/// `grid` — and `filters()` to read them as an [`ItemQuery`]. (Serde cannot flatten a shared
/// struct into one that refuses unknown fields, hence a macro.)
macro_rules! with_item_filters {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            $($(#[$fm])* $field: $ty,)*
            #[serde(default, rename = "type")]
            type_: Option<String>,
            #[serde(default)]
            kind: Option<String>,
            #[serde(default)]
            category: Option<String>,
            #[serde(default, deserialize_with = "crate::api::query::opt_names")]
            status: Option<Vec<String>>,
            #[serde(default)]
            priority: Option<u32>,
            #[serde(default)]
            capability: Option<String>,
            #[serde(default, deserialize_with = "crate::api::query::opt_parsed")]
            grid: Option<safegrid_geodata::GridCode>,
        }

        impl $name {
            /// The shared filters, each value checked against what items of `layers` can hold.
            fn filters(
                &self,
                layers: &[$crate::layer::Layer],
            ) -> Result<$crate::live::ItemQuery, $crate::api::problem::ApiError> {
                let kind_field = if self.type_.is_some() { "type" } else if self.kind.is_some() { "kind" } else { "category" };
                let q = $crate::live::ItemQuery {
                    grid: self.grid.clone(),
                    kind: self.type_.clone().or_else(|| self.kind.clone()).or_else(|| self.category.clone()),
                    status: self.status.clone(),
                    priority: self.priority,
                    capability: self.capability.clone(),
                    ..$crate::live::ItemQuery::default()
                };
                $crate::api::items::check_filters(&q, kind_field, layers)?;
                Ok(q)
            }
        }
    };
}
pub(super) use with_item_filters;

/// Refuses a filter value that no item of `layers` can hold — an unknown status, a priority
/// outside 1–4, a kind outside a layer's closed list — naming it, rather than answering an
/// empty page a user would read as "none".
pub(super) fn check_filters(q: &ItemQuery, kind_field: &str, layers: &[Layer]) -> Result<(), ApiError> {
    let names = |f: fn(Layer) -> Option<&'static [&'static str]>| -> Option<Vec<&'static str>> {
        let mut all: Vec<&'static str> = Vec::new();
        for l in layers {
            all.extend(f(*l)?);
        }
        all.sort_unstable();
        all.dedup();
        Some(all)
    };
    // The name lists are built only for a filter given: every tile request passes here.
    if let Some(list) = &q.status
        && let Some(known) = names(|l| Some(l.statuses()))
        && let Some(bad) = list.iter().find(|s| !known.contains(&s.as_str()))
    {
        return Err(ApiError::invalid("status", bad.as_str(), format!("expected one of {}", known.join(", "))));
    }
    if let Some(p) = q.priority {
        if !layers.contains(&Layer::Incidents) {
            return Err(ApiError::invalid("priority", p, "only incidents have a priority"));
        }
        if !(1..=4).contains(&p) {
            return Err(ApiError::invalid("priority", p, "must be 1 (most urgent) to 4"));
        }
    }
    // Incidents' types and key persons' categories are the city's own words: any is a filter.
    if let Some(kind) = &q.kind
        && let Some(known) = names(Layer::kinds)
        && !known.contains(&kind.as_str())
    {
        return Err(ApiError::invalid(kind_field, kind.as_str(), format!("expected one of {}", known.join(", "))));
    }
    if let Some(c) = &q.capability
        && !layers.contains(&Layer::Responders)
    {
        return Err(ApiError::invalid("capability", c.as_str(), "only responders have capabilities"));
    }
    Ok(())
}

with_item_filters! {
    /// `GET /api/v1/{layer}`: the shared filters, a box, a radius around a point, a time
    /// window, and a page.
    struct ListQuery {
        #[serde(default, deserialize_with = "query::opt_parsed")]
        bbox: Option<BoxParam>,
        #[serde(default)]
        lon: Option<f64>,
        #[serde(default)]
        lat: Option<f64>,
        #[serde(default)]
        radius_m: Option<f64>,
        #[serde(default, deserialize_with = "query::opt_time")]
        since: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "query::opt_time")]
        until: Option<DateTime<Utc>>,
        #[serde(default)]
        limit: Option<Bounded<1, 1000>>,
        #[serde(default)]
        cursor: Option<i64>,
        #[serde(default, deserialize_with = "query::parsed")]
        crs: Crs,
    }
}

impl ListQuery {
    /// The shared filters plus box, radius and time window.
    fn item_query(&self, layers: &[Layer]) -> Result<ItemQuery, ApiError> {
        let near = match (self.radius_m, self.lon, self.lat) {
            (Some(r), lon, lat) => {
                if !(r.is_finite() && r > 0.0 && r <= 100_000.0) {
                    return Err(ApiError::invalid("radius_m", r, "must be more than 0 and at most 100,000 metres"));
                }
                let lon = lon.ok_or_else(|| ApiError::invalid("lon", Value::Null, "required with radius_m"))?;
                let lat = lat.ok_or_else(|| ApiError::invalid("lat", Value::Null, "required with radius_m"))?;
                Some((query::point(lon, lat, self.crs)?, r))
            }
            (None, None, None) => None,
            (None, _, _) => {
                return Err(ApiError::invalid(
                    "radius_m",
                    Value::Null,
                    "lon/lat in a query need radius_m (or use /nearest)",
                ));
            }
        };
        let bbox = self.bbox.map(|b| b.in_wgs84(self.crs)).transpose()?;
        Ok(ItemQuery { bbox, near, since: self.since, until: self.until, ..self.filters(layers)? })
    }
}

with_item_filters! {
    /// `GET /api/v1/{layer}/nearest`: the shared filters around a point.
    struct NearestQuery {
        lon: f64,
        lat: f64,
        #[serde(default)]
        k: Option<Bounded<1, 100>>,
        #[serde(default, deserialize_with = "query::parsed")]
        crs: Crs,
    }
}

/// The CRS a route that takes no other parameter speaks (`crs=`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrsQuery {
    /// WGS-84 unless named.
    #[serde(default, deserialize_with = "query::parsed")]
    pub crs: Crs,
}

pub(super) fn request_text(uri: &OriginalUri, method: &str) -> String {
    format!("{method} {}", uri.0)
}

/// Records a read of a sensitive layer, naming the items returned, before they leave.
async fn audit_read(
    st: &AppState,
    who: &crate::access::Principal,
    layer: Layer,
    action: &str,
    request: &str,
    ids: Vec<i64>,
) -> Result<(), ApiError> {
    let entry = crate::audit_log::AuditEntry {
        action,
        request,
        layer: Some(layer),
        result_count: ids.len(),
        subjects: ids,
        ..Default::default()
    };
    st.service.audit_entry(who, entry).await?;
    Ok(())
}

/// `GET /api/v1/{layer}`
///
/// # Errors
/// 404 for an unknown layer; 400 for an unknown or malformed parameter; 500 or 503 (with `Retry-After`) when the store fails (a
/// sensitive layer's audit row must precede the answer).
async fn list(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath(layer): AppPath<Layer>,
    AppQuery(params): AppQuery<ListQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let (crs, q) = (params.crs, params.item_query(&[layer])?);
    let (limit, cursor) = (Bounded::or(params.limit, 100), params.cursor);
    let (body, ids) = {
        let state = st.service.layer(layer);
        let page = state.query(&q, |it| who.covers_item(it), limit, cursor);
        let features: Vec<FeatureOut<'_>> = page.items.iter().map(|(it, d)| feature(it, crs, *d)).collect();
        let ids: Vec<i64> = page.items.iter().map(|(it, _)| it.id).collect();
        (to_bytes(&CollectionOut::new(features, Some(page.matched), page.next_cursor)), ids)
    };
    if layer.is_sensitive() {
        audit_read(&st, &who, layer, "query", &request_text(&uri, "GET"), ids).await?;
    }
    Ok(geojson_bytes(StatusCode::OK, body))
}

/// `GET /api/v1/{layer}/nearest`
///
/// # Errors
/// 404 for an unknown layer; 400 for an unknown or malformed parameter; for the public,
/// 429 + `Retry-After` past the per-address limit; 500 or 503 (with `Retry-After`) when the store fails (a sensitive layer's audit row
/// must precede the answer).
async fn nearest(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath(layer): AppPath<Layer>,
    uri: OriginalUri,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> Result<Response, ApiError> {
    // The public may find the nearest open security posts, and nothing else.
    if who.role == Role::Public && layer == Layer::Posts {
        return super::public::nearest_posts(&st, uri.0.query(), peer.map(|p| p.0.0.ip()));
    }
    let params: NearestQuery = query::from_query(uri.0.query())?;
    let crs = params.crs;
    let at = query::point(params.lon, params.lat, crs)?;
    let k = Bounded::or(params.k, 5);
    let q = params.filters(&[layer])?;
    let (body, ids) = {
        let state = st.service.layer(layer);
        let hits = state.nearest(at, k, &q, |it| who.covers_item(it));
        let features: Vec<FeatureOut<'_>> = hits.iter().map(|(it, d)| feature(it, crs, Some(*d))).collect();
        let body = to_bytes(&CollectionOut::new(features, None, None));
        (body, hits.iter().map(|(it, _)| it.id).collect())
    };
    if layer.is_sensitive() {
        audit_read(&st, &who, layer, "nearest", &request_text(&uri, "GET"), ids).await?;
    }
    Ok(geojson_bytes(StatusCode::OK, body))
}

/// `POST /api/v1/{layer}`
///
/// # Errors
/// 404 for an unknown layer; 400 for a malformed parameter or body, or properties the
/// layer does not accept; 422 for a bad point; 403 for a write the caller's role or grids do
/// not allow; 409 for a device another item already carries; 500 or 503 (with `Retry-After`) when the store fails.
async fn create(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath(layer): AppPath<Layer>,
    AppQuery(CrsQuery { crs }): AppQuery<CrsQuery>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let (pos, props) = parse_feature(&body, layer, crs, Some(Utc::now()))?;
    let item = st.service.create(&who, pos, props).await?;
    let mut r = geojson_bytes(StatusCode::CREATED, to_bytes(&feature(&item, crs, None)));
    if let Ok(v) = format!("/api/v1/{layer}/{}", item.id).parse() {
        r.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(r)
}

/// `GET /api/v1/{layer}/{id}`
///
/// # Errors
/// 404 for an unknown layer, or an item that does not exist or lies outside the caller's
/// grids; 400 for a malformed id or parameter; 500 or 503 (with `Retry-After`) when the store fails (a sensitive layer's audit row must
/// precede the answer).
async fn get_one(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath((layer, ItemId(id))): AppPath<(Layer, ItemId)>,
    AppQuery(CrsQuery { crs }): AppQuery<CrsQuery>,
    uri: OriginalUri,
) -> Result<Response, ApiError> {
    let found = st.service.layer(layer).get(id).cloned();
    let item = found.ok_or_else(|| ApiError::not_found("id", id, format!("no {layer} item with this id")))?;
    if !who.covers_item(&item) {
        // As for writes (see `Service::existing`): outside the caller's scope is not found.
        return Err(ApiError::not_found("id", id, format!("no {layer} item with this id")));
    }
    if layer.is_sensitive() {
        audit_read(&st, &who, layer, "get", &request_text(&uri, "GET"), vec![item.id]).await?;
    }
    Ok(geojson_bytes(StatusCode::OK, to_bytes(&feature(&item, crs, None))))
}

/// `PUT /api/v1/{layer}/{id}`
///
/// # Errors
/// As [`create`], and 404 for an item that does not exist or lies outside the caller's
/// grids.
async fn replace(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath((layer, ItemId(id))): AppPath<(Layer, ItemId)>,
    AppQuery(CrsQuery { crs }): AppQuery<CrsQuery>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    // An incident keeps its own report time; one that does not exist gets the arrival's, so
    // that the answer is the 404 the missing item deserves, not a missing field.
    let kept = match st.service.layer(layer).get(id).map(|it| &it.props) {
        Some(Props::Incident(i)) => Some(i.reported_at),
        _ => Some(Utc::now()),
    };
    let (pos, props) = parse_feature(&body, layer, crs, kept)?;
    let item = st.service.update(&who, id, pos, props).await?;
    Ok(geojson_bytes(StatusCode::OK, to_bytes(&feature(&item, crs, None))))
}

/// `DELETE /api/v1/{layer}/{id}`
///
/// # Errors
/// 404 for an unknown layer, or an item that does not exist or lies outside the caller's
/// grids; 400 for a malformed id; 403 for a delete the caller's role does not allow; 500 or 503 (with `Retry-After`) when the store fails.
async fn delete(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath((layer, ItemId(id))): AppPath<(Layer, ItemId)>,
) -> Result<Response, ApiError> {
    st.service.delete(&who, layer, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A JSON body with the GeoJSON media type (RFC 7946 §12).
#[must_use]
pub fn geojson_response(status: StatusCode, v: &Value) -> Response {
    geojson_bytes(status, to_bytes(v))
}

fn geojson_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/geo+json"));
    r
}

/// Serialises a response body. Our output types are plain structs and maps with string keys,
/// which cannot fail to serialise; an empty body would show any such bug at once.
fn to_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/{layer}", get(list).post(create))
        .route("/api/v1/{layer}/nearest", get(nearest))
        .route("/api/v1/{layer}/{id}", get(get_one).put(replace).delete(delete))
}
