//! The service files in deploy/ start ARO with arguments the binaries really take, and the
//! systemd units pass systemd's own checks where systemd-analyze is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(deploy(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The `ExecStart=` line's arguments after the program.
fn exec_start_args(unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    line.split_whitespace().skip(1).map(str::to_owned).collect()
}

/// Runs `aro <args> --help`: clap refuses unknown subcommands and flags before printing help.
fn aro_accepts(args: &[String]) {
    let mut with_help: Vec<&str> = args.iter().map(String::as_str).collect();
    with_help.push("--help");
    let out = Command::new(env!("CARGO_BIN_EXE_aro"))
        .args(&with_help)
        .output()
        .expect("run aro");
    assert!(
        out.status.success(),
        "aro {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_systemd_unit_runs_aro_up_with_a_data_dir() {
    let args = exec_start_args(&read("systemd/aro.service"));
    assert_eq!(args, ["up", "--data-dir", "/var/lib/aro"]);
    aro_accepts(&args);
}

#[test]
fn the_launchd_daemon_runs_aro_up_with_a_data_dir() {
    let plist = read("launchd/org.aro.up.plist");
    let arguments = plist
        .split("<key>ProgramArguments</key>")
        .nth(1)
        .and_then(|rest| rest.split("</array>").next())
        .expect("ProgramArguments");
    let args: Vec<String> = arguments
        .split("<string>")
        .skip(1)
        .filter_map(|s| s.split("</string>").next())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        args,
        [
            "/usr/local/bin/aro",
            "up",
            "--data-dir",
            "/usr/local/var/aro"
        ]
    );
    aro_accepts(&args[1..]);
}

#[test]
fn the_split_units_give_each_service_its_config_file() {
    let unit = read("systemd/aro@.service");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    // Every service binary takes `--config FILE` (crates/http/src/bootstrap.rs).
    assert_eq!(line, "/usr/local/bin/aro-%i --config /etc/aro/aro.toml");
}

#[test]
fn systemd_accepts_the_units() {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed: unit syntax not checked here");
        return;
    };
    if !probe.status.success() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, installed_as) in [
        ("systemd/aro.service", "aro.service"),
        ("systemd/aro@.service", "aro@core-engine.service"),
    ] {
        // Point the unit at a program that exists here; systemd checks it is executable.
        let unit = read(file)
            .replace("/usr/local/bin/aro-%i", env!("CARGO_BIN_EXE_aro"))
            .replace("/usr/local/bin/aro", env!("CARGO_BIN_EXE_aro"));
        let path = dir.path().join(installed_as);
        std::fs::write(&path, unit).expect("write unit");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze");
        let complaints = String::from_utf8_lossy(&out.stderr);
        // Complaints about the host's own units (none on a container) are not ours.
        let ours: Vec<&str> = complaints
            .lines()
            .filter(|l| l.contains(installed_as))
            .collect();
        assert!(
            out.status.success() && ours.is_empty(),
            "{file}: {complaints}"
        );
    }
}
