//! Installing the pack into core, for every tenant, through core's public API only (the BFF
//! never reads core's tables): `GET /v1/admin/tenants` to find the tenants its token grants,
//! `GET /v1/tenant` to read what each has installed, and `tenant.update_config` on the Command
//! API where that differs from the pack.
//!
//! Core keeps no record of which pack a tenant's configuration came from, and needs none: the
//! installed marker is the configuration itself. A tenant is current when its configuration
//! equals what the pack gives it (compared as values, with the SHA-256 of the JSON as its name
//! in keys and logs). The `Idempotency-Key` is derived from the tenant, the pack's id, version
//! and content hash, and the configuration version being replaced, so two BFF replicas (or a
//! retry after a lost answer) apply one install, while a later change — a new pack, a rollback
//! to an earlier one, or someone else's edit being reverted to the pack — is a new command.
//!
//! Installation runs beside the HTTP server and never delays readiness; `/ready` reports it in
//! its `profile_pack` check. Core being down (or not up yet) is retried with capped, jittered
//! backoff; after a full pass the check repeats every [`InstallSchedule::period`], which is how
//! tenants created later get the pack.

use crate::pack::{ClinicConfig, ProfilePack};
use aro_domain::TenantConfig;
use aro_http::CancellationToken;
use rand::Rng;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use url::Url;

/// How often installation is checked, and how retries back off.
#[derive(Debug, Clone, Copy)]
pub struct InstallSchedule {
    /// Between full passes once every tenant answered (new tenants are found this often).
    pub period: Duration,
    /// The first retry after core could not be reached; doubles up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for InstallSchedule {
    fn default() -> Self {
        Self {
            period: Duration::from_secs(60),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl InstallSchedule {
    /// The wait before retry number `failures` (1-based): half fixed, half random, so replicas
    /// restarted together do not call core in step.
    pub fn backoff(&self, failures: u32) -> Duration {
        let exp = self
            .first_backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let cap = exp.min(self.max_backoff);
        let half = cap / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }
}

/// Why one call to core did not do its job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    #[error("core is unreachable ({0})")]
    Unreachable(&'static str),
    #[error("core refused the BFF's token: {status} {code}")]
    Unauthorized { status: u16, code: String },
    #[error("core refused the pack for tenant {tenant}: {field}: {reason}")]
    Refused {
        tenant: String,
        field: String,
        reason: String,
    },
    #[error("core answered {status} {code}")]
    Core {
        status: u16,
        code: String,
        retryable: bool,
    },
    #[error("core's answer could not be read: {0}")]
    Malformed(String),
}

impl InstallError {
    /// Whether trying again soon can help (core down or busy), as opposed to a refusal that
    /// only a new pack or new token can change.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::Malformed(_) => true,
            Self::Core { retryable, .. } => *retryable,
            Self::Unauthorized { .. } | Self::Refused { .. } => false,
        }
    }
}

/// Where one tenant stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantState {
    /// Its configuration already was the pack's.
    Current,
    /// This pass installed the pack (`replayed`: core had already applied this very command).
    Installed { replayed: bool },
    /// Installation failed; `transient` errors are retried soon.
    Failed { error: String, transient: bool },
}

impl TenantState {
    pub fn is_installed(&self) -> bool {
        matches!(self, Self::Current | Self::Installed { .. })
    }
}

/// What one pass over the tenants found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallReport {
    pub tenants: BTreeMap<String, TenantState>,
}

impl InstallReport {
    pub fn installed(&self) -> usize {
        self.tenants.values().filter(|s| s.is_installed()).count()
    }

    fn any_transient_failure(&self) -> bool {
        self.tenants.values().any(|s| {
            matches!(
                s,
                TenantState::Failed {
                    transient: true,
                    ..
                }
            )
        })
    }
}

/// Core's answer to an applied (or replayed) `tenant.update_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandAnswer {
    pub command_id: String,
    pub events: Vec<i64>,
    /// Core answered from its idempotency store: nothing new was applied.
    pub replayed: bool,
}

/// The pack's installation, as `/ready` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallStatus {
    /// No `[services.bff] core_token`: the BFF cannot call core.
    NoToken,
    /// No full pass yet; the last attempt's error, if any.
    Pending { last_error: Option<String> },
    /// The last full pass.
    Reconciled(InstallReport),
}

impl InstallStatus {
    /// One line for the `profile_pack` readiness check.
    pub fn describe(&self, pack: &ProfilePack) -> String {
        match self {
            Self::NoToken => {
                format!("{pack}: not installed: [services.bff] core_token is not configured")
            }
            Self::Pending { last_error: None } => format!("{pack}: installing"),
            Self::Pending {
                last_error: Some(e),
            } => format!("{pack}: not installed yet: {e}; retrying"),
            Self::Reconciled(report) => {
                let mut line = format!(
                    "{pack}: installed in {} of {} tenants",
                    report.installed(),
                    report.tenants.len()
                );
                for (tenant, state) in &report.tenants {
                    if let TenantState::Failed { error, .. } = state {
                        line.push_str(&format!("; {tenant}: {error}"));
                    }
                }
                line
            }
        }
    }
}

/// The few calls the installer makes to core.
#[derive(Debug, Clone)]
struct CoreClient {
    http: reqwest::Client,
    base: Url,
    token: String,
}

#[derive(Deserialize)]
struct TenantList {
    tenants: Vec<TenantId>,
}

#[derive(Deserialize)]
struct TenantId {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstalledTenant {
    config: Value,
    config_version: i64,
}

impl CoreClient {
    fn url(&self, path: &str) -> Result<Url, InstallError> {
        self.base
            .join(path)
            .map_err(|_| InstallError::Malformed(format!("core URL + {path}")))
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Value), InstallError> {
        // The caller's request id when there is one, so one id follows a request into core.
        let request_id =
            aro_http::current_request_id().unwrap_or_else(aro_http::request_id::new_request_id);
        let response = request
            .bearer_auth(&self.token)
            .header(aro_http::REQUEST_ID_HEADER, request_id)
            .send()
            .await
            .map_err(|e| {
                InstallError::Unreachable(if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection refused"
                } else {
                    "transport error"
                })
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json::<Value>().await.map_err(|_| {
            InstallError::Malformed(format!("a {} without a JSON body", status.as_u16()))
        })?;
        Ok((status, headers, body))
    }

    async fn list_tenants(&self) -> Result<Vec<String>, InstallError> {
        let (status, _, body) = self
            .send(self.http.get(self.url("v1/admin/tenants")?))
            .await?;
        if !status.is_success() {
            return Err(error_of(status, &body, None));
        }
        let list: TenantList = serde_json::from_value(body)
            .map_err(|e| InstallError::Malformed(format!("tenant list: {e}")))?;
        Ok(list.tenants.into_iter().map(|t| t.id).collect())
    }

    async fn installed(&self, tenant: &str) -> Result<InstalledTenant, InstallError> {
        let (status, _, body) = self
            .send(
                self.http
                    .get(self.url("v1/tenant")?)
                    .header("x-tenant-id", tenant),
            )
            .await?;
        if !status.is_success() {
            return Err(error_of(status, &body, Some(tenant)));
        }
        serde_json::from_value(body)
            .map_err(|e| InstallError::Malformed(format!("tenant {tenant}: {e}")))
    }

    async fn update_config(
        &self,
        tenant: &str,
        key: &str,
        correlation: &str,
        command: &Value,
    ) -> Result<CommandAnswer, InstallError> {
        let (status, headers, body) = self
            .send(
                self.http
                    .post(self.url("v1/commands")?)
                    .header("x-tenant-id", tenant)
                    .header("idempotency-key", key)
                    .header("x-correlation-id", correlation)
                    .json(command),
            )
            .await?;
        if !status.is_success() {
            return Err(error_of(status, &body, Some(tenant)));
        }
        let command_id = body["commandId"].as_str().unwrap_or_default().to_owned();
        let events = body["events"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let replayed = headers
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes() == b"true");
        Ok(CommandAnswer {
            command_id,
            events,
            replayed,
        })
    }
}

/// Reads core's error envelope into an [`InstallError`].
fn error_of(status: StatusCode, body: &Value, tenant: Option<&str>) -> InstallError {
    let error = &body["error"];
    let code = error["code"].as_str().unwrap_or("UNKNOWN").to_owned();
    match status.as_u16() {
        401 | 403 => InstallError::Unauthorized {
            status: status.as_u16(),
            code,
        },
        422 => InstallError::Refused {
            tenant: tenant.unwrap_or_default().to_owned(),
            field: error["details"]["field"]
                .as_str()
                .unwrap_or("payload")
                .to_owned(),
            reason: error["details"]["reason"]
                .as_str()
                .or_else(|| error["message"].as_str())
                .unwrap_or("refused")
                .to_owned(),
        },
        s => InstallError::Core {
            status: s,
            code,
            retryable: s >= 500
                || s == 409
                || s == 429
                || error["retryable"].as_bool().unwrap_or(false),
        },
    }
}

/// Installs one pack into core, tenant by tenant.
#[derive(Debug)]
pub struct Installer {
    core: CoreClient,
    pack: Arc<ProfilePack>,
    /// What this process installed: tenant → (content hash, the config version it produced).
    /// A tenant still at that version holds what was written, even if core's JSON differed in
    /// form from ours, so a representation difference can never cause an install every period.
    written: Mutex<HashMap<String, (String, i64)>>,
}

impl Installer {
    pub fn new(
        http: reqwest::Client,
        core_url: Url,
        token: String,
        pack: Arc<ProfilePack>,
    ) -> Self {
        Self {
            core: CoreClient {
                http,
                base: core_url,
                token,
            },
            pack,
            written: Mutex::new(HashMap::new()),
        }
    }

    pub fn pack(&self) -> &ProfilePack {
        &self.pack
    }

    /// The key of the command that replaces configuration version `base_version` of `tenant`
    /// with this pack's configuration for it.
    pub fn idempotency_key(&self, tenant: &str, base_version: i64) -> String {
        let target = self.pack.for_tenant(tenant);
        format!(
            "profile-pack:{}:{}:{tenant}:{}:from-v{base_version}",
            self.pack.id(),
            self.pack.version(),
            &target.content_hash[..16]
        )
    }

    /// The `tenant.update_config` command for `tenant`.
    pub fn command(&self, tenant: &str) -> Value {
        let target = self.pack.for_tenant(tenant);
        json!({
            "commandType": "tenant.update_config",
            "tenantId": tenant,
            "profile": self.pack.id(),
            "aggregate": {"type": "tenant", "id": tenant},
            "payload": target.config,
            "metadata": {
                "profilePack": self.pack.id(),
                "packVersion": self.pack.version(),
                "contentHash": target.content_hash,
            },
        })
    }

    /// Sends the install command as if the tenant were at `base_version`, whatever it holds:
    /// the primitive under [`Installer::install_tenant`], public so its idempotency can be
    /// checked from outside.
    pub async fn send_install(
        &self,
        tenant: &str,
        base_version: i64,
    ) -> Result<CommandAnswer, InstallError> {
        let target = self.pack.for_tenant(tenant);
        let correlation = format!(
            "profile-pack-{}-{}-{}",
            self.pack.id(),
            self.pack.version(),
            &target.content_hash[..12]
        );
        self.core
            .update_config(
                tenant,
                &self.idempotency_key(tenant, base_version),
                &correlation,
                &self.command(tenant),
            )
            .await
    }

    fn is_current(&self, tenant: &str, target: &ClinicConfig, installed: &InstalledTenant) -> bool {
        let same = serde_json::from_value::<TenantConfig>(installed.config.clone())
            .is_ok_and(|c| c == target.config);
        same || self
            .written
            .lock()
            .ok()
            .and_then(|w| w.get(tenant).cloned())
            .is_some_and(|(hash, version)| {
                hash == target.content_hash && version == installed.config_version
            })
    }

    /// Brings one tenant to the pack: nothing when it is current, else one command.
    #[tracing::instrument(skip_all, fields(tenant = %tenant, pack = %self.pack))]
    pub async fn install_tenant(&self, tenant: &str) -> Result<TenantState, InstallError> {
        let target = self.pack.for_tenant(tenant);
        let installed = self.core.installed(tenant).await?;
        if self.is_current(tenant, target, &installed) {
            return Ok(TenantState::Current);
        }
        let answer = self.send_install(tenant, installed.config_version).await?;
        if let Ok(mut w) = self.written.lock() {
            w.insert(
                tenant.to_owned(),
                (target.content_hash.clone(), installed.config_version + 1),
            );
        }
        tracing::info!(
            command = %answer.command_id,
            replayed = answer.replayed,
            from_version = installed.config_version,
            "profile pack installed"
        );
        Ok(TenantState::Installed {
            replayed: answer.replayed,
        })
    }

    /// One pass over every tenant the token grants. Fails as a whole only when the tenants
    /// cannot be listed; one tenant's failure is recorded in the report.
    pub async fn reconcile(&self) -> Result<InstallReport, InstallError> {
        let tenants = self.core.list_tenants().await?;
        let mut report = InstallReport::default();
        for tenant in tenants {
            let state = match self.install_tenant(&tenant).await {
                Ok(state) => state,
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "profile pack not installed");
                    TenantState::Failed {
                        error: e.to_string(),
                        transient: e.is_transient(),
                    }
                }
            };
            report.tenants.insert(tenant, state);
        }
        Ok(report)
    }
}

/// Keeps every tenant on the pack until `shutdown`: a pass now, retries with backoff while core
/// is unreachable or busy, then a pass every period.
pub async fn keep_installed(
    installer: Arc<Installer>,
    status: Arc<RwLock<InstallStatus>>,
    schedule: InstallSchedule,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let pass = tokio::select! {
            () = shutdown.cancelled() => return,
            pass = installer.reconcile() => pass,
        };
        let wait = match pass {
            Ok(report) => {
                let retry = report.any_transient_failure();
                if let Ok(mut s) = status.write() {
                    *s = InstallStatus::Reconciled(report);
                }
                if retry {
                    failures += 1;
                    schedule.backoff(failures)
                } else {
                    failures = 0;
                    schedule.period
                }
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(10) {
                    tracing::warn!(error = %e, failures, "profile pack: cannot list tenants; retrying");
                }
                if let Ok(mut s) = status.write() {
                    match &mut *s {
                        // Keep the last full picture; it is still the best knowledge.
                        InstallStatus::Reconciled(_) => {}
                        other => {
                            *other = InstallStatus::Pending {
                                last_error: Some(e.to_string()),
                            }
                        }
                    }
                }
                if e.is_transient() {
                    schedule.backoff(failures)
                } else {
                    schedule.period
                }
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_below_it() {
        let s = InstallSchedule::default();
        for failures in 1..40 {
            let wait = s.backoff(failures);
            assert!(wait <= s.max_backoff, "{failures}: {wait:?}");
        }
        assert!(s.backoff(1) <= Duration::from_millis(250));
        assert!(s.backoff(30) >= Duration::from_secs(15));
    }

    #[test]
    fn core_errors_are_classified() {
        let body = json!({"error": {"code": "VALIDATION_ERROR", "message": "m",
            "details": {"field": "payload.templates.en.help", "reason": "too long"}, "retryable": false}});
        assert_eq!(
            error_of(StatusCode::UNPROCESSABLE_ENTITY, &body, Some("a")),
            InstallError::Refused {
                tenant: "a".into(),
                field: "payload.templates.en.help".into(),
                reason: "too long".into()
            }
        );
        assert!(error_of(StatusCode::SERVICE_UNAVAILABLE, &json!({}), None).is_transient());
        assert!(!error_of(StatusCode::FORBIDDEN, &json!({}), None).is_transient());
    }
}
