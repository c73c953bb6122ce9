//! Who is calling: the `Authorization: Bearer …` token resolved to a [`Principal`].
//! No header means the public role; a header with an unknown token is a 401, never a silent
//! downgrade to public (a typo in a dispatcher's token should be noticed at once).

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

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer(&parts.headers)? else {
            return Ok(Self(Principal::public()));
        };
        state
            .service
            .authenticate(token)
            .map(Self)
            .ok_or_else(|| ApiError::unauthorized("the bearer token is not valid"))
    }
}

/// The bearer token of a request: `None` without an Authorization header; a 401 for a header
/// that is not `Bearer <token>`. Long-lived responses (the event feed) keep it to re-check it.
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
