//! The one error for webhook payloads that cannot be read.
//!
//! Core answers a provider's webhook from these parsers' verdicts, after the signature check.
//! The error names only the field, never its value (payloads carry names, phone numbers and
//! message text) and never repeats the underlying parser's message, which can quote the input.

/// Why a webhook payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON (or not a form) at all, or not an object where one was needed.
    #[error("payload is not a readable {0}")]
    Malformed(&'static str),
    /// A field the payload cannot be understood without.
    #[error("required field `{0}` is missing")]
    MissingField(&'static str),
    /// A field present with a value of the wrong shape.
    #[error("field `{0}` has an invalid value")]
    InvalidField(&'static str),
}
