//! Everything that speaks a provider's wire protocol.
//!
//! The executor uses the clients for its side effects: [`twilio::TwilioClient`] sends SMS,
//! [`stripe::StripeClient`] creates payment links (and nothing else: no charge, no
//! PaymentIntent), [`calendly::CalendlyClient`] looks bookings up, [`llm::LlmClient`] asks an
//! OpenAI-compatible model what a reply meant. Every outbound call goes through
//! [`aro_resilience::Resilient`] and fails with one [`ProviderError`], whose
//! [`ProviderError::maybe_delivered`] tells the executor to look up before any resend.
//!
//! Core uses only the pure webhook parsers ([`twilio::webhook`], [`stripe::webhook`],
//! [`calendly::webhook`]), after it has checked the signature with `aro_security`; core never
//! calls a provider.
//!
//! No type here prints patient data through `Debug`, and no error carries a request body, a
//! phone number or a secret.

mod error;
mod http;
mod payload;

pub mod calendly;
pub mod llm;
pub mod stripe;
pub mod twilio;

pub use error::{ErrorKind, Provider, ProviderError};
pub use http::http_client;
pub use payload::PayloadError;
