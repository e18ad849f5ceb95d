//! `aro migrate up|down|status`: the database schema, on either engine.

use crate::common::ConfigArgs;
use anyhow::{Context, Result};
use aro_config::Config;
use aro_security::crypto::{Keyring, MasterKey};
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct MigrateArgs {
    #[command(subcommand)]
    action: Action,
    /// The database to migrate (default: the configuration's `database.url`).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "ARO_DATABASE__URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Apply every pending migration.
    Up,
    /// Revert the newest migrations.
    Down {
        #[arg(long, default_value_t = 1)]
        steps: usize,
    },
    /// List migrations and whether each is applied.
    Status,
}

fn config_for(args: &MigrateArgs) -> Result<Config> {
    match &args.database_url {
        Some(url) => {
            // Migrations never touch sealed data: a throwaway signing key and keyring will do.
            let text = format!(
                "[database]\nurl = {url:?}\n[auth]\nsigning_key = \"{}\"\nmaster_key_file = \"unused\"\n",
                "m".repeat(32)
            );
            aro_config::load_str(
                &text,
                "--database-url",
                std::path::Path::new("."),
                &aro_config::Environment::empty(),
            )
            .context("--database-url")
        }
        None => args.config.load(),
    }
}

pub async fn run(args: MigrateArgs) -> Result<ExitCode> {
    let config = config_for(&args)?;
    let store =
        aro_core_engine::storage::open_with_keyring(&config, Keyring::new(MasterKey::generate()))
            .await
            .context("opening the database")?;
    let result = match args.action {
        Action::Up => {
            store.migrate_up().await.context("migrating up")?;
            print_status(&store).await
        }
        Action::Down { steps } => {
            store.migrate_down(steps).await.context("migrating down")?;
            print_status(&store).await
        }
        Action::Status => print_status(&store).await,
    };
    store.close().await;
    result
}

async fn print_status(store: &aro_store::Store) -> Result<ExitCode> {
    let status = store
        .migration_status()
        .await
        .context("reading migration status")?;
    println!("engine: {}", store.engine().as_str());
    for m in &status.migrations {
        println!(
            "{:04}  {:<24} {}",
            m.version,
            m.description,
            if m.applied { "applied" } else { "pending" }
        );
    }
    println!(
        "{}",
        if status.is_current() {
            "schema is current".to_owned()
        } else {
            format!("{} migration(s) pending", status.pending())
        }
    );
    Ok(ExitCode::SUCCESS)
}
