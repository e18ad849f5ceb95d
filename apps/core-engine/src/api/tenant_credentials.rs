//! A tenant's own provider credentials (DESIGN.md "Tenants", docs/adr/0011-tenant-credentials.md).
//!
//! Operators manage them with the admin scope:
//! `PUT /v1/admin/tenants/{tenantId}/providers/{provider}` sets (or rotates) them,
//! `GET /v1/admin/tenants/{tenantId}/providers` says which credentials each provider uses for
//! the tenant — never a secret, at most its last four characters — and
//! `DELETE /v1/admin/tenants/{tenantId}/providers/{provider}` removes them, so the tenant falls
//! back to the installation's `[providers.*]` section. Changes are recorded in the tenant's
//! audit trail (which provider, by whom; no values) and in no event.
//!
//! The executor reads them in the clear, one tenant and provider at a time, with the
//! `executions:claim` scope itself (`admin` does not stand in for it here, unlike elsewhere):
//! `GET /v1/executions/credentials/{provider}` with `X-Tenant-Id`, 404
//! `NO_TENANT_CREDENTIALS` when the tenant uses the installation's.
//!
//! The webhooks verify signatures with the tenant's own secret when it has one
//! ([`webhook_secret`]).

use super::engine_error::api_error;
use crate::AppState;
use crate::auth::{Caller, TenantScope};
use aro_domain::credentials::{CredentialProvider, ProviderCredentials};
use aro_domain::ids::TenantId;
use aro_http::{ApiError, ApiJson, ApiPath};
use aro_security::tokens::Scope;
use aro_store::tenant_credentials::StoredCredentials;
use aro_workflow::{EngineError, audit};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/tenants/{tenant_id}/providers",
            get(list_credentials),
        )
        .route(
            "/v1/admin/tenants/{tenant_id}/providers/{provider}",
            put(set_credentials).delete(remove_credentials),
        )
        .route(
            "/v1/executions/credentials/{provider}",
            get(executor_credentials),
        )
}

/// The audit actions.
const SET_ACTION: &str = "tenant.credentials_set";
const REMOVED_ACTION: &str = "tenant.credentials_removed";

fn provider_from_path(raw: &str) -> Result<CredentialProvider, ApiError> {
    CredentialProvider::parse(raw).ok_or_else(|| ApiError::not_found("provider"))
}

/// Admin scope, and a tenant the token grants (a malformed id cannot name a tenant: 404).
fn admin_for(caller: &Caller, raw_tenant: &str) -> Result<TenantId, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden(
            "INSUFFICIENT_SCOPE",
            "managing a tenant's provider credentials needs the admin scope",
        ));
    }
    let tenant = TenantId::parse(raw_tenant).map_err(|_| ApiError::not_found("tenant"))?;
    if !caller.claims.allows_tenant(tenant.as_str()) {
        return Err(ApiError::forbidden(
            "TENANT_FORBIDDEN",
            "this token does not grant access to that tenant",
        ));
    }
    Ok(tenant)
}

fn no_credentials(tenant: &TenantId, provider: CredentialProvider) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NO_TENANT_CREDENTIALS",
        format!(
            "tenant {tenant} has no {provider} credentials of its own; the installation's apply"
        ),
    )
    .with_details(json!({"provider": provider.as_str()}))
}

/// One provider as the tenant uses it: its own credentials (redacted) or the installation's.
fn view(state: &AppState, provider: CredentialProvider, own: Option<&StoredCredentials>) -> Value {
    match own {
        Some(stored) => json!({
            "provider": provider.as_str(),
            "source": "tenant",
            "credentials": stored.credentials.redacted(),
            "updatedAt": stored.updated_at,
        }),
        None => {
            let providers = &state.config.providers;
            let configured = match provider {
                CredentialProvider::Twilio => providers.twilio.is_some(),
                CredentialProvider::Stripe => providers.stripe.is_some(),
                CredentialProvider::Calendly => providers.calendly.is_some(),
            };
            json!({
                "provider": provider.as_str(),
                "source": if configured { "installation" } else { "none" },
                "credentials": null,
                "updatedAt": null,
            })
        }
    }
}

/// Sets (or rotates) a tenant's own credentials for one provider. Scope `admin`.
///
/// The body is the provider's fields, validated as `aro.toml`'s `[providers.*]` sections are
/// (a refusal names the field, never its value). Base URLs are not part of it: the
/// installation decides whether providers are the real APIs or the sandbox. The answer shows
/// the credentials redacted. Rotating is setting them again; the executor picks the new ones up
/// within a minute.
#[utoipa::path(
    put,
    path = "/v1/admin/tenants/{tenantId}/providers/{provider}",
    tag = "tenants",
    operation_id = "setTenantProviderCredentials",
    params(
        ("tenantId" = String, Path, description = "The tenant", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", example = "default"),
        ("provider" = ProviderName, Path, description = "The provider", example = "calendly"),
    ),
    request_body(
        content = CredentialsBody,
        example = json!({"apiToken": "calendly-personal-access-token", "webhookSigningKey": "a-long-random-key-you-chose"}),
    ),
    responses(
        (status = 200, description = "Replaced (rotated)", body = CredentialsSet),
        (status = 201, description = "Set for the first time", body = CredentialsSet),
        (status = 404, description = "`NOT_FOUND`: no such tenant or provider", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn set_credentials(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, provider)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let tenant = admin_for(&caller, &tenant)?;
    let provider = provider_from_path(&provider)?;
    let credentials = ProviderCredentials::from_body(provider, body)
        .map_err(|e| ApiError::validation(e.field, e.reason))?;
    let written = credentials.clone();
    let correlation = uuid::Uuid::now_v7().to_string();
    let (replaced, updated_at) = state
        .engine
        .with_ctx(tenant.as_str(), &correlation, &caller.actor(), move |ctx| {
            Box::pin(async move {
                let now = ctx.real_now;
                let tenant_id = ctx.tenant_id().to_owned();
                let replaced = ctx
                    .tx
                    .put_tenant_credentials(&tenant_id, &written, now)
                    .await?;
                audit::append(
                    ctx,
                    SET_ACTION,
                    Some(provider.as_str()),
                    json!({"provider": provider.as_str(), "rotated": replaced}),
                )
                .await?;
                Ok::<_, EngineError>((replaced, now))
            })
        })
        .await
        .map_err(api_error)?;
    tracing::info!(tenant = %tenant, provider = provider.as_str(), rotated = replaced, actor = %caller.actor(), "tenant provider credentials set");
    let stored = StoredCredentials {
        credentials,
        updated_at,
    };
    let mut body = view(&state, provider, Some(&stored));
    body["tenantId"] = json!(tenant);
    body["rotated"] = json!(replaced);
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(body)).into_response())
}

/// Which credentials each provider uses for the tenant: its own (redacted: identifiers in
/// full, secrets as at most their last four characters) or the installation's. Scope `admin`.
#[utoipa::path(
    get,
    path = "/v1/admin/tenants/{tenantId}/providers",
    tag = "tenants",
    operation_id = "listTenantProviderCredentials",
    params(
        ("tenantId" = String, Path, description = "The tenant", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", example = "default"),
    ),
    responses(
        (status = 200, description = "Every provider, with the credentials it uses for this tenant", body = TenantProviders),
        (status = 404, description = "`NOT_FOUND`: no such tenant", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn list_credentials(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(tenant): ApiPath<String>,
) -> Result<Response, ApiError> {
    let tenant = admin_for(&caller, &tenant)?;
    let id = tenant.to_string();
    let found = state
        .store
        .read(move |tx| {
            Box::pin(async move {
                if tx.get_tenant(&id).await?.is_none() {
                    return Ok(None);
                }
                tx.list_tenant_credentials(&id).await.map(Some)
            })
        })
        .await
        .map_err(|e| api_error(e.into()))?;
    let own = found.ok_or_else(|| ApiError::not_found("tenant"))?;
    let providers: Vec<Value> = CredentialProvider::ALL
        .into_iter()
        .map(|p| {
            let mine = own.iter().find(|s| s.credentials.provider() == p);
            view(&state, p, mine)
        })
        .collect();
    Ok(axum::Json(json!({"tenantId": tenant, "providers": providers})).into_response())
}

/// Removes a tenant's own credentials for one provider: from now on the installation's
/// `[providers.*]` section applies to it (the executor follows within a minute). Scope `admin`.
#[utoipa::path(
    delete,
    path = "/v1/admin/tenants/{tenantId}/providers/{provider}",
    tag = "tenants",
    operation_id = "removeTenantProviderCredentials",
    params(
        ("tenantId" = String, Path, description = "The tenant", pattern = "^[a-z0-9][a-z0-9_-]{0,62}$", example = "default"),
        ("provider" = ProviderName, Path, description = "The provider"),
    ),
    responses(
        (status = 204, description = "Removed; the installation's credentials apply"),
        (status = 404, description = "`NOT_FOUND` (no such tenant or provider) or `NO_TENANT_CREDENTIALS` (the tenant has none of its own for this provider)", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn remove_credentials(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((tenant, provider)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let tenant = admin_for(&caller, &tenant)?;
    let provider = provider_from_path(&provider)?;
    let correlation = uuid::Uuid::now_v7().to_string();
    let removed = state
        .engine
        .with_ctx(tenant.as_str(), &correlation, &caller.actor(), move |ctx| {
            Box::pin(async move {
                let tenant_id = ctx.tenant_id().to_owned();
                let removed = ctx
                    .tx
                    .delete_tenant_credentials(&tenant_id, provider)
                    .await?;
                if removed {
                    audit::append(
                        ctx,
                        REMOVED_ACTION,
                        Some(provider.as_str()),
                        json!({"provider": provider.as_str()}),
                    )
                    .await?;
                }
                Ok::<_, EngineError>(removed)
            })
        })
        .await
        .map_err(api_error)?;
    if !removed {
        return Err(no_credentials(&tenant, provider));
    }
    tracing::info!(tenant = %tenant, provider = provider.as_str(), actor = %caller.actor(), "tenant provider credentials removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The tenant's own credentials for one provider, secrets included, for the executor to call
/// the provider with. Scope `executions:claim` itself (`admin` alone is refused: operators see
/// these secrets only redacted); `X-Tenant-Id` must be one of the token's tenants. Never cached
/// by intermediaries.
#[utoipa::path(
    get,
    path = "/v1/executions/credentials/{provider}",
    tag = "executions",
    operation_id = "getTenantCredentialsForExecutor",
    params(
        ("provider" = ProviderName, Path, description = "The provider"),
        crate::openapi::TenantHeader,
    ),
    responses(
        (status = 200, description = "The tenant's own credentials (secrets in the clear)", body = ExecutorCredentials),
        (status = 404, description = "`NO_TENANT_CREDENTIALS`: the tenant uses the installation's; or `NOT_FOUND`: no such provider", body = crate::openapi::ErrorEnvelope),
        (status = 503, response = crate::openapi::Unavailable),
    ),
    security(("bearerAuth" = [])),
)]
async fn executor_credentials(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(provider): ApiPath<String>,
) -> Result<Response, ApiError> {
    scope.caller.require_exactly(Scope::ExecutionsClaim)?;
    let provider = provider_from_path(&provider)?;
    let tenant = scope.tenant_id.to_string();
    let stored = state
        .store
        .read(move |tx| Box::pin(async move { tx.tenant_credentials(&tenant, provider).await }))
        .await
        .map_err(|e| api_error(e.into()))?;
    let stored = stored.ok_or_else(|| no_credentials(&scope.tenant_id, provider))?;
    tracing::debug!(tenant = %scope.tenant_id, provider = provider.as_str(), caller = %scope.caller.claims.sub, "tenant credentials handed out");
    let mut response = axum::Json(&stored.credentials).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The secret `provider` signs `tenant`'s webhooks with, when the tenant has credentials of its
/// own for it; `None` for a tenant without (or one that does not exist: the caller then uses
/// the installation's secret, so an unsigned caller learns nothing about which tenants exist).
pub async fn webhook_secret(
    state: &AppState,
    tenant: &TenantId,
    provider: CredentialProvider,
) -> Result<Option<String>, ApiError> {
    let id = tenant.to_string();
    let stored = state
        .store
        .read(move |tx| Box::pin(async move { tx.tenant_credentials(&id, provider).await }))
        .await
        .map_err(|e| api_error(e.into()))?;
    Ok(stored.map(|s| s.credentials.webhook_secret().to_owned()))
}

// ----- the document's shapes (schema only) -----

/// `twilio`, `stripe` or `calendly`.
#[derive(utoipa::ToSchema)]
#[schema(as = ProviderName)]
#[allow(dead_code)]
enum ProviderName {
    #[schema(rename = "twilio")]
    Twilio,
    #[schema(rename = "stripe")]
    Stripe,
    #[schema(rename = "calendly")]
    Calendly,
}

/// A Twilio account: `fromNumber` or `messagingServiceSid` (which wins when both are set).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct TwilioCredentialsBody {
    #[schema(
        pattern = "^AC[0-9a-fA-F]{32}$",
        example = "AC0123456789abcdef0123456789abcdef"
    )]
    account_sid: String,
    /// The account's auth token: authenticates sends and signs the account's webhooks.
    #[schema(min_length = 1, max_length = 1024)]
    auth_token: String,
    #[schema(pattern = "^\\+[0-9]{7,15}$", example = "+14155550100")]
    from_number: Option<String>,
    #[schema(pattern = "^MG[0-9a-fA-F]{32}$")]
    messaging_service_sid: Option<String>,
}

/// A Stripe account.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct StripeCredentialsBody {
    /// A secret (`sk_…`) or restricted (`rk_…`) key.
    #[schema(pattern = "^(sk|rk)_", max_length = 1024)]
    secret_key: String,
    /// The signing secret of the tenant's webhook endpoint.
    #[schema(pattern = "^whsec_", max_length = 1024)]
    webhook_secret: String,
}

/// A Calendly account.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct CalendlyCredentialsBody {
    /// A personal access token (or OAuth access token).
    #[schema(min_length = 1, max_length = 1024)]
    api_token: String,
    /// The signing key given to Calendly with the tenant's webhook subscription.
    #[schema(min_length = 1, max_length = 1024)]
    webhook_signing_key: String,
}

/// The provider's fields (the one named in the path).
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum CredentialsBody {
    Twilio(TwilioCredentialsBody),
    Stripe(StripeCredentialsBody),
    Calendly(CalendlyCredentialsBody),
}

/// One provider as a tenant uses it.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ProviderUse {
    provider: ProviderName,
    /// `tenant` (its own), `installation` (the `[providers.*]` section) or `none` (neither).
    #[schema(example = "tenant")]
    source: String,
    /// The tenant's own credentials, redacted: identifiers in full, secrets as at most their
    /// last four characters (`…1a2b`); null unless `source` is `tenant`.
    credentials: Option<crate::openapi::Object>,
    updated_at: Option<DateTime<Utc>>,
}

/// `GET /v1/admin/tenants/{tenantId}/providers`.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct TenantProviders {
    tenant_id: String,
    providers: Vec<ProviderUse>,
}

/// The answer to setting credentials.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct CredentialsSet {
    tenant_id: String,
    #[serde(flatten)]
    provider: ProviderUse,
    /// Whether earlier credentials were replaced.
    rotated: bool,
}

/// A tenant's own credentials as the executor receives them: `provider` and that provider's
/// fields, secrets included.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ExecutorCredentials {
    provider: ProviderName,
    account_sid: Option<String>,
    auth_token: Option<String>,
    from_number: Option<String>,
    messaging_service_sid: Option<String>,
    secret_key: Option<String>,
    webhook_secret: Option<String>,
    api_token: Option<String>,
    webhook_signing_key: Option<String>,
}
