//! Who is calling: the [`Principal`] that the door ([`super::guard`]) resolved from the
//! `Authorization: Bearer …` token and admitted by the access policy. No header means the
//! public role; a header with an unknown token is a 401 there, never a silent downgrade to
//! public (a typo in a dispatcher's token should be noticed at once).

use super::AppState;
use super::problem::ApiError;
use crate::access::Principal;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        // Only the door puts a principal here, after the policy allowed the route: a handler
        // reached any other way (a route outside the policy) serves no one.
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Self)
            .ok_or_else(|| ApiError::forbidden("this route has no access rule; refused for everyone"))
    }
}

/// The bearer token of a request: `None` without an Authorization header; a 401 for a header
/// that is not `Bearer <token>`. Long-lived responses (the event feed) keep it to re-check it.
///
/// # Errors
/// A 401 when the header is not ASCII or not `Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    let token = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer <token>`"))?
        .trim();
    Ok(Some(token))
}
