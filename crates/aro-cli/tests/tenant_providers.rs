//! `aro tenant providers set|list|remove` as operators run them: the real `aro` binary against a
//! real core-engine (SQLite, 127.0.0.1 port 0). Secrets go in through the environment or
//! standard input and never come back out.

use std::io::Write;
use std::process::{Command, Stdio};

const SIGNING_KEY: &str = "cli-test-signing-key-0123456789abcdef0123456789";
const AUTH_TOKEN: &str = "cli-twilio-auth-token-7a1c9e";
const STRIPE_KEY: &str = "sk_test_cli0123456789abcdefKEY9";
const STRIPE_WHSEC: &str = "whsec_cli0123456789abcdefSEC8";

struct Core {
    config: std::path::PathBuf,
    shutdown: aro_http::CancellationToken,
    _dir: tempfile::TempDir,
}

async fn start_core() -> Core {
    let dir = tempfile::tempdir().unwrap();
    aro_security::crypto::MasterKey::create_file(&dir.path().join("master.key")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let text = format!(
        "[database]\nurl = \"sqlite://{}\"\n\n[auth]\nsigning_key = \"{SIGNING_KEY}\"\nmaster_key_file = \"master.key\"\n\n[services.core]\nurl = \"{url}\"\n",
        dir.path().join("aro.db").display()
    );
    let path = dir.path().join("aro.toml");
    std::fs::write(&path, text).unwrap();
    let config = aro_config::load(&path, &aro_config::Environment::empty()).unwrap();
    let store = aro_core_engine::storage::open(&config).await.unwrap();
    store.migrate_up().await.unwrap();
    store.close().await;
    let shutdown = aro_http::CancellationToken::new();
    tokio::spawn(aro_core_engine::run(config, listener, shutdown.clone()));
    Core {
        config: path,
        shutdown,
        _dir: dir,
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs `aro <args> --config <core's file>` with `env` and `stdin`; (success, stdout, stderr).
async fn aro(
    core: &Core,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aro"));
    cmd.args(args)
        .arg("--config")
        .arg(&core.config)
        .env("ARO_LOG__LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("run aro");
        if let Some(mut pipe) = child.stdin.take() {
            let _ = pipe.write_all(stdin.as_bytes());
        }
        let out = child.wait_with_output().expect("aro finishes");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_set_list_and_remove_a_tenants_own_credentials_without_secrets_on_the_command_line()
 {
    let core = start_core().await;
    let (ok, _, err) = aro(
        &core,
        &[
            "tenant",
            "add",
            "clinic-own",
            "--name",
            "Own Clinic",
            "--timezone",
            "America/Chicago",
        ],
        &[],
        "",
    )
    .await;
    assert!(ok, "{err}");
    let sid = "AC0123456789abcdef0123456789abcdef";

    // Twilio, the token from a variable.
    let (ok, out, err) = aro(
        &core,
        &[
            "tenant",
            "providers",
            "set",
            "clinic-own",
            "twilio",
            "--account-sid",
            sid,
            "--auth-token-env",
            "CLINIC_TOKEN",
            "--from-number",
            "+14155550100",
        ],
        &[("CLINIC_TOKEN", AUTH_TOKEN)],
        "",
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains(sid) && out.contains("\"tenant\""), "{out}");
    assert!(!out.contains(AUTH_TOKEN) && !err.contains(AUTH_TOKEN));

    // Stripe, both secrets from standard input, in order.
    let (ok, out, err) = aro(
        &core,
        &["tenant", "providers", "set", "clinic-own", "stripe"],
        &[],
        &format!("{STRIPE_KEY}\n{STRIPE_WHSEC}\n"),
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("sk_test_…KEY9"), "{out}");

    // The list shows which credentials apply, never a secret.
    let (ok, out, err) = aro(
        &core,
        &["tenant", "providers", "list", "clinic-own"],
        &[],
        "",
    )
    .await;
    assert!(ok, "{err}");
    for secret in [AUTH_TOKEN, STRIPE_KEY, STRIPE_WHSEC] {
        assert!(!out.contains(secret), "{out}");
    }
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sources: Vec<_> = listed["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["provider"].as_str().unwrap().to_owned(),
                p["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            ("twilio".to_owned(), "tenant".to_owned()),
            ("stripe".to_owned(), "tenant".to_owned()),
            ("calendly".to_owned(), "none".to_owned()),
        ]
    );

    // Refusals name the field or the flag.
    let (ok, _, err) = aro(
        &core,
        &[
            "tenant",
            "providers",
            "set",
            "clinic-own",
            "twilio",
            "--account-sid",
            "AC123",
            "--auth-token-env",
            "CLINIC_TOKEN",
            "--from-number",
            "+14155550100",
        ],
        &[("CLINIC_TOKEN", AUTH_TOKEN)],
        "",
    )
    .await;
    assert!(!ok && err.contains("accountSid"), "{err}");
    let (ok, _, err) = aro(
        &core,
        &[
            "tenant",
            "providers",
            "set",
            "clinic-own",
            "calendly",
            "--account-sid",
            sid,
        ],
        &[],
        "",
    )
    .await;
    assert!(!ok && err.contains("--account-sid"), "{err}");
    let (ok, _, err) = aro(
        &core,
        &["tenant", "providers", "set", "clinic-own", "calendly"],
        &[],
        "",
    )
    .await;
    assert!(!ok && err.contains("apiToken"), "{err}");

    // Removing falls back to the installation's (none here).
    let (ok, out, err) = aro(
        &core,
        &["tenant", "providers", "remove", "clinic-own", "twilio"],
        &[],
        "",
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("installation"), "{out}");
    let (ok, _, err) = aro(
        &core,
        &["tenant", "providers", "remove", "clinic-own", "twilio"],
        &[],
        "",
    )
    .await;
    assert!(!ok && err.contains("NO_TENANT_CREDENTIALS"), "{err}");
    let (ok, out, _) = aro(
        &core,
        &["tenant", "providers", "list", "clinic-own"],
        &[],
        "",
    )
    .await;
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["providers"][0]["source"], "none");
    assert_eq!(listed["providers"][1]["source"], "tenant");
}
