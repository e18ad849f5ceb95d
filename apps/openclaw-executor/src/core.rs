//! The executor's only line to state: core-engine's execution queue and tenant API over HTTP
//! (DESIGN.md "Executions"). The executor never opens the database; everything it learns about
//! work and tenants comes through here.
//!
//! Every call carries the service token and an `x-request-id` (the current execution's, so one
//! id follows an execution from claim to result across both services' logs), and goes through
//! [`Resilient`] under the destination `core` like any outbound call: a timeout per attempt,
//! retries with full jitter for transient failures, a breaker while core is down.
//!
//! Claims are not retried in memory: a claim whose answer was lost has leased executions we
//! never saw, and claiming again would lease more. Those leases lapse and core re-offers them
//! (with a higher `attempt`, which makes a send look up before resending). Heartbeats and
//! results are safe to repeat: core accepts a repeated identical result.
//!
//! Every replica uses the same token subject, so core tells claims apart by the `leaseId` each
//! claimed execution comes with; heartbeats and results send it back, and a replica whose lease
//! lapsed and was claimed by another gets `LEASE_LOST` rather than extending or settling the
//! other's lease (docs/adr/0006).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aro_config::{Config, Secret};
use aro_domain::credentials::{CredentialProvider, ProviderCredentials};
use aro_http::request_id::new_request_id;
use aro_resilience::{Classify, Failure, Resilient, parse_retry_after};
use aro_security::tokens::{Scope, TenantGrant, TokenSigner};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// The resilience destination for heartbeats, results and tenant reads.
pub const CORE_DESTINATION: &str = "core";
/// The destination for claims: one attempt per call (see the module docs).
pub const CLAIM_DESTINATION: &str = "core:claim";

/// Answers larger than this are not read (a claim of 100 executions is a few hundred kB).
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// How long a token the executor mints for itself lives, and how long before its end a new
/// one is minted.
const MINTED_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
const MINTED_TOKEN_RENEW_BEFORE: Duration = Duration::from_secs(3600);

/// The subject core records as the lease owner and actor. Shared by every replica: leases are
/// told apart by their `leaseId`, not by this.
pub const TOKEN_SUBJECT: &str = "openclaw-executor";

/// An execution handed out by core.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedExecution {
    pub execution_id: String,
    pub tenant_id: String,
    pub correlation_id: String,
    pub command_type: String,
    /// Patient data (numbers, texts): never logged.
    pub payload: Value,
    #[serde(default)]
    pub not_after: Option<DateTime<Utc>>,
    /// 1 on the first hand-out; higher once it was handed out before (a lapsed lease after a
    /// crash, or a retry after a failure that may have reached the provider).
    pub attempt: u32,
    pub lease_until: DateTime<Utc>,
    /// This claim's lease, sent back with every heartbeat and the result so core can refuse
    /// them once another replica holds the execution; absent from older cores.
    #[serde(default)]
    pub lease_id: Option<String>,
    /// When core wrote the execution (real time); absent from older cores.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for ClaimedExecution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimedExecution")
            .field("execution_id", &self.execution_id)
            .field("tenant_id", &self.tenant_id)
            .field("command_type", &self.command_type)
            .field("attempt", &self.attempt)
            .field("lease_until", &self.lease_until)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ClaimAnswer {
    executions: Vec<ClaimedExecution>,
}

/// `succeeded` or `failed`, as core reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Succeeded,
    Failed,
}

/// Why an execution failed, in codes and short phrases (no patient data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportError {
    pub code: String,
    pub message: String,
}

/// The body of `POST /v1/executions/{id}/result`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionReport {
    pub status: ReportStatus,
    pub retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ReportError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// A failed call to core.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoreError {
    /// No connection, a broken one, or no answer in time.
    #[error("core unreachable: {0}")]
    Unreachable(&'static str),
    /// Core answered with an error status; `code` is the envelope's error code.
    #[error("core answered {status} {code}")]
    Status {
        status: u16,
        code: String,
        retry_after: Option<Duration>,
    },
    /// Core's answer could not be read.
    #[error("core's answer could not be read")]
    InvalidAnswer,
    /// Our breaker or limiter for core turned the call away.
    #[error("calls to core are paused for {0:?}")]
    Paused(Duration),
    /// No token could be had (the signing key was refused).
    #[error("no service token for core: {0}")]
    Token(String),
}

impl CoreError {
    /// The envelope's error code, when core answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status core answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn from_call(error: aro_resilience::CallError<CoreError>) -> Self {
        use aro_resilience::CallError;
        match error {
            CallError::CircuitOpen { retry_in } | CallError::RateLimited { retry_in } => {
                Self::Paused(retry_in)
            }
            CallError::Timeout { .. } => Self::Unreachable("no answer in time"),
            CallError::Exhausted { last, .. }
            | CallError::Permanent(last)
            | CallError::Outcome(last) => last,
        }
    }
}

impl Classify for CoreError {
    fn classify(&self) -> Failure {
        match self {
            Self::Unreachable(reason) => Failure::retryable(*reason),
            Self::Status {
                status,
                retry_after,
                ..
            } => Failure::for_http_status(*status, *retry_after),
            Self::InvalidAnswer => Failure::permanent("unreadable answer"),
            Self::Paused(wait) => Failure::retryable_after(*wait, "paused"),
            Self::Token(_) => Failure::permanent("no token"),
        }
    }
}

/// Where the bearer token comes from: `[services.executor] core_token`, or minted here from
/// `[auth] signing_key` with exactly the executor's grant (`executions:claim`, `events:read`,
/// every tenant), as `aro up` does, when a deployment gives none.
enum TokenSource {
    Configured(Secret),
    Minted {
        signer: Box<TokenSigner>,
        current: Mutex<Option<(Secret, SystemTime)>>,
    },
}

impl TokenSource {
    fn from_config(config: &Config) -> Result<Self, CoreError> {
        if let Some(token) = config
            .services
            .executor
            .core_token
            .clone()
            .filter(|t| !t.is_empty())
        {
            return Ok(Self::Configured(token));
        }
        let signer = TokenSigner::new(config.auth.signing_key.expose().as_bytes())
            .map_err(|e| CoreError::Token(format!("`auth.signing_key`: {e}")))?;
        tracing::info!(
            "no `services.executor.core_token` configured; minting the executor's own from `auth.signing_key`"
        );
        Ok(Self::Minted {
            signer: Box::new(signer),
            current: Mutex::new(None),
        })
    }

    fn token(&self) -> Result<Secret, CoreError> {
        match self {
            Self::Configured(token) => Ok(token.clone()),
            Self::Minted { signer, current } => {
                let now = SystemTime::now();
                let mut current = current.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((token, renew_at)) = current.as_ref()
                    && now < *renew_at
                {
                    return Ok(token.clone());
                }
                let now_unix = now
                    .duration_since(UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                    .unwrap_or(0);
                let token = signer
                    .issue(
                        TOKEN_SUBJECT,
                        "core",
                        &[Scope::ExecutionsClaim, Scope::EventsRead],
                        TenantGrant::All,
                        MINTED_TOKEN_TTL,
                        now_unix,
                    )
                    .map_err(|e| CoreError::Token(e.to_string()))?;
                let token = Secret::new(token);
                let renew_at = now + (MINTED_TOKEN_TTL - MINTED_TOKEN_RENEW_BEFORE);
                *current = Some((token.clone(), renew_at));
                Ok(token)
            }
        }
    }
}

/// The envelope's `error.code`, for telling `LEASE_LOST` from `EXECUTION_FINISHED`.
#[derive(Deserialize)]
struct Envelope {
    error: EnvelopeError,
}

#[derive(Deserialize)]
struct EnvelopeError {
    code: String,
}

/// A tenant as the executor needs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantGrants {
    /// Execution types the executor may run for this tenant.
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// HTTP client for core's execution queue and tenant API. Cheap to clone.
#[derive(Clone)]
pub struct CoreClient {
    base: Url,
    http: reqwest::Client,
    resilient: Resilient,
    token: Arc<TokenSource>,
}

impl fmt::Debug for CoreClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl CoreClient {
    /// A client for `services.core.url` with the configured (or a minted) token.
    pub fn new(
        config: &Config,
        http: reqwest::Client,
        resilient: Resilient,
    ) -> Result<Self, CoreError> {
        Ok(Self {
            base: config.services.core.url.clone(),
            http,
            resilient,
            token: Arc::new(TokenSource::from_config(config)?),
        })
    }

    fn url(&self, path: &str) -> Result<Url, CoreError> {
        self.base
            .join(path)
            .map_err(|_| CoreError::Unreachable("core URL cannot hold the path"))
    }

    /// `POST /v1/executions/claim`: up to `limit` executions leased for `lease`.
    pub async fn claim(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedExecution>, CoreError> {
        let body = serde_json::json!({
            "limit": limit.clamp(1, 100),
            "leaseSeconds": lease.as_secs(),
        });
        let url = self.url("v1/executions/claim")?;
        let answer: ClaimAnswer = self
            .send(CLAIM_DESTINATION, Method::Post, url, Some(&body), None)
            .await?;
        Ok(answer.executions)
    }

    /// `POST /v1/executions/{id}/heartbeat`: extends the lease `lease_id` (from the claim);
    /// `LEASE_LOST` (409) when it lapsed and someone else holds the execution now.
    pub async fn heartbeat(
        &self,
        execution_id: &str,
        lease_id: Option<&str>,
        lease: Duration,
    ) -> Result<DateTime<Utc>, CoreError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Extended {
            lease_until: DateTime<Utc>,
        }
        let mut body = serde_json::json!({"leaseSeconds": lease.as_secs()});
        with_lease(&mut body, lease_id);
        let url = self.execution_url(execution_id, "heartbeat")?;
        let extended: Extended = self
            .send(CORE_DESTINATION, Method::Post, url, Some(&body), None)
            .await?;
        Ok(extended.lease_until)
    }

    /// `POST /v1/executions/{id}/result` under the lease `lease_id` (from the claim):
    /// `LEASE_LOST` (409, nothing recorded) when it lapsed and someone else holds the execution.
    pub async fn report(
        &self,
        execution_id: &str,
        lease_id: Option<&str>,
        report: &ExecutionReport,
    ) -> Result<Value, CoreError> {
        let mut body = serde_json::to_value(report).map_err(|_| CoreError::InvalidAnswer)?;
        with_lease(&mut body, lease_id);
        let url = self.execution_url(execution_id, "result")?;
        self.send(CORE_DESTINATION, Method::Post, url, Some(&body), None)
            .await
    }

    /// `GET /v1/tenant` for `tenant_id`.
    pub async fn tenant(&self, tenant_id: &str) -> Result<TenantGrants, CoreError> {
        let url = self.url("v1/tenant")?;
        self.send(CORE_DESTINATION, Method::Get, url, None, Some(tenant_id))
            .await
    }

    /// `GET /v1/executions/credentials/{provider}` for `tenant_id`: the tenant's own
    /// credentials, or `None` when it has none (core answers 404 and the installation's apply).
    pub async fn tenant_credentials(
        &self,
        tenant_id: &str,
        provider: CredentialProvider,
    ) -> Result<Option<ProviderCredentials>, CoreError> {
        let mut url = self.url("v1/executions/credentials/")?;
        url.path_segments_mut()
            .map_err(|()| CoreError::Unreachable("core URL cannot hold the path"))?
            .pop_if_empty()
            .push(provider.as_str());
        match self
            .send(CORE_DESTINATION, Method::Get, url, None, Some(tenant_id))
            .await
        {
            Ok(credentials) => Ok(Some(credentials)),
            // `NO_TENANT_CREDENTIALS`, or a core that predates tenants' own credentials.
            Err(CoreError::Status { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn execution_url(&self, execution_id: &str, action: &str) -> Result<Url, CoreError> {
        let mut url = self.url("v1/executions/")?;
        url.path_segments_mut()
            .map_err(|()| CoreError::Unreachable("core URL cannot hold the path"))?
            .pop_if_empty()
            .extend([execution_id, action]);
        Ok(url)
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        destination: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
        tenant: Option<&str>,
    ) -> Result<T, CoreError> {
        let request_id = aro_http::current_request_id().unwrap_or_else(new_request_id);
        self.resilient
            .call(destination, |_attempt| {
                let url = url.clone();
                let request_id = request_id.clone();
                async move {
                    let token = self.token.token()?;
                    let mut request = match method {
                        Method::Get => self.http.get(url),
                        Method::Post => self.http.post(url),
                    }
                    .bearer_auth(token.expose())
                    .header(aro_http::REQUEST_ID_HEADER, request_id);
                    if let Some(body) = body {
                        request = request.json(body);
                    }
                    if let Some(tenant) = tenant {
                        request = request.header("x-tenant-id", tenant);
                    }
                    exchange(request).await
                }
            })
            .await
            .map_err(CoreError::from_call)
    }
}

/// Adds the claim's lease id to a heartbeat or result body (an older core gave none).
fn with_lease(body: &mut Value, lease_id: Option<&str>) {
    if let (Some(lease_id), Some(fields)) = (lease_id, body.as_object_mut()) {
        fields.insert("leaseId".to_owned(), Value::String(lease_id.to_owned()));
    }
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
}

async fn exchange<T: for<'de> Deserialize<'de>>(
    request: reqwest::RequestBuilder,
) -> Result<T, CoreError> {
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            CoreError::Unreachable("no answer in time")
        } else if e.is_connect() {
            CoreError::Unreachable("could not connect")
        } else {
            CoreError::Unreachable("connection lost")
        }
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now(), Duration::from_secs(300)).ok());
    let bytes = response
        .bytes()
        .await
        .map_err(|_| CoreError::Unreachable("connection lost while reading"))?;
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(CoreError::InvalidAnswer);
    }
    if !(200..300).contains(&status) {
        let code = serde_json::from_slice::<Envelope>(&bytes)
            .map(|e| e.error.code)
            .unwrap_or_else(|_| "UNKNOWN".to_owned());
        return Err(CoreError::Status {
            status,
            code,
            retry_after,
        });
    }
    serde_json::from_slice(&bytes).map_err(|_| CoreError::InvalidAnswer)
}

/// What the executor reads about a tenant's needs (see `crate::providers`): one more use of
/// `GET /v1/tenant`, kept apart from the permission read.
impl CoreClient {
    /// `GET /v1/tenant` for `tenant_id`, whole: its permissions and its installed configuration
    /// (policies included).
    pub async fn tenant_profile(&self, tenant_id: &str) -> Result<Value, CoreError> {
        let url = self.url("v1/tenant")?;
        self.send(CORE_DESTINATION, Method::Get, url, None, Some(tenant_id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_execution_reads_cores_shape_and_hides_its_payload() {
        let claimed: ClaimedExecution = serde_json::from_value(serde_json::json!({
            "executionId": "exe_1", "tenantId": "default", "correlationId": "c1",
            "commandType": "messaging.send_reminder",
            "payload": {"to": "+14155552671", "body": "Hi Ada"},
            "notAfter": null, "attempt": 2, "leaseUntil": "2030-01-01T00:00:00Z",
            "leaseId": "lse_1", "createdAt": "2029-12-31T23:00:00Z"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claimed.attempt, 2);
        assert_eq!(claimed.lease_id.as_deref(), Some("lse_1"));
        assert!(claimed.created_at.is_some());
        let shown = format!("{claimed:?}");
        assert!(shown.contains("exe_1"));
        assert!(!shown.contains("4155552671") && !shown.contains("Ada"));
    }

    #[test]
    fn reports_leave_out_what_they_do_not_have() {
        let report = ExecutionReport {
            status: ReportStatus::Failed,
            retryable: true,
            error: Some(ReportError {
                code: "PROVIDER_UNAVAILABLE".into(),
                message: "x".into(),
            }),
            provider_ref: None,
            output: None,
            retry_after_seconds: Some(3),
        };
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"status": "failed", "retryable": true,
                "error": {"code": "PROVIDER_UNAVAILABLE", "message": "x"}, "retryAfterSeconds": 3})
        );
    }

    #[test]
    fn the_lease_goes_back_with_heartbeats_and_results_when_core_gave_one() {
        let mut body = serde_json::json!({"status": "succeeded", "retryable": false});
        with_lease(&mut body, Some("lse_1"));
        assert_eq!(body["leaseId"], "lse_1");
        let mut older = serde_json::json!({"leaseSeconds": 60});
        with_lease(&mut older, None);
        assert_eq!(older, serde_json::json!({"leaseSeconds": 60}));
    }

    /// A core that hands out one execution under `lse_1` and keeps the heartbeat and result
    /// bodies it gets, answering both with 409 `LEASE_LOST` as for a replica whose lease was
    /// claimed again.
    #[tokio::test]
    async fn heartbeats_and_results_send_the_claims_lease_back() {
        use axum::Json;
        use axum::http::StatusCode;
        use axum::routing::post;

        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let lost = |seen: Arc<Mutex<Vec<Value>>>| {
            move |Json(body): Json<Value>| async move {
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(body);
                (
                    StatusCode::CONFLICT,
                    Json(serde_json::json!({"error": {"code": "LEASE_LOST", "message": "x"}})),
                )
            }
        };
        let app = axum::Router::new()
            .route(
                "/v1/executions/claim",
                post(|| async {
                    Json(serde_json::json!({"executions": [{
                        "executionId": "exe_1", "tenantId": "default", "correlationId": "c1",
                        "commandType": "messaging.send_reminder", "payload": {},
                        "attempt": 1, "leaseUntil": "2030-01-01T00:00:00Z", "leaseId": "lse_1"}]}))
                }),
            )
            .route("/v1/executions/exe_1/heartbeat", post(lost(seen.clone())))
            .route("/v1/executions/exe_1/result", post(lost(seen.clone())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let text = format!(
            "[database]\nurl = \"sqlite://unused.db\"\n[auth]\n\
             signing_key = \"test-signing-key-0123456789abcdef0123456789\"\n\
             master_key_file = \"master.key\"\n[services.core]\nurl = \"http://{addr}/\"\n"
        );
        let config = aro_config::load_str(
            &text,
            "test",
            std::path::Path::new("."),
            &aro_config::Environment::empty(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let core = CoreClient::new(&config, reqwest::Client::new(), Resilient::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let claimed = core
            .claim(1, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let lease = claimed[0].lease_id.as_deref();
        assert_eq!(lease, Some("lse_1"));
        let heartbeat = core
            .heartbeat("exe_1", lease, Duration::from_secs(60))
            .await;
        assert_eq!(
            heartbeat.err().as_ref().and_then(CoreError::code),
            Some("LEASE_LOST")
        );
        let report = ExecutionReport {
            status: ReportStatus::Succeeded,
            retryable: false,
            error: None,
            provider_ref: Some("SM1".into()),
            output: None,
            retry_after_seconds: None,
        };
        let result = core.report("exe_1", lease, &report).await;
        assert_eq!(
            result.err().as_ref().and_then(CoreError::code),
            Some("LEASE_LOST")
        );
        let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
        assert_eq!(seen.len(), 2, "a 409 is not retried: {seen:?}");
        assert_eq!(
            seen[0],
            serde_json::json!({"leaseSeconds": 60, "leaseId": "lse_1"})
        );
        assert_eq!(seen[1]["leaseId"], "lse_1");
        assert_eq!(seen[1]["providerRef"], "SM1");
        server.abort();
    }

    #[test]
    fn core_errors_are_judged_by_status() {
        let status = |s| CoreError::Status {
            status: s,
            code: "X".into(),
            retry_after: None,
        };
        assert!(status(503).classify().is_retryable());
        assert!(!status(409).classify().is_retryable());
        assert!(CoreError::Unreachable("x").classify().is_retryable());
    }
}
