//! `GET /scheduled_events/{uuid}` and `GET /scheduled_events/{uuid}/invitees/{uuid}` (what an
//! executor's `booking.fetch_invitee` calls), `GET /users/me` (what an executor reads at start
//! to check its token), and the pages behind an invitee's cancel and reschedule links.

use super::{Uris, calendly_time, event_json, invitee_json};
use crate::state::Sandbox;
use crate::wire;
use aro_http::ApiError;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

/// Calendly's error body: `{"title", "message"}`.
fn error(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"title": title, "message": message})),
    )
        .into_response()
}

/// The user a bearer token belongs to: the configured token's, or an added user's.
fn authenticate(sandbox: &Sandbox, headers: &HeaderMap) -> Option<String> {
    let expected = sandbox.settings().calendly.api_token.expose();
    let token = wire::bearer_token(headers)?;
    let state = sandbox.state();
    if wire::same_secret(&token, expected) {
        return Some(state.calendly.user_uuid.clone());
    }
    state.calendly.account_with_token(&token)
}

/// Calendly's answer to an unknown token.
fn unauthenticated() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Unauthenticated",
        "The access token is invalid",
    )
}

/// `GET /users/me`: the token's user.
pub(super) async fn current_user(State(sandbox): State<Sandbox>, headers: HeaderMap) -> Response {
    let Some(user) = authenticate(&sandbox, &headers) else {
        return unauthenticated();
    };
    let uris = Uris::new(&sandbox.settings().self_url);
    let since = calendly_time(sandbox.started_at());
    let slug = format!("sandbox-{}", &user[..user.len().min(8)]);
    axum::Json(json!({"resource": {
        "uri": uris.user(&user),
        "name": "Sandbox host",
        "slug": slug,
        "email": "host@example.org",
        "scheduling_url": format!("{}/{slug}", sandbox.settings().self_url.as_str().trim_end_matches('/')),
        "timezone": "UTC",
        "avatar_url": null,
        "created_at": since,
        "updated_at": since,
        "current_organization": uris.organization(&user),
    }}))
    .into_response()
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Resource Not Found",
        "The server could not find the requested resource.",
    )
}

/// `GET /scheduled_events/{uuid}`
pub(super) async fn get_event(
    State(sandbox): State<Sandbox>,
    Path(event_uuid): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(user) = authenticate(&sandbox, &headers) else {
        return unauthenticated();
    };
    let uris = Uris::new(&sandbox.settings().self_url);
    let state = sandbox.state();
    match state
        .calendly
        .events
        .get(&event_uuid)
        .filter(|event| event.host == user)
    {
        Some(event) => axum::Json(json!({"resource": event_json(event, &uris)})).into_response(),
        None => not_found(),
    }
}

/// `GET /scheduled_events/{event_uuid}/invitees/{invitee_uuid}`
pub(super) async fn get_invitee(
    State(sandbox): State<Sandbox>,
    Path((event_uuid, invitee_uuid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(user) = authenticate(&sandbox, &headers) else {
        return unauthenticated();
    };
    let uris = Uris::new(&sandbox.settings().self_url);
    let state = sandbox.state();
    let host_of = |event: &str| state.calendly.events.get(event).map(|e| e.host.as_str());
    match state
        .calendly
        .invitees
        .get(&invitee_uuid)
        .filter(|invitee| invitee.event_uuid == event_uuid)
        .filter(|invitee| host_of(&invitee.event_uuid) == Some(user.as_str()))
    {
        Some(invitee) => {
            axum::Json(json!({"resource": invitee_json(invitee, &uris)})).into_response()
        }
        None => not_found(),
    }
}

/// The booking an invitee's page is about, if the invitee is still active.
fn booking_of(sandbox: &Sandbox, invitee_uuid: &str) -> Option<String> {
    let state = sandbox.state();
    let invitee = state.calendly.invitees.get(invitee_uuid)?;
    (invitee.status == super::Status::Active).then(|| invitee.booking_id.clone())
}

/// `GET /calendly/cancellations/{invitee_uuid}`: what the invitee's `cancel_url` opens.
pub(super) async fn cancel_page(
    State(sandbox): State<Sandbox>,
    Path(invitee_uuid): Path<String>,
) -> Response {
    let Some(booking) = booking_of(&sandbox, &invitee_uuid) else {
        return ApiError::not_found("active booking").into_response();
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cancel booking</title></head>\
         <body><h1>Cancel this booking?</h1>\
         <form method=\"post\" action=\"/sandbox/bookings/{booking}/cancel\"><button type=\"submit\">Cancel booking</button></form>\
         <p>This is the ARO sandbox standing in for Calendly: cancelling sends a signed <code>invitee.canceled</code> webhook to ARO.</p>\
         </body></html>"
    ))
    .into_response()
}

/// `GET /calendly/reschedulings/{invitee_uuid}`: what the invitee's `reschedule_url` opens.
pub(super) async fn reschedule_page(
    State(sandbox): State<Sandbox>,
    Path(invitee_uuid): Path<String>,
) -> Response {
    let Some(booking) = booking_of(&sandbox, &invitee_uuid) else {
        return ApiError::not_found("active booking").into_response();
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Reschedule booking</title></head>\
         <body><h1>Reschedule this booking</h1>\
         <p>Pick the new time by posting it to the sandbox:</p>\
         <pre>curl -X POST -H 'Content-Type: application/json' \\\n  -d '{{\"startsAt\": \"2030-03-16T15:00:00Z\"}}' \\\n  /sandbox/bookings/{booking}/reschedule</pre>\
         <p>Calendly then sends <code>invitee.canceled</code> (rescheduled) for this booking and <code>invitee.created</code> for the new one.</p>\
         </body></html>"
    ))
    .into_response()
}
