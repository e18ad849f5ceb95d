//! What the sandbox answers and sends, checked against the providers' own API descriptions
//! (trimmed copies vendored in the repository's `tests/fixtures/provider-specs/` by
//! `scripts/vendor-provider-specs.py`, so a fresh clone has them; `ARO_PROVIDER_SPECS`
//! overrides the folder). OpenAPI 3.0 schemas are JSON Schema draft 4 plus `nullable`, which
//! is rewritten into draft-4 terms before validating; unknown formats (`phone-number`,
//! `date-time-rfc-2822`, …) are ignored, known ones (`date-time`, `email`, `uri`) checked.

use crate::calendly::{book, booking_request, calendly_events};
use crate::common::Bench;
use crate::stripe::deposit_link;
use serde_json::{Map, Value, json};
use std::path::PathBuf;

fn specs_dir() -> PathBuf {
    std::env::var_os("ARO_PROVIDER_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/provider-specs")
        })
}

fn read_spec(file: &str) -> String {
    let path = specs_dir().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (set ARO_PROVIDER_SPECS to the provider-specs folder)",
            path.display()
        )
    })
}

/// OpenAPI 3.0's `nullable: true` in draft-4 terms.
fn denullify(schema: &mut Value) {
    match schema {
        Value::Array(items) => items.iter_mut().for_each(denullify),
        Value::Object(map) => {
            map.values_mut().for_each(denullify);
            if map.remove("nullable") == Some(Value::Bool(true)) {
                let combined = ["$ref", "oneOf", "anyOf", "allOf"]
                    .iter()
                    .any(|k| map.contains_key(*k));
                if combined {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".into(), json!([{"type": "null"}, inner]));
                } else {
                    if let Some(Value::String(t)) = map.get("type").cloned() {
                        map.insert("type".into(), json!([t, "null"]));
                    }
                    if let Some(Value::Array(values)) = map.get_mut("enum") {
                        values.push(Value::Null);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A validator for `schema`, whose `$ref`s point into the spec's `components`.
struct Spec {
    components: Value,
}

impl Spec {
    fn new(mut document: Value) -> Self {
        let mut components = document["components"].take();
        denullify(&mut components);
        Self { components }
    }

    fn twilio() -> Self {
        Self::new(serde_json::from_str(&read_spec("twilio_api_v2010.json")).unwrap())
    }

    fn calendly() -> Self {
        Self::new(serde_json::from_str(&read_spec("calendly_openapi_2023.json")).unwrap())
    }

    fn stripe() -> Self {
        Self::new(serde_json::from_str(&read_spec("stripe_spec3_2022-04.json")).unwrap())
    }

    fn check(&self, schema: Value, instance: &Value, what: &str) {
        self.check_with(schema, instance, what, true);
    }

    fn check_with(&self, schema: Value, instance: &Value, what: &str, formats: bool) {
        let errors = self.errors(schema, instance, what, formats);
        assert!(
            errors.is_empty(),
            "{what} does not match the provider's schema:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }

    fn errors(&self, schema: Value, instance: &Value, what: &str, formats: bool) -> Vec<String> {
        let mut root = Map::new();
        root.insert("allOf".into(), json!([schema]));
        root.insert("components".into(), self.components.clone());
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(formats)
            .build(&Value::Object(root))
            .unwrap_or_else(|e| panic!("schema for {what} does not compile: {e}"));
        validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    fn check_component(&self, name: &str, instance: &Value, what: &str) {
        self.check(
            json!({"$ref": format!("#/components/schemas/{name}")}),
            instance,
            what,
        );
    }
}

/// The checks above would pass vacuously if a `$ref` resolved to nothing: this one shows
/// they bite.
#[test]
fn the_schema_checks_refuse_a_wrong_shape() {
    let message = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let twilio = Spec::twilio();
    let wrong =
        json!({"sid": "XX1", "status": "teleported", "num_segments": 1, "error_code": "none"});
    let errors = twilio.errors(message("api.v2010.account.message"), &wrong, "wrong", true);
    assert!(errors.len() >= 4, "{errors:#?}");
    let nullable = json!({"body": null, "price": null, "status": "sent"});
    assert!(
        twilio
            .errors(
                message("api.v2010.account.message"),
                &nullable,
                "nulls",
                true
            )
            .is_empty()
    );

    let calendly = Spec::calendly();
    let errors = calendly.errors(message("Invitee"), &json!({"name": "Ada"}), "wrong", true);
    assert!(errors.iter().any(|e| e.contains("uri")), "{errors:#?}");
    let errors = calendly.errors(
        message("Event"),
        &json!({"start_time": "tomorrow"}),
        "wrong",
        true,
    );
    assert!(
        errors.iter().any(|e| e.contains("date-time")),
        "{errors:#?}"
    );
}

#[tokio::test]
async fn twilio_message_resources_match_twilios_schema() {
    let spec = Spec::twilio();
    let bench = Bench::start().await;
    let created: Value = bench
        .send_sms("+14155552671", "Hi Ada — see you Friday 😀")
        .await
        .json()
        .await
        .unwrap();
    spec.check_component("api.v2010.account.message", &created, "a created Message");
    let inbox = bench
        .eventually(
            "the message delivered",
            || bench.inbox("+14155552671"),
            |inbox| inbox.first().is_some_and(|m| m["status"] == "delivered"),
        )
        .await;
    assert_eq!(inbox.len(), 1);
    let list: Value = bench
        .http
        .get(bench.messages_url())
        .basic_auth(
            bench.account_sid(),
            Some(bench.secrets.twilio.auth_token.expose()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let document: Value = serde_json::from_str(&read_spec("twilio_api_v2010.json")).unwrap();
    let mut list_schema = document["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]
        ["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        .clone();
    denullify(&mut list_schema);
    // The page URIs are relative paths in Twilio's real answers and its own examples, which the
    // description's `format: uri` does not allow: formats are checked on the messages only.
    spec.check_with(list_schema, &list, "a Message list page", false);
    for message in list["messages"].as_array().unwrap() {
        spec.check_component("api.v2010.account.message", message, "a listed Message");
    }
    assert_eq!(list["messages"][0]["status"], "delivered");
}

#[tokio::test]
async fn calendly_resources_and_webhooks_match_calendlys_schema() {
    let spec = Spec::calendly();
    let bench = Bench::start().await;
    let booked = book(&bench, booking_request()).await;
    let id = booked["id"].as_str().unwrap();
    bench
        .post_json(
            &format!("/sandbox/bookings/{id}/reschedule"),
            json!({"startsAt": "2030-03-16T16:00:00Z"}),
        )
        .await;
    bench
        .post_json(&format!("/sandbox/bookings/{id}/cancel"), json!({}))
        .await;
    let events = calendly_events(&bench, "default", 4).await;
    let kinds: Vec<_> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "invitee.created",
            "invitee.canceled",
            "invitee.created",
            "invitee.canceled"
        ]
    );
    for (n, webhook) in events.iter().enumerate() {
        spec.check_component(
            "WebhookPayload",
            webhook,
            &format!("webhook {n} ({})", kinds[n]),
        );
        spec.check_component(
            "Event",
            &webhook["payload"]["scheduled_event"],
            &format!("webhook {n}'s scheduled_event"),
        );
    }

    let fetch = |uri: String| {
        let bench = &bench;
        async move {
            bench
                .http
                .get(uri)
                .bearer_auth(bench.secrets.calendly.api_token.expose())
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let resource_of = |name: &str| {
        json!({"type": "object", "required": ["resource"],
               "properties": {"resource": {"$ref": format!("#/components/schemas/{name}")}}})
    };
    let invitee = fetch(events[2]["payload"]["uri"].as_str().unwrap().to_owned()).await;
    spec.check(resource_of("Invitee"), &invitee, "GET invitee");
    let event = fetch(events[2]["payload"]["event"].as_str().unwrap().to_owned()).await;
    spec.check(resource_of("Event"), &event, "GET scheduled event");

    // The 2023 description predates `invitee_no_show.*`; its payload is an Invitee.
    let other = book(&bench, booking_request()).await;
    bench
        .post_json(
            &format!(
                "/sandbox/bookings/{}/no-show",
                other["id"].as_str().unwrap()
            ),
            json!(null),
        )
        .await;
    let events = calendly_events(&bench, "default", 6).await;
    assert_eq!(events[5]["event"], "invitee_no_show.created");
    spec.check_component("Invitee", &events[5]["payload"], "the no-show payload");
}

#[tokio::test]
async fn stripe_objects_match_stripes_schema() {
    let spec = Spec::stripe();
    let bench = Bench::start().await;
    let link = deposit_link(&bench, "default", "2500").await;
    spec.check_component("payment_link", &link, "a payment link");
    let price_id = bench.get_json("/sandbox/payments").await["links"][0]["id"].clone();
    assert_eq!(price_id, link["id"]);
    let prices: Value = bench
        .http
        .post(bench.url("/v1/prices"))
        .bearer_auth(bench.secrets.stripe.secret_key.expose())
        .form(&[
            ("unit_amount", "100"),
            ("currency", "eur"),
            ("product_data[name]", "x"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    spec.check_component("price", &prices, "a price");
}

/// The 200 answer schema of `method path` in `file`'s description, in draft-4 terms.
fn answer_schema(file: &str, path: &str, method: &str) -> Value {
    let document: Value = serde_json::from_str(&read_spec(file)).unwrap();
    let mut schema =
        document["paths"][path][method]["responses"]["200"]["content"]["application/json"]
            ["schema"]
            .clone();
    assert!(schema.is_object(), "no 200 answer for {method} {path}");
    denullify(&mut schema);
    schema
}

#[tokio::test]
async fn the_reads_that_check_credentials_answer_as_the_providers_describe() {
    let bench = Bench::start().await;

    // Twilio's FetchAccount.
    let account: Value = bench
        .http
        .get(bench.url(&format!(
            "/2010-04-01/Accounts/{}.json",
            bench.account_sid()
        )))
        .basic_auth(
            bench.account_sid(),
            Some(bench.secrets.twilio.auth_token.expose()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Spec::twilio().check(
        answer_schema(
            "twilio_api_v2010.json",
            "/2010-04-01/Accounts/{Sid}.json",
            "get",
        ),
        &account,
        "the Account resource",
    );
    assert_eq!(account["sid"], bench.account_sid());

    // Stripe's price list, empty and then with a price.
    let list = |bench: &Bench| {
        let request = bench
            .http
            .get(bench.url("/v1/prices?limit=1"))
            .bearer_auth(bench.secrets.stripe.secret_key.expose());
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let schema = answer_schema("stripe_spec3_2022-04.json", "/v1/prices", "get");
    let empty = list(&bench).await;
    Spec::stripe().check(schema.clone(), &empty, "an empty price list");
    deposit_link(&bench, "default", "2500").await;
    let one = list(&bench).await;
    Spec::stripe().check(schema, &one, "a price list");
    assert_eq!(one["data"].as_array().map(Vec::len), Some(1));

    // Calendly's current user.
    let me: Value = bench
        .http
        .get(bench.url("/users/me"))
        .bearer_auth(bench.secrets.calendly.api_token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Spec::calendly().check(
        answer_schema("calendly_openapi_2023.json", "/users/me", "get"),
        &me,
        "the current user",
    );
}
