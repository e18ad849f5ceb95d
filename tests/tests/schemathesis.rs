//! core-engine checked against its own OpenAPI document by an independent tool: schemathesis
//! (PyPI) reads `/v1/openapi.json` from a real core-engine on 127.0.0.1 (SQLite, sandbox on),
//! sends the document's examples and generated requests (valid and invalid ones) to every
//! operation with an admin token, follows the document's links with the ids it gets back, and
//! checks every answer: no server error, a documented status code, the documented content type
//! and headers, a body that matches the documented schema, and no protected route that answers
//! without the token.
//!
//! Bounded and reproducible: a fixed seed, a fixed number of examples per operation, one
//! worker, and an overall time limit. Loopback only: the document's server entry is overridden
//! with the local address, providers point at a closed local port, and a hook
//! (`tests/fixtures/schemathesis/aro_hooks.py`) rewrites any http(s) URL a generated push
//! subscription names to a closed local port, since core delivers to subscriptions at once.
//! The same hook gives each distinct command body its own `Idempotency-Key` and drops what
//! only the HTTP parser ever sees (see its documentation).
//!
//! Not fuzzed, and why: `GET /v1/events/stream` never ends by design (a live tail), so every
//! generated request would only time out; the stream has its own end-to-end tests
//! (`events_api.rs`). The provider webhooks are fuzzed, but without the providers' secrets a
//! generator cannot sign, so they only reach the signature check (401) or the tenant check
//! (404); their behaviour with genuine signatures is tested with the sandbox's signed calls.
//!
//! Needs `ARO_TEST_PYTHON`, a Python with schemathesis (scripts/test.sh installs it from
//! scripts/test-requirements.txt). Without it the test is skipped, unless the full suite is
//! required (`ARO_REQUIRE_POSTGRES=1`, as in CI), when it fails.

use aro_tests::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generated examples per operation (and per generation method: valid and invalid data).
const MAX_EXAMPLES: &str = "40";
/// The seed, so a failure found once is found again.
const SEED: &str = "20261124";
/// The whole run must end within this; the run usually takes well under a minute.
const TIME_LIMIT: Duration = Duration::from_secs(170);

/// The checks that say "no server error, the answers are what the document says, and the
/// token is required where the document says so".
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance,ignored_auth";

/// Providers configured (so the webhook routes get as far as their signature checks) but
/// pointed at a closed local port, and the sandbox on (so the clock routes exist).
const EXTRA_CONFIG: &str = r#"
[sandbox]
enabled = true

[providers.twilio]
account_sid = "AC00000000000000000000000000000000"
auth_token = "schemathesis-twilio-auth-token"
from_number = "+15005550006"
base_url = "http://127.0.0.1:9/"

[providers.stripe]
secret_key = "sk_test_schemathesis"
webhook_secret = "whsec_schemathesis"
base_url = "http://127.0.0.1:9/"

[providers.calendly]
api_token = "schemathesis-calendly-token"
webhook_signing_key = "schemathesis-calendly-key"
base_url = "http://127.0.0.1:9/"
"#;

/// The interpreter with schemathesis installed, or `None` (skip) outside CI.
fn test_python() -> Option<String> {
    match std::env::var("ARO_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                std::env::var("ARO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "ARO_TEST_PYTHON is not set but the full suite is required (ARO_REQUIRE_POSTGRES=1)"
            );
            eprintln!(
                "skipping the schemathesis check: ARO_TEST_PYTHON is not set \
                 (a Python with `pip install -r scripts/test-requirements.txt`)"
            );
            None
        }
    }
}

both_engines!(
    core_engine_answers_as_its_openapi_document_says,
    |db| async move { schemathesis_against(db).await }
);

async fn schemathesis_against(db: Db) {
    let Some(python) = test_python() else {
        return;
    };
    let Some(env) = TestEnv::with_extra(db, EXTRA_CONFIG).await else {
        return;
    };
    let core = start_core(&env).await;
    create_tenant(&core, "default").await;
    let base = core.url.as_str().trim_end_matches('/').to_owned();
    let work_dir = env.dir.path().join("schemathesis");
    std::fs::create_dir_all(&work_dir).expect("schemathesis work dir");

    let output = tokio::task::spawn_blocking(move || run_schemathesis(&python, &base, &work_dir))
        .await
        .expect("schemathesis runner");
    core.stop().await;

    let (succeeded, report) = output;
    assert!(
        succeeded,
        "schemathesis found answers that break core-engine's OpenAPI document:\n{report}"
    );
    eprintln!("{report}");
}

/// Runs schemathesis to completion or to the time limit; returns success and its output.
fn run_schemathesis(python: &str, base: &str, work_dir: &Path) -> (bool, String) {
    let hooks_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/schemathesis");
    let token = admin_token();
    let mut command = Command::new(python);
    command
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{base}/v1/openapi.json"))
        .arg(format!("--base-url={base}"))
        .arg("--experimental=openapi-3.1")
        .arg(format!("--checks={CHECKS}"))
        .arg("--data-generation-method=all")
        .arg(format!("--hypothesis-max-examples={MAX_EXAMPLES}"))
        .arg(format!("--hypothesis-seed={SEED}"))
        .arg("--hypothesis-deadline=None")
        .arg("--hypothesis-database=none")
        .arg("--hypothesis-suppress-health-check=all")
        .arg("--stateful=links")
        .arg("--workers=1")
        // `POST /v1/admin/clock` may wait up to 30 s for work to settle.
        .arg("--request-timeout=35000")
        .arg("--exclude-path=/v1/events/stream")
        .arg(format!("--header=Authorization: Bearer {token}"))
        .arg("--header=X-Tenant-Id: default")
        .arg("--schemathesis-io-telemetry=false")
        .arg(format!(
            "--hosts-file={}",
            work_dir.join("hosts.toml").display()
        ))
        .arg("--no-color")
        .current_dir(work_dir)
        .env("SCHEMATHESIS_HOOKS", "aro_hooks")
        .env("PYTHONPATH", hooks_dir)
        .env("SCHEMATHESIS_TELEMETRY", "false")
        // Nothing may be uploaded to Schemathesis.io, whatever the environment says.
        .env_remove("SCHEMATHESIS_TOKEN")
        .env_remove("SCHEMATHESIS_REPORT")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return (false, format!("could not start {python}: {e}")),
    };
    // Read the pipes on their own threads so a chatty run cannot block on a full pipe.
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > TIME_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return (false, format!("waiting for schemathesis: {e}")),
        }
    };
    let collect = |h: Option<std::thread::JoinHandle<String>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let report = format!(
        "{}\n{}\n(took {:.0?})",
        collect(stdout),
        collect(stderr),
        started.elapsed()
    );
    match status {
        Some(status) => (status.success(), report),
        None => (
            false,
            format!("schemathesis did not finish within {TIME_LIMIT:?}\n{report}"),
        ),
    }
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}
