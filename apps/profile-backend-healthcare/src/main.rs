//! The profile-backend-healthcare binary: `aro-profile-backend-healthcare --config aro.toml`.

fn main() -> std::process::ExitCode {
    aro_http::bootstrap::main(
        "profile-backend-healthcare",
        |c| c.services.bff.listen,
        aro_profile_backend_healthcare::run,
    )
}
