//! The profile-ui-healthcare binary: `aro-profile-ui-healthcare --config aro.toml`.

fn main() -> std::process::ExitCode {
    aro_http::bootstrap::main(
        "profile-ui-healthcare",
        |c| c.services.ui.listen,
        aro_profile_ui_healthcare::run,
    )
}
