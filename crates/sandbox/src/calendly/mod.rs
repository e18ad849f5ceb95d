//! Calendly API v2, as far as ARO uses it: scheduled events and invitees (bearer-token auth,
//! `{"resource": …}` answers, Calendly's error bodies), the booking page's effects (bookings,
//! cancellations, reschedules and no-shows driven through `/sandbox/bookings`) sent as signed
//! `invitee.*` webhooks, and the cancel and reschedule pages an invitee's links open.
//!
//! Resource URIs point at the sandbox itself (`{self_url}/scheduled_events/…`), where real ones
//! point at `https://api.calendly.com`, so a client that follows them reaches the sandbox.
//!
//! Accounts: the configured API token belongs to the host user every booking has by default;
//! `POST /sandbox/accounts` adds another user (a tenant's own Calendly, with its own token and
//! webhook signing key) that takes that tenant's bookings from then on. Each token reads only
//! its own user's events and invitees (another's are 404, as if they did not exist), and the
//! webhooks about a booking are signed with its user's signing key.

mod api;
mod bookings;

pub(crate) use bookings::{BookingRef, NewBooking, cancel, create, no_show, reschedule};

use crate::faults::{self, Provider};
use crate::state::{Bounded, Sandbox};
use axum::Router;
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Calendly writes times as UTC with microseconds: `2020-11-23T17:51:18.327602Z`.
pub(crate) fn calendly_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Active or canceled, for events and invitees alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Active,
    Canceled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Cancellation {
    pub canceled_by: String,
    pub reason: Option<String>,
    pub created: DateTime<Utc>,
}

impl Cancellation {
    fn json(&self) -> Value {
        json!({
            "canceled_by": self.canceled_by,
            "reason": self.reason,
            "canceler_type": "invitee",
            "created_at": calendly_time(self.created),
        })
    }
}

/// A scheduled event (one visit at one time).
#[derive(Debug, Clone)]
pub(crate) struct ScheduledEvent {
    pub uuid: String,
    /// The host user (account) it belongs to.
    pub host: String,
    pub name: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub event_type_uuid: String,
    pub status: Status,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub cancellation: Option<Cancellation>,
}

/// An invitee (the patient's booking of one scheduled event).
#[derive(Debug, Clone)]
pub(crate) struct Invitee {
    pub uuid: String,
    pub event_uuid: String,
    /// The sandbox booking it belongs to.
    pub booking_id: String,
    pub name: String,
    pub email: String,
    /// As Calendly stores it: typed by hand, e.g. `+1 415-555-2671`, not E.164.
    pub text_reminder_number: Option<String>,
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub status: Status,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub rescheduled: bool,
    pub old_invitee: Option<String>,
    pub new_invitee: Option<String>,
    pub cancellation: Option<Cancellation>,
    pub no_show: Option<(String, DateTime<Utc>)>,
}

/// The sandbox's handle on a booking across reschedules.
#[derive(Debug, Clone)]
pub(crate) struct Booking {
    pub tenant_id: String,
    pub event_uuid: String,
    pub invitee_uuid: String,
}

/// A Calendly user added with `POST /sandbox/accounts`: a tenant's own.
#[derive(Clone)]
pub(crate) struct CalendlyAccount {
    /// The user's uuid.
    pub uuid: String,
    /// The tenant whose bookings it takes.
    pub tenant_id: String,
    pub api_token: aro_config::Secret,
    pub signing_key: aro_config::Secret,
}

/// Calendly's part of the sandbox's memory.
pub(crate) struct CalendlyState {
    pub bookings: Bounded<Booking>,
    pub events: Bounded<ScheduledEvent>,
    pub invitees: Bounded<Invitee>,
    /// Event type name → uuid, so the same name always maps to the same event type.
    event_types: HashMap<String, String>,
    /// The configured token's user: the host of every booking of a tenant without an account
    /// of its own.
    pub user_uuid: String,
    /// Users added with `POST /sandbox/accounts`, by uuid.
    accounts: Bounded<CalendlyAccount>,
    cap: usize,
}

impl CalendlyState {
    pub fn new(cap: usize) -> Self {
        Self {
            bookings: Bounded::new(cap),
            events: Bounded::new(cap),
            invitees: Bounded::new(cap),
            event_types: HashMap::new(),
            user_uuid: crate::ids::calendly_uuid(),
            accounts: Bounded::new(cap),
            cap,
        }
    }

    /// `tenant`'s bookings belong from now on to a user of their own, reached with
    /// `api_token` and signing its webhooks with `signing_key`; returns the user's uuid (kept
    /// when the tenant already had one: the token and key are replaced).
    pub fn add_account(
        &mut self,
        tenant_id: &str,
        api_token: aro_config::Secret,
        signing_key: aro_config::Secret,
    ) -> String {
        let uuid = self
            .accounts
            .values()
            .find(|a| a.tenant_id == tenant_id)
            .map_or_else(crate::ids::calendly_uuid, |a| a.uuid.clone());
        self.accounts.insert(
            uuid.clone(),
            CalendlyAccount {
                uuid: uuid.clone(),
                tenant_id: tenant_id.to_owned(),
                api_token,
                signing_key,
            },
        );
        uuid
    }

    /// Forgets an added user (its bookings stay, still its own); whether it existed.
    pub fn remove_account(&mut self, uuid: &str) -> bool {
        self.accounts.remove(uuid).is_some()
    }

    /// The added users: `(uuid, tenant)`, oldest first.
    pub fn added_accounts(&self) -> Vec<(String, String)> {
        self.accounts
            .values()
            .map(|a| (a.uuid.clone(), a.tenant_id.clone()))
            .collect()
    }

    /// The host of a new booking for `tenant`: its own user, else the configured one.
    pub fn host_for_tenant(&self, tenant_id: &str) -> String {
        self.accounts
            .values()
            .find(|a| a.tenant_id == tenant_id)
            .map_or_else(|| self.user_uuid.clone(), |a| a.uuid.clone())
    }

    /// The added user whose API token is `token`.
    pub fn account_with_token(&self, token: &str) -> Option<String> {
        self.accounts
            .values()
            .find(|a| crate::wire::same_secret(token, a.api_token.expose()))
            .map(|a| a.uuid.clone())
    }

    /// The signing key of an added user.
    pub fn added_signing_key(&self, uuid: &str) -> Option<aro_config::Secret> {
        self.accounts.get(uuid).map(|a| a.signing_key.clone())
    }

    pub fn event_type_uuid(&mut self, name: &str) -> String {
        if self.event_types.len() >= self.cap && !self.event_types.contains_key(name) {
            self.event_types.clear();
        }
        self.event_types
            .entry(name.to_owned())
            .or_insert_with(crate::ids::calendly_uuid)
            .clone()
    }
}

/// URIs of Calendly resources, rooted at the sandbox.
#[derive(Debug, Clone)]
pub(crate) struct Uris {
    base: String,
}

impl Uris {
    pub fn new(self_url: &url::Url) -> Self {
        Self {
            base: self_url.as_str().trim_end_matches('/').to_owned(),
        }
    }

    pub fn event(&self, event_uuid: &str) -> String {
        format!("{}/scheduled_events/{event_uuid}", self.base)
    }

    pub fn invitee(&self, event_uuid: &str, invitee_uuid: &str) -> String {
        format!(
            "{}/scheduled_events/{event_uuid}/invitees/{invitee_uuid}",
            self.base
        )
    }

    fn event_type(&self, uuid: &str) -> String {
        format!("{}/event_types/{uuid}", self.base)
    }

    pub fn user(&self, uuid: &str) -> String {
        format!("{}/users/{uuid}", self.base)
    }

    /// Each sandbox user is its own organization.
    pub fn organization(&self, uuid: &str) -> String {
        format!("{}/organizations/{uuid}", self.base)
    }

    fn cancel_page(&self, invitee_uuid: &str) -> String {
        format!("{}/calendly/cancellations/{invitee_uuid}", self.base)
    }

    fn reschedule_page(&self, invitee_uuid: &str) -> String {
        format!("{}/calendly/reschedulings/{invitee_uuid}", self.base)
    }

    pub fn no_show(&self, uuid: &str) -> String {
        format!("{}/invitee_no_shows/{uuid}", self.base)
    }
}

/// The question the sandbox's booking form asks for the patient's language.
pub(crate) const LANGUAGE_QUESTION: &str = "Preferred language";

/// The Invitee resource (API v2).
pub(crate) fn invitee_json(invitee: &Invitee, uris: &Uris) -> Value {
    let questions: Vec<Value> = invitee
        .language
        .iter()
        .map(|language| json!({"question": LANGUAGE_QUESTION, "answer": language, "position": 0}))
        .collect();
    let mut json = json!({
        "uri": uris.invitee(&invitee.event_uuid, &invitee.uuid),
        "email": invitee.email,
        "first_name": null,
        "last_name": null,
        "name": invitee.name,
        "status": invitee.status.as_str(),
        "questions_and_answers": questions,
        "timezone": invitee.timezone,
        "event": uris.event(&invitee.event_uuid),
        "created_at": calendly_time(invitee.created),
        "updated_at": calendly_time(invitee.updated),
        "tracking": {
            "utm_campaign": null, "utm_source": null, "utm_medium": null,
            "utm_content": null, "utm_term": null, "salesforce_uuid": null,
        },
        "text_reminder_number": invitee.text_reminder_number,
        "rescheduled": invitee.rescheduled,
        "old_invitee": invitee.old_invitee,
        "new_invitee": invitee.new_invitee,
        "cancel_url": uris.cancel_page(&invitee.uuid),
        "reschedule_url": uris.reschedule_page(&invitee.uuid),
        "routing_form_submission": null,
        "payment": null,
        "no_show": invitee.no_show.as_ref().map(|(uuid, created)| json!({
            "uri": uris.no_show(uuid),
            "created_at": calendly_time(*created),
        })),
        "reconfirmation": null,
        "scheduling_method": null,
        "invitee_scheduled_by": null,
    });
    if let Some(cancellation) = &invitee.cancellation {
        json["cancellation"] = cancellation.json();
    }
    json
}

/// The Event (scheduled event) resource (API v2).
pub(crate) fn event_json(event: &ScheduledEvent, uris: &Uris) -> Value {
    let host_uuid = &event.host;
    let active = u32::from(event.status == Status::Active);
    let mut json = json!({
        "uri": uris.event(&event.uuid),
        "name": event.name,
        "meeting_notes_plain": null,
        "meeting_notes_html": null,
        "status": event.status.as_str(),
        "start_time": calendly_time(event.start),
        "end_time": calendly_time(event.end),
        "event_type": uris.event_type(&event.event_type_uuid),
        "location": {"type": "physical", "location": "Sandbox clinic"},
        "invitees_counter": {"total": 1, "active": active, "limit": 1},
        "created_at": calendly_time(event.created),
        "updated_at": calendly_time(event.updated),
        "event_memberships": [{
            "user": uris.user(host_uuid),
            "user_email": "host@example.org",
            "user_name": "Sandbox host",
        }],
        "event_guests": [],
        "calendar_event": null,
    });
    if let Some(cancellation) = &event.cancellation {
        json["cancellation"] = cancellation.json();
    }
    json
}

pub(crate) fn router(sandbox: Sandbox) -> Router {
    let api = Router::new()
        .route("/scheduled_events/{event_uuid}", get(api::get_event))
        .route(
            "/scheduled_events/{event_uuid}/invitees/{invitee_uuid}",
            get(api::get_invitee),
        )
        .route("/users/me", get(api::current_user))
        .layer(axum::middleware::from_fn_with_state(
            (sandbox.clone(), Provider::Calendly),
            faults::inject,
        ));
    // The invitee's cancel and reschedule links open Calendly's site, not its API.
    let pages = Router::new()
        .route(
            "/calendly/cancellations/{invitee_uuid}",
            get(api::cancel_page),
        )
        .route(
            "/calendly/reschedulings/{invitee_uuid}",
            get(api::reschedule_page),
        );
    api.merge(pages).with_state(sandbox)
}
