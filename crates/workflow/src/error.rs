//! Why a command or an engine step was refused. Each maps to one HTTP answer in core-engine:
//! validation 422, transition 409, not found 404, conflict 409, guardrail 422, store 503/500.

use aro_domain::AppointmentStatus;
use aro_store::StoreError;

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

    /// Whether the answer is deterministic for the request (stored with an idempotency key).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Store(_))
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
