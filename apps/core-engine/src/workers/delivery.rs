//! Delivering events to subscriptions.
