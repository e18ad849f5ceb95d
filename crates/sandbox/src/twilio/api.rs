//! The Message resource endpoints: create (send), list with Twilio's filters, fetch one; and
//! the Account resource (fetch), the read an executor makes at start to check its credentials.
//! The list and the message fetch are what an executor uses to find out whether a send whose
//! answer it lost was accepted.

use super::{
    DEFAULT_SENDER, Direction, Status, StoredMessage, TwilioError, delivery, is_e164, segments,
    tenant_from_callback,
};
use crate::state::Sandbox;
use crate::{ids, wire};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

/// Twilio's limit on a message body.
const MAX_BODY_CHARS: usize = 1600;
/// Twilio's default and largest list page.
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// Refuses anything but a known account's own SID and auth token, for that account's own
/// path (401, Twilio error 20003). Known: the configured account, and any added with
/// `POST /sandbox/accounts` (a tenant's own).
fn authenticate(
    sandbox: &Sandbox,
    headers: &HeaderMap,
    path_account: &str,
) -> Result<(), TwilioError> {
    let twilio = &sandbox.settings().twilio;
    let Some((user, password)) = wire::basic_credentials(headers) else {
        return Err(TwilioError::authenticate());
    };
    let token_matches = if user == twilio.account_sid {
        wire::same_secret(&password, twilio.auth_token.expose())
    } else {
        sandbox
            .state()
            .twilio
            .added_account_token(&user)
            .is_some_and(|token| wire::same_secret(&password, token.expose()))
    };
    let valid = token_matches && path_account == user;
    if valid {
        Ok(())
    } else {
        Err(TwilioError::authenticate())
    }
}

fn with_request_id(mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::from_str(&ids::twilio_sid("RQ")) {
        response.headers_mut().insert("twilio-request-id", value);
    }
    response
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`
pub(super) async fn create_message(
    State(sandbox): State<Sandbox>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = authenticate(&sandbox, &headers, &account_sid)
        .and_then(|()| accept(&sandbox, &account_sid, &wire::form(&body)));
    with_request_id(match answer {
        Ok(resource) => (StatusCode::CREATED, axum::Json(resource)).into_response(),
        Err(error) => error.into_response(),
    })
}

/// Validates a send as Twilio does, stores it and starts its delivery.
fn accept(
    sandbox: &Sandbox,
    account_sid: &str,
    params: &[(String, String)],
) -> Result<Value, TwilioError> {
    let to = wire::non_blank(params, "To")
        .ok_or_else(|| TwilioError::bad_request(21604, "A 'To' phone number is required."))?;
    let body = wire::first(params, "Body").unwrap_or_default();
    if body.trim().is_empty() {
        return Err(TwilioError::bad_request(21602, "Message body is required."));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(TwilioError::bad_request(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    let from = wire::non_blank(params, "From");
    let service = wire::non_blank(params, "MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return Err(TwilioError::bad_request(
            21603,
            "A 'From' phone number is required.",
        ));
    }
    if let Some(service) = service.filter(|s| !is_sid(s, "MG")) {
        return Err(TwilioError::bad_request(
            21701,
            format!("The Messaging Service Sid {service} is invalid."),
        ));
    }
    let callback = match wire::non_blank(params, "StatusCallback") {
        None => None,
        Some(raw) => match url::Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                return Err(TwilioError::bad_request(
                    21609,
                    format!("The StatusCallback URL {raw} is not a valid URL."),
                ));
            }
        },
    };
    if let Some(from) = from {
        check_sender(from)?;
    }
    check_recipient(to, from)?;

    let settings = sandbox.settings();
    let sender = from
        .map(str::to_owned)
        .or_else(|| settings.twilio.from_number.clone())
        .unwrap_or_else(|| DEFAULT_SENDER.to_owned());
    let tenant_id = callback
        .as_ref()
        .and_then(tenant_from_callback)
        .unwrap_or_else(|| "default".to_owned());
    let via_service = from.is_none();
    let now = Utc::now();
    let message = StoredMessage {
        sid: ids::twilio_sid("SM"),
        account_sid: account_sid.to_owned(),
        tenant_id,
        direction: Direction::OutboundApi,
        sender,
        to: to.to_owned(),
        body: body.to_owned(),
        status: if via_service {
            Status::Accepted
        } else {
            Status::Queued
        },
        error_code: None,
        messaging_service_sid: service.map(str::to_owned),
        num_segments: segments::count(body),
        created: now,
        // Twilio stamps `date_sent` when it takes the message (see its create example).
        sent: Some(now),
        updated: now,
    };
    let resource = {
        let mut state = sandbox.state();
        if state.twilio.is_opted_out(&message.sender, &message.to) {
            return Err(TwilioError::bad_request(
                21610,
                "Attempt to send to unsubscribed recipient",
            ));
        }
        let resource = message.resource(account_sid);
        state
            .twilio
            .messages
            .insert(message.sid.clone(), message.clone());
        resource
    };
    tracing::info!(sid = %message.sid, tenant = %message.tenant_id, "message accepted");
    delivery::start(
        sandbox,
        message.sid,
        delivery::steps(&message.to, via_service),
        callback.map(String::from),
    );
    Ok(resource)
}

fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.len() == 34 && sid.starts_with(prefix) && sid.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

/// The sender checks of Twilio's test credentials, and the shape of the number.
fn check_sender(from: &str) -> Result<(), TwilioError> {
    let alphanumeric_id = (1..=11).contains(&from.len())
        && from.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && from.bytes().any(|b| b.is_ascii_alphabetic());
    match from {
        "+15005550001" => Err(invalid_sender(from)),
        "+15005550007" => Err(TwilioError::bad_request(
            21606,
            format!(
                "The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."
            ),
        )),
        "+15005550008" => Err(TwilioError::bad_request(
            21611,
            "This 'From' number has exceeded the maximum number of queued messages",
        )),
        _ if is_e164(from) || alphanumeric_id => Ok(()),
        _ => Err(invalid_sender(from)),
    }
}

fn invalid_sender(from: &str) -> TwilioError {
    TwilioError::bad_request(
        21212,
        format!(
            "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
        ),
    )
}

/// The recipient checks, with Twilio's test-credential magic numbers.
fn check_recipient(to: &str, from: Option<&str>) -> Result<(), TwilioError> {
    match to {
        "+15005550001" => Err(invalid_recipient(to)),
        "+15005550002" => Err(TwilioError::bad_request(
            21612,
            format!(
                "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {} via SMS.",
                from.unwrap_or(DEFAULT_SENDER)
            ),
        )),
        "+15005550003" => Err(TwilioError::bad_request(
            21408,
            format!(
                "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."
            ),
        )),
        "+15005550004" => Err(TwilioError::bad_request(
            21610,
            "Attempt to send to unsubscribed recipient",
        )),
        "+15005550009" => Err(TwilioError::bad_request(
            21614,
            format!("'To' number {to} is not a valid mobile number"),
        )),
        _ if is_e164(to) => Ok(()),
        _ => Err(invalid_recipient(to)),
    }
}

fn invalid_recipient(to: &str) -> TwilioError {
    TwilioError::bad_request(
        21211,
        format!("The 'To' number {to} is not a valid phone number."),
    )
}

/// `GET /2010-04-01/Accounts/{Sid}.json` (Twilio's FetchAccount): the account, to its own
/// credentials only (another account's credentials get 401 20003, as from Twilio for an
/// account that is not a subaccount of theirs). Like Twilio's, the resource carries the
/// account's auth token.
pub(super) async fn fetch_account(
    State(sandbox): State<Sandbox>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(account_sid) = file.strip_suffix(".json") else {
        let path = format!("/2010-04-01/Accounts/{file}");
        return with_request_id(TwilioError::not_found(&path).into_response());
    };
    if let Err(error) = authenticate(&sandbox, &headers, account_sid) {
        return with_request_id(error.into_response());
    }
    // Authenticated as this account: the basic-auth password is its token.
    let token = wire::basic_credentials(&headers)
        .map(|(_, password)| password)
        .unwrap_or_default();
    let created = sandbox.started_at().to_rfc2822();
    let body = json!({
        "auth_token": token,
        "date_created": created,
        "date_updated": created,
        "friendly_name": format!("Sandbox account {account_sid}"),
        "owner_account_sid": account_sid,
        "sid": account_sid,
        "status": "active",
        "subresource_uris": {
            "messages": format!("/2010-04-01/Accounts/{account_sid}/Messages.json"),
        },
        "type": "Full",
        "uri": format!("/2010-04-01/Accounts/{account_sid}.json"),
    });
    with_request_id(axum::Json(body).into_response())
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json`
pub(super) async fn fetch_message(
    State(sandbox): State<Sandbox>,
    Path((account_sid, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(error) = authenticate(&sandbox, &headers, &account_sid) {
        return with_request_id(error.into_response());
    }
    let path = format!("/2010-04-01/Accounts/{account_sid}/Messages/{file}");
    let found = file.strip_suffix(".json").and_then(|sid| {
        sandbox
            .state()
            .twilio
            .messages
            .get(sid)
            .filter(|m| m.account_sid == account_sid)
            .map(|m| m.resource(&account_sid))
    });
    with_request_id(match found {
        Some(resource) => axum::Json(resource).into_response(),
        None => TwilioError::not_found(&path).into_response(),
    })
}

/// A `DateSent` filter value: a whole GMT day or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateBound {
    Day(NaiveDate),
    Instant(DateTime<Utc>),
}

impl DateBound {
    fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            return Some(Self::Day(day));
        }
        DateTime::parse_from_rfc3339(raw)
            .or_else(|_| DateTime::parse_from_rfc2822(raw))
            .ok()
            .map(|t| Self::Instant(t.with_timezone(&Utc)))
    }

    fn on(self, sent: DateTime<Utc>) -> bool {
        match self {
            Self::Day(day) => sent.date_naive() == day,
            Self::Instant(t) => sent == t,
        }
    }

    fn on_or_after(self, sent: DateTime<Utc>) -> bool {
        match self {
            Self::Day(day) => sent.date_naive() >= day,
            Self::Instant(t) => sent >= t,
        }
    }

    fn on_or_before(self, sent: DateTime<Utc>) -> bool {
        match self {
            Self::Day(day) => sent.date_naive() <= day,
            Self::Instant(t) => sent <= t,
        }
    }
}

/// The list filters Twilio documents. `DateSent>=2024-01-31` in a URL is the parameter
/// `DateSent>` with the value `2024-01-31` (and likewise `DateSent<=`).
#[derive(Debug, Default)]
struct ListFilter {
    to: Option<String>,
    from: Option<String>,
    on: Option<DateBound>,
    after: Option<DateBound>,
    before: Option<DateBound>,
    page_size: usize,
    page: usize,
}

impl ListFilter {
    fn parse(query: &str) -> Result<Self, TwilioError> {
        let mut filter = Self {
            page_size: DEFAULT_PAGE_SIZE,
            ..Self::default()
        };
        let date = |value: &str| {
            DateBound::parse(value).ok_or_else(|| {
                TwilioError::bad_request(20001, format!("Invalid DateSent value: {value}"))
            })
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "To" => filter.to = Some(value.trim().to_owned()),
                "From" => filter.from = Some(value.trim().to_owned()),
                "DateSent" => filter.on = Some(date(&value)?),
                "DateSent>" => filter.after = Some(date(&value)?),
                "DateSent<" => filter.before = Some(date(&value)?),
                "PageSize" => {
                    filter.page_size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                        .ok_or_else(|| {
                            TwilioError::bad_request(20001, "PageSize must be between 1 and 1000")
                        })?;
                }
                "Page" => {
                    filter.page = value.parse().map_err(|_| {
                        TwilioError::bad_request(20001, "Page must be a non-negative integer")
                    })?;
                }
                // PageToken is opaque client state; paging here is by index.
                _ => {}
            }
        }
        Ok(filter)
    }

    fn matches(&self, message: &StoredMessage) -> bool {
        let sent_ok = |bound: Option<DateBound>, test: fn(DateBound, DateTime<Utc>) -> bool| {
            bound.is_none_or(|b| message.sent.is_some_and(|sent| test(b, sent)))
        };
        self.to.as_deref().is_none_or(|to| message.to == to)
            && self
                .from
                .as_deref()
                .is_none_or(|from| message.sender == from)
            && sent_ok(self.on, DateBound::on)
            && sent_ok(self.after, DateBound::on_or_after)
            && sent_ok(self.before, DateBound::on_or_before)
    }

    /// The page's URI with these filters (Twilio's `uri`, `first_page_uri`, …).
    fn page_uri(&self, base: &str, query: &str, page: usize) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if !matches!(key.as_ref(), "Page" | "PageSize" | "PageToken") {
                serializer.append_pair(&key, &value);
            }
        }
        serializer.append_pair("PageSize", &self.page_size.to_string());
        serializer.append_pair("Page", &page.to_string());
        format!("{base}?{}", serializer.finish())
    }
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`: newest first, paged.
pub(super) async fn list_messages(
    State(sandbox): State<Sandbox>,
    Path(account_sid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(error) = authenticate(&sandbox, &headers, &account_sid) {
        return with_request_id(error.into_response());
    }
    let query = query.unwrap_or_default();
    let filter = match ListFilter::parse(&query) {
        Ok(filter) => filter,
        Err(error) => return with_request_id(error.into_response()),
    };
    let (messages, more) = {
        let state = sandbox.state();
        let mut matching = state
            .twilio
            .messages
            .values()
            .rev()
            .filter(|m| m.account_sid == account_sid && filter.matches(m))
            .skip(filter.page.saturating_mul(filter.page_size));
        let page: Vec<Value> = matching
            .by_ref()
            .take(filter.page_size)
            .map(|m| m.resource(&account_sid))
            .collect();
        (page, matching.next().is_some())
    };
    let base = format!("/2010-04-01/Accounts/{account_sid}/Messages.json");
    let start = filter.page.saturating_mul(filter.page_size);
    let end = (start + messages.len()).saturating_sub(1).max(start);
    let body = json!({
        "end": end,
        "first_page_uri": filter.page_uri(&base, &query, 0),
        "messages": messages,
        "next_page_uri": more.then(|| filter.page_uri(&base, &query, filter.page + 1)),
        "page": filter.page,
        "page_size": filter.page_size,
        "previous_page_uri": (filter.page > 0).then(|| filter.page_uri(&base, &query, filter.page - 1)),
        "start": start,
        "uri": filter.page_uri(&base, &query, filter.page),
    });
    with_request_id(axum::Json(body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_filters_take_days_and_instants() {
        let sent = DateTime::parse_from_rfc3339("2030-03-15T14:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = DateBound::parse("2030-03-15").unwrap();
        assert!(day.on(sent) && day.on_or_after(sent) && day.on_or_before(sent));
        let next_day = DateBound::parse("2030-03-16").unwrap();
        assert!(!next_day.on_or_after(sent) && next_day.on_or_before(sent));
        let instant = DateBound::parse("2030-03-15T14:00:01Z").unwrap();
        assert!(!instant.on_or_after(sent) && instant.on_or_before(sent));
        assert_eq!(DateBound::parse("yesterday"), None);
    }

    #[test]
    fn list_filters_read_twilios_parameter_names() {
        let filter = ListFilter::parse(
            "To=%2B14155552671&DateSent%3E=2030-03-15&DateSent<=2030-03-16&PageSize=2",
        )
        .unwrap();
        assert_eq!(filter.to.as_deref(), Some("+14155552671"));
        assert!(filter.after.is_some() && filter.before.is_some());
        assert_eq!(filter.page_size, 2);
        // Written unencoded, `DateSent>=D` is the parameter `DateSent>` too.
        let filter = ListFilter::parse("DateSent>=2030-03-15").unwrap();
        assert!(filter.after.is_some());
        assert!(ListFilter::parse("PageSize=0").is_err());
        assert!(ListFilter::parse("DateSent=never").is_err());
    }

    #[test]
    fn magic_numbers_answer_with_twilios_codes() {
        let code = |to: &str| check_recipient(to, None).err().map(|e| e.code);
        assert_eq!(code("+15005550001"), Some(21211));
        assert_eq!(code("+15005550002"), Some(21612));
        assert_eq!(code("+15005550003"), Some(21408));
        assert_eq!(code("+15005550004"), Some(21610));
        assert_eq!(code("+15005550009"), Some(21614));
        assert_eq!(code("not a number"), Some(21211));
        assert_eq!(code("+14155552671"), None);
        let sender = |from: &str| check_sender(from).err().map(|e| e.code);
        assert_eq!(sender("+15005550001"), Some(21212));
        assert_eq!(sender("+15005550007"), Some(21606));
        assert_eq!(sender("+15005550008"), Some(21611));
        assert_eq!(sender("+15005550006"), None);
        assert_eq!(sender("DemoClinic"), None);
        assert_eq!(sender("12345"), Some(21212));
    }
}
