//! The operator's command as operators run it: the real `aro` binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn aro() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aro"));
    // Free ports, so the test never collides with a running ARO or another test.
    for key in ["CORE", "EXECUTOR", "BFF", "UI"] {
        cmd.env(format!("ARO_SERVICES__{key}__LISTEN"), "127.0.0.1:0");
    }
    // The generated aro.toml points the providers at the sandbox's default 127.0.0.1:7400;
    // `aro up` must make them follow the sandbox to the free port it actually binds (the
    // booking → reminder → reply test below fails if it does not).
    cmd.env("ARO_SANDBOX__LISTEN", "127.0.0.1:0");
    cmd.env("ARO_LOG__LEVEL", "warn");
    cmd
}

fn output(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run aro");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `aro up` and waits for its ready line; returns the child and the UI URL.
fn up(data_dir: &Path) -> (Child, String) {
    let (child, urls) = up_with_urls(data_dir);
    (child, urls["ui"].clone())
}

/// Starts `aro up`; returns the child and each service's address (`ui`, `core-engine`, …).
fn up_with_urls(data_dir: &Path) -> (Child, std::collections::HashMap<String, String>) {
    let mut child = aro()
        .args(["up", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn aro up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("aro up prints its ready line within 60 s");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the ready line names the UI address")
        .to_owned();
    let mut urls = std::collections::HashMap::new();
    urls.insert("ui".to_owned(), url);
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        let mut words = line.split_whitespace();
        if let (Some(name), Some(url)) = (words.next(), words.next()) {
            urls.insert(name.to_owned(), url.to_owned());
        }
        if urls.contains_key("sandbox") {
            break;
        }
    }
    (child, urls)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "aro up did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn aro_up_creates_its_data_dir_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("aro-data");
    let (mut child, ui) = up(&data);
    let health = plain_http::get(&format!("{ui}health"));
    assert!(health.contains("\"profile-ui-healthcare\""), "{health}");
    let status = terminate(&mut child);
    assert!(status.success(), "clean stop: {status:?}");

    #[cfg(unix)]
    {
        assert_eq!(mode(&data.join("aro.toml")), 0o600);
        assert_eq!(mode(&data.join("master.key")), 0o600);
    }
    let config = std::fs::read_to_string(data.join("aro.toml")).unwrap();
    assert!(config.contains("[sandbox]") && config.contains("enabled = true"));

    // A second start reuses the file instead of generating new secrets.
    let (mut child, _) = up(&data);
    assert!(terminate(&mut child).success());
    assert_eq!(
        std::fs::read_to_string(data.join("aro.toml")).unwrap(),
        config
    );

    // The schema is there, and can go down and up again.
    let (ok, out, err) = output(aro().args(["migrate", "status", "--data-dir"]).arg(&data));
    assert!(ok, "{err}");
    assert!(
        out.contains("0001") && out.contains("applied") && out.contains("schema is current"),
        "{out}"
    );
    let (ok, out, err) = output(aro().args(["migrate", "down", "--data-dir"]).arg(&data));
    assert!(ok, "{err}");
    assert!(out.contains("pending"), "{out}");
    let (ok, out, err) = output(aro().args(["migrate", "up", "--data-dir"]).arg(&data));
    assert!(ok, "{err}");
    assert!(out.contains("schema is current"), "{out}");

    // A token for the default tenant, alone on stdout, that core would accept.
    let (ok, out, err) = output(
        aro()
            .args([
                "token",
                "create",
                "--tenant",
                "default",
                "--scopes",
                "commands:write,events:read",
                "--ttl",
                "1h",
                "--data-dir",
            ])
            .arg(&data),
    );
    assert!(ok, "{err}");
    let token = out.trim();
    assert_eq!(token.split('.').count(), 3, "{out}");
    assert_eq!(out.lines().count(), 1);
    let (ok, _, err) = output(
        aro()
            .args([
                "token",
                "create",
                "--tenant",
                "default",
                "--scopes",
                "root",
                "--data-dir",
            ])
            .arg(&data),
    );
    assert!(!ok);
    assert!(err.contains("unknown scope"), "{err}");
}

#[test]
fn operators_add_tenants_move_the_sandbox_clock_and_rebuild_the_read_models() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("aro-data");
    let (mut child, urls) = up_with_urls(&data);
    let core = urls["core-engine"].clone();
    let cli = |args: &[&str]| {
        output(
            aro()
                .env("ARO_SERVICES__CORE__URL", &core)
                .args(args)
                .arg("--data-dir")
                .arg(&data),
        )
    };
    let (ok, out, err) = cli(&[
        "tenant",
        "add",
        "clinic-north",
        "--name",
        "North Clinic",
        "--timezone",
        "America/Chicago",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"clinic-north\"") && out.contains("America/Chicago"),
        "{out}"
    );
    let (ok, _, err) = cli(&[
        "tenant",
        "add",
        "clinic-north",
        "--name",
        "Again",
        "--timezone",
        "America/Chicago",
    ]);
    assert!(!ok && err.contains("TENANT_EXISTS"), "{err}");
    let (ok, _, err) = cli(&[
        "tenant",
        "add",
        "Bad Id",
        "--name",
        "X",
        "--timezone",
        "America/Chicago",
    ]);
    assert!(!ok && err.contains("id"), "{err}");
    let (ok, _, err) = cli(&[
        "tenant",
        "add",
        "clinic-x",
        "--name",
        "X",
        "--timezone",
        "Mars/Base",
    ]);
    assert!(!ok && err.contains("timezone"), "{err}");

    let (ok, before, err) = cli(&["clock", "now"]);
    assert!(ok, "{err}");
    let (ok, out, err) = cli(&["clock", "advance", "25h"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"firedTimers\"") && out.contains("\"settled\": true"),
        "{out}"
    );
    let (ok, _, err) = cli(&["clock", "set", "2001-01-01T00:00:00Z"]);
    assert!(!ok && err.contains("CLOCK_BACKWARDS"), "{err}");
    let (ok, after, _) = cli(&["clock", "now"]);
    assert!(ok && before != after);

    assert!(terminate(&mut child).success());
    let (ok, out, err) = cli(&["events", "rebuild"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("rebuilt from "), "{out}");
}

/// The product as a new user meets it: `aro up` with no credentials, a booking at the
/// sandbox's Calendly, the 48 h reminder at the sandbox's phone, a reply "C" and its
/// confirmation, all through the real binary (its generated configuration, minted service
/// tokens, the BFF's profile pack and the sandbox rebound to the port actually taken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aro_up_runs_booking_reminder_and_reply_against_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("aro-data");
    let (child, urls) = up_with_urls(&data);
    let mut child = KillOnDrop(child);
    let core = urls["core-engine"].clone();
    let sandbox = url::Url::parse(&urls["sandbox"]).expect("sandbox URL");
    let cli = |args: &[&str]| {
        output(
            aro()
                .env("ARO_SERVICES__CORE__URL", &core)
                .args(args)
                .arg("--data-dir")
                .arg(&data),
        )
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let phone = "+14155552671";
    let messages = || {
        let (http, mut url) = (http.clone(), sandbox.join("sandbox/messages").unwrap());
        url.query_pairs_mut().append_pair("to", phone);
        async move {
            let body: serde_json::Value = http
                .get(url)
                .send()
                .await
                .expect("messages")
                .json()
                .await
                .expect("messages JSON");
            body["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // Waits (bounded) until the phone has received a text containing `wanted`.
    let received = |wanted: &'static str| {
        let messages = &messages;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let texts = messages().await;
                if texts.iter().any(|t| t.contains(wanted)) {
                    return texts;
                }
                assert!(
                    Instant::now() < deadline,
                    "the phone never received {wanted:?}: {texts:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    // Monday 1 April 2030, 09:00 in New York.
    let (ok, out, err) = cli(&["clock", "set", "2030-04-01T13:00:00Z"]);
    assert!(ok, "{err}");
    assert!(out.contains("2030-04-01T13:00:00"), "{out}");

    // Ada books a checkup on Thursday 4 April at 10:00 (14:00Z) at the sandbox's Calendly.
    let resp = http
        .post(sandbox.join("sandbox/bookings").unwrap())
        .json(&serde_json::json!({
            "name": "Ada Lovelace", "phone": phone, "startsAt": "2030-04-04T14:00:00Z",
            "durationMinutes": 30, "eventType": "checkup", "timezone": "America/New_York",
        }))
        .send()
        .await
        .expect("book");
    assert_eq!(resp.status().as_u16(), 201);
    let booking: serde_json::Value = resp.json().await.expect("booking JSON");
    assert!(
        booking["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("bk_")),
        "{booking}"
    );

    // The signed `invitee.created` reaches core in the background: wait for its two reminders.
    let (ok, token, err) = cli(&[
        "token",
        "create",
        "--tenant",
        "default",
        "--scopes",
        "events:read",
        "--ttl",
        "1h",
    ]);
    assert!(ok, "{err}");
    let mut events = url::Url::parse(&core).unwrap().join("v1/events").unwrap();
    events
        .query_pairs_mut()
        .append_pair("eventType", "reminder.scheduled");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: serde_json::Value = http
            .get(events.clone())
            .bearer_auth(token.trim())
            .header("x-tenant-id", "default")
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("events JSON");
        let planned = body["events"].as_array().map_or(0, Vec::len);
        if planned == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "core never planned the two reminders: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Nothing at 13:59Z on Tuesday; the 48 h reminder at 14:00Z (10:00 in New York).
    let (ok, _, err) = cli(&["clock", "set", "2030-04-02T13:59:00Z"]);
    assert!(ok, "{err}");
    assert!(messages().await.is_empty(), "too early");
    let (ok, out, err) = cli(&["clock", "set", "2030-04-02T14:01:00Z"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"firedTimers\""), "{out}");
    let texts = received("Hi Ada, see you Thu, Apr 4 at 10:00 AM").await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].starts_with("Demo Clinic: ") && texts[0].contains("Reply C to confirm"),
        "{texts:?}"
    );

    // Ada replies C: a signed Twilio inbound webhook that core answers, then the confirmation.
    let resp = http
        .post(sandbox.join("sandbox/reply").unwrap())
        .json(&serde_json::json!({"from": phone, "body": "C"}))
        .send()
        .await
        .expect("reply");
    assert_eq!(resp.status().as_u16(), 200);
    let reply: serde_json::Value = resp.json().await.expect("reply JSON");
    assert_eq!(reply["webhook"]["status"], 200, "{reply}");
    let texts = received("thanks Ada, you're confirmed for Thu, Apr 4 at 10:00 AM").await;
    assert_eq!(texts.len(), 2, "{texts:?}");

    let status = terminate(&mut child.0);
    assert!(status.success(), "clean stop: {status:?}");
}

/// A started `aro up` that a failing test does not leave running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn classify_reads_replies_offline_with_the_built_in_pack() {
    for (text, intent) in [
        ("C", "confirm"),
        ("should I stop my medication?", "question"),
        ("STOP", "opt_out"),
    ] {
        let (ok, out, err) = output(aro().args(["classify", text]));
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["intent"], intent, "{text}");
        assert_eq!(v["source"], "rules");
    }
    let (ok, out, _) = output(aro().args(["classify", "S", "--lang", "es"]));
    assert!(
        ok && out.contains("\"confirm\"") && out.contains("\"es\""),
        "{out}"
    );
    let (ok, _, err) = output(aro().args(["classify", "C", "--tenant", "default"]));
    assert!(!ok && err.contains("--data-dir"), "{err}");
}

#[test]
fn an_invalid_configuration_stops_aro_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("aro-data");
    let (mut child, _) = up(&data);
    assert!(terminate(&mut child).success());
    let (ok, _, err) = output(
        aro()
            .env("ARO_DATABASE__MAX_CONNECTIONS", "several")
            .args(["up", "--data-dir"])
            .arg(&data),
    );
    assert!(!ok);
    assert!(err.contains("database.max_connections"), "{err}");
}

#[tokio::test]
async fn migrate_goes_up_down_and_up_on_postgres() {
    let Some(db) = aro_store::testing_pg::PgDatabase::create().await else {
        return;
    };
    let run = |action: &'static str| {
        let url = db.url.clone();
        let dir = tempfile::tempdir().unwrap();
        // --database-url needs no configuration file.
        output(
            aro()
                .args(["migrate", action, "--database-url", &url, "--data-dir"])
                .arg(dir.path()),
        )
    };
    let (ok, out, err) = run("up");
    assert!(ok, "{err}");
    assert!(
        out.contains("engine: postgres") && out.contains("schema is current"),
        "{out}"
    );
    let (ok, out, err) = run("down");
    assert!(ok, "{err}");
    assert!(out.contains("1 migration(s) pending"), "{out}");
    let (ok, out, _) = run("status");
    assert!(ok && out.contains("pending"), "{out}");
    let (ok, out, err) = run("up");
    assert!(ok, "{err}");
    assert!(out.contains("schema is current"), "{out}");
}

#[test]
fn migrate_needs_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = output(
        aro()
            .args(["migrate", "status", "--data-dir"])
            .arg(dir.path().join("none")),
    );
    assert!(!ok);
    assert!(err.contains("no configuration"), "{err}");
}

mod plain_http {
    /// A tiny blocking GET over std, so this test needs no HTTP client crate.
    pub fn get(url: &str) -> String {
        use std::io::{Read, Write};
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h, format!("/{p}")))
            .unwrap_or((rest, "/".into()));
        let mut stream = std::net::TcpStream::connect(host).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).unwrap();
        body
    }
}
