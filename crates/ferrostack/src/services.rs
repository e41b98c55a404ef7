//! Running one service from a config file (the scale-out form), and the admin
//! commands that go with it.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::Context;
use common::config::{sample, Opt};
use common::Config;
use identity::{Bootstrap, CatalogEntry, Identity, IdentityConfig};

pub const BIND_HOST: Opt =
    Opt { section: "DEFAULT", name: "bind_host", default: "0.0.0.0", help: "Address the service listens on." };

pub const BIND_PORT: Opt = Opt {
    section: "DEFAULT",
    name: "bind_port",
    default: "5000",
    help: "Port the service listens on (identity: 5000).",
};

pub fn config_sample() -> String {
    let mut opts = vec![BIND_HOST, BIND_PORT];
    opts.extend_from_slice(identity::config::OPTS);
    sample(&opts)
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("reading {}", path.display()))
}

/// Resolves when the process is asked to stop (SIGINT or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

pub async fn identity(config_file: &Path, bind: Option<IpAddr>, port: Option<u16>) -> anyhow::Result<()> {
    let config = load(config_file)?;
    let host: IpAddr = match bind {
        Some(b) => b,
        None => BIND_HOST.get(&config)?,
    };
    let port: u16 = match port {
        Some(p) => p,
        None => BIND_PORT.get(&config)?,
    };
    let identity = Identity::open(IdentityConfig::from_config(&config)?).await?;
    let listener = api::server::bind(SocketAddr::new(host, port)).await?;
    tracing::info!(service = "identity", address = %listener.local_addr()?, "listening");
    api::server::serve(listener, identity::api::router(identity), shutdown_signal()).await?;
    Ok(())
}

pub async fn bootstrap(config_file: &Path, password: String, public_url: String, region: String) -> anyhow::Result<()> {
    let config = load(config_file)?;
    let identity = Identity::open(IdentityConfig::from_config(&config)?).await?;
    let entry = CatalogEntry { service_type: "identity".into(), name: "keystone".into(), url: public_url };
    identity::bootstrap(&identity, &Bootstrap { admin_password: password, region, catalog: vec![entry] }).await?;
    println!("bootstrap complete");
    Ok(())
}

pub fn fernet_rotate(config_file: &Path) -> anyhow::Result<()> {
    let config = load(config_file)?;
    let c = IdentityConfig::from_config(&config)?;
    let repo = identity::fernet_keys::KeyRepository::open(&c.key_repository, c.max_active_keys)?;
    repo.rotate()?;
    println!("rotated the keys in {}", c.key_repository.display());
    Ok(())
}
