//! The openclaw-executor binary: `aro-openclaw-executor --config aro.toml`.

fn main() -> std::process::ExitCode {
    aro_http::bootstrap::main(
        "openclaw-executor",
        |c| c.services.executor.listen,
        aro_openclaw_executor::run,
    )
}
