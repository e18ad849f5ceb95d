//! Background work core-engine does on its own: each worker exposes one step so tests can drive
//! it deterministically, and a loop that runs the step until shutdown.

pub mod classify;
pub mod delivery;
pub mod timers;
