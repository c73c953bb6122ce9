//! Typed path extraction that answers in problem+json: `AppPath<(Layer, ItemId)>` gives a
//! handler its path values already parsed, and a value that does not parse is refused naming
//! the route's parameter, the value and the reason (`404` for a layer that does not exist, `400`
//! for a malformed id or grid code) — as the hand-written checks it replaces did, once, here.
//!
//! A path value is any [`PathValue`]; a handler takes one (`AppPath<ItemId>`) or a tuple of them
//! in the route's order (`AppPath<(ItemId, ItemId)>` for `/dispatches/{id}/units/{unit}`). A
//! [`TileCoord`] reads the three parameters of `{z}/{x}/{y}.mvt` at once.
//!
//! [`AppJson`] does the same for a JSON body: the body's type (`deny_unknown_fields`) is the
//! route's contract, and a body that does not match is refused naming the path of the first
//! field that does not (`units[2]`), its reason, and the line and column.

use super::problem::{ApiError, JsonBody};
use crate::layer::Layer;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use safegrid_geodata::GridCode;
use safegrid_tiles::TileId;
use serde::de::DeserializeOwned;

/// A value read from one path parameter.
pub trait PathValue: Sized {
    /// Parses `raw`, the value of the parameter named `field`.
    ///
    /// # Errors
    /// The problem to answer, naming `field`, `raw` and the reason.
    fn from_path(field: &str, raw: &str) -> Result<Self, ApiError>;
}

/// A positive whole-number id (`{id}`, `{unit}`): of an item, a dispatch or a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemId(pub i64);

impl PathValue for ItemId {
    fn from_path(field: &str, raw: &str) -> Result<Self, ApiError> {
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(ItemId)
            .ok_or_else(|| ApiError::invalid(field, raw, "expected a positive whole number"))
    }
}

impl PathValue for Layer {
    /// An unknown layer is a resource that does not exist: `404`.
    fn from_path(field: &str, raw: &str) -> Result<Self, ApiError> {
        raw.parse().map_err(|e: crate::layer::UnknownLayer| ApiError::not_found(field, raw, e.to_string()))
    }
}

impl PathValue for GridCode {
    fn from_path(field: &str, raw: &str) -> Result<Self, ApiError> {
        GridCode::parse(raw).map_err(|e| ApiError::invalid(field, raw, e.to_string()))
    }
}

impl PathValue for String {
    fn from_path(_field: &str, raw: &str) -> Result<Self, ApiError> {
        Ok(raw.to_owned())
    }
}

/// A part of a route's path: one parameter ([`PathValue`]), or several read together
/// ([`TileCoord`]).
pub trait PathPart: Sized {
    /// Reads this part from the front of `params`, advancing past what it read.
    ///
    /// # Errors
    /// The problem to answer; too few parameters for the route is a bug (500).
    fn take(params: &mut &[(&str, &str)]) -> Result<Self, ApiError>;
}

impl<A: PathValue> PathPart for A {
    fn take(params: &mut &[(&str, &str)]) -> Result<Self, ApiError> {
        let [(name, raw), rest @ ..] = *params else { return Err(ApiError::internal()) };
        *params = rest;
        A::from_path(name, raw)
    }
}

/// `{z}/{x}/{y}.mvt` (or `.pbf`): a tile that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileCoord(pub TileId);

impl PathPart for TileCoord {
    fn take(params: &mut &[(&str, &str)]) -> Result<Self, ApiError> {
        let [(_, z), (_, x), (_, y), rest @ ..] = *params else { return Err(ApiError::internal()) };
        *params = rest;
        parse_tile(z, x, y).map(TileCoord)
    }
}

/// Parses a tile address; a path not ending in `.mvt` or `.pbf` is a tile that does not exist.
fn parse_tile(z: &str, x: &str, y_file: &str) -> Result<TileId, ApiError> {
    let y = y_file
        .strip_suffix(".mvt")
        .or_else(|| y_file.strip_suffix(".pbf"))
        .ok_or_else(|| ApiError::not_found("y", y_file, "tile paths end in {y}.mvt"))?;
    let num = |field: &'static str, v: &str| -> Result<u32, ApiError> {
        v.parse().map_err(|_| ApiError::invalid(field, v, "expected a whole number"))
    };
    let z = u8::try_from(num("z", z)?)
        .map_err(|_| ApiError::invalid("z", z, format!("zoom runs from 0 to {}", safegrid_tiles::MAX_ZOOM)))?;
    TileId::new(z, num("x", x)?, num("y", y)?).map_err(|e| {
        let field = match e {
            safegrid_tiles::TileError::Zoom { .. } => "z",
            safegrid_tiles::TileError::OutOfRange { axis, .. } => axis,
            _ => "tile",
        };
        ApiError::invalid(field, format!("{z}/{x}/{y}"), e.to_string())
    })
}

/// The values of a route's path parameters, in order.
pub trait PathParams: Sized {
    /// Parses `(name, value)` pairs in the route's order.
    ///
    /// # Errors
    /// The first value that does not parse; a count that does not match the route is a bug (500).
    fn from_params(params: &[(&str, &str)]) -> Result<Self, ApiError>;
}

/// Every parameter must have been read: a route with more than its handler takes is a bug.
fn all_read(rest: &[(&str, &str)]) -> Result<(), ApiError> {
    if rest.is_empty() { Ok(()) } else { Err(ApiError::internal()) }
}

impl<A: PathPart> PathParams for A {
    fn from_params(mut params: &[(&str, &str)]) -> Result<Self, ApiError> {
        let a = A::take(&mut params)?;
        all_read(params).map(|()| a)
    }
}

impl<A: PathPart, B: PathPart> PathParams for (A, B) {
    fn from_params(mut params: &[(&str, &str)]) -> Result<Self, ApiError> {
        let a = A::take(&mut params)?;
        let b = B::take(&mut params)?;
        all_read(params).map(|()| (a, b))
    }
}

/// Path values, parsed: see the module's documentation.
#[derive(Debug, Clone, Copy)]
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: PathParams> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // The router matched the route, so its parameters are there; one that is not UTF-8
        // once percent-decoded is refused here, naming the path.
        let raw = RawPathParams::from_request_parts(parts, state).await.map_err(|e| {
            tracing::debug!(error = %e, "path parameters unreadable");
            ApiError::invalid("path", e.body_text(), "a path parameter is not valid UTF-8 after decoding")
        })?;
        let params: Vec<(&str, &str)> = raw.iter().collect();
        T::from_params(&params).map(AppPath)
    }
}

/// A JSON body parsed into `T`: see the module's documentation. The media type and size are
/// checked as for [`JsonBody`].
#[derive(Debug, Clone, Copy)]
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body = JsonBody::from_request(req, state).await?;
        let mut de = serde_json::Deserializer::from_slice(&body.0);
        serde_path_to_error::deserialize(&mut de).map(AppJson).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::invalid(field, serde_json::Value::Null, e.into_inner().to_string())
        })
    }
}
