//! The sandbox side (DESIGN.md "Sandbox"): what a tester or a test drives — the patient's phone
//! (`/sandbox/messages`, `/sandbox/reply`), the booking page (`/sandbox/bookings…`), the payment
//! page (`/sandbox/payments…`), fault injection, per-tenant switches and extra provider
//! accounts (`/sandbox/accounts`, for tenants with credentials of their own). JSON in camelCase, errors
//! in ARO's envelope; never subject to faults. `tenantId` defaults to `default`.

use crate::calendly::{self, BookingRef, NewBooking};
use crate::faults::{self, Fault, FaultMode, Provider};
use crate::state::Sandbox;
use crate::stripe;
use crate::twilio::{self, Reply};
use crate::wire;
use aro_domain::ids::TenantId;
use aro_domain::{Email, Language, Zone};
use aro_http::extract::parse_json;
use aro_http::{ApiError, ApiJson, ApiQuery};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use bytes::Bytes;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;

pub(crate) fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/sandbox/messages", get(messages))
        .route("/sandbox/reply", post(reply))
        .route("/sandbox/bookings", post(book))
        .route("/sandbox/bookings/{id}/cancel", post(cancel))
        .route("/sandbox/bookings/{id}/reschedule", post(reschedule))
        .route("/sandbox/bookings/{id}/no-show", post(no_show))
        .route("/sandbox/payments", get(payments))
        .route("/sandbox/payments/{id}/complete", post(complete_payment))
        .route(
            "/sandbox/faults",
            post(set_fault).get(list_faults).delete(clear_faults),
        )
        .route("/sandbox/settings", post(set_switches).get(get_switches))
        .route("/sandbox/accounts", post(add_account).get(list_accounts))
        .route("/sandbox/accounts/{provider}/{id}", delete(remove_account))
        .with_state(sandbox)
}

/// A tenant id from a request, `default` when absent.
fn tenant(raw: Option<&str>) -> Result<String, ApiError> {
    match raw {
        None => Ok("default".to_owned()),
        Some(raw) => TenantId::parse(raw)
            .map(|t| t.as_str().to_owned())
            .map_err(|e| ApiError::validation("tenantId", e.to_string())),
    }
}

/// An optional JSON body: empty or `null` means "nothing given" (so HTML forms and a bare
/// `curl -X POST` work); anything else must parse.
fn optional_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json::<Option<T>>(body).map(Option::unwrap_or_default)
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---- the patient's phone ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessagesQuery {
    to: Option<String>,
    tenant_id: Option<String>,
}

/// `GET /sandbox/messages?to=<E.164>`: every message accepted to that number and every
/// automatic answer, oldest first.
async fn messages(
    State(sandbox): State<Sandbox>,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> Result<ApiJson<Value>, ApiError> {
    let tenant_filter = match query.tenant_id.as_deref() {
        Some(raw) => Some(tenant(Some(raw))?),
        None => None,
    };
    let to = query.to.as_deref().map(str::trim);
    let state = sandbox.state();
    let list: Vec<Value> = state
        .twilio
        .messages
        .values()
        .filter(|m| m.direction != twilio::Direction::Inbound)
        .filter(|m| to.is_none_or(|to| m.to == to))
        .filter(|m| tenant_filter.as_deref().is_none_or(|t| m.tenant_id == t))
        .map(|m| {
            json!({
                "id": m.sid,
                "accountSid": m.account_sid,
                "tenantId": m.tenant_id,
                "to": m.to,
                "from": m.sender,
                "body": m.body,
                "status": m.status.phone_status(),
                "direction": m.direction.as_str(),
                "sentAt": rfc3339(m.created),
            })
        })
        .collect();
    Ok(ApiJson(json!({"messages": list})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReplyRequest {
    from: String,
    body: String,
    tenant_id: Option<String>,
}

/// `POST /sandbox/reply`: the patient texts back; answers with what core answered.
async fn reply(
    State(sandbox): State<Sandbox>,
    ApiJson(request): ApiJson<ReplyRequest>,
) -> Result<ApiJson<Value>, ApiError> {
    let tenant_id = tenant(request.tenant_id.as_deref())?;
    let from = request.from.trim().to_owned();
    if !twilio::is_e164(&from) {
        return Err(ApiError::validation(
            "from",
            "the patient's number in E.164 form, e.g. +14155552671",
        ));
    }
    if request.body.chars().count() > 1600 {
        return Err(ApiError::validation("body", "at most 1600 characters"));
    }
    let received = twilio::receive_reply(
        &sandbox,
        Reply {
            tenant_id,
            from,
            body: request.body,
        },
    )
    .await;
    match received.core {
        Ok(answer) => Ok(ApiJson(json!({
            "messageSid": received.message_sid,
            "to": received.to,
            "autoReply": received.auto_reply,
            "webhook": {
                "url": received.webhook_url,
                "status": answer.status,
                "contentType": answer.content_type,
                "body": answer.body,
            },
        }))),
        Err(error) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "CORE_UNREACHABLE",
            "the message was received, but core did not answer its webhook",
        )
        .with_details(json!({
            "messageSid": received.message_sid,
            "url": received.webhook_url,
            "timeout": error.is_timeout(),
        }))),
    }
}

// ---- the booking page ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BookingRequest {
    name: String,
    #[serde(default)]
    phone: Option<String>,
    starts_at: DateTime<Utc>,
    duration_minutes: i64,
    event_type: String,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
}

fn duration(minutes: i64, field: &str) -> Result<Duration, ApiError> {
    if (1..=24 * 60).contains(&minutes) {
        Ok(Duration::minutes(minutes))
    } else {
        Err(ApiError::validation(field, "between 1 and 1440 minutes"))
    }
}

/// A required short text: trimmed, not empty, at most `max` characters.
fn text(raw: &str, field: &str, max: usize) -> Result<String, ApiError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(ApiError::validation(
            field,
            format!("between 1 and {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn booking_json(booking: &BookingRef) -> Value {
    json!({
        "id": booking.id,
        "tenantId": booking.tenant_id,
        "inviteeUri": booking.invitee_uri,
        "eventUri": booking.event_uri,
        "previousInviteeUri": booking.previous_invitee_uri,
    })
}

/// `POST /sandbox/bookings`: a patient books; core gets `invitee.created`.
async fn book(
    State(sandbox): State<Sandbox>,
    ApiJson(request): ApiJson<BookingRequest>,
) -> Result<Response, ApiError> {
    let booking = NewBooking {
        tenant_id: tenant(request.tenant_id.as_deref())?,
        name: text(&request.name, "name", 200)?,
        phone: request
            .phone
            .as_deref()
            .map(|p| text(p, "phone", 40))
            .transpose()?,
        starts_at: request.starts_at,
        duration: duration(request.duration_minutes, "durationMinutes")?,
        event_type: text(&request.event_type, "eventType", 200)?,
        timezone: match request.timezone.as_deref() {
            Some(zone) => Some(
                Zone::parse(zone.trim())
                    .map(|_| zone.trim().to_owned())
                    .map_err(|e| ApiError::validation("timezone", e.to_string()))?,
            ),
            None => None,
        },
        language: match request.language.as_deref() {
            Some(language) => Some(
                Language::parse(language)
                    .map(|_| language.trim().to_owned())
                    .map_err(|e| ApiError::validation("language", e.to_string()))?,
            ),
            None => None,
        },
        email: match request.email.as_deref() {
            Some(email) => Some(
                Email::parse(email)
                    .map(|e| e.as_str().to_owned())
                    .map_err(|e| ApiError::validation("email", e.to_string()))?,
            ),
            None => None,
        },
    };
    let created = calendly::create(&sandbox, booking)?;
    Ok((StatusCode::CREATED, ApiJson(booking_json(&created))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CancelRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /sandbox/bookings/{id}/cancel`: core gets `invitee.canceled`.
async fn cancel(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<ApiJson<Value>, ApiError> {
    let request: CancelRequest = optional_body(&body)?;
    let reason = request
        .reason
        .as_deref()
        .map(|r| text(r, "reason", 500))
        .transpose()?;
    let booking = calendly::cancel(&sandbox, &id, reason)?;
    Ok(ApiJson(booking_json(&booking)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RescheduleRequest {
    starts_at: DateTime<Utc>,
    #[serde(default)]
    duration_minutes: Option<i64>,
}

/// `POST /sandbox/bookings/{id}/reschedule`: core gets `invitee.canceled` (rescheduled) and
/// `invitee.created` (with `old_invitee`).
async fn reschedule(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RescheduleRequest>,
) -> Result<ApiJson<Value>, ApiError> {
    let minutes = request
        .duration_minutes
        .map(|m| duration(m, "durationMinutes"))
        .transpose()?;
    let booking = calendly::reschedule(&sandbox, &id, request.starts_at, minutes)?;
    Ok(ApiJson(booking_json(&booking)))
}

/// `POST /sandbox/bookings/{id}/no-show`: core gets `invitee_no_show.created`.
async fn no_show(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, ApiError> {
    let booking = calendly::no_show(&sandbox, &id)?;
    Ok(ApiJson(booking_json(&booking)))
}

// ---- the payment page ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantQuery {
    tenant_id: Option<String>,
}

/// `GET /sandbox/payments?tenantId=`: the tenant's payment links.
async fn payments(
    State(sandbox): State<Sandbox>,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<ApiJson<Value>, ApiError> {
    let tenant_id = tenant(query.tenant_id.as_deref())?;
    let state = sandbox.state();
    let links: Vec<Value> = state
        .stripe
        .links
        .values()
        .filter(|link| link.tenant_id == tenant_id)
        .map(|link| {
            json!({
                "id": link.id,
                "url": link.url,
                "amountMinor": link.amount_minor,
                "currency": link.currency.to_ascii_uppercase(),
                "status": link.status.as_str(),
                "account": link.account,
                "metadata": link.metadata,
            })
        })
        .collect();
    Ok(ApiJson(json!({"links": links})))
}

/// How the patient pays, as a tester asks for it: a card (the default), or a bank debit that
/// succeeds (the default) or fails.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PaymentRequest {
    #[serde(default)]
    method: MethodChoice,
    #[serde(default)]
    outcome: Option<OutcomeChoice>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MethodChoice {
    #[default]
    Card,
    BankDebit,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutcomeChoice {
    Succeeded,
    Failed,
}

impl PaymentRequest {
    fn method(&self) -> Result<stripe::PaymentMethod, ApiError> {
        use stripe::{DebitOutcome, PaymentMethod};
        match (self.method, self.outcome) {
            (MethodChoice::Card, None | Some(OutcomeChoice::Succeeded)) => Ok(PaymentMethod::Card),
            (MethodChoice::Card, Some(OutcomeChoice::Failed)) => Err(ApiError::validation(
                "outcome",
                "only a bank debit can fail here: a card pays at once",
            )),
            (MethodChoice::BankDebit, None | Some(OutcomeChoice::Succeeded)) => {
                Ok(PaymentMethod::BankDebit(DebitOutcome::Succeeded))
            }
            (MethodChoice::BankDebit, Some(OutcomeChoice::Failed)) => {
                Ok(PaymentMethod::BankDebit(DebitOutcome::Failed))
            }
        }
    }
}

/// The payment asked for: a JSON body (empty or `null` meaning a card), or the hosted page's
/// form, whose buttons send `method` and `outcome` fields (none: a card; other fields a
/// browser adds are ignored).
fn payment_request(headers: &HeaderMap, body: &[u8]) -> Result<PaymentRequest, ApiError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        return optional_body(body);
    }
    let fields: serde_json::Map<String, Value> = wire::form(body)
        .into_iter()
        .filter(|(name, _)| matches!(name.as_str(), "method" | "outcome"))
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    parse_json(&serde_json::to_vec(&fields).map_err(ApiError::internal)?)
}

/// `POST /sandbox/payments/{id}/complete [{method?: "card" | "bank_debit", outcome?:
/// "succeeded" | "failed"}]`: the patient pays. A card: core gets `checkout.session.completed`
/// (`paid`). A bank debit: `checkout.session.completed` (`unpaid`), then
/// `checkout.session.async_payment_succeeded` or `…_failed`; a failed one leaves the link open.
async fn complete_payment(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<ApiJson<Value>, ApiError> {
    let method = payment_request(&headers, &body)?.method()?;
    let completed = stripe::complete(&sandbox, &id, method)?;
    let events: Vec<Value> = completed
        .events
        .iter()
        .map(|e| json!({"id": e.id, "type": e.event_type}))
        .collect();
    Ok(ApiJson(json!({
        "id": id,
        "status": completed.link_status.as_str(),
        "method": method.as_str(),
        "outcome": method.outcome(),
        "tenantId": completed.tenant_id,
        "eventId": completed.events.first().map(|e| e.id.as_str()),
        "events": events,
        "sessionId": completed.session_id,
    })))
}

// ---- faults ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultRequest {
    provider: Provider,
    mode: FaultMode,
    #[serde(default)]
    for_seconds: Option<u64>,
    #[serde(default)]
    for_requests: Option<u32>,
}

/// The longest timed fault: a day.
const MAX_FAULT_SECONDS: u64 = 24 * 60 * 60;

/// `POST /sandbox/faults`: from now on (for `forSeconds` of real time, for `forRequests`
/// requests, or until cleared) the provider's API fails that way.
async fn set_fault(
    State(sandbox): State<Sandbox>,
    ApiJson(request): ApiJson<FaultRequest>,
) -> Result<ApiJson<Value>, ApiError> {
    if request.for_seconds.is_some() && request.for_requests.is_some() {
        return Err(ApiError::validation(
            "forRequests",
            "give forSeconds or forRequests, not both",
        ));
    }
    if request
        .for_seconds
        .is_some_and(|s| !(1..=MAX_FAULT_SECONDS).contains(&s))
    {
        return Err(ApiError::validation(
            "forSeconds",
            format!("between 1 and {MAX_FAULT_SECONDS}"),
        ));
    }
    if request.for_requests == Some(0) {
        return Err(ApiError::validation("forRequests", "at least 1"));
    }
    let now = Instant::now();
    sandbox.state().faults.set(
        request.provider,
        Fault {
            mode: request.mode,
            until: request.for_seconds.map(|s| faults::deadline(now, s)),
            remaining: request.for_requests,
        },
    );
    tracing::info!(provider = request.provider.as_str(), mode = ?request.mode, "fault set");
    Ok(ApiJson(json!({
        "provider": request.provider,
        "mode": request.mode,
        "forSeconds": request.for_seconds,
        "forRequests": request.for_requests,
    })))
}

/// `GET /sandbox/faults`: the faults in force.
async fn list_faults(State(sandbox): State<Sandbox>) -> ApiJson<Value> {
    let now = Instant::now();
    let faults: Vec<Value> = sandbox
        .state()
        .faults
        .list(now)
        .into_iter()
        .map(|(provider, fault)| {
            json!({
                "provider": provider,
                "mode": fault.mode,
                "remainingSeconds": fault.until.map(|u| u.saturating_duration_since(now).as_secs()),
                "remainingRequests": fault.remaining,
            })
        })
        .collect();
    ApiJson(json!({"faults": faults}))
}

#[derive(Debug, Deserialize)]
struct ClearQuery {
    provider: Option<Provider>,
}

/// `DELETE /sandbox/faults[?provider=]`: every fault (or one provider's) ends now.
async fn clear_faults(
    State(sandbox): State<Sandbox>,
    ApiQuery(query): ApiQuery<ClearQuery>,
) -> ApiJson<Value> {
    let cleared = sandbox.state().faults.clear(query.provider);
    ApiJson(json!({"cleared": cleared}))
}

// ---- per-tenant switches ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SwitchesRequest {
    #[serde(default)]
    tenant_id: Option<String>,
    twilio_opt_out_handling: bool,
}

fn switches_json(sandbox: &Sandbox, tenant_id: &str) -> Value {
    let switches = sandbox.state().switches(tenant_id);
    json!({"tenantId": tenant_id, "twilioOptOutHandling": switches.twilio_opt_out_handling})
}

/// `POST /sandbox/settings`: e.g. turn off Twilio's default opt-out handling for a tenant so
/// ARO confirms opt-outs itself.
async fn set_switches(
    State(sandbox): State<Sandbox>,
    ApiJson(request): ApiJson<SwitchesRequest>,
) -> Result<ApiJson<Value>, ApiError> {
    let tenant_id = tenant(request.tenant_id.as_deref())?;
    sandbox
        .state()
        .tenants
        .entry(tenant_id.clone())
        .or_default()
        .twilio_opt_out_handling = request.twilio_opt_out_handling;
    Ok(ApiJson(switches_json(&sandbox, &tenant_id)))
}

/// `GET /sandbox/settings?tenantId=`
async fn get_switches(
    State(sandbox): State<Sandbox>,
    ApiQuery(query): ApiQuery<TenantQuery>,
) -> Result<ApiJson<Value>, ApiError> {
    let tenant_id = tenant(query.tenant_id.as_deref())?;
    Ok(ApiJson(switches_json(&sandbox, &tenant_id)))
}

// ---- extra accounts ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccountRequest {
    provider: Provider,
    // Twilio
    #[serde(default)]
    account_sid: Option<String>,
    #[serde(default)]
    auth_token: Option<aro_config::Secret>,
    // Stripe
    #[serde(default)]
    secret_key: Option<aro_config::Secret>,
    #[serde(default)]
    webhook_secret: Option<aro_config::Secret>,
    // Calendly
    #[serde(default)]
    api_token: Option<aro_config::Secret>,
    #[serde(default)]
    webhook_signing_key: Option<aro_config::Secret>,
    #[serde(default)]
    tenant_id: Option<String>,
}

/// A secret that must be given, non-blank and without surrounding whitespace (as ARO's own
/// validation of tenants' credentials asks).
fn secret(
    value: Option<aro_config::Secret>,
    field: &'static str,
) -> Result<aro_config::Secret, ApiError> {
    let value = value.ok_or_else(|| ApiError::validation(field, "is required"))?;
    let text = value.expose();
    if text.trim().is_empty() || text.trim() != text {
        return Err(ApiError::validation(
            field,
            "must be non-blank, without surrounding whitespace",
        ));
    }
    Ok(value)
}

/// Refuses fields that belong to another provider's account.
fn only(request: &AccountRequest, allowed: &[&str]) -> Result<(), ApiError> {
    let given = [
        ("accountSid", request.account_sid.is_some()),
        ("authToken", request.auth_token.is_some()),
        ("secretKey", request.secret_key.is_some()),
        ("webhookSecret", request.webhook_secret.is_some()),
        ("apiToken", request.api_token.is_some()),
        ("webhookSigningKey", request.webhook_signing_key.is_some()),
        ("tenantId", request.tenant_id.is_some()),
    ];
    match given
        .iter()
        .find(|(name, present)| *present && !allowed.contains(name))
    {
        Some((name, _)) => Err(ApiError::validation(
            *name,
            format!("is not a field of a {} account", request.provider.as_str()),
        )),
        None => Ok(()),
    }
}

/// `POST /sandbox/accounts`: the provider accepts another account from now on (a tenant's own,
/// set in ARO with `aro tenant providers set`), keeping its objects apart from other accounts'
/// and signing the webhooks about them with its own secret, as the provider does.
/// - `{provider: "twilio", accountSid, authToken}`: its messages, status callbacks and replies
///   to its texts; adding a SID again replaces the token. 201 `{provider, accountSid}`.
/// - `{provider: "stripe", secretKey, webhookSecret}`: its prices and payment links, and the
///   Checkout events about its links; adding a key again keeps its id and replaces the webhook
///   secret. 201 `{provider, accountId}` (`acct_…`).
/// - `{provider: "calendly", apiToken, webhookSigningKey, tenantId?}`: the tenant's bookings
///   from now on (those made before stay with their user); adding one again for the tenant
///   keeps its id and replaces token and key. 201 `{provider, accountId, tenantId}` (the
///   user's uuid).
async fn add_account(
    State(sandbox): State<Sandbox>,
    ApiJson(request): ApiJson<AccountRequest>,
) -> Result<(StatusCode, ApiJson<Value>), ApiError> {
    match request.provider {
        Provider::Twilio => {
            only(&request, &["accountSid", "authToken"])?;
            let sid = request
                .account_sid
                .as_deref()
                .map(str::trim)
                .ok_or_else(|| ApiError::validation("accountSid", "is required"))?
                .to_owned();
            if !(sid.len() == 34
                && sid.starts_with("AC")
                && sid.bytes().skip(2).all(|b| b.is_ascii_hexdigit()))
            {
                return Err(ApiError::validation(
                    "accountSid",
                    "a Twilio Account SID is AC followed by 32 hex characters",
                ));
            }
            let token = secret(request.auth_token, "authToken")?;
            sandbox.state().twilio.add_account(&sid, token);
            tracing::info!(account = %sid, "twilio account added");
            Ok((
                StatusCode::CREATED,
                ApiJson(json!({"provider": "twilio", "accountSid": sid})),
            ))
        }
        Provider::Stripe => {
            only(&request, &["secretKey", "webhookSecret"])?;
            let key = secret(request.secret_key, "secretKey")?;
            if !(key.expose().starts_with("sk_") || key.expose().starts_with("rk_")) {
                return Err(ApiError::validation(
                    "secretKey",
                    "a Stripe secret key starts with sk_ (or rk_ for a restricted key)",
                ));
            }
            if key.expose() == sandbox.settings().stripe.secret_key.expose() {
                return Err(ApiError::validation(
                    "secretKey",
                    "is the configured key, whose account exists already",
                ));
            }
            let webhook_secret = secret(request.webhook_secret, "webhookSecret")?;
            if !webhook_secret.expose().starts_with("whsec_") {
                return Err(ApiError::validation(
                    "webhookSecret",
                    "a Stripe webhook signing secret starts with whsec_",
                ));
            }
            let id = sandbox.state().stripe.add_account(key, webhook_secret);
            tracing::info!(account = %id, "stripe account added");
            Ok((
                StatusCode::CREATED,
                ApiJson(json!({"provider": "stripe", "accountId": id})),
            ))
        }
        Provider::Calendly => {
            only(&request, &["apiToken", "webhookSigningKey", "tenantId"])?;
            let tenant_id = tenant(request.tenant_id.as_deref())?;
            let token = secret(request.api_token, "apiToken")?;
            if token.expose() == sandbox.settings().calendly.api_token.expose() {
                return Err(ApiError::validation(
                    "apiToken",
                    "is the configured token, whose user exists already",
                ));
            }
            let key = secret(request.webhook_signing_key, "webhookSigningKey")?;
            let id = sandbox.state().calendly.add_account(&tenant_id, token, key);
            tracing::info!(account = %id, tenant = %tenant_id, "calendly account added");
            Ok((
                StatusCode::CREATED,
                ApiJson(json!({"provider": "calendly", "accountId": id, "tenantId": tenant_id})),
            ))
        }
    }
}

/// `GET /sandbox/accounts`: the added accounts' ids (never a secret).
async fn list_accounts(State(sandbox): State<Sandbox>) -> ApiJson<Value> {
    let state = sandbox.state();
    let twilio = state
        .twilio
        .added_accounts()
        .into_iter()
        .map(|sid| json!({"provider": "twilio", "accountSid": sid}));
    let stripe = state
        .stripe
        .added_accounts()
        .into_iter()
        .map(|id| json!({"provider": "stripe", "accountId": id}));
    let calendly =
        state.calendly.added_accounts().into_iter().map(
            |(id, tenant)| json!({"provider": "calendly", "accountId": id, "tenantId": tenant}),
        );
    let accounts: Vec<Value> = twilio.chain(stripe).chain(calendly).collect();
    ApiJson(json!({"accounts": accounts}))
}

/// `DELETE /sandbox/accounts/{provider}/{id}` (a Twilio SID, a Stripe `acct_…`, a Calendly
/// user's uuid): the provider refuses that account's credentials from now on, as after the
/// clinic closed it; what it made stays. For Calendly, the tenant's next bookings go to the
/// configured user again. 204, or 404.
async fn remove_account(
    State(sandbox): State<Sandbox>,
    Path((provider, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mut state = sandbox.state();
    let removed = match provider.as_str() {
        "twilio" => state.twilio.remove_account(&id),
        "stripe" => state.stripe.remove_account(&id),
        "calendly" => state.calendly.remove_account(&id),
        _ => {
            return Err(ApiError::validation(
                "provider",
                "one of twilio, stripe, calendly",
            ));
        }
    };
    if removed {
        tracing::info!(provider = %provider, account = %id, "account removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("account"))
    }
}
