//! Typed path extraction that answers in problem+json: `AppPath<(Layer, ItemId)>` gives a
//! handler its path values already parsed, and a value that does not parse is refused naming
//! the route's parameter, the value and the reason (`404` for a layer that does not exist, `400`
//! for a malformed id or grid code) — as the hand-written checks it replaces did, once, here.
//!
//! A path value is any [`PathValue`]; a handler takes one (`AppPath<ItemId>`) or a tuple of them
//! in the route's order (`AppPath<(ItemId, ItemId)>` for `/dispatches/{id}/units/{unit}`).

use super::problem::ApiError;
use crate::layer::Layer;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use safegrid_geodata::GridCode;

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

/// The values of a route's path parameters, in order.
pub trait PathParams: Sized {
    /// Parses `(name, value)` pairs in the route's order.
    ///
    /// # Errors
    /// The first value that does not parse; a count that does not match the route is a bug (500).
    fn from_params(params: &[(&str, &str)]) -> Result<Self, ApiError>;
}

impl<A: PathValue> PathParams for A {
    fn from_params(params: &[(&str, &str)]) -> Result<Self, ApiError> {
        match params {
            [(name, raw)] => A::from_path(name, raw),
            _ => Err(ApiError::internal()),
        }
    }
}

impl<A: PathValue, B: PathValue> PathParams for (A, B) {
    fn from_params(params: &[(&str, &str)]) -> Result<Self, ApiError> {
        match params {
            [(na, a), (nb, b)] => Ok((A::from_path(na, a)?, B::from_path(nb, b)?)),
            _ => Err(ApiError::internal()),
        }
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
