//! Talking to a running core-engine as the operator: an admin token minted from the
//! configuration's signing key, and readable errors when core is not there.

use anyhow::{Context, Result, anyhow, bail};
use aro_config::Config;
use aro_security::tokens::{Scope, TenantGrant, TokenSigner};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct CoreClient {
    http: reqwest::Client,
    base: url::Url,
    token: String,
}

impl CoreClient {
    pub fn new(config: &Config) -> Result<Self> {
        let signer = TokenSigner::new(config.auth.signing_key.expose().as_bytes())
            .context("auth.signing_key")?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let token = signer
            .issue(
                "aro-cli",
                "core",
                &Scope::ALL,
                TenantGrant::All,
                Duration::from_secs(300),
                now,
            )
            .context("minting an operator token")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("HTTP client")?;
        Ok(Self {
            http,
            base: config.services.core.url.clone(),
            token,
        })
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .context("core URL")?;
        let mut req = self
            .http
            .request(method, url.clone())
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() || e.is_timeout() {
                anyhow!(
                    "core-engine is not reachable at {} (is ARO running? start it with `aro up`)",
                    self.base
                )
            } else {
                anyhow!("request to core-engine failed: {e}")
            }
        })?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// The body of a 2xx answer, or the error envelope's message as the error.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let (status, body) = self.send(method, path, body).await?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let code = body["error"]["code"].as_str().unwrap_or("ERROR");
        let message = body["error"]["message"].as_str().unwrap_or("no details");
        if let Some(field) = body["error"]["details"]["field"].as_str() {
            bail!("{code}: {message} (field {field})");
        }
        bail!("{code}: {message}");
    }
}
