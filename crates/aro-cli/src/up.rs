//! `aro up`: the whole product in one process on the embedded default. On first start it writes
//! `aro.toml` (generated secrets, sandbox on, mode 0600) and the master key file (0600) into the
//! data folder and creates the tenant `default`; every start migrates the database, wires each
//! service's token, starts core-engine, the executor, the BFF, the UI (and the sandbox when
//! enabled), waits until all are ready, prints the UI address, and stops cleanly on Ctrl-C or
//! SIGTERM.

use crate::common::absolute;
use anyhow::{Context, Result, bail};
use aro_config::{Config, Environment, Secret};
use aro_http::CancellationToken;
use aro_security::crypto::MasterKey;
use aro_security::tokens::{Scope, TenantGrant, TokenSigner};
use aro_workflow::Clock;
use aro_workflow::tenants::{self, NewTenant};
use clap::Args;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use url::Url;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where ARO keeps its database, configuration and master key (created if missing).
    #[arg(long, value_name = "DIR", default_value = crate::common::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// Tokens minted at start live this long; a restart mints new ones.
const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes `aro.toml` and the master key on first start; returns the configuration path.
pub fn prepare_data_dir(data_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    restrict_dir(data_dir)?;
    let config_path = data_dir.join("aro.toml");
    let key_path = data_dir.join("master.key");
    if config_path.exists() {
        return Ok(config_path);
    }
    if key_path.exists() {
        bail!(
            "{} exists but {} does not: restore the configuration rather than generating a new one",
            key_path.display(),
            config_path.display()
        );
    }
    let (_, text) = aro_config::generate_for_data_dir(data_dir);
    write_private(&config_path, text.as_bytes())?;
    MasterKey::create_file(&key_path)
        .with_context(|| format!("creating {}", key_path.display()))?;
    eprintln!(
        "aro: first start: wrote {} and {}",
        config_path.display(),
        key_path.display()
    );
    Ok(config_path)
}

#[cfg(unix)]
fn restrict_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))
}

#[cfg(not(unix))]
fn restrict_dir(_: &Path) -> Result<()> {
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

fn mint(signer: &TokenSigner, subject: &str, scopes: &[Scope]) -> Result<Secret> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let token = signer
        .issue(
            subject,
            aro_core_engine::auth::AUDIENCE,
            scopes,
            TenantGrant::All,
            SERVICE_TOKEN_TTL,
            now,
        )
        .context("minting a service token")?;
    Ok(Secret::new(token))
}

fn http_url(addr: SocketAddr) -> Result<Url> {
    Url::parse(&format!("http://{addr}")).context("service URL")
}

struct Bound {
    core: TcpListener,
    executor: TcpListener,
    bff: TcpListener,
    ui: TcpListener,
    sandbox: Option<TcpListener>,
}

async fn bind(config: &Config) -> Result<Bound> {
    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} for {what} (is another ARO running?)")
        })
    };
    Ok(Bound {
        core: bind(config.services.core.listen, "core-engine").await?,
        executor: bind(config.services.executor.listen, "openclaw-executor").await?,
        bff: bind(config.services.bff.listen, "profile-backend-healthcare").await?,
        ui: bind(config.services.ui.listen, "profile-ui-healthcare").await?,
        sandbox: if config.sandbox.enabled {
            Some(bind(config.sandbox.listen, "the provider sandbox").await?)
        } else {
            None
        },
    })
}

async fn wait_ready(services: &[(&str, Url)], shutdown: &CancellationToken) -> Result<bool> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let deadline = Instant::now() + READY_TIMEOUT;
    for (name, url) in services {
        let ready = url.join("ready")?;
        loop {
            if shutdown.is_cancelled() {
                return Ok(false);
            }
            if let Ok(r) = client.get(ready.clone()).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} did not become ready within {}s",
                    READY_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(true)
}

pub async fn run(args: UpArgs) -> Result<ExitCode> {
    let data_dir = absolute(&args.data_dir)?;
    let config_path = prepare_data_dir(&data_dir)?;
    let mut config = aro_config::load(&config_path, &Environment::from_process())
        .with_context(|| format!("reading {}", config_path.display()))?;
    aro_telemetry::init_logging(
        &config.log.level,
        aro_http::bootstrap::log_style(config.log.format),
    );
    let _ = aro_telemetry::metrics();

    let store = aro_core_engine::storage::open(&config)
        .await
        .context("opening the database")?;
    store.migrate_up().await.context("migrating the database")?;
    let (tenant, created) = tenants::create(
        &store,
        &Clock::default(),
        NewTenant::demo_default(),
        "aro up",
    )
    .await
    .context("creating the default tenant")?;
    if created {
        tracing::info!(tenant = %tenant.id, "created the default tenant");
    }

    let signer = TokenSigner::new(config.auth.signing_key.expose().as_bytes())
        .context("auth.signing_key")?;
    if config.services.executor.core_token.is_none() {
        config.services.executor.core_token = Some(mint(
            &signer,
            "openclaw-executor",
            &[Scope::ExecutionsClaim, Scope::EventsRead],
        )?);
    }
    if config.services.bff.core_token.is_none() {
        config.services.bff.core_token = Some(mint(
            &signer,
            "profile-backend-healthcare",
            &[Scope::CommandsWrite, Scope::EventsRead],
        )?);
    }

    let bound = bind(&config).await?;
    // All four run here: they reach each other at the addresses actually bound.
    let default_public = config.server.public_base_url == config.services.core.url;
    config.services.core.url = http_url(bound.core.local_addr()?)?;
    config.services.bff.url = http_url(bound.bff.local_addr()?)?;
    config.services.ui.bff_url = config.services.bff.url.clone();
    if default_public {
        config.server.public_base_url = config.services.core.url.clone();
    }
    let ui_url = http_url(bound.ui.local_addr()?)?;
    // Providers that point at the sandbox — at its configured address, or at the default one
    // `aro up` wrote into aro.toml when the address was later changed (ARO_SANDBOX__LISTEN) —
    // point at the bound one. A provider pointing anywhere else (a real account) is left alone.
    if let Some(listener) = &bound.sandbox {
        let configured = http_url(config.sandbox.listen)?;
        let generated = http_url(aro_config::SandboxConfig::default_listen())?;
        let actual = http_url(listener.local_addr()?)?;
        config.sandbox.listen = listener.local_addr()?;
        let p = &mut config.providers;
        for base in [
            p.twilio.as_mut().map(|t| &mut t.base_url),
            p.stripe.as_mut().map(|s| &mut s.base_url),
            p.calendly.as_mut().map(|c| &mut c.base_url),
        ]
        .into_iter()
        .flatten()
        {
            if *base == configured || *base == generated {
                *base = actual.clone();
            }
        }
    }
    let mut services = vec![
        ("core-engine", config.services.core.url.clone()),
        ("openclaw-executor", http_url(bound.executor.local_addr()?)?),
        (
            "profile-backend-healthcare",
            config.services.bff.url.clone(),
        ),
        ("profile-ui-healthcare", ui_url.clone()),
    ];
    if bound.sandbox.is_some() {
        services.push(("sandbox", http_url(config.sandbox.listen)?));
    }

    let shutdown = CancellationToken::new();
    let mut tasks: JoinSet<(&'static str, Result<(), String>)> = JoinSet::new();
    {
        let (c, s, t) = (config.clone(), store.clone(), shutdown.clone());
        tasks.spawn(async move {
            (
                "core-engine",
                aro_core_engine::run_with_store(c, s, bound.core, t)
                    .await
                    .map_err(|e| e.to_string()),
            )
        });
        let (c, t) = (config.clone(), shutdown.clone());
        tasks.spawn(async move {
            (
                "openclaw-executor",
                aro_openclaw_executor::run(c, bound.executor, t)
                    .await
                    .map_err(|e| e.to_string()),
            )
        });
        let (c, t) = (config.clone(), shutdown.clone());
        tasks.spawn(async move {
            (
                "profile-backend-healthcare",
                aro_profile_backend_healthcare::run(c, bound.bff, t)
                    .await
                    .map_err(|e| e.to_string()),
            )
        });
        let (c, t) = (config.clone(), shutdown.clone());
        tasks.spawn(async move {
            (
                "profile-ui-healthcare",
                aro_profile_ui_healthcare::run(c, bound.ui, t)
                    .await
                    .map_err(|e| e.to_string()),
            )
        });
    }
    if let Some(listener) = bound.sandbox {
        let settings =
            aro_sandbox::SandboxSettings::from_config(&config).context("sandbox settings")?;
        let t = shutdown.clone();
        tasks.spawn(async move {
            (
                "sandbox",
                aro_sandbox::run(settings, listener, t)
                    .await
                    .map_err(|e| e.to_string()),
            )
        });
    }
    {
        let t = shutdown.clone();
        tokio::spawn(async move {
            aro_http::shutdown_signal().await;
            tracing::info!("shutdown requested");
            t.cancel();
        });
    }

    let mut failed = false;
    tokio::select! {
        ready = wait_ready(&services, &shutdown) => {
            match ready {
                Ok(true) => {
                    println!("ARO is ready: open {ui_url} (data in {})", data_dir.display());
                    for (name, url) in &services {
                        println!("  {name:<28} {url}");
                    }
                    let _ = std::io::stdout().flush();
                }
                Ok(false) => {}
                Err(e) => {
                    eprintln!("aro: {e:#}");
                    failed = true;
                    shutdown.cancel();
                }
            }
        }
        Some(done) = tasks.join_next() => {
            report(done, &mut failed);
            shutdown.cancel();
        }
    }
    // Run until a signal, or until any service stops (which stops the others).
    tokio::select! {
        _ = shutdown.cancelled() => {}
        Some(done) = tasks.join_next() => {
            report(done, &mut failed);
            shutdown.cancel();
        }
    }
    while let Some(done) = tasks.join_next().await {
        report(done, &mut failed);
    }
    store.close().await;
    eprintln!("aro: stopped");
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn report(
    done: Result<(&'static str, Result<(), String>), tokio::task::JoinError>,
    failed: &mut bool,
) {
    match done {
        Ok((_, Ok(()))) => {}
        Ok((name, Err(e))) => {
            eprintln!("aro: {name} stopped: {e}");
            *failed = true;
        }
        Err(e) => {
            eprintln!("aro: a service crashed: {e}");
            *failed = true;
        }
    }
}
