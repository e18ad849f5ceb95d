//! The workflow instance state machine (spec 03 §3.2): what a running reminder sequence or
//! follow-up may do next. Total, like the appointment machine.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowState {
    Pending,
    Running,
    Waiting,
    Retrying,
    Completed,
    Failed,
    Cancelled,
}

impl WorkflowState {
    pub const ALL: [WorkflowState; 7] = [
        Self::Pending,
        Self::Running,
        Self::Waiting,
        Self::Retrying,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Retrying => "retrying",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn successors(self) -> &'static [WorkflowState] {
        use WorkflowState::*;
        match self {
            // A workflow can be called off before it ever ran (the booking was cancelled).
            Pending => &[Running, Cancelled],
            Running => &[Waiting, Retrying, Completed, Failed, Cancelled],
            // Waiting ends when its timer or event arrives, or when it times out into a retry.
            Waiting => &[Running, Retrying, Cancelled],
            Retrying => &[Running, Failed, Cancelled],
            Completed | Failed | Cancelled => &[],
        }
    }

    pub fn transition(self, to: WorkflowState) -> Result<WorkflowState, WorkflowTransitionError> {
        if self.successors().contains(&to) {
            Ok(to)
        } else {
            Err(WorkflowTransitionError { from: self, to })
        }
    }

    pub fn is_terminal(self) -> bool {
        self.successors().is_empty()
    }
}

impl fmt::Display for WorkflowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a workflow cannot move from {from} to {to}")]
pub struct WorkflowTransitionError {
    pub from: WorkflowState,
    pub to: WorkflowState,
}

#[cfg(test)]
mod tests {
    use super::WorkflowState::*;
    use super::*;

    const ALLOWED: &[(WorkflowState, WorkflowState)] = &[
        (Pending, Running),
        (Pending, Cancelled),
        (Running, Waiting),
        (Running, Retrying),
        (Running, Completed),
        (Running, Failed),
        (Running, Cancelled),
        (Waiting, Running),
        (Waiting, Retrying),
        (Waiting, Cancelled),
        (Retrying, Running),
        (Retrying, Failed),
        (Retrying, Cancelled),
    ];

    #[test]
    fn every_pair_of_states_is_allowed_exactly_when_the_table_says() {
        for from in WorkflowState::ALL {
            for to in WorkflowState::ALL {
                assert_eq!(
                    from.transition(to).is_ok(),
                    ALLOWED.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn terminal_states_are_exactly_completed_failed_cancelled() {
        let terminal: Vec<_> = WorkflowState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, vec![Completed, Failed, Cancelled]);
    }

    #[test]
    fn wire_names_match_design() {
        let names: Vec<_> = WorkflowState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "pending",
                "running",
                "waiting",
                "retrying",
                "completed",
                "failed",
                "cancelled"
            ]
        );
        for s in WorkflowState::ALL {
            assert_eq!(WorkflowState::parse(s.as_str()), Some(s));
        }
    }
}
