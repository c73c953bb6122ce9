//! Trackers' secrets over HTTP (see [`crate::positions::devices`]).
//!
//! - `POST /api/v1/devices/{device_id}/secret`: mints a secret, or rotates it (the old one stops
//!   working at once); `201` with the secret, shown this once, and the identifier to enter in
//!   Traccar Client or OsmAnd (`DEVICE_ID:SECRET`); `Cache-Control: no-store`.
//! - `DELETE /api/v1/devices/{device_id}/secret`: revokes it; `204`. The device's fixes are
//!   refused from then on, within this process at once.
//!
//! Minting is only for a device some responder or key person carries (`404` otherwise). Admins
//! manage every device, and may revoke the secret of a device nobody carries any more (one left
//! in force by an older version, or by the command line); dispatchers manage only responders'
//! trackers (a key person's monitor is an admin's). A secret is revoked by itself when its
//! carrier is deleted or gives the device up (`Service::update`, `Service::delete`).

use super::AppState;
use super::caller::Caller;
use super::problem::ApiError;
use crate::access::{Principal, Role};
use crate::positions::Subject;
use crate::positions::devices::credential;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

/// The device's carrier, if the caller may manage its secret; `None`: nobody carries it, and
/// the caller is an admin (who may still revoke its secret).
fn managed(st: &AppState, who: &Principal, device_id: &str) -> Result<Option<(Subject, i64)>, ApiError> {
    // The policy admits admins and dispatchers (policy::Action::ManageDevices); checked again
    // here because what a dispatcher may manage depends on who carries the device.
    if !matches!(who.role, Role::Admin | Role::Dispatcher) {
        return Err(ApiError::forbidden(format!("role {} may not manage tracker secrets", who.role)));
    }
    if device_id.is_empty() || device_id.len() > 64 || device_id.chars().any(char::is_control) {
        return Err(ApiError::invalid("device_id", device_id, "a device id is 1 to 64 printable characters"));
    }
    let Some(carrier) = st.service.carrier_of(device_id) else {
        if who.role == Role::Admin {
            return Ok(None);
        }
        return Err(ApiError::not_found("device_id", device_id, "no responder or key person carries this device"));
    };
    if carrier.0 == Subject::KeyPerson && who.role != Role::Admin {
        return Err(ApiError::forbidden("a key person's monitoring device is managed by an admin"));
    }
    Ok(Some(carrier))
}

/// A write row naming the carrier, if any: a secret's change is never collapsed like a read.
fn write_entry<'a>(
    action: &'a str,
    request: &'a str,
    carrier: Option<(Subject, i64)>,
    count: usize,
) -> crate::audit_log::AuditEntry<'a> {
    crate::audit_log::AuditEntry {
        action,
        request,
        layer: carrier.map(|(subject, _)| subject.layer()),
        subjects: carrier.map(|(_, unit)| unit).into_iter().collect(),
        result_count: count,
        kind: crate::audit_log::AuditKind::Write,
        ..Default::default()
    }
}

/// `POST /api/v1/devices/{device_id}/secret`
///
/// # Errors
/// 403 for a role that may not manage tracker secrets, or a dispatcher asking for a key
/// person's device; 400 for a malformed device id; 404 when nobody carries the device; 500 or 503 (with `Retry-After`) when the store fails
/// (the secret is then not changed).
async fn mint(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(device_id): Path<String>,
) -> Result<Response, ApiError> {
    let nobody =
        || ApiError::not_found("device_id", device_id.as_str(), "no responder or key person carries this device");
    managed(&st, &who, &device_id)?.ok_or_else(nobody)?;
    // Checked again as the secret is minted, under the writes' gates (the carrier may have just
    // been deleted or given the device up).
    let ((subject, unit), secret) = st.service.mint_device_secret(&device_id).await?.ok_or_else(nobody)?;
    if subject == Subject::KeyPerson && who.role != Role::Admin {
        // The device went to a key person in between: an admin's to manage. Revoke what was just
        // minted rather than hand it out.
        st.service.revoke_device_secret(&device_id).await?;
        return Err(ApiError::forbidden("a key person's monitoring device is managed by an admin"));
    }
    let request = format!("POST /api/v1/devices/{device_id}/secret");
    st.service.audit_entry(&who, write_entry("device_secret_mint", &request, Some((subject, unit)), 1)).await?;
    let body = json!({
        "device_id": device_id,
        "carrier": {"subject": subject, "id": unit},
        "secret": secret,
        "identifier": credential(&device_id, &secret),
        "note": "shown this once: enter the identifier as the device identifier in Traccar Client or OsmAnd",
    });
    let mut r = (StatusCode::CREATED, axum::Json(body)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `DELETE /api/v1/devices/{device_id}/secret`
///
/// # Errors
/// 403 for a role that may not manage tracker secrets, or a dispatcher asking for a key
/// person's device; 400 for a malformed device id; 404 when nobody carries the device (for an
/// admin: and it has no secret in force); 500 or 503 (with `Retry-After`) when the store fails
/// (the secret then stays in force).
async fn revoke(
    State(st): State<AppState>,
    Caller(who): Caller,
    Path(device_id): Path<String>,
) -> Result<Response, ApiError> {
    let carrier = managed(&st, &who, &device_id)?;
    let had = st.service.revoke_device_secret(&device_id).await?;
    let request = format!("DELETE /api/v1/devices/{device_id}/secret");
    st.service.audit_entry(&who, write_entry("device_secret_revoke", &request, carrier, usize::from(had))).await?;
    if carrier.is_none() && !had {
        // A device nobody carries and without a secret: there was nothing to revoke.
        return Err(ApiError::not_found(
            "device_id",
            device_id.as_str(),
            "no responder or key person carries this device, and it has no secret in force",
        ));
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// This module's routes; `api::app` merges them behind the access policy.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/devices/{device_id}/secret", post(mint).delete(revoke))
}
