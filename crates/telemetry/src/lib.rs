//! Logs, request ids and the process-wide metrics recorder.
