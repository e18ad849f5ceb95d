//! Finding the configuration: `--config FILE`, else `<data-dir>/aro.toml`.

use anyhow::{Context, Result, bail};
use aro_config::{Config, Environment};
use clap::Args;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATA_DIR: &str = "./aro-data";

#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// The configuration file (default: <data-dir>/aro.toml).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The data folder `aro up` uses.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR, global = true)]
    pub data_dir: PathBuf,
}

impl ConfigArgs {
    pub fn path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| self.data_dir.join("aro.toml"))
    }

    pub fn load(&self) -> Result<Config> {
        let path = self.path();
        if !path.exists() {
            bail!(
                "no configuration at {} (run `aro up` once to create one, or pass --config)",
                path.display()
            );
        }
        aro_config::load(&path, &Environment::from_process())
            .with_context(|| format!("reading {}", path.display()))
    }
}

/// `path` made absolute (against the current folder) with `.` components removed.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .context("reading the current folder")?
            .join(path)
    };
    Ok(joined.components().collect())
}
