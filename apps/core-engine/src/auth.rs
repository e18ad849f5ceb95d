//! Service tokens at core's door (DESIGN.md "Service tokens"). Every protected route takes a
//! [`Caller`] (a verified token) or a [`TenantScope`] (a verified token plus an `X-Tenant-Id`
//! the token grants). A missing or invalid token is 401; a missing scope or a tenant outside the
//! token is 403 — all in the error envelope. Token expiry uses real time, never business time.

use crate::AppState;
use aro_domain::ids::TenantId;
use aro_http::ApiError;
use aro_security::tokens::{Scope, ServiceClaims, TokenError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::time::{SystemTime, UNIX_EPOCH};

/// The audience core-engine's tokens are issued for.
pub const AUDIENCE: &str = "core";
pub const TENANT_HEADER: &str = "x-tenant-id";

pub fn real_now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A caller whose token verified.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: ServiceClaims,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.claims.has_scope(scope) || self.claims.has_scope(Scope::Admin) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "INSUFFICIENT_SCOPE",
                format!("this token lacks the {} scope", scope.as_str()),
            ))
        }
    }

    /// Requires `scope` itself, which `admin` does not stand in for: for the route that hands
    /// a tenant's provider secrets out in the clear, so an operator's token (which sees them
    /// redacted) cannot read them there either.
    pub fn require_exactly(&self, scope: Scope) -> Result<(), ApiError> {
        if self.claims.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "INSUFFICIENT_SCOPE",
                format!(
                    "this token lacks the {} scope (admin does not include it here)",
                    scope.as_str()
                ),
            ))
        }
    }

    pub fn is_admin(&self) -> bool {
        self.claims.has_scope(Scope::Admin)
    }

    /// Who acted, for events and the audit trail.
    pub fn actor(&self) -> String {
        format!("service:{}", self.claims.sub)
    }
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Missing => ApiError::unauthorized(
            "MISSING_TOKEN",
            "send Authorization: Bearer <service token>",
        ),
        TokenError::Expired => {
            ApiError::unauthorized("TOKEN_EXPIRED", "the service token has expired")
        }
        TokenError::WrongAudience => {
            ApiError::unauthorized("INVALID_TOKEN", "the token was not issued for core-engine")
        }
        _ => ApiError::unauthorized("INVALID_TOKEN", "the service token is not valid"),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| token_error(TokenError::Missing))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_error(TokenError::Missing))?;
        let claims = state
            .tokens
            .verify(token, AUDIENCE, real_now_unix())
            .map_err(token_error)?;
        let caller = Caller { claims };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A verified caller acting for the tenant named in `X-Tenant-Id`.
#[derive(Debug, Clone)]
pub struct TenantScope {
    pub caller: Caller,
    pub tenant_id: TenantId,
}

impl TenantScope {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        self.caller.require(scope)
    }
}

impl FromRequestParts<AppState> for TenantScope {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let raw = parts
            .headers
            .get(TENANT_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::bad_request("MISSING_TENANT", "send X-Tenant-Id"))?;
        let tenant_id = TenantId::parse(raw)
            .map_err(|e| ApiError::bad_request("INVALID_TENANT", format!("X-Tenant-Id: {e}")))?;
        if !caller.claims.allows_tenant(tenant_id.as_str()) {
            return Err(ApiError::forbidden(
                "TENANT_FORBIDDEN",
                "this token does not grant access to that tenant",
            ));
        }
        Ok(Self { caller, tenant_id })
    }
}
