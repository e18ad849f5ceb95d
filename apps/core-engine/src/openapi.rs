//! core-engine's OpenAPI 3.1 document (DESIGN.md "Contracts"), served at `GET /v1/openapi.json`
//! and committed as `docs/api/core-engine.openapi.json` (the test `tests/openapi.rs` fails when
//! the two differ).
//!
//! It is generated from the code: the handlers carry `#[utoipa::path]` and the wire types derive
//! `ToSchema`, so a new field or route shows up in the document the moment it is written. This
//! module adds what no single handler can say about itself, once:
//!
//! - the error envelope and the failures every route of a kind shares: a bearer token (401, 403),
//!   an `X-Tenant-Id` header (400), a JSON body (400, 413, 415, 422), query parameters (422), ids
//!   in the path (404) — see [`add_shared_failures`];
//! - the catalogues the server checks against (command types, event types);
//! - the routes served outside core-engine's API modules: `/health`, `/ready`, `/metrics` (the
//!   shared service frame) and the provider webhooks, whose formats belong to the providers.
//!
//! Some answers are built with `json!` in the handlers; their shapes are written down here as
//! schema-only types (`…View`, `…Answer`). The schemathesis test (`tests/tests/schemathesis.rs`)
//! checks real answers against them.

use crate::AppState;
use aro_domain::EventType;
use aro_workflow::COMMAND_TYPES;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::OnceLock;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

/// Where the committed copy lives, relative to the workspace root.
pub const COMMITTED_PATH: &str = "docs/api/core-engine.openapi.json";

const DESCRIPTION: &str = "\
core-engine owns ARO's domain state: the Command API, the Event API (paging, Server-Sent Events, \
signed push subscriptions), the execution queue the executor drains, tenants, and the provider \
webhooks.

**Authentication.** Every `/v1` route except this document and the provider webhooks needs \
`Authorization: Bearer <service token>`: a JWT signed with core's `[auth] signing_key`, issued \
for the audience `core`, with `scopes` (`commands:write`, `events:read`, `executions:claim`, \
`admin`; `admin` implies the others) and `tenants` (a list of tenant ids, or `*`). Create one \
with `aro token create`. Routes that act for one tenant also need `X-Tenant-Id`, which must be \
one of the token's tenants (otherwise 403 `TENANT_FORBIDDEN`); another tenant's ids answer 404.

**Errors.** Every error, 404 and 405 included, is the envelope `{\"error\": {\"code\", \
\"message\", \"details\", \"retryable\"}, \"requestId\"}`; codes are SCREAMING_SNAKE_CASE. An \
unknown path is 404 `NOT_FOUND`; a known path with another method is 405 `METHOD_NOT_ALLOWED`.

**Request ids.** Every answer carries `X-Request-Id` (the caller's when it sent a sane one, \
otherwise a new one); the same id is the envelope's `requestId` and is in core's logs.

**Business time.** Timers and `notAfter` use core's business clock, which only the sandbox \
(`[sandbox] enabled`) can move (`/v1/admin/clock`); tokens, signatures and leases use real time.";

/// The document. Cheap after the first call.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn document_json() -> String {
    let mut text = serde_json::to_string_pretty(document()).unwrap_or_default();
    text.push('\n');
    text
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(serve_document))
}

/// This document (OpenAPI 3.1), generated from the code.
///
/// The same document is committed as `docs/api/core-engine.openapi.json`. No token needed.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    operation_id = "getOpenApiDocument",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
async fn serve_document() -> Response {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(document_json).clone();
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

#[derive(OpenApi)]
#[openapi(
    servers((url = "http://127.0.0.1:7100", description = "core-engine's default listen address")),
    paths(
        serve_document,
        health,
        ready,
        metrics,
        crate::api::commands::submit,
        crate::api::commands::get_command,
        crate::api::commands::get_workflow,
        crate::api::executions::claim,
        crate::api::executions::heartbeat,
        crate::api::executions::result,
        crate::api::tenant_credentials::executor_credentials,
        crate::api::admin::create_tenant,
        crate::api::admin::list_tenants,
        crate::api::admin::current_tenant,
        crate::api::tenant_credentials::set_credentials,
        crate::api::tenant_credentials::list_credentials,
        crate::api::tenant_credentials::remove_credentials,
        crate::api::admin::get_clock,
        crate::api::admin::move_clock,
        crate::api::events::list_events,
        crate::api::events::stream_events,
        crate::api::subscriptions::create_subscription,
        crate::api::subscriptions::list_subscriptions,
        crate::api::subscriptions::get_subscription,
        crate::api::subscriptions::delete_subscription,
        crate::api::subscriptions::replay_subscription,
        crate::api::reports::metrics,
        crate::api::dead_letters::list,
        calendly_webhook,
        twilio_inbound_webhook,
        twilio_status_webhook,
        stripe_webhook,
    ),
    components(
        schemas(ErrorEnvelope, CommandType, EventTypeName),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            MethodNotAllowed,
            PayloadTooLarge,
            UnsupportedMediaType,
            ValidationFailed,
            Unavailable,
            InvalidSignature,
        ),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "commands", description = "The Command API: every change of domain state, applied atomically with its events, idempotent per `Idempotency-Key`."),
        (name = "events", description = "The Event API: the tenant's event log by seq, and a Server-Sent Events stream of it."),
        (name = "subscriptions", description = "Push delivery of the event log to an integrator's URL, signed per the Standard Webhooks specification."),
        (name = "executions", description = "The execution queue the executor drains: claim with a lease, heartbeat, report the result. Scope `executions:claim`."),
        (name = "tenants", description = "Clinics."),
        (name = "reports", description = "Clinic metrics computed from the event log."),
        (name = "sandbox", description = "Served only when `[sandbox] enabled` is set; otherwise every route here answers 404."),
        (name = "webhooks", description = "Provider callbacks, one URL per tenant. Each verifies the provider's own signature before acting on anything; no bearer token."),
        (name = "operations", description = "Liveness, readiness, metrics and this document; no token."),
    ),
)]
struct ApiDoc;

/// The bearer scheme every protected route names as `bearerAuth`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A service token for the audience `core` (`aro token create`).",
                    ))
                    .build(),
            ),
        );
    }
}

fn build() -> Value {
    let mut doc = ApiDoc::openapi();
    doc.info = utoipa::openapi::InfoBuilder::new()
        .title("ARO core-engine API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(DESCRIPTION))
        .license(Some(
            utoipa::openapi::LicenseBuilder::new()
                .name("Apache-2.0")
                .identifier(Some("Apache-2.0"))
                .build(),
        ))
        .build();
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    add_shared_failures(&mut value);
    add_request_id_headers(&mut value);
    add_examples(&mut value);
    add_links(&mut value);
    link_catalogues(&mut value);
    sort_keys(&mut value);
    value
}

// ----- the error envelope -----

/// Every error answer: `{"error": {...}, "requestId"}`.
#[derive(ToSchema)]
#[schema(example = json!({"error": {"code": "VALIDATION_ERROR", "message": "payload.startsAt: must be RFC 3339",
    "details": {"field": "payload.startsAt", "reason": "must be RFC 3339"}, "retryable": false},
    "requestId": "0192f4c35a8e7c3d9b1e2f3a4b5c6d7e"}))]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ErrorEnvelope {
    error: ErrorBody,
    /// The request's id, also in the `X-Request-Id` header and in core's logs.
    request_id: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// What went wrong, in SCREAMING_SNAKE_CASE (e.g. `VALIDATION_ERROR`, `INVALID_TRANSITION`).
    #[schema(pattern = "^[A-Z][A-Z0-9_]*$")]
    code: String,
    /// For people; do not parse it.
    message: String,
    /// Machine-readable context, e.g. `{"field", "reason"}` for `VALIDATION_ERROR` or
    /// `{"from", "to"}` for `INVALID_TRANSITION`.
    details: Object,
    /// Whether the same request may succeed later.
    retryable: bool,
}

/// A JSON object with no fixed fields.
#[derive(ToSchema)]
#[schema(as = Object)]
#[allow(dead_code)]
pub struct Object(std::collections::BTreeMap<String, Value>);

/// `X-Request-Id` on an answer.
fn request_id_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(String::schema())
        .description(Some(
            "The request's id (also the error envelope's `requestId`)",
        ))
        .build()
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .header("X-Request-Id", request_id_header())
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build()
        .into()
}

/// Named error answers (`#/components/responses/…`), for handlers to cite with
/// `(status = …, response = crate::openapi::Name)` and for [`add_shared_failures`].
macro_rules! error_responses {
    ($($name:ident => $description:expr;)*) => {
        $(
            pub struct $name;
            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                    (stringify!($name), error_response($description))
                }
            }
        )*
    };
}

error_responses! {
    BadRequest => "The request is malformed: `MALFORMED_JSON` (the body is not JSON), \
        `MISSING_TENANT` or `INVALID_TENANT` (`X-Tenant-Id`).";
    Unauthorized => "No valid service token: `MISSING_TOKEN`, `INVALID_TOKEN` (bad signature, \
        another audience) or `TOKEN_EXPIRED`. Carries `WWW-Authenticate: Bearer`.";
    Forbidden => "The token does not allow this: `INSUFFICIENT_SCOPE`, or `TENANT_FORBIDDEN` \
        (`X-Tenant-Id` is not one of the token's tenants).";
    NotFound => "`NOT_FOUND`: no such resource for this tenant (another tenant's ids are not \
        found either).";
    MethodNotAllowed => "`METHOD_NOT_ALLOWED`: the path exists, but not with this method.";
    PayloadTooLarge => "`PAYLOAD_TOO_LARGE`: the body is over 1 MiB.";
    UnsupportedMediaType => "`UNSUPPORTED_MEDIA_TYPE`: send the body as JSON with \
        `Content-Type: application/json`.";
    ValidationFailed => "`VALIDATION_ERROR`: well-formed but invalid; `details.field` names \
        the offending field (`payload.startsAt`, `query.limit`, …) and `details.reason` says why.";
    Unavailable => "`STORE_UNAVAILABLE` or `UNAVAILABLE` (retryable): the database did not \
        answer; retry shortly.";
    InvalidSignature => "`INVALID_SIGNATURE` (missing or wrong provider signature) or \
        `STALE_SIGNATURE` (a timestamp outside the tolerance). Nothing was recorded.";
}

/// Adds the failures that follow from an operation's shape, unless the handler already
/// describes that status itself:
///
/// - a bearer token → 401 (`Caller`), 403 (scope, tenant);
/// - an `X-Tenant-Id` header → 400 (`TenantScope`);
/// - a JSON body → 400, 413, 415, 422 (`ApiJson`);
/// - query parameters → 422 (`ApiQuery`);
/// - a path parameter → 404 (`ApiPath`: a malformed id is not found, never a 500).
///
/// Webhooks are left as written: their bodies are the providers' formats.
fn add_shared_failures(doc: &mut Value) {
    for_each_operation(doc, |_, _, operation| {
        if has_tag(operation, "webhooks") {
            return;
        }
        let secured = operation
            .get("security")
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|req| req.get("bearerAuth").is_some()));
        let params = operation
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let param_in = |place: &str| params.iter().any(|p| p["in"] == place);
        let tenant_header = params
            .iter()
            .any(|p| p["in"] == "header" && p["name"] == "X-Tenant-Id");
        let json_body = operation
            .pointer("/requestBody/content/application~1json")
            .is_some();
        let mut add = Vec::new();
        if secured {
            add.extend(["401", "403"]);
        }
        if tenant_header || json_body {
            add.push("400");
        }
        if json_body {
            add.extend(["413", "415", "422"]);
        }
        if param_in("query") {
            add.push("422");
        }
        if param_in("path") {
            add.push("404");
        }
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        for status in add {
            let name = match status {
                "400" => "BadRequest",
                "401" => "Unauthorized",
                "403" => "Forbidden",
                "404" => "NotFound",
                "413" => "PayloadTooLarge",
                "415" => "UnsupportedMediaType",
                _ => "ValidationFailed",
            };
            responses
                .entry(status)
                .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
        }
    });
}

/// Every answer carries `X-Request-Id` (the shared request-id middleware); the named error
/// responses already say so.
fn add_request_id_headers(doc: &mut Value) {
    let header = serde_json::to_value(request_id_header()).unwrap_or_default();
    for_each_operation(doc, |_, _, operation| {
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        for response in responses.values_mut() {
            if response.get("$ref").is_some() {
                continue;
            }
            if let Some(object) = response.as_object_mut() {
                let headers = object.entry("headers").or_insert_with(|| json!({}));
                if let Some(headers) = headers.as_object_mut() {
                    headers
                        .entry("X-Request-Id")
                        .or_insert_with(|| header.clone());
                }
            }
        }
    });
}

/// Request examples an integrator can paste (DESIGN.md's), on the operations they belong to.
/// The schemathesis check sends them too, so they also exercise the success paths.
fn add_examples(doc: &mut Value) {
    let upsert = json!({
        "commandType": "appointment.upsert",
        "tenantId": "default",
        "aggregate": {"type": "appointment"},
        "payload": {
            "source": "calendly",
            "externalId": "https://api.calendly.com/scheduled_events/EV1/invitees/IN1",
            "customer": {"name": "Ada Lovelace", "phone": "+14155552671", "email": "ada@example.org",
                         "timezone": "America/Los_Angeles", "language": "en"},
            "startsAt": "2030-03-15T14:00:00Z", "endsAt": "2030-03-15T14:30:00Z",
            "serviceType": "checkup", "priceMinor": 12000, "currency": "USD"
        }
    });
    let confirm = json!({
        "commandType": "appointment.confirm",
        "tenantId": "default",
        "aggregate": {"type": "appointment", "id": "apt_0192f4c35a8e7c3d9b1e2f3a4b5c6d7e"},
        "payload": {}
    });
    let update_config = json!({
        "commandType": "tenant.update_config",
        "tenantId": "default",
        "aggregate": {"type": "tenant", "id": "default"},
        "payload": {
            "policies": {"reminderOffsetsHours": [48, 24], "sendWindow": {"start": "08:00", "end": "21:00"},
                         "maxMessagesPer24h": 3, "classificationThreshold": 0.7, "correctionWindowHours": 72},
            "replyCodes": {"en": {"confirm": ["C"]}},
            "mappings": {"eventTypes": {"checkup": {"service": "Checkup", "priceMinor": 12000, "currency": "USD"}}}
        }
    });
    let examples = json!({
        "appointment.upsert": {"summary": "A booking arrives", "value": upsert},
        "appointment.confirm": {"summary": "Staff confirm a visit", "value": confirm},
        "tenant.update_config": {"summary": "A clinic's policies", "value": update_config},
    });
    let new_tenant = json!({"id": "north-clinic", "name": "North Clinic",
                            "timezone": "America/Chicago", "language": "en"});
    for_each_operation(doc, |_, _, operation| {
        let (key, example) = match operation["operationId"].as_str() {
            Some("submitCommand") => ("examples", examples.clone()),
            Some("createTenant") => ("example", new_tenant.clone()),
            _ => return,
        };
        if let Some(media) = operation
            .pointer_mut("/requestBody/content/application~1json")
            .and_then(Value::as_object_mut)
        {
            media.insert(key.into(), example);
        }
    });
}

/// OpenAPI links: where the ids an answer carries can be used next. They document the API's
/// flow, and let the schemathesis check follow real ids (its stateful phase).
fn add_links(doc: &mut Value) {
    let by_operation: [(&str, &str, Value); 2] = [
        (
            "submitCommand",
            "200",
            json!({
                "GetCommand": {"operationId": "getCommand",
                               "parameters": {"commandId": "$response.body#/commandId"}},
                "GetWorkflow": {"operationId": "getWorkflow",
                                "parameters": {"workflowId": "$response.body#/workflowId"}},
            }),
        ),
        (
            "createSubscription",
            "201",
            json!({
                "GetSubscription": {"operationId": "getSubscription",
                                    "parameters": {"subscriptionId": "$response.body#/id"}},
                "ReplaySubscription": {"operationId": "replaySubscription",
                                       "parameters": {"subscriptionId": "$response.body#/id"}},
                "DeleteSubscription": {"operationId": "deleteSubscription",
                                       "parameters": {"subscriptionId": "$response.body#/id"}},
            }),
        ),
    ];
    for_each_operation(doc, |_, _, operation| {
        for (operation_id, status, links) in &by_operation {
            if operation["operationId"] != *operation_id {
                continue;
            }
            if let Some(response) = operation
                .pointer_mut(&format!("/responses/{status}"))
                .and_then(Value::as_object_mut)
            {
                response.insert("links".into(), links.clone());
            }
        }
    });
}

/// The wire types carry plain strings; the server checks them against the catalogues, so the
/// document names the catalogues there.
fn link_catalogues(doc: &mut Value) {
    let links = [
        (
            "/components/schemas/CommandEnvelope/properties",
            "commandType",
            "CommandType",
        ),
        (
            "/components/schemas/Event/properties",
            "eventType",
            "EventType",
        ),
    ];
    for (pointer, property, schema) in links {
        if let Some(properties) = doc.pointer_mut(pointer).and_then(Value::as_object_mut) {
            properties.insert(
                property.into(),
                json!({"$ref": format!("#/components/schemas/{schema}")}),
            );
        }
    }
}

fn has_tag(operation: &Value, tag: &str) -> bool {
    operation
        .get("tags")
        .and_then(Value::as_array)
        .is_some_and(|tags| tags.iter().any(|t| t == tag))
}

fn for_each_operation(doc: &mut Value, mut f: impl FnMut(&str, &str, &mut Value)) {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(operation) = item.get_mut(method) {
                f(path, method, operation);
            }
        }
    }
}

/// Every object's keys in order, so the committed file is the same whichever features
/// (`serde_json/preserve_order`, `utoipa/preserve_order`) another crate of the build enables.
fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, v) in &mut entries {
                sort_keys(v);
            }
            map.extend(entries);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

// ----- parameters shared by several routes -----

/// The tenant a request acts for.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct TenantHeader {
    /// One of the token's tenants.
    #[param(
        rename = "X-Tenant-Id",
        pattern = "^[a-z0-9][a-z0-9_-]{0,62}$",
        example = "default"
    )]
    tenant: String,
}

/// `POST /v1/commands` headers.
pub struct CommandHeaders;

impl IntoParams for CommandHeaders {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(
                    "Required (400 `MISSING_IDEMPOTENCY_KEY` without it): 1–255 printable ASCII \
                     characters, unique per intended effect. A repeat with the same key and body \
                     gets the stored answer; the same key with another body is 422 \
                     `IDEMPOTENCY_KEY_REUSED`. Keys are kept at least 72 hours.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some("^[!-~]{1,255}$")),
                ))
                .build(),
            ParameterBuilder::new()
                .name("X-Correlation-Id")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Ties the command's events, workflow and executions together; generated when \
                     absent or not 1–128 printable ASCII characters, and echoed on the answer.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some("^[!-~]{1,128}$")),
                ))
                .build(),
        ]
    }
}

// ----- catalogues -----

/// A command type of v1 (additive only): `aro_workflow::COMMAND_TYPES`.
pub struct CommandType;

impl PartialSchema for CommandType {
    fn schema() -> RefOr<Schema> {
        string_enum(
            COMMAND_TYPES.iter().copied(),
            "A command type of v1 (additive only).",
        )
    }
}

impl ToSchema for CommandType {}

/// An event type of the v1 catalogue (additive only): `aro_domain::EventType::ALL`.
pub struct EventTypeName;

impl PartialSchema for EventTypeName {
    fn schema() -> RefOr<Schema> {
        string_enum(
            EventType::ALL.iter().map(|t| t.as_str()),
            "An event type of the v1 catalogue (additive only: expect new ones).",
        )
    }
}

impl ToSchema for EventTypeName {
    fn name() -> std::borrow::Cow<'static, str> {
        "EventType".into()
    }
}

fn string_enum<'a>(values: impl Iterator<Item = &'a str>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(values.collect::<Vec<_>>()))
        .description(Some(description))
        .into()
}

/// A workflow's state on the wire (DESIGN.md "Commands").
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum WorkflowState {
    Pending,
    Running,
    Waiting,
    Retrying,
    Completed,
    Failed,
    Cancelled,
}

/// A subscription's delivery state.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SubscriptionState {
    Active,
    Disabled,
}

// ----- answers the handlers build with json! -----

/// `GET /v1/commands/{commandId}`: the command's stored answer, with its type and time.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct CommandRecord {
    #[serde(flatten)]
    outcome: aro_workflow::CommandOutcome,
    command_type: String,
    created_at: DateTime<Utc>,
}

/// `GET /v1/workflows/{workflowId}`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct WorkflowView {
    workflow_id: String,
    /// The workflow definition, e.g. `visit`.
    kind: String,
    state: WorkflowState,
    /// Where in its definition the workflow is, e.g. `awaiting_visit`.
    step: Option<String>,
    aggregate: aro_store::AggregateRef,
    correlation_id: Option<String>,
    attempt: i64,
    /// Timers of this workflow that have not fired yet.
    pending_timers: Vec<PendingTimer>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PendingTimer {
    timer_id: String,
    /// What fires, e.g. `reminder_48h`.
    kind: String,
    /// Business time.
    due_at: DateTime<Utc>,
    status: String,
}

/// A tenant (clinic).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct TenantView {
    id: String,
    name: String,
    /// IANA time zone.
    timezone: String,
    /// ISO 3166 region phone numbers are read in.
    region: String,
    /// Default ISO 639-1 language.
    language: String,
    clinic_phone: Option<String>,
    review_link: Option<String>,
    /// `core-engine` or `openclaw-executor`.
    classification_residency: String,
    /// Execution types the executor may run for this tenant.
    permissions: Vec<String>,
    created_at: DateTime<Utc>,
}

/// `GET /v1/tenant`: the caller's tenant with its installed configuration.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct CurrentTenant {
    #[serde(flatten)]
    tenant: TenantView,
    /// Policies, templates, reply codes and mappings (`tenant.update_config`).
    config: Object,
    /// Increases with every `tenant.update_config`.
    config_version: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TenantList {
    tenants: Vec<TenantView>,
}

/// `POST /v1/executions/claim`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClaimedExecutions {
    executions: Vec<aro_workflow::executions::ClaimedExecution>,
}

/// `POST /v1/executions/{executionId}/heartbeat`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct LeaseExtended {
    execution_id: String,
    /// Real time.
    lease_until: DateTime<Utc>,
}

/// `POST /v1/executions/{executionId}/result`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ResultRecorded {
    execution_id: String,
    /// The execution's status now: `succeeded`, `failed`, `dead` (dead-lettered), or `ready`
    /// (a retry is scheduled).
    status: String,
    /// Present (true) when this repeats a result already recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
}

/// `GET /v1/admin/clock`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClockNow {
    /// Business time.
    now: DateTime<Utc>,
}

/// `POST /v1/admin/clock`.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ClockMoved {
    /// Business time after the move.
    now: DateTime<Utc>,
    /// Timers fired on the way, in due order.
    fired_timers: u64,
    /// Whether the work this caused finished within 30 s (no execution open, no timer due).
    settled: bool,
}

// ----- routes of the shared service frame (aro_http::service_router) -----

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
    #[schema(example = "core-engine")]
    service: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Ready {
    #[schema(example = "ready")]
    status: String,
    #[schema(example = "core-engine")]
    service: String,
    checks: Vec<ReadinessCheck>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReadinessCheck {
    #[schema(example = "database")]
    name: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// Alive: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    operation_id = "health",
    security(()),
    responses((status = 200, description = "Alive", body = Health)),
)]
#[allow(dead_code)]
fn health() {}

/// Ready: the database answers and its migrations are current.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    operation_id = "ready",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "`NOT_READY`; `details.checks` lists each dependency", body = ErrorEnvelope),
    ),
)]
#[allow(dead_code)]
fn ready() {}

/// Prometheus metrics, labelled `service="core-engine"`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    security(()),
    responses((status = 200, description = "Prometheus text exposition format", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")),
)]
#[allow(dead_code)]
fn metrics() {}

// ----- provider webhooks (formats are the providers'; handlers in `api::webhooks`) -----
//
// Described here rather than on the handlers: what matters to a reader is the provider's
// format and the order of the checks, which the handlers spread over several helpers.
// Each endpoint: the provider must be configured (503 `PROVIDER_NOT_CONFIGURED`), then the
// signature is checked over the bytes received (401), then the payload is read (400/422), then
// the tenant is looked up (404; a malformed tenant id is 404 at once); the provider's event
// identity is recorded with the effect, so a redelivery is answered 200 and changes nothing.

/// Calendly and Stripe's acknowledgement.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct WebhookReceived {
    /// Always `true`: the provider may stop retrying (duplicates and ignored events too).
    received: bool,
}

/// The empty TwiML every Twilio webhook answers, so Twilio sends nothing on ARO's behalf.
const TWIML_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// Calendly webhook (`invitee.created`, `invitee.canceled`, `invitee_no_show.created`, …).
///
/// Verified over the raw body with `Calendly-Webhook-Signature: t=<unix>,v1=<hex>`
/// (HMAC-SHA256 with the webhook signing key over `"{t}.{body}"`, three minutes' tolerance).
/// A look-up of the invitee at Calendly becomes an execution; the answer does not wait for it.
#[utoipa::path(
    post,
    path = "/v1/webhooks/calendly/{tenantId}",
    tag = "webhooks",
    operation_id = "calendlyWebhook",
    security(()),
    params(
        ("tenantId" = String, Path, description = "The tenant this URL belongs to"),
        ("Calendly-Webhook-Signature" = String, Header, pattern = "^t=[0-9]+(,[a-z0-9]+=[0-9a-f]*)+$",
            description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`"),
    ),
    request_body(content = Object, content_type = "application/json",
        description = "Calendly's webhook payload, as Calendly sends it"),
    responses(
        (status = 200, description = "Accepted, ignored, or a duplicate already accepted", body = WebhookReceived),
        (status = 400, description = "`MALFORMED_PAYLOAD`: signed, but not a Calendly event", body = ErrorEnvelope),
        (status = 401, response = InvalidSignature),
        (status = 404, description = "`NOT_FOUND`: no such tenant", body = ErrorEnvelope),
        (status = 409, description = "The engine refused the change (e.g. `INVALID_TRANSITION`); nothing was recorded, so a retry is processed again", body = ErrorEnvelope),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "`VALIDATION_ERROR`: a field of the event is missing or invalid (`details.field`)", body = ErrorEnvelope),
        (status = 503, description = "`PROVIDER_NOT_CONFIGURED` (Calendly's signing key is not configured), or the database is unavailable", body = ErrorEnvelope),
    ),
)]
#[allow(dead_code)]
fn calendly_webhook() {}

/// Twilio inbound message (a patient's text).
///
/// Verified with `X-Twilio-Signature` (HMAC-SHA1 with the auth token over the public URL Twilio
/// called and the sorted form parameters); replays are caught by `MessageSid`. Answers empty
/// TwiML: replies are sent later, through the execution queue.
#[utoipa::path(
    post,
    path = "/v1/webhooks/twilio/{tenantId}/inbound",
    tag = "webhooks",
    operation_id = "twilioInboundWebhook",
    security(()),
    params(
        ("tenantId" = String, Path, description = "The tenant this URL belongs to"),
        ("X-Twilio-Signature" = String, Header, pattern = "^[A-Za-z0-9+/]*={0,2}$",
            description = "Base64 HMAC-SHA1 of the URL and the sorted form parameters"),
    ),
    request_body(content = Object, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's form parameters (`MessageSid`, `From`, `To`, `Body`, …)"),
    responses(
        (status = 200, description = "Accepted, or a replay of an accepted `MessageSid`: empty TwiML",
            body = String, content_type = "text/xml", example = json!(TWIML_EXAMPLE)),
        (status = 400, description = "`MALFORMED_PAYLOAD` or `BAD_REQUEST`: signed, but not a Twilio message", body = ErrorEnvelope),
        (status = 401, response = InvalidSignature),
        (status = 404, description = "`NOT_FOUND`: no such tenant", body = ErrorEnvelope),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "`VALIDATION_ERROR`: a parameter is missing or invalid (`details.field`)", body = ErrorEnvelope),
        (status = 503, description = "`PROVIDER_NOT_CONFIGURED` (Twilio's auth token is not configured), or the database is unavailable", body = ErrorEnvelope),
    ),
)]
#[allow(dead_code)]
fn twilio_inbound_webhook() {}

/// Twilio message status callback (`queued`, `sent`, `delivered`, `undelivered`, `failed`).
///
/// Verified like the inbound webhook; replays are caught by `MessageSid` and `MessageStatus`.
/// ARO's message id rides in the callback URL's query (`?m=`), which Twilio signs with the URL.
#[utoipa::path(
    post,
    path = "/v1/webhooks/twilio/{tenantId}/status",
    tag = "webhooks",
    operation_id = "twilioStatusWebhook",
    security(()),
    params(
        ("tenantId" = String, Path, description = "The tenant this URL belongs to"),
        ("m" = Option<String>, Query, description = "ARO's message id, put in the callback URL by core"),
        ("X-Twilio-Signature" = String, Header, pattern = "^[A-Za-z0-9+/]*={0,2}$",
            description = "Base64 HMAC-SHA1 of the URL and the sorted form parameters"),
    ),
    request_body(content = Object, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's form parameters (`MessageSid`, `MessageStatus`, `ErrorCode`, …)"),
    responses(
        (status = 200, description = "Accepted, or a replay: empty TwiML",
            body = String, content_type = "text/xml", example = json!(TWIML_EXAMPLE)),
        (status = 400, description = "`MALFORMED_PAYLOAD` or `BAD_REQUEST`: signed, but not a Twilio status callback", body = ErrorEnvelope),
        (status = 401, response = InvalidSignature),
        (status = 404, description = "`NOT_FOUND`: no such tenant", body = ErrorEnvelope),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "`VALIDATION_ERROR`: a parameter is missing or invalid (`details.field`)", body = ErrorEnvelope),
        (status = 503, description = "`PROVIDER_NOT_CONFIGURED` (Twilio's auth token is not configured), or the database is unavailable", body = ErrorEnvelope),
    ),
)]
#[allow(dead_code)]
fn twilio_status_webhook() {}

/// Stripe webhook. Only Checkout Session events of an ARO payment link are acted on.
///
/// A deposit is paid by `checkout.session.completed` with `payment_status: paid` (a card) or,
/// for a bank debit (completed `unpaid`), by `checkout.session.async_payment_succeeded`;
/// `checkout.session.async_payment_failed` changes nothing. Verified over the raw body with
/// `Stripe-Signature: t=<unix>,v1=<hex>` (HMAC-SHA256 with the endpoint secret over
/// `"{t}.{body}"`, five minutes' tolerance). Receipts are Stripe's event ids; every other event
/// is acknowledged and changes nothing.
#[utoipa::path(
    post,
    path = "/v1/webhooks/stripe/{tenantId}",
    tag = "webhooks",
    operation_id = "stripeWebhook",
    security(()),
    params(
        ("tenantId" = String, Path, description = "The tenant this URL belongs to"),
        ("Stripe-Signature" = String, Header, pattern = "^t=[0-9]+(,[a-z0-9]+=[0-9a-f]*)+$",
            description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]`"),
    ),
    request_body(content = Object, content_type = "application/json",
        description = "Stripe's event object, as Stripe sends it"),
    responses(
        (status = 200, description = "Accepted, ignored, or a duplicate already accepted", body = WebhookReceived),
        (status = 400, description = "`MALFORMED_PAYLOAD`: signed, but not a Stripe event", body = ErrorEnvelope),
        (status = 401, response = InvalidSignature),
        (status = 404, description = "`NOT_FOUND`: no such tenant", body = ErrorEnvelope),
        (status = 409, description = "The engine refused the change; nothing was recorded, so Stripe's retry is processed again", body = ErrorEnvelope),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "`VALIDATION_ERROR`: a field of the event is missing or invalid (`details.field`)", body = ErrorEnvelope),
        (status = 503, description = "`PROVIDER_NOT_CONFIGURED` (Stripe's webhook secret is not configured), or the database is unavailable", body = ErrorEnvelope),
    ),
)]
#[allow(dead_code)]
fn stripe_webhook() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_workspace_version() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:7100");
    }

    #[test]
    fn protected_routes_name_the_bearer_scheme_and_their_auth_failures() {
        let doc = document();
        let claim = &doc["paths"]["/v1/executions/claim"]["post"];
        assert_eq!(claim["security"], json!([{"bearerAuth": []}]));
        for status in ["401", "403", "400", "413", "415", "422"] {
            assert!(claim["responses"][status].is_object(), "{status}");
        }
        let health = &doc["paths"]["/health"]["get"];
        assert!(health["responses"]["401"].is_null());
    }

    #[test]
    fn every_named_response_and_schema_reference_resolves() {
        let doc = document();
        let text = serde_json::to_string(doc).unwrap();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let pointer = target.trim_start_matches('#');
            assert!(doc.pointer(pointer).is_some(), "dangling {target}");
        }
    }

    #[test]
    fn the_catalogues_come_from_the_code() {
        let doc = document();
        let commands = doc["components"]["schemas"]["CommandType"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(commands.len(), COMMAND_TYPES.len());
        let events = doc["components"]["schemas"]["EventType"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(events.len(), EventType::ALL.len());
    }
}
