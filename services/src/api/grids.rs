//! Grids over HTTP: point → grid location, the hierarchy as GeoJSON, and (admin) edits.

use super::AppState;
use super::caller::Caller;
use super::extract::AppPath;
use super::items::geojson_response;
use super::problem::{ApiError, JsonBody};
use super::query::{self, AppQuery};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use safegrid_geodata::grid::{GridFeatureError, unit_from_feature, unit_to_feature};
use safegrid_geodata::{Crs, GridCode, GridLevel, GridUnit, Location};
use serde::Deserialize;
use serde_json::{Value, json};

/// A plain JSON answer (locate's answer is not GeoJSON, so it does not claim that media type).
fn json_response(v: &Value) -> Response {
    axum::Json(v).into_response()
}

fn unit_summary(u: &GridUnit) -> Value {
    json!({
        "code": u.code.as_str(),
        "name": u.name,
        "level": u.level.name(),
        "manager": u.manager,
    })
}

/// A point in the caller's CRS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointQuery {
    lon: f64,
    lat: f64,
    #[serde(default, deserialize_with = "query::parsed")]
    crs: Crs,
}

/// `GET /api/v1/locate?lon=…&lat=…[&crs=…]`
///
/// # Errors
/// 400 for an unknown or malformed parameter, or a position outside WGS-84.
async fn locate(
    State(st): State<AppState>,
    Caller(_): Caller,
    AppQuery(q): AppQuery<PointQuery>,
) -> Result<Response, ApiError> {
    let at = query::point(q.lon, q.lat, q.crs)?;
    let grids = st.service.grids();
    let Some(locator) = &grids.locator else {
        return Ok(json_response(&json!({"inside": false, "reason": "no grids are loaded"})));
    };
    let body = match locator.locate(at) {
        Location::In { unit } => {
            let chain: Vec<Value> = grids.hierarchy.chain(unit).into_iter().map(unit_summary).collect();
            json!({
                "inside": true,
                "lon": at.lon(), "lat": at.lat(),
                "grid": unit_summary(grids.hierarchy.unit(unit)),
                "chain": chain,
            })
        }
        Location::Outside { nearest, distance_m } => json!({
            "inside": false,
            "lon": at.lon(), "lat": at.lat(),
            "reason": "the point is outside every grid",
            "nearest": {
                "grid": unit_summary(grids.hierarchy.unit(nearest)),
                "distance_m": (distance_m * 10.0).round() / 10.0,
            },
        }),
        Location::NoGrids => json!({"inside": false, "reason": "no grids are loaded"}),
    };
    Ok(json_response(&body))
}

/// A page of the grid hierarchy: one level, the children of one unit, after a cursor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default, deserialize_with = "query::opt_parsed")]
    level: Option<GridLevel>,
    #[serde(default, deserialize_with = "query::opt_parsed")]
    parent: Option<GridCode>,
    #[serde(default, deserialize_with = "query::opt_parsed")]
    cursor: Option<GridCode>,
    #[serde(default, deserialize_with = "query::opt_parsed")]
    limit: Option<PageSize>,
}

/// Units per page: 1 to 5,000, or `all` (a whole layer to save and re-import).
#[derive(Debug, Clone, Copy)]
enum PageSize {
    Units(usize),
    All,
}

impl std::str::FromStr for PageSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "all" {
            return Ok(Self::All);
        }
        match s.parse::<usize>() {
            Ok(n) if (1..=5000).contains(&n) => Ok(Self::Units(n)),
            _ => Err("expected 1 to 5000, or all".into()),
        }
    }
}

/// `GET /api/v1/grids[?level=…&parent=…&limit=…&cursor=…]`: a page of units (500 by default,
/// `limit=all` for every one), with `numberMatched` (how many match the filters) so that a
/// page is never mistaken for the layer.
///
/// # Errors
/// 400 for an unknown or malformed parameter (`level`, `parent`, `cursor`, `limit`).
async fn list(
    State(st): State<AppState>,
    Caller(_): Caller,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let ListQuery { level, parent, cursor, limit } = q;
    let limit = match limit.unwrap_or(PageSize::Units(500)) {
        PageSize::Units(n) => n,
        PageSize::All => usize::MAX - 1,
    };
    let grids = st.service.grids();
    let matching = || {
        grids
            .hierarchy
            .units()
            .iter()
            .filter(|u| level.is_none_or(|l| u.level == l))
            .filter(|u| parent.as_ref().is_none_or(|pc| u.code.parent().as_ref() == Some(pc)))
    };
    let matched = matching().count();
    let mut page: Vec<&GridUnit> =
        matching().filter(|u| cursor.as_ref().is_none_or(|c| u.code > *c)).take(limit + 1).collect();
    let next = (page.len() > limit).then(|| {
        page.truncate(limit);
        page[limit - 1].code.to_string()
    });
    let total = grids.hierarchy.len();
    let features: Vec<Value> =
        page.iter().map(|u| serde_json::to_value(unit_to_feature(u)).unwrap_or(Value::Null)).collect();
    let n = features.len();
    let mut body = json!({"type": "FeatureCollection", "features": features, "numberReturned": n,
        "numberMatched": matched, "totalUnits": total});
    if let Some(c) = next {
        body["next_cursor"] = c.into();
    }
    Ok(geojson_response(StatusCode::OK, &body))
}

/// `GET /api/v1/grids/{code}`: the unit with its ancestors.
///
/// # Errors
/// 400 for a malformed code; 404 when no unit has it.
async fn get_one(
    State(st): State<AppState>,
    Caller(_): Caller,
    AppPath(code): AppPath<GridCode>,
) -> Result<Response, ApiError> {
    let grids = st.service.grids();
    let i = grids
        .hierarchy
        .index_of(&code)
        .ok_or_else(|| ApiError::not_found("code", code.as_str(), "no grid unit with this code"))?;
    let mut f = serde_json::to_value(unit_to_feature(grids.hierarchy.unit(i))).unwrap_or(Value::Null);
    f["properties"]["chain"] = grids.hierarchy.chain(i).into_iter().map(unit_summary).collect();
    Ok(geojson_response(StatusCode::OK, &f))
}

/// `PUT /api/v1/grids/{code}` (admin): insert or replace one unit from a GeoJSON Feature.
///
/// # Errors
/// 400 for a malformed body or properties, or a code that differs from the path's; 422
/// for an invalid geometry; 403 for a role other than admin; 400 when the unit would break
/// the hierarchy; 500 or 503 (with `Retry-After`) when the store fails.
async fn put_one(
    State(st): State<AppState>,
    Caller(who): Caller,
    AppPath(code): AppPath<GridCode>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let mut v = body.json()?;
    // The code in the path is authoritative; the body may omit it.
    if let Some(props) = v.get_mut("properties").and_then(Value::as_object_mut) {
        props.entry("code").or_insert_with(|| code.as_str().into());
    }
    let f = serde_json::from_value::<geojson::Feature>(v)
        .map_err(|e| ApiError::invalid("body", Value::Null, e.to_string()))?;
    let unit = unit_from_feature(&f).map_err(|e| match e {
        GridFeatureError::Geometry(g) => {
            ApiError::invalid_geometry(format!("geometry.{}", g.path), Value::Null, g.fault.to_string())
        }
        GridFeatureError::MissingProperty { property } => {
            ApiError::invalid(format!("properties.{property}"), Value::Null, "required")
        }
        other => ApiError::invalid("properties", Value::Null, other.to_string()),
    })?;
    if unit.code != code {
        return Err(ApiError::invalid(
            "properties.code",
            unit.code.as_str(),
            format!("differs from the code in the path ({code})"),
        ));
    }
    let out = serde_json::to_value(unit_to_feature(&unit)).unwrap_or(Value::Null);
    st.service.put_grid(&who, unit).await?;
    Ok(geojson_response(StatusCode::OK, &out))
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/locate", get(locate))
        .route("/api/v1/grids", get(list))
        .route("/api/v1/grids/{code}", get(get_one).put(put_one))
}
