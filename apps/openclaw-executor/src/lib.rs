//! ARO openclaw-executor
