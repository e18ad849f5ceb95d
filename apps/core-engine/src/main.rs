//! The core-engine binary: `aro-core-engine --config aro.toml`.

fn main() -> std::process::ExitCode {
    aro_http::bootstrap::main(
        "core-engine",
        |c| c.services.core.listen,
        aro_core_engine::run,
    )
}
