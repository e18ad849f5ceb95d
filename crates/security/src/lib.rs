//! Security primitives shared by every ARO service.
//!
//! Everything that decides whether a byte may be trusted lives here, in one small synchronous
//! crate with no HTTP or database types, so the rules can be read and tested on their own:
//!
//! - [`crypto`]: patient data encrypted at rest (per-patient data keys wrapped by a master key,
//!   ciphertexts bound to tenant/table/column/row, keyed blind indexes for phone look-ups);
//! - [`tokens`]: the service tokens (JWT, HS256) that apps present to each other;
//! - [`signatures`]: the webhook signature schemes of Twilio, Stripe and Calendly, and the
//!   Standard Webhooks scheme our own event deliveries use.
//!
//! Time is always passed in (`now_unix`) rather than read here, so every expiry and tolerance rule
//! is testable without sleeping; callers pass the real time (see DESIGN.md "Time").

pub mod crypto;
pub mod signatures;
pub mod tokens;

mod mac;
