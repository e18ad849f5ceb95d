//! Stripe, for deposit payment links only.
//!
//! ARO never charges anyone: a patient may choose to open a link and pay. This module can
//! create a Price and a Payment Link, list one price to check the secret key
//! ([`StripeClient::verify_credentials`]), and read Stripe's webhooks ([`webhook`]); it has no way to
//! create a charge, a PaymentIntent or to confirm one, and a test scans the crate's source to
//! keep it that way.
//!
//! Both creates carry an `Idempotency-Key` derived from the execution's key (`{key}-price`,
//! `{key}-link`), so a retry after a lost answer, or a whole re-run of the execution within
//! Stripe's 24 h key window, returns the objects already created instead of new ones.
//!
//! Requests pin `Stripe-Version: 2020-08-27` ([`STRIPE_VERSION`]), the version of the OpenAPI
//! description (vendored in tests/fixtures/provider-specs/) that the request bodies are checked against.
//! Webhook payloads follow the version set on the webhook endpoint in Stripe's dashboard, not
//! this header; the parser reads only fields stable across versions.

mod errors;
pub mod webhook;

use std::collections::BTreeMap;
use std::fmt;

use aro_config::{Secret, StripeConfig};
use aro_resilience::Resilient;
use serde::Deserialize;
use url::Url;

use crate::error::{ErrorKind, Provider, ProviderError};
use crate::http::{Effect, endpoint, exchange};
use errors::error_from_answer;

/// The Stripe API version every request pins.
pub const STRIPE_VERSION: &str = "2020-08-27";

/// Stripe's limits on metadata (keys, key length, value length).
const MAX_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;

/// Stripe's largest `unit_amount` (eight digits in the smallest currency unit).
const MAX_AMOUNT_MINOR: i64 = 99_999_999;

/// Room left in Stripe's 255-character key for our `-price`/`-link` suffixes.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// A deposit to offer as a payment link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositLink {
    /// The amount in the currency's smallest unit (cents for USD).
    pub amount_minor: i64,
    /// ISO 4217, any case (sent lower-case).
    pub currency: String,
    /// What the patient sees on the payment page ("Deposit for your checkup").
    pub product_name: String,
    /// Put on the payment link and so on its Checkout Sessions: ids only (tenant, appointment,
    /// execution), never patient data.
    pub metadata: BTreeMap<String, String>,
    /// The execution's idempotency key.
    pub idempotency_key: String,
}

/// A payment link Stripe created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentLink {
    /// `plink_…`: what `checkout.session.completed` names in `payment_link`.
    pub id: String,
    /// The page the patient opens.
    pub url: Url,
    /// `price_…`.
    pub price_id: String,
}

/// A Stripe account's payment-link API.
#[derive(Clone)]
pub struct StripeClient {
    base_url: Url,
    secret_key: Secret,
    http: reqwest::Client,
    resilient: Resilient,
    destination: String,
}

impl fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("base_url", &self.base_url.as_str())
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct CreatedPrice {
    id: String,
}

#[derive(Deserialize)]
struct CreatedLink {
    id: String,
    url: String,
}

impl StripeClient {
    /// A client for the configured account; calls go through `resilient` under the
    /// destination `stripe`.
    pub fn new(config: &StripeConfig, http: reqwest::Client, resilient: Resilient) -> Self {
        Self {
            base_url: config.base_url.clone(),
            secret_key: config.secret_key.clone(),
            http,
            resilient,
            destination: "stripe".to_owned(),
        }
    }

    /// Uses another resilience destination (for example one per tenant).
    #[must_use]
    pub fn with_destination(mut self, destination: impl Into<String>) -> Self {
        self.destination = destination.into();
        self
    }

    /// The resilience destination calls go through.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Creates the price (`POST /v1/prices` with `product_data[name]`) and then the payment
    /// link (`POST /v1/payment_links` with `line_items[0][price]`, quantity 1, and the
    /// metadata), each with its own idempotency key derived from `link.idempotency_key`.
    #[tracing::instrument(skip_all, fields(provider = "stripe", idempotency_key = %link.idempotency_key))]
    pub async fn create_deposit_link(
        &self,
        link: &DepositLink,
    ) -> Result<PaymentLink, ProviderError> {
        let currency = validate(link)?;
        let amount = link.amount_minor.to_string();
        let price_form = vec![
            ("currency".to_owned(), currency),
            ("unit_amount".to_owned(), amount),
            (
                "product_data[name]".to_owned(),
                link.product_name.trim().to_owned(),
            ),
        ];
        let price: CreatedPrice = self
            .create(
                &["v1", "prices"],
                &price_form,
                &format!("{}-price", link.idempotency_key),
            )
            .await?;

        let mut link_form = vec![
            ("line_items[0][price]".to_owned(), price.id.clone()),
            ("line_items[0][quantity]".to_owned(), "1".to_owned()),
        ];
        link_form.extend(
            link.metadata
                .iter()
                .map(|(key, value)| (format!("metadata[{key}]"), value.clone())),
        );
        let created: CreatedLink = self
            .create(
                &["v1", "payment_links"],
                &link_form,
                &format!("{}-link", link.idempotency_key),
            )
            .await?;
        let url = Url::parse(&created.url)
            .ok()
            .filter(|url| matches!(url.scheme(), "https" | "http"))
            .ok_or_else(|| invalid_response("payment link has no usable url"))?;
        tracing::info!(payment_link = %created.id, price = %price.id, "payment link created");
        Ok(PaymentLink {
            id: created.id,
            url,
            price_id: price.id,
        })
    }

    /// Checks the secret key with a read every key that can make deposit links may do: `GET
    /// /v1/prices?limit=1` (a restricted `rk_` key needs price access anyway, where `GET
    /// /v1/balance` would need a permission ARO has no other use for). `Ok` means Stripe
    /// accepted the key; [`ErrorKind::CredentialRejected`] means it refused it (401, or 403 for
    /// a restricted key without that permission); any other error says nothing about it.
    #[tracing::instrument(skip_all, fields(provider = "stripe"))]
    pub async fn verify_credentials(&self) -> Result<(), ProviderError> {
        let mut url = endpoint(Provider::Stripe, &self.base_url, &["v1", "prices"])?;
        url.query_pairs_mut().append_pair("limit", "1");
        self.resilient
            .call(&self.destination, |_attempt| async {
                let http = self
                    .http
                    .get(url.clone())
                    .bearer_auth(self.secret_key.expose())
                    .header("Stripe-Version", STRIPE_VERSION);
                let answer = exchange(Provider::Stripe, http, Effect::Read).await?;
                if answer.is_success() {
                    Ok(())
                } else {
                    Err(error_from_answer(&answer, Effect::Read))
                }
            })
            .await
            .map_err(|error| ProviderError::from_call(Provider::Stripe, error))
    }

    /// One create call, retried under the same idempotency key.
    async fn create<T: for<'de> Deserialize<'de>>(
        &self,
        path: &[&str],
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<T, ProviderError> {
        let url = endpoint(Provider::Stripe, &self.base_url, path)?;
        self.resilient
            .call(&self.destination, |_attempt| async {
                let http = self
                    .http
                    .post(url.clone())
                    .bearer_auth(self.secret_key.expose())
                    .header("Idempotency-Key", idempotency_key)
                    .header("Stripe-Version", STRIPE_VERSION)
                    .form(form);
                let answer = exchange(Provider::Stripe, http, Effect::Write).await?;
                if !answer.is_success() {
                    return Err(error_from_answer(&answer, Effect::Write));
                }
                serde_json::from_slice::<T>(&answer.body).map_err(|_| {
                    invalid_response("unreadable answer")
                        .with_http_status(answer.status)
                        .with_maybe_delivered(true)
                })
            })
            .await
            .map_err(|error| ProviderError::from_call(Provider::Stripe, error))
    }
}

/// Checks a deposit against Stripe's limits before anything is sent; returns the currency as
/// Stripe wants it (lower case).
fn validate(link: &DepositLink) -> Result<String, ProviderError> {
    if !(1..=MAX_AMOUNT_MINOR).contains(&link.amount_minor) {
        return Err(invalid_request(
            "amount must be between 1 and 99999999 minor units",
        ));
    }
    let currency = link.currency.trim().to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(invalid_request(
            "currency must be a three-letter ISO 4217 code",
        ));
    }
    let name = link.product_name.trim();
    if name.is_empty() || name.chars().count() > 250 {
        return Err(invalid_request(
            "product name must have 1 to 250 characters",
        ));
    }
    if link.metadata.len() > MAX_METADATA_KEYS {
        return Err(invalid_request("more than 50 metadata keys"));
    }
    for (key, value) in &link.metadata {
        let key_chars = key.chars().count();
        if key_chars == 0
            || key_chars > MAX_METADATA_KEY_CHARS
            || key.contains(['[', ']'])
            || value.chars().count() > MAX_METADATA_VALUE_CHARS
        {
            return Err(invalid_request(
                "metadata keys need 1 to 40 characters without brackets, values at most 500",
            ));
        }
    }
    let key = &link.idempotency_key;
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_CHARS
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid_request(
            "idempotency key must be 1 to 200 visible ASCII characters",
        ));
    }
    Ok(currency)
}

fn invalid_request(message: &'static str) -> ProviderError {
    ProviderError::new(Provider::Stripe, ErrorKind::InvalidRequest, message)
}

fn invalid_response(message: &'static str) -> ProviderError {
    ProviderError::new(Provider::Stripe, ErrorKind::InvalidResponse, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deposit() -> DepositLink {
        DepositLink {
            amount_minor: 5_000,
            currency: "USD".to_owned(),
            product_name: "Deposit".to_owned(),
            metadata: BTreeMap::from([("appointmentId".to_owned(), "apt_1".to_owned())]),
            idempotency_key: "exec-1".to_owned(),
        }
    }

    #[test]
    fn a_valid_deposit_gets_a_lower_case_currency() {
        assert_eq!(validate(&deposit()).ok().as_deref(), Some("usd"));
    }

    #[test]
    fn deposits_outside_stripes_limits_are_refused_before_sending() {
        type Change = Box<dyn Fn(&mut DepositLink)>;
        let cases: Vec<Change> = vec![
            Box::new(|d| d.amount_minor = 0),
            Box::new(|d| d.amount_minor = -5),
            Box::new(|d| d.amount_minor = 100_000_000),
            Box::new(|d| d.currency = "dollars".to_owned()),
            Box::new(|d| d.currency = "u5d".to_owned()),
            Box::new(|d| d.product_name = " ".to_owned()),
            Box::new(|d| {
                d.metadata.insert("a[b]".to_owned(), "x".to_owned());
            }),
            Box::new(|d| {
                d.metadata.insert("k".repeat(41), "x".to_owned());
            }),
            Box::new(|d| {
                d.metadata.insert("k".to_owned(), "v".repeat(501));
            }),
            Box::new(|d| d.idempotency_key = String::new()),
            Box::new(|d| d.idempotency_key = "has space".to_owned()),
            Box::new(|d| d.idempotency_key = "k".repeat(201)),
        ];
        for (index, change) in cases.iter().enumerate() {
            let mut link = deposit();
            change(&mut link);
            assert_eq!(
                validate(&link).map_err(|e| e.kind()),
                Err(ErrorKind::InvalidRequest),
                "case {index}"
            );
        }
    }
}
