//! Shared pieces of the integration tests: serving axum fakes on 127.0.0.1:0, recording what
//! they receive, a proxy that drops answers, fast resilience policies, and offline JSON-schema
//! checks against the providers' own API descriptions (trimmed copies vendored in the
//! repository's `tests/fixtures/provider-specs/`; `ARO_PROVIDER_SPECS` overrides the folder).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aro_resilience::{Backoff, DestinationPolicy, Resilient};
use axum::Router;
use axum::http::HeaderMap;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Serves `router` on a fresh loopback port and returns its base URL.
pub async fn serve(router: Router) -> Result<Url, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Url::parse(&format!("http://{address}/"))?)
}

/// Retries in milliseconds rather than seconds, three attempts, a generous per-attempt timeout.
pub fn fast_resilient() -> Resilient {
    resilient_with(3, Duration::from_secs(5))
}

pub fn resilient_with(attempts: u32, attempt_timeout: Duration) -> Resilient {
    Resilient::builder()
        .defaults(
            DestinationPolicy::default()
                .with_backoff(
                    Backoff::new(Duration::from_millis(1), Duration::from_millis(5))
                        .with_max_attempts(attempts)
                        .with_max_retry_after(Duration::from_secs(10)),
                )
                .with_attempt_timeout(attempt_timeout)
                .with_deadline(Duration::from_secs(30)),
        )
        .rng_seed(7)
        .build()
}

pub fn http() -> Result<reqwest::Client, reqwest::Error> {
    aro_integrations::http_client()
}

/// One request a fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// Everything a fake received, in order.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Received>>>);

impl Journal {
    pub fn record(&self, received: Received) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(received);
    }

    pub fn all(&self) -> Vec<Received> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn count(&self, method: &str) -> usize {
        self.all().iter().filter(|r| r.method == method).count()
    }
}

/// A loopback TCP proxy in front of a fake that forwards everything, except that for the
/// first `drops` requests starting with `POST` it lets the request through to the fake (which
/// acts on it) and then closes the client's connection instead of relaying the answer: the
/// provider accepted, the answer was lost.
pub async fn answer_dropping_proxy(
    upstream: &Url,
    drops: usize,
) -> Result<(Url, Arc<AtomicUsize>), Box<dyn std::error::Error>> {
    let upstream: SocketAddr = format!(
        "{}:{}",
        upstream.host_str().unwrap_or("127.0.0.1"),
        upstream.port().unwrap_or(80)
    )
    .parse()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let remaining = Arc::new(AtomicUsize::new(drops));
    let dropped = Arc::new(AtomicUsize::new(0));
    let dropped_out = dropped.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let remaining = remaining.clone();
            let dropped = dropped.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                relay(client, server, remaining, dropped).await;
            });
        }
    });
    Ok((Url::parse(&format!("http://{address}/"))?, dropped_out))
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    remaining: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let drop_answer = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = drop_answer.clone();
    let upstream = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let Ok(read) = client_read.read(&mut buffer).await else {
                return;
            };
            if read == 0 {
                return;
            }
            if buffer[..read].starts_with(b"POST ")
                && remaining
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                flag.store(true, Ordering::SeqCst);
            }
            if server_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    });
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(read) = server_read.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        if drop_answer.load(Ordering::SeqCst) {
            dropped.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if client_write.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    upstream.abort();
    // Dropping both halves closes the client's connection without an answer.
}

// ---------------------------------------------------------------------------------------------
// Offline schema checks against the providers' API descriptions.

/// The folder holding the descriptions: `ARO_PROVIDER_SPECS` if set, else the repository's
/// `tests/fixtures/provider-specs/`, trimmed to what these tests use by
/// `scripts/vendor-provider-specs.py` so a fresh clone needs nothing from outside it.
pub fn specs_dir() -> PathBuf {
    std::env::var_os("ARO_PROVIDER_SPECS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/provider-specs"),
        PathBuf::from,
    )
}

/// One provider description, as JSON (the vendored Calendly copy is JSON too).
pub fn load_json_spec(file: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let path = specs_dir().join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "provider spec {} not readable: {e} (ARO_PROVIDER_SPECS overrides the folder)",
            path.display()
        )
    })?;
    Ok(serde_json::from_str(&text)?)
}

/// Follows a JSON pointer, failing with the pointer's text.
pub fn at<'a>(value: &'a Value, pointer: &str) -> Result<&'a Value, String> {
    value
        .pointer(pointer)
        .ok_or_else(|| format!("{pointer} not found in the spec"))
}

/// Escapes a key for use inside a JSON pointer.
pub fn pointer_key(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Rewrites OpenAPI 3.0 `nullable: true` into JSON Schema (`null` allowed), everywhere.
pub fn nullable_to_json_schema(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for child in object.values_mut() {
                nullable_to_json_schema(child);
            }
            if object.remove("nullable") == Some(Value::Bool(true)) {
                match object.get("type").cloned() {
                    Some(Value::String(kind)) => {
                        object.insert(
                            "type".into(),
                            Value::Array(vec![kind.into(), "null".into()]),
                        );
                        if let Some(Value::Array(values)) = object.get_mut("enum") {
                            values.push(Value::Null);
                        }
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(object));
                        object.insert(
                            "anyOf".into(),
                            Value::Array(vec![serde_json::json!({"type": "null"}), inner]),
                        );
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_json_schema),
        _ => {}
    }
}

/// A validator for the schema at `pointer` in `spec`, with the spec's `components` beside it so
/// `#/components/...` references resolve. `closed` forbids properties the schema does not
/// declare (Twilio's request schema leaves that open; we want typos caught).
pub fn validator(
    spec: &Value,
    pointer: &str,
    closed: bool,
) -> Result<jsonschema::Validator, Box<dyn std::error::Error>> {
    let mut schema = at(spec, pointer)?.clone();
    if closed && let Value::Object(object) = &mut schema {
        object.insert("additionalProperties".into(), Value::Bool(false));
    }
    schema_validator(spec, schema, pointer)
}

/// A validator for `schema` (which may reference the spec's `components`); `what` names it in
/// errors.
pub fn schema_validator(
    spec: &Value,
    schema: Value,
    what: &str,
) -> Result<jsonschema::Validator, Box<dyn std::error::Error>> {
    let mut root = Map::new();
    root.insert("allOf".into(), Value::Array(vec![schema]));
    root.insert("components".into(), at(spec, "/components")?.clone());
    let mut root = Value::Object(root);
    nullable_to_json_schema(&mut root);
    Ok(jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("schema at {what} does not compile: {e}"))?)
}

/// The parameters an operation declares `in` a location (`"query"` or `"path"`), path-level
/// ones included, as one object schema: each parameter a property with its own schema, the
/// required ones required, nothing undeclared allowed. What a request sends there can then be
/// checked like a body (see [`parameters_to_json`]).
pub fn parameters_schema(
    spec: &Value,
    path: &str,
    method: &str,
    location: &str,
) -> Result<Value, String> {
    let item = at(spec, &format!("/paths/{}", pointer_key(path)))?;
    let operation = item
        .get(method)
        .ok_or_else(|| format!("no {method} operation on {path}"))?;
    let declared = item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            operation
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    let mut properties = Map::new();
    let mut required = Vec::new();
    for parameter in declared {
        let parameter = resolve_ref(parameter, spec);
        if parameter.get("in").and_then(Value::as_str) != Some(location) {
            continue;
        }
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a parameter of {method} {path} has no name"))?;
        let schema = parameter
            .get("schema")
            .cloned()
            .unwrap_or(Value::Bool(true));
        properties.insert(name.to_owned(), schema);
        if parameter.get("required").and_then(Value::as_bool) == Some(true) {
            required.push(Value::String(name.to_owned()));
        }
    }
    let mut schema = serde_json::json!({
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    // Draft 4 wants a non-empty `required`.
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    Ok(schema)
}

/// A validator for an operation's parameters in one location (see [`parameters_schema`]);
/// also returns the schema, for [`parameters_to_json`].
pub fn parameters_validator(
    spec: &Value,
    path: &str,
    method: &str,
    location: &str,
) -> Result<(jsonschema::Validator, Value), Box<dyn std::error::Error>> {
    let schema = parameters_schema(spec, path, method, location)?;
    let validator = schema_validator(
        spec,
        schema.clone(),
        &format!("{location} parameters of {method} {path}"),
    )?;
    Ok((validator, schema))
}

/// Name/value pairs (a query string's, or a path's from [`path_parameters`]) as a JSON object,
/// values coerced to the types the parameters declare. A name given twice is kept as given
/// twice would be by a server reading one value: the last.
pub fn parameters_to_json(pairs: &[(String, String)], schema: &Value, spec: &Value) -> Value {
    flat_form_to_json(pairs, schema, spec)
}

/// The values a concrete `actual` path gives the `{name}` placeholders of `template` (which
/// may sit inside a segment, as in `{Sid}.json`); `None` when the path does not fit.
pub fn path_parameters(template: &str, actual: &str) -> Option<Vec<(String, String)>> {
    let template: Vec<&str> = template.trim_matches('/').split('/').collect();
    let actual: Vec<&str> = actual.trim_matches('/').split('/').collect();
    if template.len() != actual.len() {
        return None;
    }
    let mut found = Vec::new();
    for (pattern, segment) in template.iter().zip(&actual) {
        match (pattern.find('{'), pattern.find('}')) {
            (Some(open), Some(close)) if open < close => {
                let (prefix, suffix) = (&pattern[..open], &pattern[close + 1..]);
                let value = segment.strip_prefix(prefix)?.strip_suffix(suffix)?;
                let value = url::form_urlencoded::parse(format!("v={value}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())?;
                found.push((pattern[open + 1..close].to_owned(), value));
            }
            _ if pattern == segment => {}
            _ => return None,
        }
    }
    Some(found)
}

/// Fails with every validation error, naming the instance path.
pub fn assert_valid(
    validator: &jsonschema::Validator,
    instance: &Value,
    what: &str,
) -> Result<(), String> {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what} does not match the provider's schema:\n{}",
            errors.join("\n")
        ))
    }
}

/// Form fields as a JSON object, with the values turned into the types the schema declares
/// (forms carry only strings).
pub fn flat_form_to_json(pairs: &[(String, String)], schema: &Value, spec: &Value) -> Value {
    let mut object = Map::new();
    for (key, value) in pairs {
        object.insert(key.clone(), Value::String(value.clone()));
    }
    let mut value = Value::Object(object);
    coerce(&mut value, schema, spec);
    value
}

/// Stripe's bracket notation (`line_items[0][price]=…`, `metadata[k]=v`) as a JSON object,
/// with values coerced to the schema's types.
pub fn stripe_form_to_json(
    pairs: &[(String, String)],
    schema: &Value,
    spec: &Value,
) -> Result<Value, String> {
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let (head, rest) = key
            .split_once('[')
            .map_or((key.as_str(), ""), |(h, r)| (h, r));
        let mut path = vec![head.to_owned()];
        for part in rest.split('[').filter(|p| !p.is_empty()) {
            path.push(
                part.strip_suffix(']')
                    .ok_or_else(|| format!("unbalanced brackets in {key}"))?
                    .to_owned(),
            );
        }
        insert_path(&mut root, &path, Value::String(value.clone()))?;
    }
    coerce(&mut root, schema, spec);
    Ok(root)
}

fn insert_path(node: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        *node = value;
        return Ok(());
    };
    let next_is_index = rest.first().is_some_and(|p| p.parse::<usize>().is_ok());
    let empty = || {
        if next_is_index {
            Value::Array(Vec::new())
        } else {
            Value::Object(Map::new())
        }
    };
    match node {
        Value::Object(object) => {
            let child = object.entry(first.clone()).or_insert_with(empty);
            insert_path(child, rest, value)
        }
        Value::Array(items) => {
            let index: usize = first.parse().map_err(|_| format!("bad index {first}"))?;
            while items.len() <= index {
                items.push(Value::Null);
            }
            if items[index].is_null() {
                items[index] = empty();
            }
            insert_path(&mut items[index], rest, value)
        }
        _ => Err(format!("conflicting form keys at {first}")),
    }
}

fn resolve_ref<'a>(schema: &'a Value, spec: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| spec.pointer(pointer))
            .map_or(schema, |target| resolve_ref(target, spec)),
        None => schema,
    }
}

/// Turns string leaves into integers, numbers or booleans where the schema asks for them.
fn coerce(value: &mut Value, schema: &Value, spec: &Value) {
    let schema = resolve_ref(schema, spec);
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            for branch in branches {
                let branch = resolve_ref(branch, spec);
                let fits = matches!(
                    (value.clone(), branch.get("type").and_then(Value::as_str)),
                    (Value::Object(_), Some("object"))
                        | (Value::Array(_), Some("array"))
                        | (Value::String(_), Some("integer" | "number" | "boolean"))
                );
                if fits {
                    coerce(value, branch, spec);
                    return;
                }
            }
        }
    }
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                let child_schema = schema
                    .get("properties")
                    .and_then(|p| p.get(key))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(child_schema) = child_schema {
                    coerce(child, child_schema, spec);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    coerce(item, item_schema, spec);
                }
            }
        }
        Value::String(text) => {
            let typed = match schema.get("type").and_then(Value::as_str) {
                Some("integer") => text.parse::<i64>().ok().map(Value::from),
                Some("number") => text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number),
                Some("boolean") => match text.as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => None,
                },
                _ => None,
            };
            if let Some(typed) = typed {
                *value = typed;
            }
        }
        _ => {}
    }
}

/// Reads a fixture file under `tests/fixtures/`.
pub fn fixture(name: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// Counts of requests per fake route, for "was it retried" assertions.
pub fn counts(journal: &Journal) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for received in journal.all() {
        *counts
            .entry(format!("{} {}", received.method, received.path))
            .or_insert(0) += 1;
    }
    counts
}
