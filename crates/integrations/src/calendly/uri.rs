//! Turning a Calendly resource URI from a webhook into the URL we actually call.
//!
//! Webhook payloads name resources by absolute URI (`https://api.calendly.com/scheduled_events/
//! EV1/invitees/IN1`). Calling whatever host a payload names would let anyone who can get a
//! payload to us (or a bug in a sandbox) point our bearer token at an arbitrary server. So the
//! URI's scheme, host and port are never used: only its path, checked to be exactly a Calendly
//! resource path, is put under the configured base URL (which is `https://api.calendly.com` in
//! production and the sandbox otherwise). A base URL with a path prefix (a sandbox mount) is
//! honoured, and a URI that already carries that prefix has it removed first.

use url::Url;

use crate::error::{ErrorKind, Provider, ProviderError};
use crate::http::endpoint;

/// Which resource a URI must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// `/scheduled_events/{uuid}/invitees/{uuid}`
    Invitee,
    /// `/scheduled_events/{uuid}`
    ScheduledEvent,
}

/// Calendly's identifiers: UUIDs today, opaque letters and digits in older payloads.
fn is_identifier(segment: &str) -> bool {
    (1..=64).contains(&segment.len())
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn refused(message: &'static str) -> ProviderError {
    ProviderError::new(Provider::Calendly, ErrorKind::InvalidRequest, message)
}

/// The URL to call for `uri` under `base`, or an `InvalidRequest` error when `uri` is not a
/// Calendly resource URI of the expected kind.
pub(crate) fn resolve(base: &Url, uri: &str, resource: Resource) -> Result<Url, ProviderError> {
    let parsed = Url::parse(uri).map_err(|_| refused("not an absolute URI"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(refused("not an http(s) URI"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused("URI carries credentials"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(refused("URI carries a query or fragment"));
    }
    let path: Vec<&str> = parsed
        .path_segments()
        .map(|segments| segments.collect())
        .unwrap_or_default();
    let prefix: Vec<&str> = base
        .path_segments()
        .map(|segments| segments.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let path = match path.strip_prefix(prefix.as_slice()) {
        Some(rest) if !prefix.is_empty() => rest,
        _ => path.as_slice(),
    };
    let valid = match (resource, path) {
        (Resource::Invitee, ["scheduled_events", event, "invitees", invitee]) => {
            is_identifier(event) && is_identifier(invitee)
        }
        (Resource::ScheduledEvent, ["scheduled_events", event]) => is_identifier(event),
        _ => false,
    };
    if !valid {
        return Err(refused(match resource {
            Resource::Invitee => "not a Calendly invitee URI",
            Resource::ScheduledEvent => "not a Calendly scheduled event URI",
        }));
    }
    endpoint(Provider::Calendly, base, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn url(s: &str) -> Result<Url, url::ParseError> {
        Url::parse(s)
    }

    const INVITEE: &str = "https://api.calendly.com/scheduled_events/EV1/invitees/IN-1";

    #[test]
    fn the_official_host_stays_as_it_is() -> TestResult {
        let resolved = resolve(
            &url("https://api.calendly.com")?,
            INVITEE,
            Resource::Invitee,
        )?;
        assert_eq!(resolved.as_str(), INVITEE);
        Ok(())
    }

    #[test]
    fn a_sandbox_base_replaces_scheme_host_and_port() -> TestResult {
        let resolved = resolve(&url("http://127.0.0.1:7400")?, INVITEE, Resource::Invitee)?;
        assert_eq!(
            resolved.as_str(),
            "http://127.0.0.1:7400/scheduled_events/EV1/invitees/IN-1"
        );
        Ok(())
    }

    #[test]
    fn a_base_path_prefix_is_kept_and_not_doubled() -> TestResult {
        let base = url("http://127.0.0.1:7400/calendly/")?;
        let expected = "http://127.0.0.1:7400/calendly/scheduled_events/EV1";
        let from_official = resolve(
            &base,
            "https://api.calendly.com/scheduled_events/EV1",
            Resource::ScheduledEvent,
        )?;
        assert_eq!(from_official.as_str(), expected);
        let from_sandbox = resolve(&base, expected, Resource::ScheduledEvent)?;
        assert_eq!(from_sandbox.as_str(), expected);
        Ok(())
    }

    #[test]
    fn a_foreign_host_is_never_called() -> TestResult {
        let resolved = resolve(
            &url("https://api.calendly.com")?,
            "http://169.254.169.254/scheduled_events/EV1/invitees/IN1",
            Resource::Invitee,
        )?;
        assert_eq!(resolved.host_str(), Some("api.calendly.com"));
        Ok(())
    }

    #[test]
    fn anything_but_a_resource_path_is_refused() -> TestResult {
        let base = url("https://api.calendly.com")?;
        for uri in [
            "https://api.calendly.com/users/me",
            "https://api.calendly.com/scheduled_events/EV1/invitees",
            "https://api.calendly.com/scheduled_events/EV1/invitees/IN1/extra",
            "https://api.calendly.com/scheduled_events/../admin/invitees/IN1",
            "https://api.calendly.com/scheduled_events/EV%2F1/invitees/IN1",
            "https://api.calendly.com/scheduled_events/EV1/invitees/IN1?x=1",
            "https://api.calendly.com/scheduled_events/EV1/invitees/IN1#f",
            "https://user:pw@api.calendly.com/scheduled_events/EV1/invitees/IN1",
            "file:///scheduled_events/EV1/invitees/IN1",
            "/scheduled_events/EV1/invitees/IN1",
            "",
        ] {
            let error = resolve(&base, uri, Resource::Invitee).err();
            assert_eq!(
                error.map(|e| e.kind()),
                Some(ErrorKind::InvalidRequest),
                "{uri}"
            );
        }
        assert!(resolve(&base, INVITEE, Resource::ScheduledEvent).is_err());
        Ok(())
    }
}
