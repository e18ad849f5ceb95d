//! Why a command or an engine step was refused. Each maps to one HTTP answer in core-engine:
//! validation 422, transition 409, not found 404, conflict 409, guardrail 422, store 503/500.

use aro_domain::AppointmentStatus;
use aro_store::StoreError;

/// The conflict code of an optimistic write that lost a race: retryable, never stored.
pub const CONCURRENT_UPDATE: &str = "CONCURRENT_UPDATE";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{field}: {reason}")]
    Validation { field: String, reason: String },
    #[error("an appointment cannot move from {from} to {to}")]
    InvalidTransition {
        from: AppointmentStatus,
        to: AppointmentStatus,
        reason: Option<String>,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A safety rule refused the action (ARO never cancels or charges on its own, never
    /// exceeds a patient's message cap, sends only rendered templates).
    #[error("{message}")]
    Guardrail { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    pub fn validation(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Whether the same request may succeed when sent again: the store was unavailable, or
    /// another writer changed the aggregate while the command ran.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(_) => true,
            Self::Conflict { code, .. } => *code == CONCURRENT_UPDATE,
            _ => false,
        }
    }

    /// Whether the answer is deterministic for the request (stored with an idempotency key).
    /// A retryable answer never is: storing it would repeat the failure to every retry with
    /// the same key (DESIGN.md: "2xx and 4xx are stored, 5xx are not").
    pub fn is_client_error(&self) -> bool {
        !self.is_retryable()
    }
}

impl From<aro_domain::TransitionError> for EngineError {
    fn from(e: aro_domain::TransitionError) -> Self {
        let (from, to) = e.from_to();
        let reason = match e {
            aro_domain::TransitionError::CorrectionWindowClosed { .. } => Some(e.to_string()),
            aro_domain::TransitionError::NotAllowed { .. } => None,
        };
        Self::InvalidTransition { from, to, reason }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_race_is_retryable_and_never_stored_as_the_answer() {
        let race = EngineError::Conflict {
            code: CONCURRENT_UPDATE,
            message: "retry".into(),
        };
        assert!(race.is_retryable());
        assert!(!race.is_client_error());
        let (status, error) = crate::error_answer(&race);
        assert_eq!(
            (status, &error["retryable"]),
            (409, &serde_json::json!(true))
        );
        let reused = EngineError::Conflict {
            code: "COMMAND_ID_REUSED",
            message: "no".into(),
        };
        assert!(reused.is_client_error() && !reused.is_retryable());
        assert!(EngineError::validation("x", "y").is_client_error());
        assert!(!EngineError::Store(StoreError::Database("down".into())).is_client_error());
    }
}
