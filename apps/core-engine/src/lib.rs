//! ARO core-engine
