//! The operator's command: aro up, migrate, token, tenant, clock.
