//! The workflow engine: everything core-engine decides, without HTTP. Commands are applied in
//! one transaction with the events they cause, the timers they set and the executions (side
//! effects) they ask for; timers fire in order on business time; execution results come back
//! as canonical events. Deterministic: the same events in, the same state out.

pub mod clock;
pub mod tenants;

pub use clock::Clock;
