//! The Calendly client and webhook parser: resource look-ups against a fake speaking API v2
//! (`{"resource": …}`, bearer auth, `{"title", "message"}` errors), URI rewriting onto the
//! configured base, refusal of anything that is not a Calendly resource path, and payload
//! fixtures checked against Calendly's own API description.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use aro_config::{CalendlyConfig, Secret};
use aro_integrations::ErrorKind;
use aro_integrations::calendly::webhook::{Webhook, WebhookEvent, WebhookPayload};
use aro_integrations::calendly::{
    BookingField, CalendlyClient, Invitee, ScheduledEvent, normalise,
};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use common::{Journal, Received, TestResult};
use serde_json::{Value, json};
use url::Url;

const TOKEN: &str = "calendly-test-token";

#[derive(Clone, Default)]
struct FakeCalendly {
    journal: Journal,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

impl FakeCalendly {
    fn router(&self) -> Router {
        Router::new()
            .route("/scheduled_events/{event}", get(resource))
            .route(
                "/scheduled_events/{event}/invitees/{invitee}",
                get(resource),
            )
            .fallback(resource)
            .with_state(self.clone())
    }
}

async fn resource(
    State(fake): State<FakeCalendly>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    fake.journal.record(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.clone(),
        body: Vec::new(),
    });
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorised {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"title": "Unauthenticated", "message": "The access token is invalid"})),
        )
            .into_response();
    }
    let scripted = fake
        .statuses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_front();
    match scripted {
        Some(429) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                Json(json!({"title": "Too Many Requests", "message": "Rate limit exceeded"})),
            )
                .into_response();
        }
        Some(404) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"title": "Resource Not Found",
                            "message": "The server could not find the requested resource."})),
            )
                .into_response();
        }
        _ => {}
    }
    if uri.path() == "/users/me" {
        return Json(json!({"resource": {
            "uri": "https://api.calendly.com/users/AAAAAAAAAAAAAAAA",
            "name": "Demo Clinic", "slug": "demo-clinic", "email": "desk@clinic.example",
            "scheduling_url": "https://calendly.com/demo-clinic", "timezone": "America/New_York",
            "avatar_url": null, "created_at": "2019-01-02T03:04:05.678123Z",
            "updated_at": "2019-08-07T06:05:04.321123Z",
            "current_organization": "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA",
        }}))
        .into_response();
    }
    let file = if uri.path().contains("/invitees/") {
        "calendly/invitee.json"
    } else if uri.path().starts_with("/scheduled_events/") {
        "calendly/event.json"
    } else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"title": "Resource Not Found"})),
        )
            .into_response();
    };
    match common::fixture(file) {
        Ok(resource) => Json(json!({ "resource": resource })).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn start() -> Result<(FakeCalendly, Url, CalendlyClient), Box<dyn std::error::Error>> {
    let fake = FakeCalendly::default();
    let url = common::serve(fake.router()).await?;
    let config = CalendlyConfig {
        api_token: Secret::new(TOKEN),
        webhook_signing_key: Secret::new("signing-key"),
        base_url: url.clone(),
    };
    let client = CalendlyClient::new(&config, common::http()?, common::fast_resilient());
    Ok((fake, url, client))
}

fn fixture_str(value: &Value, pointer: &str) -> Result<String, String> {
    common::at(value, pointer)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{pointer} is not a string"))
}

#[test]
fn payload_fixtures_match_calendlys_api_description() -> TestResult {
    let spec = common::load_json_spec("calendly_openapi_2023.json")?;
    let invitees = common::validator(&spec, "/components/schemas/Invitee", false)?;
    let events = common::validator(&spec, "/components/schemas/Event", false)?;

    common::assert_valid(
        &invitees,
        &common::fixture("calendly/invitee.json")?,
        "invitee resource",
    )?;
    common::assert_valid(
        &events,
        &common::fixture("calendly/event.json")?,
        "event resource",
    )?;
    for file in [
        "calendly/webhook_invitee_created.json",
        "calendly/webhook_invitee_created_sparse.json",
        "calendly/webhook_invitee_created_rescheduled.json",
        "calendly/webhook_invitee_canceled_rescheduled.json",
    ] {
        let webhook = common::fixture(file)?;
        let mut payload = common::at(&webhook, "/payload")?.clone();
        let embedded = payload
            .as_object_mut()
            .and_then(|object| object.remove("scheduled_event"));
        common::assert_valid(&invitees, &payload, file)?;
        if let Some(event) = embedded {
            common::assert_valid(&events, &event, &format!("{file} scheduled_event"))?;
        }
        // What the schema accepts, the parser accepts.
        Webhook::parse(webhook.to_string().as_bytes())?;
    }

    // The check has teeth.
    let mut without_uri = common::fixture("calendly/invitee.json")?;
    if let Some(object) = without_uri.as_object_mut() {
        object.remove("uri");
    }
    assert!(!invitees.is_valid(&without_uri));
    let mut bad_status = common::fixture("calendly/event.json")?;
    bad_status["status"] = json!("pending");
    assert!(!events.is_valid(&bad_status));
    Ok(())
}

#[tokio::test]
async fn an_official_invitee_uri_is_fetched_from_the_configured_base() -> TestResult {
    let (fake, url, calendly) = start().await?;
    let fixture = common::fixture("calendly/invitee.json")?;
    let uri = fixture_str(&fixture, "/uri")?;
    assert!(uri.starts_with("https://api.calendly.com/"));

    let invitee: Invitee = calendly.get_invitee(&uri).await?;
    assert_eq!(invitee.uri, uri);
    assert_eq!(invitee.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(
        invitee.text_reminder_number.as_deref(),
        Some("(415) 555-2671")
    );
    assert_eq!(invitee.questions_and_answers.len(), 2);

    let requests = fake.journal.all();
    assert_eq!(requests.len(), 1);
    let expected_path = Url::parse(&uri)?.path().to_owned();
    assert_eq!(requests[0].path, expected_path);
    assert_eq!(
        requests[0].header("authorization").as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_ne!(url.host_str(), Some("api.calendly.com"));
    Ok(())
}

#[tokio::test]
async fn a_scheduled_event_is_fetched_and_read() -> TestResult {
    let (fake, _url, calendly) = start().await?;
    let fixture = common::fixture("calendly/event.json")?;
    let event: ScheduledEvent = calendly.get_event(&fixture_str(&fixture, "/uri")?).await?;
    assert_eq!(event.name.as_deref(), Some("Checkup"));
    assert_eq!(
        event.start_time.map(|t| t.to_rfc3339()),
        Some("2030-03-15T14:00:00+00:00".to_owned())
    );
    assert_eq!(fake.journal.all().len(), 1);
    Ok(())
}

#[tokio::test]
async fn uris_that_are_not_calendly_resources_are_never_requested() -> TestResult {
    let (fake, _url, calendly) = start().await?;
    for uri in [
        "https://api.calendly.com/users/me",
        "https://api.calendly.com/scheduled_events/EV1/invitees/IN1/../../../../admin",
        "https://api.calendly.com/scheduled_events/EV1/invitees/IN1?redirect=http://evil.test",
        "http://169.254.169.254/latest/meta-data/iam",
        "gopher://api.calendly.com/scheduled_events/EV1/invitees/IN1",
        "not a uri",
    ] {
        let error = calendly.get_invitee(uri).await.err();
        assert_eq!(
            error.map(|e| e.kind()),
            Some(ErrorKind::InvalidRequest),
            "{uri}"
        );
    }
    let error = calendly
        .get_event("https://api.calendly.com/event_types/ET1")
        .await
        .err();
    assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::InvalidRequest));
    assert!(fake.journal.all().is_empty(), "nothing was requested");
    Ok(())
}

#[tokio::test]
async fn a_foreign_host_in_a_payload_is_rewritten_not_called() -> TestResult {
    let (fake, _url, calendly) = start().await?;
    let invitee = calendly
        .get_invitee("https://attacker.example/scheduled_events/EV1/invitees/IN1")
        .await?;
    assert!(!invitee.uri.is_empty());
    let requests = fake.journal.all();
    assert_eq!(requests.len(), 1, "the request went to the configured base");
    assert_eq!(requests[0].path, "/scheduled_events/EV1/invitees/IN1");
    Ok(())
}

#[tokio::test]
async fn a_missing_resource_is_permanent() -> TestResult {
    let (fake, _url, calendly) = start().await?;
    fake.statuses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push_back(404);
    let error = calendly
        .get_event("https://api.calendly.com/scheduled_events/EV404")
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert_eq!(error.http_status(), Some(404));
    assert_eq!(error.provider_code(), Some("Resource Not Found"));
    assert_eq!(fake.journal.all().len(), 1);
    Ok(())
}

#[tokio::test]
async fn calendly_throttling_is_retried() -> TestResult {
    let (fake, _url, calendly) = start().await?;
    fake.statuses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push_back(429);
    calendly
        .get_event("https://api.calendly.com/scheduled_events/EV1")
        .await?;
    assert_eq!(fake.journal.all().len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_rejected_token_is_permanent() -> TestResult {
    let (fake, url, _calendly) = start().await?;
    let config = CalendlyConfig {
        api_token: Secret::new("wrong"),
        webhook_signing_key: Secret::new("signing-key"),
        base_url: url,
    };
    let error = CalendlyClient::new(&config, common::http()?, common::fast_resilient())
        .get_event("https://api.calendly.com/scheduled_events/EV1")
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::CredentialRejected);
    assert_eq!(fake.journal.all().len(), 1);
    Ok(())
}

#[test]
fn a_booking_webhook_normalises_into_a_booking() -> TestResult {
    let body = common::fixture("calendly/webhook_invitee_created.json")?.to_string();
    let webhook = Webhook::parse(body.as_bytes())?;
    assert_eq!(webhook.event, WebhookEvent::InviteeCreated);
    assert!(webhook.created_at.is_some());
    let WebhookPayload::Invitee(invitee) = &webhook.payload else {
        return Err("expected an invitee payload".into());
    };
    let booking = normalise(invitee, None)?;
    assert_eq!(Some(booking.external_id.as_str()), webhook.invitee_uri());
    assert!(booking.event_uri.ends_with("000000000001"));
    assert_eq!(booking.name, "Ada Lovelace");
    assert_eq!(booking.email.as_deref(), Some("ada@example.org"));
    assert_eq!(booking.phone_raw.as_deref(), Some("(415) 555-2671"));
    assert_eq!(booking.timezone.as_deref(), Some("America/Los_Angeles"));
    assert_eq!(booking.language.as_deref(), Some("es"));
    assert_eq!(booking.starts_at.to_rfc3339(), "2030-03-15T14:00:00+00:00");
    assert_eq!(booking.ends_at.to_rfc3339(), "2030-03-15T14:30:00+00:00");
    assert_eq!(booking.event_type_name.as_deref(), Some("Checkup"));
    assert!(booking.event_type_uri.is_some());
    assert!(booking.cancel_url.is_some() && booking.reschedule_url.is_some());
    assert_eq!(booking.old_external_id, None);
    let shown = format!("{booking:?}");
    assert!(
        !shown.contains("Ada") && !shown.contains("555-2671") && !shown.contains("example.org")
    );
    Ok(())
}

#[tokio::test]
async fn a_sparse_webhook_reports_what_is_missing_and_a_look_up_completes_it() -> TestResult {
    let body = common::fixture("calendly/webhook_invitee_created_sparse.json")?.to_string();
    let webhook = Webhook::parse(body.as_bytes())?;
    let WebhookPayload::Invitee(invitee) = &webhook.payload else {
        return Err("expected an invitee payload".into());
    };
    let missing = normalise(invitee, None)
        .err()
        .ok_or("expected missing fields")?;
    assert_eq!(
        missing.missing,
        [BookingField::StartsAt, BookingField::EndsAt]
    );

    // What a `booking.fetch_invitee` execution does: fetch the event, normalise again.
    let (_fake, _url, calendly) = start().await?;
    let event_uri = invitee.event.clone().ok_or("the invitee names its event")?;
    let event = calendly.get_event(&event_uri).await?;
    let booking = normalise(invitee, Some(&event))?;
    assert_eq!(
        booking.phone_raw, None,
        "no number: stored, flagged, never texted"
    );
    assert_eq!(booking.language, None);
    assert_eq!(booking.event_type_name.as_deref(), Some("Checkup"));
    Ok(())
}

#[test]
fn both_halves_of_a_reschedule_name_each_other() -> TestResult {
    let canceled = Webhook::parse(
        common::fixture("calendly/webhook_invitee_canceled_rescheduled.json")?
            .to_string()
            .as_bytes(),
    )?;
    let created = Webhook::parse(
        common::fixture("calendly/webhook_invitee_created_rescheduled.json")?
            .to_string()
            .as_bytes(),
    )?;
    let (WebhookPayload::Invitee(old), WebhookPayload::Invitee(new)) =
        (&canceled.payload, &created.payload)
    else {
        return Err("expected invitee payloads".into());
    };
    assert_eq!(canceled.event, WebhookEvent::InviteeCanceled);
    assert!(old.rescheduled);
    assert_eq!(old.new_invitee.as_deref(), Some(new.uri.as_str()));
    let cancellation = old.cancellation.as_ref().ok_or("a cancellation")?;
    assert_eq!(cancellation.canceler_type.as_deref(), Some("invitee"));
    assert_eq!(cancellation.reason.as_deref(), Some("Rescheduled"));
    let booking = normalise(new, None)?;
    assert_eq!(booking.old_external_id.as_deref(), Some(old.uri.as_str()));
    Ok(())
}

#[tokio::test]
async fn the_token_check_reads_the_current_user() -> TestResult {
    let (fake, _url, client) = start().await?;
    client.verify_credentials().await?;
    let requests = fake.journal.all();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/users/me")
    );
    assert_eq!(requests[0].query, None);
    let spec = common::load_json_spec("calendly_openapi_2023.json")?;
    let (query, schema) = common::parameters_validator(&spec, "/users/me", "get", "query")?;
    let given = common::parameters_to_json(&requests[0].query_pairs(), &schema, &spec);
    common::assert_valid(&query, &given, "the token check's query")?;
    Ok(())
}

#[tokio::test]
async fn a_refused_token_check_is_permanent_and_names_no_secret() -> TestResult {
    let (fake, url, _client) = start().await?;
    let config = CalendlyConfig {
        api_token: Secret::new("wrong-token-never-shown"),
        webhook_signing_key: Secret::new("signing-key"),
        base_url: url,
    };
    let error = CalendlyClient::new(&config, common::http()?, common::fast_resilient())
        .verify_credentials()
        .await
        .err()
        .ok_or("expected a refusal")?;
    assert_eq!(error.kind(), ErrorKind::CredentialRejected);
    assert!(!error.to_string().contains("wrong-token"), "{error}");
    assert_eq!(fake.journal.all().len(), 1, "a refusal is not retried");
    Ok(())
}
