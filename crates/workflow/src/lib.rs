//! The workflow engine: everything core-engine decides, without HTTP. Commands are applied in
//! one transaction with the events they cause, the timers they set and the executions (side
//! effects) they ask for; timers fire in order on business time; execution results come back
//! as canonical events. Deterministic: the same events in, the same state out.

pub mod audit;
pub mod bookings;
pub mod clock;
pub mod commands;
pub mod consent;
pub mod ctx;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod escalations;
pub mod executions;
pub mod fire;
pub mod followups;
pub mod outbound;
pub mod plan;
pub mod rebuild;
pub mod replies;
pub mod reports;
pub mod results;
pub mod risk;
pub mod snapshot;
pub mod tenants;
pub mod timers;
pub mod visits;

pub use clock::Clock;
pub use ctx::{Ctx, EngineSettings};
pub use engine::{CommandAnswer, ENGINE_ACTOR, Engine, error_answer};
pub use envelope::{COMMAND_TYPES, CommandEnvelope, CommandOutcome};
pub use error::{EngineError, EngineResult};
