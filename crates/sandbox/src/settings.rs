//! What the sandbox needs to know: where core listens for webhooks, the secrets it signs them
//! with (the same provider configuration ARO's clients use, so both ends agree), and the few
//! timings tests want to shorten.

use aro_config::{CalendlyConfig, Config, StripeConfig, TwilioConfig};
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

/// Why the sandbox cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A provider section the sandbox signs with is absent (`aro up` generates all three).
    #[error("the sandbox needs [providers.{0}] (aro up generates sandbox secrets for it)")]
    MissingProvider(&'static str),
    /// The sandbox's own URL could not be formed from its listen address.
    #[error("cannot form the sandbox's URL from {0}")]
    SelfUrl(String),
    /// The HTTP client for webhooks could not be built.
    #[error("cannot build the webhook client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Timings, all real time (DESIGN.md "Time": the sandbox is the outside world, not ARO's
/// business clock).
#[derive(Debug, Clone)]
pub struct SandboxTiming {
    /// Pause between a message's status steps (accepted → sent → delivered), so callbacks come
    /// in order and a little after the send, as from the real network.
    pub delivery_step: Duration,
    /// How long the `slow` fault holds a request: longer than a normal client timeout.
    pub slow_delay: Duration,
    /// Timeout of one webhook post to core.
    pub webhook_timeout: Duration,
    /// Attempts per webhook (the first plus retries) when core is unreachable or answers 5xx,
    /// 408 or 429.
    pub webhook_attempts: u32,
    /// Pause before the first retry; doubled for each further one.
    pub webhook_backoff: Duration,
}

impl Default for SandboxTiming {
    fn default() -> Self {
        Self {
            delivery_step: Duration::from_millis(50),
            slow_delay: Duration::from_secs(15),
            webhook_timeout: Duration::from_secs(5),
            webhook_attempts: 4,
            webhook_backoff: Duration::from_millis(200),
        }
    }
}

/// Everything [`crate::run`] needs.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Where the sandbox listens (informational; [`crate::run`] takes a bound listener).
    pub listen: SocketAddr,
    /// Core's URL as the providers call it (`[server] public_base_url`); webhooks go to
    /// `{public_base_url}/v1/webhooks/…` and Twilio signs over exactly that URL.
    pub public_base_url: Url,
    /// The sandbox's own externally visible base URL, for the links it hands out (payment
    /// pages, Calendly resource URIs, cancel and reschedule pages).
    pub self_url: Url,
    /// The Twilio account the sandbox accepts (SID and auth token) and signs with.
    pub twilio: TwilioConfig,
    /// The Stripe secret key it accepts and the webhook secret it signs with.
    pub stripe: StripeConfig,
    /// The Calendly API token it accepts and the webhook signing key it signs with.
    pub calendly: CalendlyConfig,
    pub timing: SandboxTiming,
    /// How many objects of each kind (messages, payment links, bookings, idempotency keys…)
    /// are kept; the oldest go first.
    pub max_stored: usize,
}

impl SandboxSettings {
    /// Default number of objects of each kind kept in memory.
    pub const DEFAULT_MAX_STORED: usize = 10_000;

    /// Settings with default timings and bounds.
    pub fn new(
        listen: SocketAddr,
        public_base_url: Url,
        self_url: Url,
        twilio: TwilioConfig,
        stripe: StripeConfig,
        calendly: CalendlyConfig,
    ) -> Self {
        Self {
            listen,
            public_base_url,
            self_url,
            twilio,
            stripe,
            calendly,
            timing: SandboxTiming::default(),
            max_stored: Self::DEFAULT_MAX_STORED,
        }
    }

    /// Settings from `aro.toml`: `[sandbox] listen`, `[server] public_base_url` and the three
    /// `[providers.*]` sections (whose secrets `aro up` generates when it turns the sandbox on).
    /// The sandbox's own URL is `http://{listen}`, with an unspecified address (`0.0.0.0`, `::`)
    /// replaced by loopback.
    pub fn from_config(config: &Config) -> Result<Self, SandboxError> {
        let providers = &config.providers;
        let twilio = providers
            .twilio
            .clone()
            .ok_or(SandboxError::MissingProvider("twilio"))?;
        let stripe = providers
            .stripe
            .clone()
            .ok_or(SandboxError::MissingProvider("stripe"))?;
        let calendly = providers
            .calendly
            .clone()
            .ok_or(SandboxError::MissingProvider("calendly"))?;
        let listen = config.sandbox.listen;
        Ok(Self::new(
            listen,
            config.server.public_base_url.clone(),
            self_url_for(listen)?,
            twilio,
            stripe,
            calendly,
        ))
    }
}

/// `http://{addr}`, with an unspecified address replaced by loopback so the links work.
pub(crate) fn self_url_for(listen: SocketAddr) -> Result<Url, SandboxError> {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Url::parse(&format!("http://{addr}")).map_err(|_| SandboxError::SelfUrl(addr.to_string()))
}

/// `base` joined with an absolute `path`, keeping any path prefix `base` has
/// (`https://x.example/aro` + `/v1/…` → `https://x.example/aro/v1/…`). Core builds the URL it
/// verifies Twilio signatures over the same way.
pub(crate) fn join(base: &Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_keeps_a_path_prefix_and_never_doubles_slashes() {
        let base = Url::parse("http://127.0.0.1:7100").unwrap();
        assert_eq!(join(&base, "/v1/x"), "http://127.0.0.1:7100/v1/x");
        let base = Url::parse("https://aro.example/clinic/").unwrap();
        assert_eq!(join(&base, "/v1/x"), "https://aro.example/clinic/v1/x");
    }

    #[test]
    fn unspecified_listen_addresses_become_loopback_links() {
        let url = self_url_for("0.0.0.0:7400".parse().unwrap()).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:7400/");
        let url = self_url_for("[::]:7400".parse().unwrap()).unwrap();
        assert_eq!(url.as_str(), "http://[::1]:7400/");
    }

    #[test]
    fn configuration_without_a_provider_names_it() {
        let (mut config, _) = aro_config::generate_for_data_dir(std::path::Path::new("/tmp/x"));
        assert!(SandboxSettings::from_config(&config).is_ok());
        config.providers.stripe = None;
        let err = SandboxSettings::from_config(&config).unwrap_err();
        assert!(err.to_string().contains("providers.stripe"), "{err}");
    }
}
