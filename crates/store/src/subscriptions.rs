//! Rows for push subscriptions (the Event API's webhook deliveries).

use async_trait::async_trait;

/// Subscription rows, one part of every engine's [`crate::backend::BackendTx`].
#[async_trait]
pub trait SubscriptionRows: Send {}

/// Implements [`SubscriptionRows`] for an engine's transaction type (field `conn`).
#[macro_export]
macro_rules! impl_subscription_rows {
    ($ty:ty, $db:ty) => {
        #[$crate::__private::async_trait]
        impl $crate::subscriptions::SubscriptionRows for $ty {}
    };
}
