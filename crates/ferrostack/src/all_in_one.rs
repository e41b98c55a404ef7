//! The all-in-one cloud: every service built so far in one process, SQLite files
//! and keys under one state directory, at OpenStack's standard ports. A second
//! start on the same directory keeps every row and every key.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use common::Config;
use identity::{Bootstrap, CatalogEntry, Identity, IdentityConfig};
use rand::Rng;

use crate::clouds::{self, Credentials};
use crate::services::shutdown_signal;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Where the databases, keys, clouds.yaml and openrc live.
    #[arg(long, default_value = "./state")]
    pub state_dir: PathBuf,
    /// Address every service listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Identity (Keystone) port; 0 picks a free one.
    #[arg(long, default_value_t = 5000)]
    pub identity_port: u16,
    /// The admin password; generated and kept in the state directory when absent.
    #[arg(long, env = "FERROSTACK_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Optional INI file whose options override the all-in-one defaults.
    #[arg(long)]
    pub config_file: Option<PathBuf>,
}

/// The admin password: given, or the one kept from an earlier start, or a new one.
fn admin_password(state: &Path, given: Option<String>) -> anyhow::Result<String> {
    let file = state.join("admin-password");
    if let Some(p) = given {
        clouds::write_private(&file, &p)?;
        return Ok(p);
    }
    if let Ok(p) = std::fs::read_to_string(&file) {
        let p = p.trim().to_string();
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let p: String =
        rand::thread_rng().sample_iter(rand::distributions::Alphanumeric).take(24).map(char::from).collect();
    clouds::write_private(&file, &p)?;
    Ok(p)
}

/// The host clients should use in URLs: the bind address, or loopback when
/// listening on every address.
fn public_host(bind: IpAddr) -> String {
    match bind {
        IpAddr::V4(a) if a.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        IpAddr::V6(a) if a.is_unspecified() => "[::1]".into(),
        IpAddr::V6(a) => format!("[{a}]"),
        IpAddr::V4(a) => a.to_string(),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("creating state directory {}", args.state_dir.display()))?;
    let state = std::fs::canonicalize(&args.state_dir)?;
    let mut config = match &args.config_file {
        Some(f) => Config::load(f)?,
        None => Config::empty(),
    };
    config.set_default("database", "connection", format!("sqlite:///{}", state.join("identity.db").display()));
    config.set_default("fernet_tokens", "key_repository", state.join("fernet-keys").display().to_string());
    config.set_default("credential", "key_repository", state.join("credential-keys").display().to_string());
    let password = admin_password(&state, args.admin_password.clone())?;

    let identity = Identity::open(IdentityConfig::from_config(&config)?).await?;
    let listener = api::server::bind(SocketAddr::new(args.bind, args.identity_port))
        .await
        .with_context(|| format!("binding identity to {}:{}", args.bind, args.identity_port))?;
    let port = listener.local_addr()?.port();
    let host = public_host(args.bind);
    let auth_url = format!("http://{host}:{port}/v3");
    let region = "RegionOne";
    let catalog =
        vec![CatalogEntry { service_type: "identity".into(), name: "keystone".into(), url: auth_url.clone() }];
    identity::bootstrap(&identity, &Bootstrap { admin_password: password.clone(), region: region.into(), catalog })
        .await
        .context("bootstrapping identity")?;

    let creds = Credentials { auth_url: &auth_url, password: &password, region };
    let clouds_file = state.join("clouds.yaml");
    clouds::write_private(&clouds_file, &clouds::clouds_yaml(&creds))?;
    clouds::write_private(&state.join("openrc"), &clouds::openrc(&creds))?;

    let server = tokio::spawn(api::server::serve(listener, identity::api::router(identity), shutdown_signal()));
    println!(
        "ferrostack all-in-one ready in {} ms: identity {auth_url}; use it with `export OS_CLIENT_CONFIG_FILE={}` and `openstack --os-cloud ferrostack …`, or `source {}`",
        started.elapsed().as_millis(),
        clouds_file.display(),
        state.join("openrc").display(),
    );
    server.await??;
    Ok(())
}
