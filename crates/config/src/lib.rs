//! `aro.toml`: one typed schema for every service, read from a file and overridden from the
//! environment (`ARO_` + the key path joined by `__`). Everything is validated before a service
//! starts; an invalid file or value stops the process with a message that names the key.
//! Secrets are a type of their own so they never reach `Debug`, logs or error messages.

mod generate;
mod load;
mod model;
mod secret;

pub use generate::{SandboxSecrets, generate_for_data_dir};
pub use load::{ConfigError, Environment, load, load_str};
pub use model::*;
pub use secret::Secret;
