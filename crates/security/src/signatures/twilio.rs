//! Twilio request signatures (`X-Twilio-Signature` header).
//!
//! Signature = base64(HMAC-SHA1(auth token, URL ‖ name₁ ‖ value₁ ‖ name₂ ‖ value₂ ‖ …)), where
//! the URL is the full URL Twilio requested (scheme, host, path and query string exactly as
//! configured in Twilio), and the POSTed form parameters are taken sorted by name, then by value
//! for repeated names, with exact duplicates counted once — what Twilio's official Python
//! library (`RequestValidator.compute_signature`) computes.
//!
//! Like that library, [`verify`] also accepts the signature computed over the URL with its port
//! toggled (`https://host/…` ⇄ `https://host:443/…`), because Twilio is inconsistent about
//! including it. Twilio's signature has no timestamp: replays are caught by the `MessageSid`
//! recorded upstream. JSON-bodied webhooks (`bodySHA256` in the query) are not handled here:
//! SMS webhooks are form-encoded.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{SignatureError, macs_equal, present};

/// The header Twilio sends the signature in.
pub const HEADER: &str = "X-Twilio-Signature";

/// The `X-Twilio-Signature` value Twilio would send for a POST of `params` to `url`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(mac(auth_token, url, params))
}

/// Verifies an `X-Twilio-Signature` header (`None` when the request has none) for a POST of
/// `params` (the decoded form fields, in any order) to `url`.
pub fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = present(header)?;
    let given = BASE64
        .decode(header)
        .map_err(|_| SignatureError::Malformed("signature is not base64"))?;
    if given.len() != 20 {
        return Err(SignatureError::Malformed("signature is not an HMAC-SHA1"));
    }
    let matches_url = |candidate: &str| macs_equal(&mac(auth_token, candidate, params), &given);
    let matched = matches_url(url) || toggle_port(url).is_some_and(|other| matches_url(&other));
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> [u8; 20] {
    // Sorting (name, value) pairs lexicographically equals Twilio's "names sorted, then each
    // name's values sorted"; Rust compares strings by bytes, and UTF-8 byte order is code point
    // order, which is how Python sorts.
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    sorted.sort_unstable();
    // Twilio's library builds sets of names and values, so an exact duplicate counts once.
    sorted.dedup();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * sorted.len());
    parts.push(url.as_bytes());
    for (name, value) in &sorted {
        parts.push(name.as_bytes());
        parts.push(value.as_bytes());
    }
    crate::mac::hmac_sha1(auth_token.as_bytes(), &parts)
}

/// `url` with its port removed if it has one, or with the scheme's default port added if not
/// (443 for https, 80 otherwise), as Twilio's library does; `None` if `url` has no authority.
fn toggle_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at_checked(authority_end)?;
    // The host starts after any user info; an IPv6 literal ends at ']'.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let (userinfo, host_port) = authority.split_at_checked(host_start)?;
    let search_from = host_port.rfind(']').unwrap_or(0);
    let port_colon = host_port
        .get(search_from..)?
        .rfind(':')
        .map(|i| i + search_from);
    let toggled_host = match port_colon {
        Some(colon) => host_port.get(..colon)?.to_owned(),
        None => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            format!("{host_port}:{port}")
        }
    };
    Some(format!("{scheme}://{userinfo}{toggled_host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_is_added_for_the_scheme_or_removed() {
        let cases = [
            (
                "https://example.com/sms?x=1",
                "https://example.com:443/sms?x=1",
            ),
            ("https://example.com:443/sms", "https://example.com/sms"),
            (
                "http://127.0.0.1:7100/v1/webhooks",
                "http://127.0.0.1/v1/webhooks",
            ),
            ("http://example.com", "http://example.com:80"),
            ("http://[::1]:7100/x", "http://[::1]/x"),
            ("http://[::1]/x", "http://[::1]:80/x"),
            ("https://u:p@example.com/x", "https://u:p@example.com:443/x"),
        ];
        for (url, toggled) in cases {
            assert_eq!(toggle_port(url).as_deref(), Some(toggled), "{url}");
        }
        assert_eq!(toggle_port("not a url"), None);
    }
}
