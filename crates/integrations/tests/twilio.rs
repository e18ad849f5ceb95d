//! The Twilio client against a fake that speaks Twilio's wire format: form-encoded sends with
//! basic auth, Message resources in JSON, `{code, message, more_info, status}` errors, the
//! message list with `next_page_uri` paging, and the account fetch that checks credentials.
//! Every request's body, query and path parameters are checked against Twilio's own API
//! description.

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aro_config::{Secret, TwilioConfig};
use aro_integrations::twilio::{MessageStatus, SendSms, TwilioClient};
use aro_integrations::{ErrorKind, ProviderError};
use aro_resilience::{Classify, Resilient};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use common::{Journal, Received, TestResult};
use serde_json::{Value, json};
use url::Url;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "test-auth-token";
const FROM: &str = "+15005550006";
const TO: &str = "+14155552671";

/// What the fake does with the next send.
#[derive(Debug, Clone)]
enum Reply {
    Accept,
    /// Creates the message, then answers only after this long.
    AcceptSlowly(Duration),
    Error {
        status: u16,
        code: Option<i64>,
        retry_after: Option<&'static str>,
    },
}

#[derive(Clone, Default)]
struct FakeTwilio {
    journal: Journal,
    messages: Arc<Mutex<Vec<Value>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    page_size: Arc<AtomicUsize>,
    next_sid: Arc<AtomicUsize>,
}

impl FakeTwilio {
    fn script(&self, replies: &[Reply]) {
        self.replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(replies.iter().cloned());
    }

    fn stored(&self) -> Vec<Value> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stores a message; `sent` ones have a `date_sent`, others are still queued (as a message
    /// Twilio accepted a moment ago is).
    fn store(&self, to: &str, body: &str, created: DateTime<Utc>, sent: bool) -> String {
        let sid = format!(
            "SM{:032x}",
            self.next_sid.fetch_add(1, Ordering::SeqCst) + 1
        );
        let resource = json!({
            "account_sid": ACCOUNT,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": created.to_rfc2822(),
            "date_sent": if sent { Value::from(created.to_rfc2822()) } else { Value::Null },
            "date_updated": created.to_rfc2822(),
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": FROM,
            "messaging_service_sid": null,
            "num_media": "0",
            "num_segments": "1",
            "price": null,
            "price_unit": "USD",
            "sid": sid,
            "status": if sent { "sent" } else { "queued" },
            "subresource_uris": {"media": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media.json")},
            "to": to,
            "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"),
        });
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(resource);
        sid
    }

    fn router(&self) -> Router {
        Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Messages.json",
                get(list).post(create),
            )
            .route("/2010-04-01/Accounts/{account}/Messages/{file}", get(fetch))
            .route("/2010-04-01/Accounts/{account}", get(fetch_account))
            .with_state(self.clone())
    }
}

fn record(fake: &FakeTwilio, method: Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
    fake.journal.record(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.clone(),
        body: body.to_vec(),
    });
}

fn authorised(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

fn twilio_error(status: u16, code: i64, retry_after: Option<&str>) -> Response {
    let body = json!({
        "code": code,
        "message": format!("The 'To' number {TO} is not a valid phone number."),
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(body)).into_response();
    if let Some(Ok(value)) = retry_after.map(str::parse) {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

async fn create(
    State(fake): State<FakeTwilio>,
    Path(account): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&fake, method, &uri, &headers, &body);
    if account != ACCOUNT || !authorised(&headers) {
        return twilio_error(401, 20003, None);
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let reply = fake
        .replies
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_front()
        .unwrap_or(Reply::Accept);
    let delay = match reply {
        Reply::Error {
            status,
            code,
            retry_after,
        } => {
            return match code {
                Some(code) => twilio_error(status, code, retry_after),
                None => (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                    "<html>upstream error</html>",
                )
                    .into_response(),
            };
        }
        Reply::Accept => None,
        Reply::AcceptSlowly(delay) => Some(delay),
    };
    let sid = fake.store(&field("To"), &field("Body"), Utc::now(), false);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let resource = fake
        .stored()
        .into_iter()
        .find(|m| m["sid"] == sid)
        .unwrap_or(Value::Null);
    (StatusCode::CREATED, Json(resource)).into_response()
}

async fn list(
    State(fake): State<FakeTwilio>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    record(&fake, method, &uri, &headers, &[]);
    if !authorised(&headers) {
        return twilio_error(401, 20003, None);
    }
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let to = param("To");
    let sent_from = param("DateSent>");
    let requested: usize = param("PageSize").and_then(|p| p.parse().ok()).unwrap_or(50);
    let cap = fake.page_size.load(Ordering::SeqCst);
    let page_size = if cap == 0 {
        requested
    } else {
        requested.min(cap)
    };
    let page: usize = param("Page").and_then(|p| p.parse().ok()).unwrap_or(0);
    // Newest first, as Twilio lists them.
    let mut matching: Vec<Value> = fake
        .stored()
        .into_iter()
        .filter(|m| to.as_deref().is_none_or(|to| m["to"] == to))
        // Twilio's DateSent filter reads date_sent: queued messages have none.
        .filter(|m| {
            let sent = m["date_sent"]
                .as_str()
                .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                .map(|d| d.with_timezone(&Utc));
            sent_from
                .as_deref()
                .is_none_or(|from| sent.is_some_and(|sent| sent_on_or_after(sent, from)))
        })
        .collect();
    matching.reverse();
    let start = page * page_size;
    let messages: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(page_size)
        .cloned()
        .collect();
    let path = uri.path().to_owned();
    let mut base_query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(to) = &to {
        base_query.append_pair("To", to);
    }
    if let Some(from) = &sent_from {
        base_query.append_pair("DateSent>", from);
    }
    base_query.append_pair("PageSize", &page_size.to_string());
    let base_query = base_query.finish();
    let next_page_uri = (start + page_size < matching.len()).then(|| {
        format!(
            "{path}?{base_query}&Page={}&PageToken=PASM{}",
            page + 1,
            page + 1
        )
    });
    Json(json!({
        "end": start + messages.len().saturating_sub(1),
        "first_page_uri": format!("{path}?{base_query}&Page=0"),
        "next_page_uri": next_page_uri,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": null,
        "start": start,
        "uri": format!("{path}?{base_query}&Page={page}"),
        "messages": messages,
    }))
    .into_response()
}

/// Twilio's `DateSent>` bound: an instant (`2030-03-15T14:00:00Z`, the form the API
/// description declares) or a whole GMT day (`2030-03-15`).
fn sent_on_or_after(sent: DateTime<Utc>, bound: &str) -> bool {
    match DateTime::parse_from_rfc3339(bound) {
        Ok(instant) => sent >= instant,
        Err(_) => sent.format("%Y-%m-%d").to_string().as_str() >= bound,
    }
}

/// `GET /2010-04-01/Accounts/{Sid}.json`: the account, for its own credentials only.
async fn fetch_account(
    State(fake): State<FakeTwilio>,
    Path(file): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&fake, method, &uri, &headers, &[]);
    if file != format!("{ACCOUNT}.json") || !authorised(&headers) {
        return twilio_error(401, 20003, None);
    }
    Json(json!({
        "auth_token": TOKEN,
        "date_created": "Thu, 30 Jul 2015 20:00:00 +0000",
        "date_updated": "Thu, 30 Jul 2015 20:00:00 +0000",
        "friendly_name": "clinic",
        "owner_account_sid": ACCOUNT,
        "sid": ACCOUNT,
        "status": "active",
        "subresource_uris": {"messages": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")},
        "type": "Full",
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}.json"),
    }))
    .into_response()
}

async fn fetch(
    State(fake): State<FakeTwilio>,
    Path((_account, file)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&fake, method, &uri, &headers, &[]);
    let sid = file.trim_end_matches(".json");
    match fake.stored().into_iter().find(|m| m["sid"] == sid) {
        Some(message) => Json(message).into_response(),
        None => twilio_error(404, 20404, None),
    }
}

fn config(base_url: &Url) -> TwilioConfig {
    TwilioConfig {
        account_sid: ACCOUNT.to_owned(),
        auth_token: Secret::new(TOKEN),
        from_number: Some(FROM.to_owned()),
        messaging_service_sid: None,
        base_url: base_url.clone(),
    }
}

async fn start() -> Result<(FakeTwilio, Url), Box<dyn std::error::Error>> {
    let fake = FakeTwilio::default();
    let url = common::serve(fake.router()).await?;
    Ok((fake, url))
}

fn client(base_url: &Url, resilient: Resilient) -> Result<TwilioClient, reqwest::Error> {
    Ok(TwilioClient::new(
        &config(base_url),
        common::http()?,
        resilient,
    ))
}

fn reminder() -> SendSms {
    SendSms::new(
        TO,
        "Hi Ada, see you Fri 15 Mar at 2:00 PM. Reply C to confirm.",
        "exec-1",
    )
}

fn posts(fake: &FakeTwilio) -> usize {
    fake.journal.count("POST")
}

fn gets(fake: &FakeTwilio) -> usize {
    fake.journal.count("GET")
}

#[tokio::test]
async fn sends_an_sms_with_the_fields_twilio_expects() -> TestResult {
    let (fake, url) = start().await?;
    let callback = Url::parse("https://clinic.example/v1/webhooks/twilio/default/status")?;
    let sent = client(&url, common::fast_resilient())?
        .send_sms(&reminder().with_status_callback(callback.clone()))
        .await?;

    assert!(sent.sid.starts_with("SM"));
    assert_eq!(sent.status, MessageStatus::Queued);
    assert_eq!(sent.to, TO);
    assert!(sent.date_created.is_some());
    assert_eq!(posts(&fake), 1);
    let request = &fake.journal.all()[0];
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    );
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let form = request.form();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("To"), Some(TO));
    assert_eq!(field("From"), Some(FROM));
    assert_eq!(field("Body"), Some(reminder().body.as_str()));
    assert_eq!(field("StatusCallback"), Some(callback.as_str()));
    assert_eq!(field("MessagingServiceSid"), None);
    Ok(())
}

#[tokio::test]
async fn the_send_and_the_fakes_answers_match_twilios_api_description() -> TestResult {
    let (fake, url) = start().await?;
    let twilio = client(&url, common::fast_resilient())?;
    let callback = Url::parse("https://clinic.example/v1/webhooks/twilio/default/status")?;
    twilio
        .send_sms(&reminder().with_status_callback(callback))
        .await?;
    let mut service_config = config(&url);
    service_config.messaging_service_sid = Some("MG0123456789abcdef0123456789abcdef".to_owned());
    TwilioClient::new(&service_config, common::http()?, common::fast_resilient())
        .send_sms(&reminder())
        .await?;

    let spec = common::load_json_spec("twilio_api_v2010.json")?;
    let request_pointer = "/paths/~12010-04-01~1Accounts~1{AccountSid}~1Messages.json/post/requestBody/content/application~1x-www-form-urlencoded/schema";
    let request_schema = common::at(&spec, request_pointer)?.clone();
    let requests = common::validator(&spec, request_pointer, true)?;
    for (index, received) in fake.journal.all().iter().enumerate() {
        let body = common::flat_form_to_json(&received.form(), &request_schema, &spec);
        common::assert_valid(&requests, &body, &format!("send {index}"))?;
    }

    // The check has teeth: a misspelt field or a callback that is not a URI is refused.
    for wrong in [
        vec![
            ("To".to_owned(), TO.to_owned()),
            ("Boddy".to_owned(), "x".to_owned()),
        ],
        vec![
            ("To".to_owned(), TO.to_owned()),
            ("StatusCallback".to_owned(), "not a uri".to_owned()),
        ],
        vec![("Body".to_owned(), "no recipient".to_owned())],
    ] {
        let body = common::flat_form_to_json(&wrong, &request_schema, &spec);
        assert!(!requests.is_valid(&body), "{body}");
    }

    // The fake's resources are what the client parses: they must have Twilio's shape too.
    let messages = common::validator(&spec, "/components/schemas/api.v2010.account.message", true)?;
    for message in fake.stored() {
        common::assert_valid(&messages, &message, "fake message resource")?;
    }
    Ok(())
}

#[tokio::test]
async fn a_messaging_service_is_preferred_over_the_from_number() -> TestResult {
    let (fake, url) = start().await?;
    let mut config = config(&url);
    config.messaging_service_sid = Some("MG0123456789abcdef0123456789abcdef".to_owned());
    TwilioClient::new(&config, common::http()?, common::fast_resilient())
        .send_sms(&reminder())
        .await?;
    let form = fake.journal.all()[0].form();
    assert!(
        form.iter()
            .any(|(k, v)| k == "MessagingServiceSid" && v.starts_with("MG"))
    );
    assert!(!form.iter().any(|(k, _)| k == "From"));
    Ok(())
}

#[tokio::test]
async fn an_unsubscribed_recipient_is_an_outcome_and_never_retried() -> TestResult {
    let (fake, url) = start().await?;
    fake.script(&[Reply::Error {
        status: 400,
        code: Some(21610),
        retry_after: None,
    }]);
    let error = client(&url, common::fast_resilient())?
        .send_sms(&reminder())
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::RecipientOptedOut);
    assert_eq!(error.code(), "RECIPIENT_OPTED_OUT");
    assert_eq!(error.classify().kind(), "outcome");
    assert_eq!(error.provider_code(), Some("21610"));
    assert_eq!(error.http_status(), Some(400));
    assert!(!error.maybe_delivered());
    assert!(!error.to_string().contains(TO), "{error}");
    assert_eq!(posts(&fake), 1);
    Ok(())
}

#[tokio::test]
async fn recipient_and_sender_errors_are_permanent_and_not_retried() -> TestResult {
    for code in [21211, 21614, 21408, 21606, 21612] {
        let (fake, url) = start().await?;
        fake.script(&[Reply::Error {
            status: 400,
            code: Some(code),
            retry_after: None,
        }]);
        let error = client(&url, common::fast_resilient())?
            .send_sms(&reminder())
            .await
            .err()
            .ok_or("expected an error")?;
        assert_eq!(error.kind(), ErrorKind::Rejected, "{code}");
        assert!(!error.is_retryable(), "{code}");
        assert_eq!(error.provider_code(), Some(code.to_string().as_str()));
        assert!(!error.message().contains(TO));
        assert_eq!(posts(&fake), 1, "{code}");
    }
    Ok(())
}

#[tokio::test]
async fn twilio_throttling_is_retried_until_it_succeeds() -> TestResult {
    let (fake, url) = start().await?;
    fake.script(&[Reply::Error {
        status: 429,
        code: Some(20429),
        retry_after: None,
    }]);
    let sent = client(&url, common::fast_resilient())?
        .send_sms(&reminder())
        .await?;
    assert!(sent.sid.starts_with("SM"));
    assert_eq!(posts(&fake), 2);
    assert_eq!(fake.stored().len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_outage_answer_is_retried_without_a_look_up() -> TestResult {
    let (fake, url) = start().await?;
    fake.script(&[Reply::Error {
        status: 503,
        code: Some(20503),
        retry_after: None,
    }]);
    client(&url, common::fast_resilient())?
        .send_sms(&reminder())
        .await?;
    assert_eq!(posts(&fake), 2);
    // 503 says Twilio did not take the request: nothing to look up.
    assert_eq!(gets(&fake), 0);
    Ok(())
}

#[tokio::test]
async fn twilio_authentication_outage_is_retried() -> TestResult {
    let (fake, url) = start().await?;
    fake.script(&[Reply::Error {
        status: 503,
        code: Some(20003),
        retry_after: None,
    }]);
    client(&url, common::fast_resilient())?
        .send_sms(&reminder())
        .await?;
    assert_eq!(posts(&fake), 2);
    Ok(())
}

#[tokio::test]
async fn a_gateway_error_makes_the_next_attempt_look_up_first() -> TestResult {
    let (fake, url) = start().await?;
    fake.script(&[Reply::Error {
        status: 502,
        code: None,
        retry_after: None,
    }]);
    client(&url, common::fast_resilient())?
        .send_sms(&reminder())
        .await?;
    let methods: Vec<String> = fake
        .journal
        .all()
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["POST", "GET", "GET", "POST"]);
    Ok(())
}

#[tokio::test]
async fn gateway_errors_on_every_attempt_leave_the_send_unresolved() -> TestResult {
    let (fake, url) = start().await?;
    let gateway = Reply::Error {
        status: 502,
        code: None,
        retry_after: None,
    };
    fake.script(&[gateway.clone(), gateway.clone(), gateway]);
    let error = client(&url, common::fast_resilient())?
        .send_sms(&reminder())
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.is_retryable());
    assert!(
        error.maybe_delivered(),
        "the executor must look up before resending"
    );
    assert_eq!(posts(&fake), 3);
    assert_eq!(gets(&fake), 4, "two look-ups of two queries each");
    Ok(())
}

#[tokio::test]
async fn retry_after_zero_is_honoured_and_the_send_goes_through() -> TestResult {
    let (fake, url) = start().await?;
    fake.script(&[Reply::Error {
        status: 429,
        code: Some(20429),
        retry_after: Some("0"),
    }]);
    client(&url, common::fast_resilient())?
        .send_sms(&reminder())
        .await?;
    assert_eq!(posts(&fake), 2);
    Ok(())
}

#[tokio::test]
async fn a_retry_after_beyond_the_in_memory_window_ends_the_call_with_the_wait() -> TestResult {
    let (fake, url) = start().await?;
    fake.script(&[Reply::Error {
        status: 429,
        code: Some(20429),
        retry_after: Some("120"),
    }]);
    let error = client(&url, common::fast_resilient())?
        .send_sms(&reminder())
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(
        error.classify().retry_after(),
        Some(Duration::from_secs(120))
    );
    assert!(!error.maybe_delivered());
    assert_eq!(posts(&fake), 1);
    Ok(())
}

#[tokio::test]
async fn a_rejected_credential_is_permanent() -> TestResult {
    let (fake, url) = start().await?;
    let mut config = config(&url);
    config.auth_token = Secret::new("wrong-token");
    let error = TwilioClient::new(&config, common::http()?, common::fast_resilient())
        .send_sms(&reminder())
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::CredentialRejected);
    assert!(!error.to_string().contains("wrong-token"));
    assert_eq!(posts(&fake), 1);
    Ok(())
}

#[tokio::test]
async fn an_accepted_send_whose_answer_is_lost_is_found_not_sent_twice() -> TestResult {
    let (fake, url) = start().await?;
    let (proxy, dropped) = common::answer_dropping_proxy(&url, 1).await?;
    let sent = client(&proxy, common::fast_resilient())?
        .send_sms(&reminder())
        .await?;

    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the proxy dropped the first answer"
    );
    assert_eq!(posts(&fake), 1, "sent exactly once");
    assert!(gets(&fake) >= 1, "looked up before any resend");
    let stored = fake.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["sid"], sent.sid.as_str());
    Ok(())
}

#[tokio::test]
async fn a_send_that_times_out_is_looked_up_before_any_resend() -> TestResult {
    let (fake, url) = start().await?;
    fake.script(&[Reply::AcceptSlowly(Duration::from_secs(3))]);
    let resilient = common::resilient_with(3, Duration::from_millis(400));
    let sent = client(&url, resilient)?.send_sms(&reminder()).await?;
    assert_eq!(posts(&fake), 1);
    assert_eq!(fake.stored().len(), 1);
    assert_eq!(fake.stored()[0]["sid"], sent.sid.as_str());
    Ok(())
}

#[tokio::test]
async fn an_earlier_attempt_is_looked_up_before_sending() -> TestResult {
    let (fake, url) = start().await?;
    let earlier = fake.store(TO, &reminder().body, Utc::now(), true);
    let since = Utc::now() - TimeDelta::minutes(5);
    let found = client(&url, common::fast_resilient())?
        .send_sms(&reminder().after_earlier_attempt(since))
        .await?;
    assert_eq!(found.sid, earlier);
    assert_eq!(posts(&fake), 0);
    assert_eq!(gets(&fake), 1);
    Ok(())
}

#[tokio::test]
async fn a_still_queued_earlier_message_is_found_without_the_date_filter() -> TestResult {
    let (fake, url) = start().await?;
    let earlier = fake.store(TO, &reminder().body, Utc::now(), false);
    let since = Utc::now() - TimeDelta::minutes(5);
    let found = client(&url, common::fast_resilient())?
        .send_sms(&reminder().after_earlier_attempt(since))
        .await?;
    assert_eq!(found.sid, earlier);
    assert_eq!(posts(&fake), 0);
    let lookups = fake.journal.all();
    assert_eq!(lookups.len(), 2);
    assert!(
        lookups[0]
            .query_pairs()
            .iter()
            .any(|(k, _)| k == "DateSent>")
    );
    assert!(
        !lookups[1]
            .query_pairs()
            .iter()
            .any(|(k, _)| k == "DateSent>")
    );
    Ok(())
}

#[tokio::test]
async fn an_earlier_attempt_that_never_arrived_is_sent_once() -> TestResult {
    let (fake, url) = start().await?;
    // Same recipient, another text: not the message we are sending.
    fake.store(TO, "Your visit is tomorrow", Utc::now(), true);
    let since = Utc::now() - TimeDelta::minutes(5);
    client(&url, common::fast_resilient())?
        .send_sms(&reminder().after_earlier_attempt(since))
        .await?;
    assert_eq!(posts(&fake), 1);
    assert_eq!(
        gets(&fake),
        2,
        "the filtered list, then the newest unfiltered page"
    );
    Ok(())
}

#[tokio::test]
async fn find_sent_follows_next_page_uri_with_twilios_filters() -> TestResult {
    let (fake, url) = start().await?;
    fake.page_size.store(1, Ordering::SeqCst);
    let now = Utc::now();
    let wanted = fake.store(TO, "the one", now, true);
    fake.store(TO, "later one", now, true);
    fake.store("+14155550000", "the one", now, true);
    fake.store(TO, "latest one", now, true);
    let found = client(&url, common::fast_resilient())?
        .find_sent(TO, "the one", now - TimeDelta::minutes(1))
        .await?
        .ok_or("expected to find the message")?;
    assert_eq!(found.sid, wanted);
    let lookups = fake.journal.all();
    assert_eq!(lookups.len(), 3, "three pages of one message each");
    let first = lookups[0].query_pairs();
    assert!(first.contains(&("To".to_owned(), TO.to_owned())));
    let since = (now - TimeDelta::minutes(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert!(first.contains(&("DateSent>".to_owned(), since)));
    assert!(
        lookups[1..]
            .iter()
            .all(|r| r.path == format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json"))
    );
    Ok(())
}

#[tokio::test]
async fn find_sent_ignores_messages_created_before_the_attempt() -> TestResult {
    let (fake, url) = start().await?;
    let now = Utc::now();
    fake.store(TO, "the one", now - TimeDelta::minutes(30), true);
    let found = client(&url, common::fast_resilient())?
        .find_sent(TO, "the one", now - TimeDelta::minutes(1))
        .await?;
    assert!(found.is_none());
    Ok(())
}

#[tokio::test]
async fn fetch_reads_one_message() -> TestResult {
    let (fake, url) = start().await?;
    let sid = fake.store(TO, "hello", Utc::now(), true);
    let twilio = client(&url, common::fast_resilient())?;
    let message = twilio.fetch(&sid).await?;
    assert_eq!(message.sid, sid);
    assert_eq!(message.body, "hello");
    let missing = twilio
        .fetch("SM00000000000000000000000000000bad")
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(missing.kind(), ErrorKind::Rejected);
    assert_eq!(missing.provider_code(), Some("20404"));
    let refused: Option<ProviderError> = twilio.fetch("../../Accounts").await.err();
    assert_eq!(refused.map(|e| e.kind()), Some(ErrorKind::InvalidRequest));
    Ok(())
}

#[tokio::test]
async fn without_a_sender_nothing_is_sent() -> TestResult {
    let (fake, url) = start().await?;
    let mut config = config(&url);
    config.from_number = None;
    let error = TwilioClient::new(&config, common::http()?, common::fast_resilient())
        .send_sms(&reminder())
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert_eq!(fake.journal.all().len(), 0);
    Ok(())
}

/// The operations' paths in Twilio's description.
const LIST_OR_CREATE: &str = "/2010-04-01/Accounts/{AccountSid}/Messages.json";
const FETCH_MESSAGE: &str = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json";
const FETCH_ACCOUNT: &str = "/2010-04-01/Accounts/{Sid}.json";

/// Checks one request's query and path parameters against the operation `template` declares.
fn assert_parameters_match(
    spec: &Value,
    template: &str,
    received: &Received,
    what: &str,
) -> TestResult {
    let (query, query_schema) = common::parameters_validator(spec, template, "get", "query")?;
    let (path, path_schema) = common::parameters_validator(spec, template, "get", "path")?;
    let given = common::parameters_to_json(&received.query_pairs(), &query_schema, spec);
    common::assert_valid(&query, &given, &format!("{what}: query"))?;
    let pairs = common::path_parameters(template, &received.path)
        .ok_or_else(|| format!("{what}: {} does not fit {template}", received.path))?;
    let given = common::parameters_to_json(&pairs, &path_schema, spec);
    common::assert_valid(&path, &given, &format!("{what}: path"))?;
    Ok(())
}

#[tokio::test]
async fn the_look_up_and_fetch_send_the_parameters_twilios_api_description_declares() -> TestResult
{
    let (fake, url) = start().await?;
    let now = Utc::now();
    let sid = fake.store(TO, "the one", now, true);
    let twilio = client(&url, common::fast_resilient())?;
    // Not found with the date filter (sent before the attempt): the unfiltered page follows.
    assert!(
        twilio
            .find_sent(TO, "another", now - TimeDelta::minutes(1))
            .await?
            .is_none()
    );
    twilio.fetch(&sid).await?;

    let spec = common::load_json_spec("twilio_api_v2010.json")?;
    let requests = fake.journal.all();
    assert_eq!(requests.len(), 3, "filtered list, unfiltered list, fetch");
    assert_parameters_match(&spec, LIST_OR_CREATE, &requests[0], "the filtered look-up")?;
    assert_parameters_match(
        &spec,
        LIST_OR_CREATE,
        &requests[1],
        "the unfiltered look-up",
    )?;
    assert_parameters_match(&spec, FETCH_MESSAGE, &requests[2], "the fetch")?;
    let since = requests[0]
        .query_pairs()
        .into_iter()
        .find(|(k, _)| k == "DateSent>")
        .map(|(_, v)| v)
        .ok_or("the look-up filters by DateSent>")?;
    assert!(DateTime::parse_from_rfc3339(&since).is_ok(), "{since}");
    assert!(since.ends_with('Z'), "UTC: {since}");

    // The check has teeth: a bare day where a date-time is declared, an undeclared filter, a
    // page size Twilio refuses, and a SID of the wrong kind are all refused.
    let (query, query_schema) =
        common::parameters_validator(&spec, LIST_OR_CREATE, "get", "query")?;
    for wrong in [
        vec![("DateSent>", "2030-03-15")],
        vec![("Recipient", TO)],
        vec![("PageSize", "1001")],
    ] {
        let pairs: Vec<(String, String)> = wrong
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let given = common::parameters_to_json(&pairs, &query_schema, &spec);
        assert!(!query.is_valid(&given), "{given}");
    }
    let (path, path_schema) = common::parameters_validator(&spec, FETCH_MESSAGE, "get", "path")?;
    let pairs = common::path_parameters(
        FETCH_MESSAGE,
        &format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/MG0123456789abcdef0123456789abcdef.json"),
    )
    .ok_or("fits the template")?;
    let given = common::parameters_to_json(&pairs, &path_schema, &spec);
    assert!(!path.is_valid(&given), "{given}");
    Ok(())
}

#[tokio::test]
async fn the_credential_check_fetches_the_account_as_twilio_describes_it() -> TestResult {
    let (fake, url) = start().await?;
    client(&url, common::fast_resilient())?
        .verify_credentials()
        .await?;
    let requests = fake.journal.all();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].path,
        format!("/2010-04-01/Accounts/{ACCOUNT}.json")
    );
    assert_eq!(requests[0].query, None);
    let spec = common::load_json_spec("twilio_api_v2010.json")?;
    assert_parameters_match(&spec, FETCH_ACCOUNT, &requests[0], "the account fetch")?;
    // The fake answers with Twilio's Account resource.
    let account = common::validator(&spec, "/components/schemas/api.v2010.account", true)?;
    let answer: Value = common::http()?
        .get(url.join(&format!("2010-04-01/Accounts/{ACCOUNT}.json"))?)
        .basic_auth(ACCOUNT, Some(TOKEN))
        .send()
        .await?
        .json()
        .await?;
    common::assert_valid(&account, &answer, "the fake's account")?;
    Ok(())
}

#[tokio::test]
async fn a_refused_credential_check_is_permanent_and_names_no_secret() -> TestResult {
    let (fake, url) = start().await?;
    let mut wrong = config(&url);
    wrong.auth_token = Secret::new("wrong-token-never-shown");
    let error = TwilioClient::new(&wrong, common::http()?, common::fast_resilient())
        .verify_credentials()
        .await
        .err()
        .ok_or("expected a refusal")?;
    assert_eq!(error.kind(), ErrorKind::CredentialRejected);
    assert_eq!(error.http_status(), Some(401));
    assert!(!error.to_string().contains("wrong-token"), "{error}");
    assert_eq!(gets(&fake), 1, "a refusal is not retried");

    // Unreachable is not refused: it says nothing about the credentials.
    let closed = Url::parse("http://127.0.0.1:9/")?;
    let unreachable = client(&closed, common::resilient_with(1, Duration::from_secs(2)))?
        .verify_credentials()
        .await
        .err()
        .ok_or("expected an error")?;
    assert_ne!(unreachable.kind(), ErrorKind::CredentialRejected);
    Ok(())
}
