//! RFC 9457 problem details: the one error type of the HTTP layer, and the table that maps
//! every lower-layer error to a status.
//!
//! Every problem names what was wrong in an `errors` member — `field`, `value`, `reason` — so a
//! client can point at the offending input. Store failures are logged with their detail and
//! answered with a generic 500/503: SQL never reaches a client.

use crate::service::ServiceError;
use crate::store::StoreError;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

/// One offending input.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldProblem {
    /// Query parameter, path segment or JSON path (`properties.priority`, `geometry.coordinates[0][3]`).
    pub field: String,
    /// The value as received.
    pub value: Value,
    /// Why it was refused.
    pub reason: String,
}

/// An HTTP error answered as `application/problem+json`.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldProblem>,
    retry_after: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { status, slug, title, detail: detail.into(), errors: Vec::new(), retry_after: None }
    }

    /// 400: a parameter or body field is wrong.
    #[must_use]
    pub fn invalid(field: impl Into<String>, value: impl Into<Value>, reason: impl Into<String>) -> Self {
        let (field, reason) = (field.into(), reason.into());
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid-input", "Invalid input", format!("{field}: {reason}"));
        e.errors.push(FieldProblem { field, value: value.into(), reason });
        e
    }

    /// 422: a geometry is well-formed JSON but not a valid shape.
    #[must_use]
    pub fn invalid_geometry(field: impl Into<String>, value: impl Into<Value>, reason: impl Into<String>) -> Self {
        let mut e = Self::invalid(field, value, reason);
        e.status = StatusCode::UNPROCESSABLE_ENTITY;
        e.slug = "invalid-geometry";
        e.title = "Invalid geometry";
        e
    }

    /// 400: the body is not JSON.
    #[must_use]
    pub fn malformed_json(reason: impl Into<String>) -> Self {
        let mut e = Self::invalid("body", Value::Null, reason);
        e.slug = "malformed-json";
        e.title = "Malformed JSON";
        e
    }

    /// 404 for an unknown thing named in the path.
    #[must_use]
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>, reason: impl Into<String>) -> Self {
        let mut e = Self::invalid(field, value, reason);
        e.status = StatusCode::NOT_FOUND;
        e.slug = "not-found";
        e.title = "Not found";
        e
    }

    /// 409: the request conflicts with the current state (a busy unit, a step backwards).
    #[must_use]
    pub fn conflict(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", reason)
    }

    /// 401: a token was given but is not valid.
    #[must_use]
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", reason.clone());
        e.errors.push(FieldProblem { field: "Authorization".into(), value: Value::Null, reason });
        e
    }

    /// 403: the caller's role or grid scope does not allow this.
    #[must_use]
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", reason)
    }

    /// 403 for a tracker report whose device did not prove itself: one answer, the same for an
    /// unknown device id and a missing, wrong or revoked secret, naming neither.
    #[must_use]
    pub fn unauthenticated_device() -> Self {
        let reason = "send the device id with its secret, DEVICE_ID:SECRET, as minted by an administrator";
        let mut e = Self::new(StatusCode::FORBIDDEN, "unauthenticated-device", "Unauthenticated device", reason);
        e.errors.push(FieldProblem { field: "id".into(), value: Value::Null, reason: reason.into() });
        e
    }

    /// 429: over a rate limit; retry after the delay.
    #[must_use]
    pub fn rate_limited(retry_after_s: u32, detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests", detail);
        e.retry_after = Some(retry_after_s);
        e
    }

    /// 413: the body is larger than the route accepts.
    #[must_use]
    pub fn too_large(limit: usize) -> Self {
        let mut e = Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Body too large",
            format!("the request body exceeds {limit} bytes; use `safegrid import` for bulk data"),
        );
        e.errors.push(FieldProblem {
            field: "body".into(),
            value: Value::Null,
            reason: format!("larger than {limit} bytes"),
        });
        e
    }

    /// 415: the body is not declared as JSON.
    #[must_use]
    pub fn unsupported_media_type(got: &str) -> Self {
        let mut e = Self::invalid("Content-Type", got, "expected application/json or application/geo+json");
        e.status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        e.slug = "unsupported-media-type";
        e.title = "Unsupported media type";
        e
    }

    /// 500: our fault; the detail is logged, not sent.
    #[must_use]
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed; the error is logged",
        )
    }

    /// 503: the store cannot be reached; try later.
    #[must_use]
    pub fn unavailable(retry_after_s: u32) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "the store is not answering",
        );
        e.retry_after = Some(retry_after_s);
        e
    }

    /// Replaces the human-readable detail.
    pub fn set_detail(&mut self, detail: impl Into<String>) {
        self.detail = detail.into();
    }

    /// The status code.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem as JSON.
    #[must_use]
    pub fn body(&self) -> Value {
        let mut v = json!({
            "type": format!("/problems/{}", self.slug),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if !self.errors.is_empty() {
            v["errors"] = serde_json::to_value(&self.errors).unwrap_or(Value::Null);
        }
        v
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.body().to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound { layer, id } => Self::not_found("id", id, format!("no {layer} item with this id")),
            ServiceError::Forbidden(reason) => Self::forbidden(reason),
            ServiceError::Invalid { field, value, reason } => Self::invalid(field, value, reason),
            ServiceError::Conflict { field, value, reason } => {
                let mut e = Self::conflict(format!("{field}: {reason}"));
                e.errors.push(FieldProblem { field, value, reason });
                e
            }
            ServiceError::Store(s) => s.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed) = &e {
            tracing::warn!(error = %e, "store unavailable");
            Self::unavailable(5)
        } else {
            tracing::error!(error = %e, "store error");
            Self::internal()
        }
    }
}

/// Whether a Content-Type names JSON (`application/json`, `application/geo+json`, any `+json`).
#[must_use]
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// The request body as bytes, bounded by the route's `DefaultBodyLimit`, with rejections
/// answered as problems.
pub struct JsonBody(pub Bytes);

/// Largest body an item route accepts: a feature is a few kilobytes; bulk data goes through
/// `safegrid import`.
pub const BODY_LIMIT: usize = 1 << 20;

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        if !(ct.is_empty() || is_json(&ct)) {
            return Err(ApiError::unsupported_media_type(&ct));
        }
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Self(b)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::too_large(BODY_LIMIT)),
            Err(r) => Err(ApiError::malformed_json(r.body_text())),
        }
    }
}

impl JsonBody {
    /// Parses the body as JSON, naming line and column on failure.
    ///
    /// # Errors
    /// [`ApiError::malformed_json`].
    pub fn json(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.0).map_err(|e| ApiError::malformed_json(e.to_string()))
    }
}

impl ApiError {
    /// The same problem with another status (for the router's own fallbacks).
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        // The title names the status: a 429 made from a 503 must not say "Service unavailable".
        match status {
            StatusCode::METHOD_NOT_ALLOWED => (self.slug, self.title) = ("method-not-allowed", "Method not allowed"),
            StatusCode::TOO_MANY_REQUESTS => (self.slug, self.title) = ("rate-limited", "Too many requests"),
            StatusCode::NOT_FOUND => (self.slug, self.title) = ("not-found", "Not found"),
            StatusCode::SERVICE_UNAVAILABLE => (self.slug, self.title) = ("unavailable", "Service unavailable"),
            _ => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every problem's title names its status (a title a client shows must not contradict the
    /// code it acts on), including those re-statused by `with_status`.
    #[test]
    fn titles_match_their_status() {
        let expected = |s: StatusCode| match s.as_u16() {
            400 => &["Invalid input", "Malformed JSON"][..],
            401 => &["Unauthorized"][..],
            403 => &["Forbidden", "Unauthenticated device"][..],
            404 => &["Not found"][..],
            405 => &["Method not allowed"][..],
            409 => &["Conflict"][..],
            413 => &["Body too large"][..],
            415 => &["Unsupported media type"][..],
            422 => &["Invalid geometry"][..],
            429 => &["Too many requests"][..],
            500 => &["Internal error"][..],
            503 => &["Service unavailable"][..],
            _ => &[][..],
        };
        let all = [
            ApiError::invalid("f", 1, "r"),
            ApiError::invalid_geometry("f", 1, "r"),
            ApiError::malformed_json("r"),
            ApiError::not_found("f", 1, "r"),
            ApiError::conflict("r"),
            ApiError::unauthorized("r"),
            ApiError::forbidden("r"),
            ApiError::unauthenticated_device(),
            ApiError::rate_limited(1, "r"),
            ApiError::too_large(1),
            ApiError::unsupported_media_type("text/plain"),
            ApiError::internal(),
            ApiError::unavailable(1),
            ApiError::unavailable(1).with_status(StatusCode::TOO_MANY_REQUESTS),
            ApiError::invalid("f", 1, "r").with_status(StatusCode::METHOD_NOT_ALLOWED),
            ApiError::invalid("f", 1, "r").with_status(StatusCode::NOT_FOUND),
        ];
        for e in all {
            let body = e.body();
            let title = body["title"].as_str().unwrap_or_default().to_owned();
            assert!(expected(e.status()).contains(&title.as_str()), "{} titled {title:?}", e.status());
            assert_eq!(body["status"], e.status().as_u16());
        }
    }
}
