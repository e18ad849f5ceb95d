//! The Event API (DESIGN.md "Events"): paging the event log by seq, and the Server-Sent Events
//! stream that catches up from a seq and then tails the log live.
//!
//! Both read only the caller's tenant (`X-Tenant-Id`, granted by the token, scope
//! `events:read`). `seq` is global and strictly increasing, and the store makes seqs visible in
//! seq order, so a reader that pages or resumes "after seq N" never misses a committed event
//! and never sees one twice.

use crate::AppState;
use crate::auth::TenantScope;
use aro_domain::EventType;
use aro_http::{ApiError, ApiJson, ApiQuery};
use aro_security::tokens::Scope;
use aro_store::{Event, EventQuery, StoreError};
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

/// Page size when the caller gives none.
pub const DEFAULT_LIMIT: i64 = 100;
/// The largest page a caller may ask for.
pub const MAX_LIMIT: i64 = 1000;
/// How often a live stream looks for events written by other replicas (writes in this process
/// wake it at once through `AppState::events_appended`).
const STREAM_POLL: Duration = Duration::from_millis(500);
/// Events read per query while a stream catches up.
const STREAM_PAGE: u32 = 500;
/// Keep-alive comments keep proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(list_events))
        .route("/v1/events/stream", get(stream_events))
}

/// A storage failure as the API reports it: retryable when the database is only unavailable.
pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(cause) => {
            tracing::warn!(error = %cause, "database unavailable");
            ApiError::unavailable(
                "STORE_UNAVAILABLE",
                "the database is unavailable; retry shortly",
            )
        }
        other => ApiError::internal(other),
    }
}

/// `eventType` must name a type of the catalogue.
fn parse_event_type(field: &str, raw: Option<String>) -> Result<Option<String>, ApiError> {
    raw.map(|raw| {
        EventType::parse(&raw)
            .map(|t| t.as_str().to_owned())
            .map_err(|_| ApiError::validation(field, format!("unknown event type {raw:?}")))
    })
    .transpose()
}

fn parse_after(field: &str, after: Option<i64>) -> Result<i64, ApiError> {
    match after {
        None => Ok(0),
        Some(after) if after >= 0 => Ok(after),
        Some(_) => Err(ApiError::validation(field, "must be 0 or greater")),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Events after this seq (exclusive; default 0).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only events of this type.
    #[param(value_type = Option<crate::openapi::EventTypeName>)]
    event_type: Option<String>,
    /// Only events about this aggregate (an appointment, a customer, …).
    aggregate_id: Option<String>,
}

/// `GET /v1/events` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    pub events: Vec<Event>,
    /// The last seq returned, or `after` when the page is empty: pass it as the next `after`.
    pub next_after: i64,
}

/// A page of the tenant's event log, in seq order. Scope `events:read`.
///
/// `seq` is global, so one tenant's page has gaps; pass `nextAfter` as the next `after`.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    operation_id = "listEvents",
    params(crate::openapi::TenantHeader, ListParams),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
#[tracing::instrument(skip_all, fields(tenant = %scope.tenant_id))]
async fn list_events(
    scope: TenantScope,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<ApiJson<EventPage>, ApiError> {
    scope.require(Scope::EventsRead)?;
    let after = parse_after("query.after", params.after)?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            "query.limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let event_type = parse_event_type("query.eventType", params.event_type)?;
    let aggregate_id = params.aggregate_id.filter(|id| !id.is_empty());
    let query = EventQuery {
        tenant_id: Some(scope.tenant_id.as_str().to_owned()),
        after,
        // In range by the check above.
        limit: u32::try_from(limit).unwrap_or(1),
        event_type,
        aggregate_id,
    };
    let events = state
        .store
        .read(move |tx| Box::pin(async move { tx.events(&query).await }))
        .await
        .map_err(store_error)?;
    let next_after = events.last().map_or(after, |e| e.seq);
    Ok(ApiJson(EventPage { events, next_after }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct StreamParams {
    /// Start after this seq (exclusive; default 0). `Last-Event-ID` wins over it.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Only events of this type.
    #[param(value_type = Option<crate::openapi::EventTypeName>)]
    event_type: Option<String>,
}

/// `Last-Event-ID` (a reconnecting client) wins over `?after=`.
fn stream_start(headers: &HeaderMap, after: Option<i64>) -> Result<i64, ApiError> {
    match headers.get("last-event-id") {
        Some(value) => {
            let text = value.to_str().unwrap_or_default().trim();
            let seq = text.parse::<i64>().map_err(|_| {
                ApiError::validation("header.Last-Event-ID", "must be an event seq")
            })?;
            parse_after("header.Last-Event-ID", Some(seq))
        }
        None => parse_after("query.after", after),
    }
}

/// The tenant's event log as Server-Sent Events: everything after the start, then live.
///
/// Each event is `id: <seq>`, `event: <eventType>`, `data: <the event as JSON>` (the `Event`
/// schema); comments keep an idle stream open. Reconnect with `Last-Event-ID` to resume with no
/// gap and no duplicate. Scope `events:read`.
#[utoipa::path(
    get,
    path = "/v1/events/stream",
    tag = "events",
    operation_id = "streamEvents",
    params(
        crate::openapi::TenantHeader,
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The last seq received, to resume after it"),
    ),
    responses(
        (status = 200, description = "An endless stream of events", content_type = "text/event-stream", body = String,
            example = json!("id: 42\nevent: appointment.booked\ndata: {\"eventId\":\"evt_…\",\"seq\":42,…}\n\n")),
    ),
    security(("bearerAuth" = [])),
)]
#[tracing::instrument(skip_all, fields(tenant = %scope.tenant_id))]
async fn stream_events(
    scope: TenantScope,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    scope.require(Scope::EventsRead)?;
    let cursor = stream_start(&headers, params.after)?;
    let event_type = parse_event_type("query.eventType", params.event_type)?;
    let tail = Tail {
        state,
        tenant_id: scope.tenant_id.as_str().to_owned(),
        event_type,
        cursor,
        buffer: VecDeque::new(),
    };
    Ok(Sse::new(tail.into_stream()).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One client's position in the log.
struct Tail {
    state: AppState,
    tenant_id: String,
    event_type: Option<String>,
    /// The last seq read from the store (everything up to it is sent or buffered).
    cursor: i64,
    buffer: VecDeque<Event>,
}

impl Tail {
    fn into_stream(self) -> impl Stream<Item = Result<SseEvent, Infallible>> {
        futures::stream::unfold(self, |mut tail| async move {
            let event = tail.next_event().await?;
            Some((Ok(event), tail))
        })
    }

    /// The next event to send; `None` ends the stream (shutdown).
    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                match sse_event(&event) {
                    Some(sse) => return Some(sse),
                    None => continue,
                }
            }
            if self.state.shutdown.is_cancelled() {
                return None;
            }
            // Registered before the query so that an append committed after the query but
            // before the wait still wakes us.
            let appended = self.state.events_appended.clone();
            let woken = appended.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self.fetch().await {
                Ok(page) if !page.is_empty() => {
                    if let Some(last) = page.last() {
                        self.cursor = last.seq;
                    }
                    self.buffer.extend(page);
                    continue;
                }
                Ok(_) => {}
                // The client keeps its place; try again after the poll interval.
                Err(e) => tracing::warn!(error = %e, "event stream could not read the log"),
            }
            tokio::select! {
                () = self.state.shutdown.cancelled() => return None,
                () = &mut woken => {}
                () = tokio::time::sleep(STREAM_POLL) => {}
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Event>, StoreError> {
        let query = EventQuery {
            tenant_id: Some(self.tenant_id.clone()),
            after: self.cursor,
            limit: STREAM_PAGE,
            event_type: self.event_type.clone(),
            aggregate_id: None,
        };
        self.state
            .store
            .read(move |tx| Box::pin(async move { tx.events(&query).await }))
            .await
    }
}

/// `id:` = seq, `event:` = eventType, `data:` = the event JSON.
fn sse_event(event: &Event) -> Option<SseEvent> {
    match SseEvent::default()
        .id(event.seq.to_string())
        .event(event.event_type.as_str())
        .json_data(event)
    {
        Ok(sse) => Some(sse),
        Err(e) => {
            tracing::error!(seq = event.seq, error = %e, "event could not be serialised for the stream");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn last_event_id_wins_over_after() {
        let mut headers = HeaderMap::new();
        assert_eq!(stream_start(&headers, Some(7)).unwrap(), 7);
        assert_eq!(stream_start(&headers, None).unwrap(), 0);
        headers.insert("last-event-id", HeaderValue::from_static("42"));
        assert_eq!(stream_start(&headers, Some(7)).unwrap(), 42);
    }

    #[test]
    fn bad_positions_name_their_source() {
        let mut headers = HeaderMap::new();
        let err = stream_start(&headers, Some(-1)).unwrap_err();
        assert_eq!(err.details["field"], "query.after");
        headers.insert("last-event-id", HeaderValue::from_static("abc"));
        let err = stream_start(&headers, Some(3)).unwrap_err();
        assert_eq!(err.details["field"], "header.Last-Event-ID");
    }

    #[test]
    fn event_types_come_from_the_catalogue() {
        assert_eq!(
            parse_event_type("query.eventType", Some("message.sent".into())).unwrap(),
            Some("message.sent".to_owned())
        );
        let err =
            parse_event_type("query.eventType", Some("message.teleported".into())).unwrap_err();
        assert_eq!(err.status.as_u16(), 422);
        assert_eq!(err.details["field"], "query.eventType");
    }
}
