//! Webhook signatures checked against vectors made by the providers' official libraries
//! (`tests/fixtures/make_vectors.py`), plus the ways a request must be refused.

use aro_security::signatures::{SignatureError, calendly, standard_webhooks, stripe, twilio};
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    twilio: Vec<TwilioVector>,
    stripe: Vec<TimestampedVector>,
    calendly: Vec<CalendlyVector>,
    standard_webhooks: Vec<StandardVector>,
}

#[derive(Deserialize)]
struct TwilioVector {
    name: String,
    auth_token: String,
    url: String,
    params: Vec<(String, String)>,
    signature: String,
    port_toggled_url: String,
    port_toggled_url_accepted: bool,
}

#[derive(Deserialize)]
struct TimestampedVector {
    name: String,
    secret: String,
    timestamp: i64,
    body: String,
    header: String,
}

#[derive(Deserialize)]
struct CalendlyVector {
    name: String,
    signing_key: String,
    timestamp: i64,
    body: String,
    header: String,
}

#[derive(Deserialize)]
struct StandardVector {
    name: String,
    secret: String,
    msg_id: String,
    timestamp: i64,
    body: String,
    signature: String,
}

fn vectors() -> Vectors {
    let text = include_str!("fixtures/signature_vectors.json");
    serde_json::from_str(text).expect("signature_vectors.json is valid")
}

/// The hex signature of a `t=…,v1=…` header.
fn v1_of(header: &str) -> &str {
    header
        .split(',')
        .find_map(|item| item.strip_prefix("v1="))
        .expect("vector header has a v1 item")
}

/// Flips one character of a base64 or hex string, keeping it in its alphabet.
fn flip_first_char(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    chars[0] = if chars[0] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

// ---------------------------------------------------------------- Twilio

#[test]
fn twilio_signatures_match_the_official_library() {
    let vectors = vectors();
    assert!(!vectors.twilio.is_empty());
    for v in &vectors.twilio {
        assert_eq!(
            twilio::signature(&v.auth_token, &v.url, &v.params),
            v.signature,
            "{}",
            v.name
        );
        assert_eq!(
            twilio::verify(&v.auth_token, &v.url, &v.params, Some(&v.signature)),
            Ok(()),
            "{}",
            v.name
        );
    }
}

#[test]
fn twilio_parameter_order_does_not_matter() {
    for v in vectors().twilio {
        let mut reversed = v.params.clone();
        reversed.reverse();
        assert_eq!(
            twilio::verify(&v.auth_token, &v.url, &reversed, Some(&v.signature)),
            Ok(()),
            "{}",
            v.name
        );
    }
}

#[test]
fn twilio_port_toggling_agrees_with_the_official_library() {
    for v in vectors().twilio {
        let ours = twilio::verify(
            &v.auth_token,
            &v.port_toggled_url,
            &v.params,
            Some(&v.signature),
        );
        assert_eq!(ours.is_ok(), v.port_toggled_url_accepted, "{}", v.name);
    }
}

#[test]
fn twilio_refuses_changed_params_url_token_or_signature() {
    for v in vectors().twilio {
        let sig = Some(v.signature.as_str());
        let mut added = v.params.clone();
        added.push(("Body".into(), "injected".into()));
        assert_eq!(
            twilio::verify(&v.auth_token, &v.url, &added, sig),
            Err(SignatureError::Mismatch),
            "{}",
            v.name
        );
        if let Some(first) = v.params.first() {
            let mut changed = v.params.clone();
            changed[0] = (first.0.clone(), format!("{}x", first.1));
            assert_eq!(
                twilio::verify(&v.auth_token, &v.url, &changed, sig),
                Err(SignatureError::Mismatch),
                "{}",
                v.name
            );
        }
        let other_tenant = format!("{}?tenant=other", v.url);
        assert_eq!(
            twilio::verify(&v.auth_token, &other_tenant, &v.params, sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            twilio::verify("another-auth-token", &v.url, &v.params, sig),
            Err(SignatureError::Mismatch)
        );
        let flipped = flip_first_char(&v.signature);
        assert_eq!(
            twilio::verify(&v.auth_token, &v.url, &v.params, Some(&flipped)),
            Err(SignatureError::Mismatch)
        );
    }
}

#[test]
fn twilio_missing_or_malformed_header_is_reported_as_such() {
    let v = &vectors().twilio[0];
    for missing in [None, Some(""), Some("   ")] {
        assert_eq!(
            twilio::verify(&v.auth_token, &v.url, &v.params, missing),
            Err(SignatureError::MissingHeader)
        );
    }
    for malformed in [
        "not base64!",
        "c2hvcnQ=",
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=AAAA",
    ] {
        assert!(
            matches!(
                twilio::verify(&v.auth_token, &v.url, &v.params, Some(malformed)),
                Err(SignatureError::Malformed(_))
            ),
            "{malformed}"
        );
    }
}

// ---------------------------------------------------------------- Stripe

#[test]
fn stripe_headers_match_the_official_library() {
    let vectors = vectors();
    assert!(!vectors.stripe.is_empty());
    for v in &vectors.stripe {
        assert_eq!(
            stripe::sign_header(&v.secret, v.body.as_bytes(), v.timestamp),
            v.header,
            "{}",
            v.name
        );
        assert_eq!(
            stripe::verify(
                &v.secret,
                v.body.as_bytes(),
                Some(&v.header),
                v.timestamp,
                300
            ),
            Ok(()),
            "{}",
            v.name
        );
    }
}

#[test]
fn stripe_refuses_tampered_body_and_wrong_secret() {
    for v in vectors().stripe {
        let tampered = format!("{} ", v.body);
        assert_eq!(
            stripe::verify(
                &v.secret,
                tampered.as_bytes(),
                Some(&v.header),
                v.timestamp,
                300
            ),
            Err(SignatureError::Mismatch),
            "{}",
            v.name
        );
        assert_eq!(
            stripe::verify(
                "whsec_other",
                v.body.as_bytes(),
                Some(&v.header),
                v.timestamp,
                300
            ),
            Err(SignatureError::Mismatch),
            "{}",
            v.name
        );
        // Moving the timestamp changes the signed payload.
        let moved = v.header.replace(
            &format!("t={}", v.timestamp),
            &format!("t={}", v.timestamp + 1),
        );
        assert_eq!(
            stripe::verify(&v.secret, v.body.as_bytes(), Some(&moved), v.timestamp, 300),
            Err(SignatureError::Mismatch)
        );
    }
}

#[test]
fn stripe_tolerance_applies_in_both_directions() {
    let v = &vectors().stripe[0];
    let verify_at = |now| {
        stripe::verify(
            &v.secret,
            v.body.as_bytes(),
            Some(&v.header),
            now,
            stripe::DEFAULT_TOLERANCE_SECS,
        )
    };
    assert_eq!(verify_at(v.timestamp + 300), Ok(()));
    assert_eq!(verify_at(v.timestamp - 300), Ok(()));
    assert_eq!(
        verify_at(v.timestamp + 301),
        Err(SignatureError::Stale {
            age_secs: 301,
            tolerance_secs: 300
        })
    );
    assert_eq!(
        verify_at(v.timestamp - 301),
        Err(SignatureError::Future {
            ahead_secs: 301,
            tolerance_secs: 300
        })
    );
}

#[test]
fn stripe_accepts_any_matching_v1_and_ignores_v0() {
    let v = &vectors().stripe[0];
    let good = v1_of(&v.header);
    let bogus = "0".repeat(64);
    let headers = [
        format!("t={},v1={bogus},v1={good}", v.timestamp),
        format!("t={},v1={good},v1={bogus}", v.timestamp),
        format!("t={},v0={bogus},v1=zz-not-hex,v1={good}", v.timestamp),
        format!("v1={good},t={}", v.timestamp),
    ];
    for header in headers {
        assert_eq!(
            stripe::verify(
                &v.secret,
                v.body.as_bytes(),
                Some(&header),
                v.timestamp,
                300
            ),
            Ok(()),
            "{header}"
        );
    }
    let only_bogus = format!("t={},v1={bogus},v1={bogus}", v.timestamp);
    assert_eq!(
        stripe::verify(
            &v.secret,
            v.body.as_bytes(),
            Some(&only_bogus),
            v.timestamp,
            300
        ),
        Err(SignatureError::Mismatch)
    );
    // A correct signature presented only under v0 does not count.
    let only_v0 = format!("t={},v0={good}", v.timestamp);
    assert!(matches!(
        stripe::verify(
            &v.secret,
            v.body.as_bytes(),
            Some(&only_v0),
            v.timestamp,
            300
        ),
        Err(SignatureError::Malformed(_))
    ));
}

#[test]
fn stripe_missing_or_malformed_header_is_reported_as_such() {
    let v = &vectors().stripe[0];
    let body = v.body.as_bytes();
    for missing in [None, Some(""), Some(" ")] {
        assert_eq!(
            stripe::verify(&v.secret, body, missing, v.timestamp, 300),
            Err(SignatureError::MissingHeader)
        );
    }
    let good = v1_of(&v.header);
    for malformed in [
        format!("v1={good}"),
        format!("t=,v1={good}"),
        format!("t=abc,v1={good}"),
        format!("t=-5,v1={good}"),
        format!("t={}", v.timestamp),
        "garbage".to_owned(),
    ] {
        assert!(
            matches!(
                stripe::verify(&v.secret, body, Some(&malformed), v.timestamp, 300),
                Err(SignatureError::Malformed(_))
            ),
            "{malformed}"
        );
    }
}

// ---------------------------------------------------------------- Calendly

#[test]
fn calendly_headers_match_the_independent_python_computation() {
    let vectors = vectors();
    assert!(!vectors.calendly.is_empty());
    for v in &vectors.calendly {
        assert_eq!(
            calendly::sign_header(&v.signing_key, v.body.as_bytes(), v.timestamp),
            v.header,
            "{}",
            v.name
        );
        assert_eq!(
            calendly::verify(
                &v.signing_key,
                v.body.as_bytes(),
                Some(&v.header),
                v.timestamp,
                180
            ),
            Ok(())
        );
    }
}

#[test]
fn calendly_refuses_tampering_and_mistimed_deliveries() {
    for v in vectors().calendly {
        let key = v.signing_key.as_str();
        let body = v.body.as_bytes();
        let header = Some(v.header.as_str());
        let tolerance = calendly::DEFAULT_TOLERANCE_SECS;
        assert_eq!(
            calendly::verify(
                key,
                b"{\"event\":\"invitee.canceled\"}",
                header,
                v.timestamp,
                tolerance
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            calendly::verify("another-key", body, header, v.timestamp, tolerance),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            calendly::verify(key, body, header, v.timestamp + 181, tolerance),
            Err(SignatureError::Stale { .. })
        ));
        assert!(matches!(
            calendly::verify(key, body, header, v.timestamp - 181, tolerance),
            Err(SignatureError::Future { .. })
        ));
        assert_eq!(
            calendly::verify(key, body, None, v.timestamp, tolerance),
            Err(SignatureError::MissingHeader)
        );
        assert!(matches!(
            calendly::verify(key, body, Some("t=1,v2=abc"), v.timestamp, tolerance),
            Err(SignatureError::Malformed(_))
        ));
    }
}

#[test]
fn a_forged_signature_is_a_mismatch_even_when_also_stale() {
    let v = &vectors().calendly[0];
    let forged = format!("t={},v1={}", v.timestamp, flip_first_char(v1_of(&v.header)));
    assert_eq!(
        calendly::verify(
            &v.signing_key,
            v.body.as_bytes(),
            Some(&forged),
            v.timestamp + 10_000,
            180
        ),
        Err(SignatureError::Mismatch)
    );
}

// ---------------------------------------------------------------- Standard Webhooks

#[test]
fn standard_webhooks_signatures_match_the_official_library() {
    let vectors = vectors();
    assert!(!vectors.standard_webhooks.is_empty());
    for v in &vectors.standard_webhooks {
        assert_eq!(
            standard_webhooks::sign(&v.secret, &v.msg_id, v.timestamp, v.body.as_bytes()).as_ref(),
            Ok(&v.signature),
            "{}",
            v.name
        );
        let ts = v.timestamp.to_string();
        assert_eq!(
            standard_webhooks::verify(
                &v.secret,
                Some(&v.msg_id),
                Some(&ts),
                Some(&v.signature),
                v.body.as_bytes(),
                v.timestamp,
                300
            ),
            Ok(()),
            "{}",
            v.name
        );
    }
}

fn verify_standard(
    secret: &str,
    msg_id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &str,
    now: i64,
) -> Result<(), SignatureError> {
    standard_webhooks::verify(
        secret,
        msg_id,
        timestamp,
        signature,
        body.as_bytes(),
        now,
        standard_webhooks::DEFAULT_TOLERANCE_SECS,
    )
}

#[test]
fn standard_webhooks_refuses_every_altered_part() {
    for v in vectors().standard_webhooks {
        let ts = v.timestamp.to_string();
        let (id, sig, body, now) = (
            Some(v.msg_id.as_str()),
            Some(v.signature.as_str()),
            v.body.as_str(),
            v.timestamp,
        );
        assert_eq!(
            verify_standard(&v.secret, id, Some(&ts), sig, &format!("{body} "), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_standard(&v.secret, Some("msg_other"), Some(&ts), sig, body, now),
            Err(SignatureError::Mismatch)
        );
        let later = (v.timestamp + 1).to_string();
        assert_eq!(
            verify_standard(&v.secret, id, Some(&later), sig, body, now),
            Err(SignatureError::Mismatch)
        );
        let other_secret = standard_webhooks::generate_secret();
        assert_eq!(
            verify_standard(&other_secret, id, Some(&ts), sig, body, now),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_standard(&v.secret, id, Some(&ts), sig, body, now + 301),
            Err(SignatureError::Stale { .. })
        ));
        assert!(matches!(
            verify_standard(&v.secret, id, Some(&ts), sig, body, now - 301),
            Err(SignatureError::Future { .. })
        ));
        assert_eq!(
            verify_standard(&v.secret, id, Some(&ts), sig, body, now + 300),
            Ok(())
        );
    }
}

#[test]
fn standard_webhooks_accepts_any_matching_v1_entry() {
    let v = &vectors().standard_webhooks[0];
    let ts = v.timestamp.to_string();
    let good = v.signature.as_str();
    let wrong = standard_webhooks::sign(&v.secret, "msg_other", v.timestamp, b"{}").unwrap();
    for header in [
        format!("{wrong} {good}"),
        format!("{good} {wrong}"),
        format!("v1a,c29tZXRoaW5n {good}"),
        format!("v2,abc  {good}"),
    ] {
        assert_eq!(
            verify_standard(
                &v.secret,
                Some(&v.msg_id),
                Some(&ts),
                Some(&header),
                &v.body,
                v.timestamp
            ),
            Ok(()),
            "{header}"
        );
    }
    assert_eq!(
        verify_standard(
            &v.secret,
            Some(&v.msg_id),
            Some(&ts),
            Some(&wrong),
            &v.body,
            v.timestamp
        ),
        Err(SignatureError::Mismatch)
    );
    // The right signature under another version label does not count.
    let relabelled = good.replacen("v1,", "v2,", 1);
    assert!(matches!(
        verify_standard(
            &v.secret,
            Some(&v.msg_id),
            Some(&ts),
            Some(&relabelled),
            &v.body,
            v.timestamp
        ),
        Err(SignatureError::Malformed(_))
    ));
}

#[test]
fn standard_webhooks_missing_or_malformed_headers_are_reported_as_such() {
    let v = &vectors().standard_webhooks[0];
    let ts = v.timestamp.to_string();
    let (id, sig) = (Some(v.msg_id.as_str()), Some(v.signature.as_str()));
    let now = v.timestamp;
    for (id, ts, sig) in [
        (None, Some(ts.as_str()), sig),
        (id, None, sig),
        (id, Some(ts.as_str()), None),
        (Some(""), Some(ts.as_str()), sig),
    ] {
        assert_eq!(
            verify_standard(&v.secret, id, ts, sig, &v.body, now),
            Err(SignatureError::MissingHeader)
        );
    }
    for bad_ts in ["soon", "1.5e9", "-1614265330"] {
        assert!(matches!(
            verify_standard(&v.secret, id, Some(bad_ts), sig, &v.body, now),
            Err(SignatureError::Malformed(_))
        ));
    }
    for bad_sig in ["v1", "nonsense", "v1a,abc"] {
        assert!(matches!(
            verify_standard(&v.secret, id, Some(&ts), Some(bad_sig), &v.body, now),
            Err(SignatureError::Malformed(_))
        ));
    }
}

#[test]
fn standard_webhooks_generated_secrets_are_usable_and_distinct() {
    let a = standard_webhooks::generate_secret();
    let b = standard_webhooks::generate_secret();
    assert_ne!(a, b);
    assert!(a.starts_with("whsec_"));
    let sig = standard_webhooks::sign(&a, "msg_1", 1_800_000_000, b"{}").unwrap();
    assert_eq!(
        standard_webhooks::verify(
            &a,
            Some("msg_1"),
            Some("1800000000"),
            Some(&sig),
            b"{}",
            1_800_000_000,
            300
        ),
        Ok(())
    );
}

#[test]
fn standard_webhooks_invalid_configured_secret_is_a_configuration_error() {
    for secret in ["whsec_", "whsec_***", ""] {
        assert!(matches!(
            standard_webhooks::sign(secret, "msg_1", 1, b"{}"),
            Err(SignatureError::InvalidSecret(_))
        ));
    }
}

// ---------------------------------------------------------------- robustness

fn header_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[tv01a,= ]{0,40}",
        "t=[0-9-]{0,25},v1=[0-9a-f]{0,70}(,v1=[0-9a-zA-Z+/=]{0,70})?",
        "(v1,[A-Za-z0-9+/=]{0,50} ?){0,3}",
        "[A-Za-z0-9+/=]{0,40}",
    ]
}

proptest! {
    #[test]
    fn no_parser_panics_on_arbitrary_headers(
        header in header_strategy(),
        other in header_strategy(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        now in any::<i64>(),
        tolerance in any::<u64>(),
    ) {
        let params = vec![("Body".to_owned(), other.clone())];
        let _ = twilio::verify("token", &header, &params, Some(&header));
        let _ = twilio::signature(&header, &other, &params);
        let _ = stripe::verify("whsec_x", &body, Some(&header), now, tolerance);
        let _ = calendly::verify("key", &body, Some(&header), now, tolerance);
        let _ = standard_webhooks::verify(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            Some(&other),
            Some(&header),
            Some(&header),
            &body,
            now,
            tolerance,
        );
        let _ = standard_webhooks::verify(&header, Some("id"), Some("1"), Some(&other), &body, now, tolerance);
        let _ = standard_webhooks::sign(&header, &other, now, &body);
    }

    #[test]
    fn stripe_and_calendly_round_trip_any_body(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        secret in "[ -~]{1,40}",
        t in 0_i64..4_000_000_000,
    ) {
        let header = stripe::sign_header(&secret, &body, t);
        prop_assert_eq!(stripe::verify(&secret, &body, Some(&header), t, 300), Ok(()));
        let header = calendly::sign_header(&secret, &body, t);
        prop_assert_eq!(calendly::verify(&secret, &body, Some(&header), t, 180), Ok(()));
    }
}
