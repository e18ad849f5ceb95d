//! The crash drill: the executor, as its own process, is killed with SIGKILL in the middle of
//! a batch of reminders and started again, twice over. Nothing may be lost and nothing sent twice, counted
//! at the sandbox's phone.
//!
//! A kill leaves executions leased to a dead process: some not started, some whose send
//! reached Twilio without the result reaching core. Their leases (5 s here) lapse, core offers
//! them again with a higher `attempt`, and the new process looks each one up at Twilio before
//! sending, reporting the message it finds instead of sending a second.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aro_tests::{Db, both_engines};
use serde_json::json;
use support::{Drill, per_recipient, phones, wait_until};

const REMINDERS: usize = 200;

/// The executor is killed this many times, each once it has sent at least 10 more messages.
const KILLS: usize = 2;

/// Calls held at Twilio (the sandbox's `slow` fault) when each kill lands.
const IN_FLIGHT_AT_KILL: u32 = 4;

/// An executor process, killed when dropped (a failing test leaves nothing running).
struct ExecutorProcess {
    child: Child,
}

impl ExecutorProcess {
    fn start(config: &Path, log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_aro-openclaw-executor"))
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start the executor process");
        Self { child }
    }

    /// SIGKILL: no shutdown, no draining, no last results.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for ExecutorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many log lines of a process contain `needle`.
fn log_lines(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(needle))
        .count()
}

async fn crash_drill(db: Db) {
    let Some(drill) = Drill::start(db).await else {
        return;
    };
    let mut config = drill.config();
    config.services.executor.lease_secs = 5;
    config.log.level = "info".into();
    config.log.format = aro_config::LogFormat::Json;
    let dir: PathBuf = drill.env.dir.path().to_owned();
    let config_path = dir.join("executor.toml");
    std::fs::write(&config_path, toml::to_string(&config).expect("config")).expect("write config");

    let numbers = phones(REMINDERS);
    drill.book_many("default", &numbers, 50).await;

    // Fire the reminders first, so each executor works through a full queue and holds a batch
    // of leases when it is killed.
    drill.advance("3h").await;
    let mut process = ExecutorProcess::start(&config_path, &dir.join("executor-0.log"));
    let mut sent_at_kills = Vec::new();
    for round in 1..=KILLS {
        let target = drill.messages(None).await.len() + 10;
        wait_until(
            Duration::from_secs(60),
            "the batch is under way",
            || async { drill.messages(None).await.len() >= target },
        )
        .await;
        // Hold the next requests at Twilio, so the kill lands with calls in flight there: the
        // sends may or may not be performed after the caller is gone (the ambiguous case).
        drill
            .fault(json!({"provider": "twilio", "mode": "slow", "forRequests": IN_FLIGHT_AT_KILL}))
            .await;
        wait_until(
            Duration::from_secs(30),
            "requests are held at Twilio",
            || async {
                drill.active_faults().await["faults"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
            },
        )
        .await;
        process.kill();
        let sent = drill.messages(None).await.len();
        assert!(
            sent < REMINDERS,
            "killed mid-batch ({sent} of {REMINDERS} sent)"
        );
        sent_at_kills.push(sent);
        process = ExecutorProcess::start(&config_path, &dir.join(format!("executor-{round}.log")));
    }
    wait_until(
        Duration::from_secs(120),
        "every reminder is recorded as sent",
        || async { drill.events("default", "message.sent").await.len() >= REMINDERS },
    )
    .await;
    let counts = per_recipient(&drill.messages(None).await);
    assert_eq!(counts.len(), REMINDERS, "none lost");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "none sent twice: {twice:?}");
    assert_eq!(
        drill.events("default", "message.sent").await.len(),
        REMINDERS
    );
    assert!(
        drill
            .events("default", "execution.dead_lettered")
            .await
            .is_empty()
    );

    let logs: Vec<PathBuf> = (1..=KILLS)
        .map(|n| dir.join(format!("executor-{n}.log")))
        .collect();
    let reoffered: usize = logs.iter().map(|l| log_lines(l, "handed out before")).sum();
    let found: usize = logs.iter().map(|l| log_lines(l, "not sending again")).sum();
    eprintln!(
        "crash drill ({db:?}): killed at {sent_at_kills:?} messages sent; the restarted \
         executors looked up {reoffered} re-offered executions and found {found} already sent"
    );
    // Every call held at Twilio belonged to an execution the killed process had not reported.
    assert!(
        reoffered >= KILLS * IN_FLIGHT_AT_KILL as usize,
        "executions leased to killed processes came back with a higher attempt"
    );
    drop(process);
}

both_engines!(
    a_killed_executor_loses_nothing_and_sends_nothing_twice,
    |db| async move { crash_drill(db).await }
);
