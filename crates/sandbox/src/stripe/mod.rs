//! Stripe, only as far as ARO may use it: prices and payment links (bearer-key auth,
//! `Idempotency-Key` honoured exactly as Stripe does, Stripe's object and error shapes), the
//! price list (what an executor reads at start to check its key), a hosted page per link, and
//! the signed Checkout Session events when a link is paid (by card, or by a bank debit that
//! succeeds or fails). There is no endpoint that charges.
//!
//! Accounts: the configured secret key is the account [`CONFIGURED_ACCOUNT`]; more can be added
//! with `POST /sandbox/accounts` (a tenant's own key and webhook secret). As in Stripe, each
//! account sees only its own objects and idempotency keys, and the events about its links are
//! signed with its own webhook secret.

mod api;
mod checkout;
mod idempotency;

pub(crate) use checkout::{DebitOutcome, PaymentMethod, complete};

use crate::faults::{self, Provider};
use crate::state::{Bounded, Sandbox};
use crate::{ids, wire};
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

/// The id of the account the configured secret key belongs to.
pub(crate) const CONFIGURED_ACCOUNT: &str = "acct_sandbox";

/// A Stripe account added with `POST /sandbox/accounts` (a tenant's own).
#[derive(Clone)]
pub(crate) struct StripeAccount {
    /// `acct_…`.
    pub id: String,
    pub secret_key: aro_config::Secret,
    pub webhook_secret: aro_config::Secret,
}

/// A price (one-time, per unit).
#[derive(Debug, Clone)]
pub(crate) struct Price {
    /// The account that created it.
    pub account: String,
    pub currency: String,
    pub unit_amount: i64,
    pub product_name: Option<String>,
    pub json: Value,
}

/// Whether a payment link has been paid through the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkStatus {
    Open,
    Paid,
}

impl LinkStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Paid => "paid",
        }
    }
}

/// A payment link and what the sandbox needs to show and complete it.
#[derive(Debug, Clone)]
pub(crate) struct PaymentLink {
    pub id: String,
    /// The account that created it: its events are signed with that account's webhook secret.
    pub account: String,
    /// From `metadata[tenantId]`, else `default`.
    pub tenant_id: String,
    pub currency: String,
    pub amount_minor: i64,
    pub label: String,
    pub metadata: Map<String, Value>,
    pub url: String,
    pub status: LinkStatus,
    pub json: Value,
}

/// Stripe's part of the sandbox's memory.
pub(crate) struct StripeState {
    pub prices: Bounded<Price>,
    pub links: Bounded<PaymentLink>,
    idempotency: Bounded<idempotency::Stored>,
    /// Accounts accepted besides the configured one, by id.
    accounts: Bounded<StripeAccount>,
}

impl StripeState {
    pub fn new(cap: usize) -> Self {
        Self {
            prices: Bounded::new(cap),
            links: Bounded::new(cap),
            idempotency: Bounded::new(cap),
            accounts: Bounded::new(cap),
        }
    }

    /// Accepts `secret_key` from now on as an account of its own, whose events are signed with
    /// `webhook_secret`; returns the account's id. Adding a known key again keeps its id and
    /// replaces its webhook secret.
    pub fn add_account(
        &mut self,
        secret_key: aro_config::Secret,
        webhook_secret: aro_config::Secret,
    ) -> String {
        let id = self
            .account_with_key(secret_key.expose())
            .unwrap_or_else(|| ids::stripe_id("acct"));
        self.accounts.insert(
            id.clone(),
            StripeAccount {
                id: id.clone(),
                secret_key,
                webhook_secret,
            },
        );
        id
    }

    /// Forgets an added account (its objects stay); whether it existed.
    pub fn remove_account(&mut self, id: &str) -> bool {
        self.accounts.remove(id).is_some()
    }

    /// The ids of the added accounts, oldest first.
    pub fn added_accounts(&self) -> Vec<String> {
        self.accounts.values().map(|a| a.id.clone()).collect()
    }

    /// The added account whose secret key is `key`.
    fn account_with_key(&self, key: &str) -> Option<String> {
        self.accounts
            .values()
            .find(|a| wire::same_secret(key, a.secret_key.expose()))
            .map(|a| a.id.clone())
    }

    /// The webhook secret of an added account.
    fn added_webhook_secret(&self, id: &str) -> Option<aro_config::Secret> {
        self.accounts.get(id).map(|a| a.webhook_secret.clone())
    }
}

/// The webhook secret events about `account`'s objects are signed with: the account's own,
/// else (the configured account, or one removed since) the configured one.
pub(crate) fn webhook_secret(sandbox: &Sandbox, account: &str) -> aro_config::Secret {
    sandbox
        .state()
        .stripe
        .added_webhook_secret(account)
        .unwrap_or_else(|| sandbox.settings().stripe.webhook_secret.clone())
}

/// A Stripe error answer: `{"error": {"type", "message", "code"?, "param"?}}`.
#[derive(Debug, Clone)]
pub(crate) struct StripeError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
}

impl StripeError {
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }

    pub fn missing(param: &str) -> Self {
        Self {
            code: Some("parameter_missing"),
            ..Self::invalid(format!("Missing required param: {param}."), Some(param))
        }
    }

    pub fn no_such(what: &str, id: &str, param: &str) -> Self {
        Self {
            code: Some("resource_missing"),
            ..Self::invalid(format!("No such {what}: '{id}'"), Some(param))
        }
    }

    /// A missing object asked for by id (`GET /v1/…/{id}`): 404, as Stripe answers it.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ..Self::no_such(what, id, "id")
        }
    }

    fn unauthorized(message: String) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            ..Self::invalid(message, None)
        }
    }
}

impl IntoResponse for StripeError {
    fn into_response(self) -> Response {
        let mut error = json!({"type": self.kind, "message": self.message});
        if let Some(code) = self.code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        if let Some(param) = self.param {
            error["param"] = json!(param);
        }
        let mut response = (self.status, axum::Json(json!({"error": error}))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Stripe\""),
            );
        }
        response
    }
}

/// Accepts a known secret key as a bearer token, or as the basic-auth user name (both are
/// Stripe's); answers the id of the account it belongs to.
fn authenticate(sandbox: &Sandbox, headers: &HeaderMap) -> Result<String, StripeError> {
    let given = wire::bearer_token(headers)
        .or_else(|| wire::basic_credentials(headers).map(|(user, _)| user))
        .filter(|key| !key.is_empty());
    let Some(given) = given else {
        return Err(StripeError::unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.".to_owned(),
        ));
    };
    if wire::same_secret(&given, sandbox.settings().stripe.secret_key.expose()) {
        return Ok(CONFIGURED_ACCOUNT.to_owned());
    }
    sandbox
        .state()
        .stripe
        .account_with_key(&given)
        .ok_or_else(|| {
            StripeError::unauthorized(format!("Invalid API Key provided: {}", mask(&given)))
        })
}

/// A key as Stripe shows it in errors: the prefix and the last four characters.
fn mask(key: &str) -> String {
    let prefix_len = key.match_indices('_').nth(1).map_or(0, |(i, _)| i + 1);
    let chars: Vec<char> = key.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    let prefix: String = key.chars().take(prefix_len.min(8)).collect();
    format!(
        "{prefix}{}{tail}",
        "*".repeat(chars.len().saturating_sub(prefix_len + 4).min(24))
    )
}

pub(crate) fn router(sandbox: Sandbox) -> Router {
    let api = Router::new()
        .route("/v1/prices", post(api::create_price).get(api::list_prices))
        .route("/v1/prices/{id}", get(api::get_price))
        .route("/v1/payment_links", post(api::create_payment_link))
        .route("/v1/payment_links/{id}", get(api::get_payment_link))
        .layer(axum::middleware::from_fn_with_state(
            (sandbox.clone(), Provider::Stripe),
            faults::inject,
        ));
    // The hosted page is Stripe's checkout site, not its API: faults do not apply.
    let pages = Router::new().route("/pay/{id}", get(api::payment_page));
    api.merge(pages).with_state(sandbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_keys_keep_only_prefix_and_last_four() {
        let masked = mask("sk_test_0123456789abcdef");
        assert!(masked.starts_with("sk_test_"), "{masked}");
        assert!(masked.ends_with("cdef"), "{masked}");
        assert!(!masked.contains("0123"), "{masked}");
        assert_eq!(mask("ab"), "ab");
    }
}
