//! Push subscriptions: signed deliveries of the event log to an integrator's URL (DESIGN.md
//! "Events"). Creating one returns its Standard Webhooks secret once; afterwards only the
//! delivery worker can open it. Replay moves the cursor back (by seq or by time) and re-enables
//! a disabled subscription; the worker then delivers again from there.
//!
//! Every route needs `events:read` for the tenant in `X-Tenant-Id`; another tenant's
//! subscription ids are 404, like ids that never existed.

use crate::AppState;
use crate::api::events::store_error;
use crate::auth::TenantScope;
use aro_domain::EventType;
use aro_http::{ApiError, ApiJson, ApiPath};
use aro_security::signatures::standard_webhooks;
use aro_security::tokens::Scope;
use aro_store::StoreError;
use aro_store::subscriptions::{NewSubscription, Subscription, SubscriptionStatus};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Longest accepted URL; receivers' URLs are short, and this bounds what we store.
const MAX_URL_LEN: usize = 2048;
const MAX_DESCRIPTION_LEN: usize = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/subscriptions",
            post(create_subscription).get(list_subscriptions),
        )
        .route(
            "/v1/subscriptions/{id}",
            get(get_subscription).delete(delete_subscription),
        )
        .route("/v1/subscriptions/{id}/replay", post(replay_subscription))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    /// The receiver: an absolute http(s) URL with a host, no credentials and no fragment.
    #[schema(max_length = 2048, example = "https://hooks.example.org/aro")]
    url: String,
    /// Event types to deliver; absent or empty means all.
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::openapi::EventTypeName>>)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
}

/// A subscription on the wire (never with its secret, except in the creation answer).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    /// Delivered event types; empty means all.
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// `active` or `disabled`.
    #[schema(value_type = crate::openapi::SubscriptionState)]
    pub status: &'static str,
    pub disabled_reason: Option<String>,
    /// Every event of the tenant up to this seq has been delivered (or skipped by the filter).
    pub cursor: i64,
    /// Consecutive failed attempts.
    pub failure_count: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// A status code or error kind of the last failed attempt.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        Self {
            id: s.id,
            url: s.url,
            event_types: s.event_types,
            description: s.description,
            status: match s.status {
                SubscriptionStatus::Active => "active",
                SubscriptionStatus::Disabled => "disabled",
            },
            disabled_reason: s.disabled_reason,
            cursor: s.cursor,
            failure_count: s.failure_count,
            next_attempt_at: s.next_attempt_at,
            last_attempt_at: s.last_attempt_at,
            last_success_at: s.last_success_at,
            last_error: s.last_error,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The creation answer: the subscription plus its signing secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSubscription {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks). Not retrievable later.
    pub secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionView>,
}

/// The receiver's URL: absolute http(s), with a host and no credentials in it.
fn validate_url(raw: &str) -> Result<String, ApiError> {
    let reason = |r: &str| ApiError::validation("url", r.to_owned());
    if raw.len() > MAX_URL_LEN {
        return Err(reason("is longer than 2048 characters"));
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|_| reason("is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(reason("must use http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(reason("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(reason("must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(reason("must not have a fragment"));
    }
    Ok(url.to_string())
}

/// Catalogue event types, each once, in the order given; absent or empty means all.
fn validate_event_types(raw: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for (i, name) in raw.unwrap_or_default().into_iter().enumerate() {
        let t = EventType::parse(&name).map_err(|_| {
            ApiError::validation(
                format!("eventTypes[{i}]"),
                format!("unknown event type {name:?}"),
            )
        })?;
        if !out.iter().any(|known| known == t.as_str()) {
            out.push(t.as_str().to_owned());
        }
    }
    Ok(out)
}

fn validate_description(raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()) {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN => Err(ApiError::validation(
            "description",
            format!("is longer than {MAX_DESCRIPTION_LEN} characters"),
        )),
        other => Ok(other),
    }
}

/// Why creating a subscription did not happen.
enum CreateError {
    UnknownTenant,
    Store(StoreError),
}

impl From<StoreError> for CreateError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Creates a push subscription; the answer shows its signing secret this once.
///
/// Deliveries are signed per Standard Webhooks (`webhook-id` = the event id, stable across
/// retries, `webhook-timestamp`, `webhook-signature`), at least once, in seq order, retried with
/// backoff and full jitter (honouring `Retry-After`); 410 Gone or sustained failure disables
/// the subscription. Scope `events:read`.
#[utoipa::path(
    post,
    path = "/v1/subscriptions",
    tag = "subscriptions",
    operation_id = "createSubscription",
    params(crate::openapi::TenantHeader),
    request_body = CreateBody,
    responses(
        (status = 201, description = "Created", body = CreatedSubscription),
        (status = 404, description = "`NOT_FOUND`: no such tenant", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
#[tracing::instrument(skip_all, fields(tenant = %scope.tenant_id))]
async fn create_subscription(
    scope: TenantScope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, ApiJson<CreatedSubscription>), ApiError> {
    scope.require(Scope::EventsRead)?;
    let new = NewSubscription {
        tenant_id: scope.tenant_id.as_str().to_owned(),
        url: validate_url(&body.url)?,
        description: validate_description(body.description)?,
        event_types: validate_event_types(body.event_types)?,
        secret: standard_webhooks::generate_secret(),
    };
    let secret = new.secret.clone();
    // A subscription is operational, not business, data: its times (creation, delivery
    // schedule) are real time (DESIGN.md "Time"), so a sandbox clock advance cannot park it.
    let now = Utc::now();
    let created = state
        .store
        .write(move |tx| {
            Box::pin(async move {
                if tx.get_tenant(&new.tenant_id).await?.is_none() {
                    return Err(CreateError::UnknownTenant);
                }
                Ok(tx.insert_subscription(&new, now).await?)
            })
        })
        .await;
    let subscription = match created {
        Ok(s) => s,
        Err(CreateError::UnknownTenant) => return Err(ApiError::not_found("tenant")),
        Err(CreateError::Store(e)) => return Err(store_error(e)),
    };
    tracing::info!(subscription = %subscription.id, "subscription created");
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedSubscription {
            subscription: subscription.into(),
            secret,
        }),
    ))
}

/// The tenant's subscriptions. Scope `events:read`.
#[utoipa::path(
    get,
    path = "/v1/subscriptions",
    tag = "subscriptions",
    operation_id = "listSubscriptions",
    params(crate::openapi::TenantHeader),
    responses(
        (status = 200, description = "The subscriptions", body = SubscriptionList),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn list_subscriptions(
    scope: TenantScope,
    State(state): State<AppState>,
) -> Result<ApiJson<SubscriptionList>, ApiError> {
    scope.require(Scope::EventsRead)?;
    let tenant = scope.tenant_id.as_str().to_owned();
    let subscriptions = state
        .store
        .read(move |tx| Box::pin(async move { tx.list_subscriptions(&tenant).await }))
        .await
        .map_err(store_error)?;
    Ok(ApiJson(SubscriptionList {
        subscriptions: subscriptions.into_iter().map(Into::into).collect(),
    }))
}

/// One subscription, with its cursor and delivery state. Scope `events:read`.
#[utoipa::path(
    get,
    path = "/v1/subscriptions/{subscriptionId}",
    tag = "subscriptions",
    operation_id = "getSubscription",
    params(crate::openapi::TenantHeader, ("subscriptionId" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 404, description = "`NOT_FOUND`: no such subscription in this tenant", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn get_subscription(
    scope: TenantScope,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<SubscriptionView>, ApiError> {
    scope.require(Scope::EventsRead)?;
    let tenant = scope.tenant_id.as_str().to_owned();
    let found = state
        .store
        .read(move |tx| Box::pin(async move { tx.get_subscription(&tenant, &id).await }))
        .await
        .map_err(store_error)?;
    found
        .map(|s| ApiJson(s.into()))
        .ok_or_else(|| ApiError::not_found("subscription"))
}

/// Deletes a subscription; nothing more is delivered to it. Scope `events:read`.
#[utoipa::path(
    delete,
    path = "/v1/subscriptions/{subscriptionId}",
    tag = "subscriptions",
    operation_id = "deleteSubscription",
    params(crate::openapi::TenantHeader, ("subscriptionId" = String, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`NOT_FOUND`: no such subscription in this tenant", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
#[tracing::instrument(skip_all, fields(tenant = %scope.tenant_id, subscription = %id))]
async fn delete_subscription(
    scope: TenantScope,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    scope.require(Scope::EventsRead)?;
    let tenant = scope.tenant_id.as_str().to_owned();
    let deleted = state
        .store
        .write(move |tx| Box::pin(async move { tx.delete_subscription(&tenant, &id).await }))
        .await
        .map_err(store_error)?;
    if deleted {
        tracing::info!("subscription deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("subscription"))
    }
}

/// Exactly one of `fromSeq` and `fromTime`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReplayBody {
    /// Deliver again from this seq (inclusive).
    #[serde(default)]
    #[schema(minimum = 0)]
    from_seq: Option<i64>,
    /// Deliver again the events that occurred at or after this time.
    #[serde(default)]
    from_time: Option<DateTime<Utc>>,
}

/// Where a replay starts.
#[derive(Debug)]
enum ReplayFrom {
    /// Events with this seq and later.
    Seq(i64),
    /// Events that occurred at this time and later.
    Time(DateTime<Utc>),
}

impl ReplayBody {
    fn start(self) -> Result<ReplayFrom, ApiError> {
        match (self.from_seq, self.from_time) {
            (Some(_), Some(_)) => Err(ApiError::validation(
                "body",
                "give either fromSeq or fromTime, not both",
            )),
            (None, None) => Err(ApiError::validation("body", "give fromSeq or fromTime")),
            (Some(seq), None) if seq < 0 => {
                Err(ApiError::validation("fromSeq", "must be 0 or greater"))
            }
            (Some(seq), None) => Ok(ReplayFrom::Seq(seq)),
            (None, Some(at)) => Ok(ReplayFrom::Time(at)),
        }
    }
}

/// Moves a subscription's cursor back (by seq or time) and re-enables it; delivery starts again
/// from there. Scope `events:read`.
#[utoipa::path(
    post,
    path = "/v1/subscriptions/{subscriptionId}/replay",
    tag = "subscriptions",
    operation_id = "replaySubscription",
    params(crate::openapi::TenantHeader, ("subscriptionId" = String, Path, description = "The subscription's id")),
    request_body = ReplayBody,
    responses(
        (status = 200, description = "The subscription after the replay", body = SubscriptionView),
        (status = 404, description = "`NOT_FOUND`: no such subscription in this tenant", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
#[tracing::instrument(skip_all, fields(tenant = %scope.tenant_id, subscription = %id))]
async fn replay_subscription(
    scope: TenantScope,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<ApiJson<SubscriptionView>, ApiError> {
    scope.require(Scope::EventsRead)?;
    let from = body.start()?;
    let tenant = scope.tenant_id.as_str().to_owned();
    // Delivery scheduling runs on real time (DESIGN.md "Time"): due at once.
    let now = Utc::now();
    let replayed = state
        .store
        .write(move |tx| {
            Box::pin(async move {
                if tx.get_subscription(&tenant, &id).await?.is_none() {
                    return Ok(None);
                }
                let cursor = match from {
                    ReplayFrom::Seq(seq) => seq.saturating_sub(1).max(0),
                    ReplayFrom::Time(at) => tx.seq_before_time(&tenant, at).await?,
                };
                tx.replay_subscription(&tenant, &id, cursor, now).await
            })
        })
        .await
        .map_err(store_error)?;
    let subscription = replayed.ok_or_else(|| ApiError::not_found("subscription"))?;
    tracing::info!(cursor = subscription.cursor, "subscription replayed");
    state.events_appended.notify_waiters();
    Ok(ApiJson(subscription.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_plain_http_or_https() {
        assert_eq!(
            validate_url("https://hooks.example.org/aro").unwrap(),
            "https://hooks.example.org/aro"
        );
        assert!(validate_url("http://127.0.0.1:9000/in").is_ok());
        for bad in [
            "ftp://example.org/x",
            "file:///etc/passwd",
            "https://user:pw@example.org/",
            "https://user@example.org/",
            "not a url",
            "/relative/path",
            "https://example.org/#frag",
        ] {
            let err = validate_url(bad).unwrap_err();
            assert_eq!(err.details["field"], "url", "{bad}");
        }
        let long = format!("https://example.org/{}", "a".repeat(MAX_URL_LEN));
        assert!(validate_url(&long).is_err());
    }

    #[test]
    fn event_types_are_checked_and_deduplicated() {
        let types = validate_event_types(Some(vec![
            "message.sent".into(),
            "appointment.booked".into(),
            "message.sent".into(),
        ]))
        .unwrap();
        assert_eq!(types, ["message.sent", "appointment.booked"]);
        assert!(validate_event_types(None).unwrap().is_empty());
        let err =
            validate_event_types(Some(vec!["message.sent".into(), "nope".into()])).unwrap_err();
        assert_eq!(err.details["field"], "eventTypes[1]");
    }

    #[test]
    fn replay_needs_exactly_one_starting_point() {
        let body = |from_seq, from_time| ReplayBody {
            from_seq,
            from_time,
        };
        assert!(matches!(
            body(Some(5), None).start(),
            Ok(ReplayFrom::Seq(5))
        ));
        assert!(matches!(
            body(None, Some(Utc::now())).start(),
            Ok(ReplayFrom::Time(_))
        ));
        assert!(body(None, None).start().is_err());
        assert!(body(Some(1), Some(Utc::now())).start().is_err());
        assert_eq!(
            body(Some(-1), None).start().unwrap_err().details["field"],
            "fromSeq"
        );
    }
}
