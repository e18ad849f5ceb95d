//! The Stripe client against a fake that speaks Stripe's wire format: bracket-notation form
//! bodies, bearer auth, `Idempotency-Key` replay, `Stripe-Version`, and
//! `{"error": {"type", "code", "param", "message"}}` errors with `Stripe-Should-Retry`, and the
//! one-price list that checks the secret key. Request bodies and query parameters are checked
//! against Stripe's own API description.

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use aro_config::{Secret, StripeConfig};
use aro_integrations::ErrorKind;
use aro_integrations::stripe::{DepositLink, STRIPE_VERSION, StripeClient};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use common::{Journal, Received, TestResult};
use serde_json::{Value, json};
use url::Url;

const SECRET_KEY: &str = "sk_test_0123456789";

#[derive(Debug, Clone)]
struct Refusal {
    status: u16,
    error_type: &'static str,
    code: &'static str,
    should_retry: Option<&'static str>,
}

#[derive(Clone, Default)]
struct FakeStripe {
    journal: Journal,
    /// Scripted refusals per path, consumed in order.
    refusals: Arc<Mutex<HashMap<String, VecDeque<Refusal>>>>,
    /// Idempotency keys already answered, with the answer (Stripe replays it).
    answered: Arc<Mutex<HashMap<String, Value>>>,
    created: Arc<AtomicUsize>,
}

impl FakeStripe {
    fn refuse(&self, path: &str, refusals: &[Refusal]) {
        self.refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(path.to_owned())
            .or_default()
            .extend(refusals.iter().cloned());
    }

    fn created_objects(&self) -> Vec<Value> {
        self.answered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/v1/prices", post(create).get(list_prices))
            .route("/v1/payment_links", post(create))
            .with_state(self.clone())
    }
}

fn stripe_error(refusal: &Refusal) -> Response {
    let body = json!({"error": {
        "type": refusal.error_type,
        "code": refusal.code,
        "message": "Your card was declined for ada@example.org.",
        "param": "unit_amount",
        "doc_url": format!("https://stripe.com/docs/error-codes/{}", refusal.code),
    }});
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, Json(body)).into_response();
    if let Some(Ok(value)) = refusal.should_retry.map(str::parse) {
        response.headers_mut().insert("stripe-should-retry", value);
    }
    response
}

async fn create(
    State(fake): State<FakeStripe>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    fake.journal.record(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers.clone(),
        body: body.to_vec(),
    });
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("authorization") != format!("Bearer {SECRET_KEY}") {
        return stripe_error(&Refusal {
            status: 401,
            error_type: "invalid_request_error",
            code: "api_key_invalid",
            should_retry: None,
        });
    }
    let refusal = fake
        .refusals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_mut(uri.path())
        .and_then(VecDeque::pop_front);
    if let Some(refusal) = refusal {
        return stripe_error(&refusal);
    }
    let key = header("idempotency-key").to_owned();
    if let Some(replay) = fake
        .answered
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return Json(replay.clone()).into_response();
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
    let n = fake.created.fetch_add(1, Ordering::SeqCst) + 1;
    let object = if uri.path() == "/v1/prices" {
        json!({
            "id": format!("price_{n:024}"), "object": "price", "active": true,
            "billing_scheme": "per_unit", "created": 1_893_456_000, "currency": field("currency"),
            "livemode": false, "lookup_key": null, "metadata": {}, "nickname": null,
            "product": format!("prod_{n:014}"), "recurring": null, "tax_behavior": "unspecified",
            "tiers_mode": null, "transform_quantity": null, "type": "one_time",
            "unit_amount": field("unit_amount").parse::<i64>().unwrap_or(0),
            "unit_amount_decimal": field("unit_amount"),
        })
    } else {
        let metadata: BTreeMap<String, String> = form
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((key.to_owned(), v.clone()))
            })
            .collect();
        json!({
            "id": format!("plink_{n:024}"), "object": "payment_link", "active": true,
            "after_completion": {"hosted_confirmation": {"custom_message": null}, "type": "hosted_confirmation"},
            "allow_promotion_codes": false, "application_fee_amount": null,
            "application_fee_percent": null, "automatic_tax": {"enabled": false},
            "billing_address_collection": "auto", "livemode": false, "metadata": metadata,
            "on_behalf_of": null, "payment_method_types": null,
            "phone_number_collection": {"enabled": false}, "shipping_address_collection": null,
            "subscription_data": null, "transfer_data": null,
            "url": format!("https://buy.stripe.com/test_{n:012}"),
        })
    };
    fake.answered
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, object.clone());
    Json(object).into_response()
}

/// `GET /v1/prices`: an empty list page, for the configured key only.
async fn list_prices(
    State(fake): State<FakeStripe>,
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
        .is_some_and(|v| v == format!("Bearer {SECRET_KEY}"));
    if !authorised {
        return stripe_error(&Refusal {
            status: 401,
            error_type: "invalid_request_error",
            code: "api_key_invalid",
            should_retry: None,
        });
    }
    Json(json!({"object": "list", "data": [], "has_more": false, "url": "/v1/prices"}))
        .into_response()
}

async fn start() -> Result<(FakeStripe, Url), Box<dyn std::error::Error>> {
    let fake = FakeStripe::default();
    let url = common::serve(fake.router()).await?;
    Ok((fake, url))
}

fn client(base_url: &Url, key: &str) -> Result<StripeClient, reqwest::Error> {
    let config = StripeConfig {
        secret_key: Secret::new(key),
        webhook_secret: Secret::new("whsec_test"),
        base_url: base_url.clone(),
    };
    Ok(StripeClient::new(
        &config,
        common::http()?,
        common::fast_resilient(),
    ))
}

fn deposit(key: &str) -> DepositLink {
    DepositLink {
        amount_minor: 5_000,
        currency: "USD".to_owned(),
        product_name: "Deposit for your checkup".to_owned(),
        metadata: BTreeMap::from([
            ("tenantId".to_owned(), "default".to_owned()),
            ("appointmentId".to_owned(), "apt_01".to_owned()),
            ("executionId".to_owned(), key.to_owned()),
        ]),
        idempotency_key: key.to_owned(),
    }
}

fn posts_to(fake: &FakeStripe, path: &str) -> Vec<Received> {
    fake.journal
        .all()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

#[tokio::test]
async fn creates_a_price_then_a_link_with_keys_derived_from_the_execution() -> TestResult {
    let (fake, url) = start().await?;
    let link = client(&url, SECRET_KEY)?
        .create_deposit_link(&deposit("exec-42"))
        .await?;

    assert!(link.id.starts_with("plink_"));
    assert!(link.price_id.starts_with("price_"));
    assert_eq!(link.url.host_str(), Some("buy.stripe.com"));
    let requests = fake.journal.all();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/v1/prices", "/v1/payment_links"]);
    assert_eq!(
        requests[0].header("idempotency-key").as_deref(),
        Some("exec-42-price")
    );
    assert_eq!(
        requests[1].header("idempotency-key").as_deref(),
        Some("exec-42-link")
    );
    for request in &requests {
        assert_eq!(
            request.header("stripe-version").as_deref(),
            Some(STRIPE_VERSION)
        );
        assert_eq!(
            request.header("authorization").as_deref(),
            Some(format!("Bearer {SECRET_KEY}").as_str())
        );
    }
    let price = requests[0].form();
    assert!(price.contains(&("currency".to_owned(), "usd".to_owned())));
    assert!(price.contains(&("unit_amount".to_owned(), "5000".to_owned())));
    assert!(price.contains(&(
        "product_data[name]".to_owned(),
        "Deposit for your checkup".to_owned()
    )));
    let link_form = requests[1].form();
    assert!(link_form.contains(&("line_items[0][price]".to_owned(), link.price_id.clone())));
    assert!(link_form.contains(&("line_items[0][quantity]".to_owned(), "1".to_owned())));
    assert!(link_form.contains(&("metadata[appointmentId]".to_owned(), "apt_01".to_owned())));
    Ok(())
}

#[tokio::test]
async fn request_bodies_and_fake_objects_match_stripes_api_description() -> TestResult {
    let (fake, url) = start().await?;
    client(&url, SECRET_KEY)?
        .create_deposit_link(&deposit("exec-43"))
        .await?;
    let spec = common::load_json_spec("stripe_spec3_2022-04.json")?;
    for (path, operation) in [
        ("/v1/prices", "PostPrices"),
        ("/v1/payment_links", "PostPaymentLinks"),
    ] {
        let pointer = format!(
            "/paths/{}/post/requestBody/content/application~1x-www-form-urlencoded/schema",
            common::pointer_key(path)
        );
        assert_eq!(
            common::at(
                &spec,
                &format!("/paths/{}/post/operationId", common::pointer_key(path))
            )?,
            operation
        );
        let schema = common::at(&spec, &pointer)?.clone();
        let validator = common::validator(&spec, &pointer, true)?;
        let received = posts_to(&fake, path);
        assert_eq!(received.len(), 1);
        let body = common::stripe_form_to_json(&received[0].form(), &schema, &spec)?;
        common::assert_valid(&validator, &body, operation)?;
        // The check has teeth: an unknown parameter or a string amount is refused.
        let mut wrong = body.clone();
        if let Some(object) = wrong.as_object_mut() {
            object.insert("amount".to_owned(), json!(5000));
        }
        assert!(
            !validator.is_valid(&wrong),
            "{operation} accepted an unknown parameter"
        );
    }
    let price_schema = common::at(
        &spec,
        "/paths/~1v1~1prices/post/requestBody/content/application~1x-www-form-urlencoded/schema",
    )?
    .clone();
    let prices = common::validator(
        &spec,
        "/paths/~1v1~1prices/post/requestBody/content/application~1x-www-form-urlencoded/schema",
        true,
    )?;
    let text_amount = common::stripe_form_to_json(
        &[
            ("currency".to_owned(), "usd".to_owned()),
            ("unit_amount".to_owned(), "fifty".to_owned()),
        ],
        &price_schema,
        &spec,
    )?;
    assert!(!prices.is_valid(&text_amount));

    let objects = fake.created_objects();
    assert_eq!(objects.len(), 2);
    for object in objects {
        let schema = match object["object"].as_str() {
            Some("price") => "/components/schemas/price",
            _ => "/components/schemas/payment_link",
        };
        common::assert_valid(&common::validator(&spec, schema, false)?, &object, schema)?;
    }
    Ok(())
}

#[tokio::test]
async fn card_errors_are_permanent_and_not_retried() -> TestResult {
    let (fake, url) = start().await?;
    fake.refuse(
        "/v1/prices",
        &[Refusal {
            status: 402,
            error_type: "card_error",
            code: "card_declined",
            should_retry: None,
        }],
    );
    let error = client(&url, SECRET_KEY)?
        .create_deposit_link(&deposit("exec-44"))
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert_eq!(error.provider_code(), Some("card_declined"));
    assert!(!error.message().contains("ada@"), "{}", error.message());
    assert_eq!(fake.journal.all().len(), 1);
    Ok(())
}

#[tokio::test]
async fn invalid_requests_and_idempotency_conflicts_are_permanent() -> TestResult {
    for (error_type, code) in [
        ("invalid_request_error", "parameter_invalid_integer"),
        ("idempotency_error", "idempotency_key_reused"),
    ] {
        let (fake, url) = start().await?;
        fake.refuse(
            "/v1/payment_links",
            &[Refusal {
                status: 400,
                error_type,
                code,
                should_retry: None,
            }],
        );
        let error = client(&url, SECRET_KEY)?
            .create_deposit_link(&deposit("exec-45"))
            .await
            .err()
            .ok_or("expected an error")?;
        assert_eq!(error.kind(), ErrorKind::Rejected, "{error_type}");
        assert_eq!(
            posts_to(&fake, "/v1/payment_links").len(),
            1,
            "{error_type}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn api_errors_and_rate_limits_are_retried_under_the_same_key() -> TestResult {
    for refusal in [
        Refusal {
            status: 500,
            error_type: "api_error",
            code: "api_error",
            should_retry: None,
        },
        Refusal {
            status: 429,
            error_type: "invalid_request_error",
            code: "rate_limit",
            should_retry: None,
        },
        Refusal {
            status: 409,
            error_type: "invalid_request_error",
            code: "idempotency_key_in_use",
            should_retry: Some("true"),
        },
    ] {
        let (fake, url) = start().await?;
        fake.refuse("/v1/prices", std::slice::from_ref(&refusal));
        client(&url, SECRET_KEY)?
            .create_deposit_link(&deposit("exec-46"))
            .await?;
        let prices = posts_to(&fake, "/v1/prices");
        assert_eq!(prices.len(), 2, "{refusal:?}");
        assert!(
            prices
                .iter()
                .all(|r| r.header("idempotency-key").as_deref() == Some("exec-46-price"))
        );
    }
    Ok(())
}

#[tokio::test]
async fn stripes_advice_not_to_retry_is_followed() -> TestResult {
    let (fake, url) = start().await?;
    fake.refuse(
        "/v1/prices",
        &[Refusal {
            status: 500,
            error_type: "api_error",
            code: "api_error",
            should_retry: Some("false"),
        }],
    );
    let error = client(&url, SECRET_KEY)?
        .create_deposit_link(&deposit("exec-47"))
        .await
        .err()
        .ok_or("expected an error")?;
    assert!(!error.is_retryable());
    assert_eq!(fake.journal.all().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_rejected_secret_key_is_permanent_and_not_echoed() -> TestResult {
    let (fake, url) = start().await?;
    let error = client(&url, "sk_test_wrong")?
        .create_deposit_link(&deposit("exec-48"))
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::CredentialRejected);
    assert!(!error.to_string().contains("sk_test"));
    assert_eq!(fake.journal.all().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_rerun_after_a_failed_link_reuses_the_price_stripe_already_made() -> TestResult {
    let (fake, url) = start().await?;
    fake.refuse(
        "/v1/payment_links",
        &[Refusal {
            status: 400,
            error_type: "invalid_request_error",
            code: "parameter_missing",
            should_retry: None,
        }],
    );
    let stripe = client(&url, SECRET_KEY)?;
    assert!(
        stripe
            .create_deposit_link(&deposit("exec-49"))
            .await
            .is_err()
    );
    let link = stripe.create_deposit_link(&deposit("exec-49")).await?;
    let prices = posts_to(&fake, "/v1/prices");
    assert_eq!(prices.len(), 2);
    // Both price requests carried the same key, so Stripe answered the second from the first.
    assert_eq!(
        fake.created.load(Ordering::SeqCst),
        2,
        "one price and one link created"
    );
    let link_requests = posts_to(&fake, "/v1/payment_links");
    let last = link_requests.last().ok_or("no link request")?;
    assert!(
        last.form()
            .contains(&("line_items[0][price]".to_owned(), link.price_id.clone()))
    );
    Ok(())
}

#[tokio::test]
async fn invalid_deposits_never_reach_stripe() -> TestResult {
    let (fake, url) = start().await?;
    let mut free = deposit("exec-50");
    free.amount_minor = 0;
    let error = client(&url, SECRET_KEY)?
        .create_deposit_link(&free)
        .await
        .err()
        .ok_or("expected an error")?;
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert!(fake.journal.all().is_empty());
    Ok(())
}

#[tokio::test]
async fn the_key_check_lists_one_price_as_stripes_api_description_declares() -> TestResult {
    let (fake, url) = start().await?;
    client(&url, SECRET_KEY)?.verify_credentials().await?;
    let requests = fake.journal.all();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/v1/prices")
    );
    assert_eq!(
        request.header("stripe-version").as_deref(),
        Some(STRIPE_VERSION)
    );
    assert!(request.body.is_empty());

    let spec = common::load_json_spec("stripe_spec3_2022-04.json")?;
    let (query, schema) = common::parameters_validator(&spec, "/v1/prices", "get", "query")?;
    let given = common::parameters_to_json(&request.query_pairs(), &schema, &spec);
    common::assert_valid(&query, &given, "the key check's query")?;
    assert_eq!(given, json!({"limit": 1}));
    // The check has teeth: an undeclared parameter is refused.
    let wrong = common::parameters_to_json(&[("count".to_owned(), "1".to_owned())], &schema, &spec);
    assert!(!query.is_valid(&wrong), "{wrong}");
    Ok(())
}

#[tokio::test]
async fn a_refused_key_check_is_permanent_and_names_no_secret() -> TestResult {
    let (fake, url) = start().await?;
    let error = client(&url, "sk_test_wrong_never_shown")?
        .verify_credentials()
        .await
        .err()
        .ok_or("expected a refusal")?;
    assert_eq!(error.kind(), ErrorKind::CredentialRejected);
    assert_eq!(error.http_status(), Some(401));
    assert!(!error.to_string().contains("sk_test"), "{error}");
    assert_eq!(fake.journal.all().len(), 1, "a refusal is not retried");
    Ok(())
}
