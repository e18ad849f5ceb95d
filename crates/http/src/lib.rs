//! What every ARO service shares on the wire: the error envelope, request ids, health, readiness, metrics and graceful serving.
