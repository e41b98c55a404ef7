//! The all-in-one cloud: every service built so far in one process, SQLite files
//! and keys under one state directory, the in-process bus, at OpenStack's
//! standard ports. A second start on the same directory keeps every row and
//! every key.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use common::Config;
use compute::{Compute, ComputeConfig};
use identity::{Bootstrap, CatalogEntry, Identity, IdentityConfig};
use image::{ImageConfig, ImageService};
use network::{Network, NetworkConfig};
use rand::Rng;

use crate::clouds::{self, Credentials};
use crate::operator::Operator;
use crate::services::{self, shutdown_signal};

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
    /// Networking (Neutron) port; 0 picks a free one.
    #[arg(long, default_value_t = 9696)]
    pub network_port: u16,
    /// Image (Glance) port; 0 picks a free one.
    #[arg(long, default_value_t = 9292)]
    pub image_port: u16,
    /// Compute (Nova) port; 0 picks a free one.
    #[arg(long, default_value_t = 8774)]
    pub compute_port: u16,
    /// Console proxy (noVNC websocket) port; 0 picks a free one.
    #[arg(long, default_value_t = 6080)]
    pub console_port: u16,
    /// The admin password; generated and kept in the state directory when absent.
    #[arg(long, env = "FERROSTACK_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Optional INI file whose options override the all-in-one defaults.
    #[arg(long)]
    pub config_file: Option<PathBuf>,
    /// Keep the databases on this MariaDB/MySQL or PostgreSQL server instead of
    /// SQLite files: an oslo.db URL of a user that may create databases, with no
    /// database (mysql+pymysql://root:pw@127.0.0.1). Each service gets
    /// `<database-prefix><service>`, created when missing.
    #[arg(long, env = "FERROSTACK_DATABASE_SERVER", hide_env_values = true)]
    pub database_server: Option<String>,
    #[arg(long, default_value = "ferrostack_")]
    pub database_prefix: String,
}

/// Where the services' databases live.
enum Databases {
    /// SQLite files in the state directory.
    Files(PathBuf),
    /// `<prefix><service>` databases on a server.
    Server { url: String, prefix: String },
}

impl Databases {
    /// The `[database] connection` of `service`, its database created if need be.
    async fn connection(&self, service: &str) -> anyhow::Result<String> {
        match self {
            Databases::Files(state) => Ok(format!("sqlite:///{}", state.join(format!("{service}.db")).display())),
            Databases::Server { url, prefix } => db::Db::ensure_database(url, &format!("{prefix}{service}"))
                .await
                .with_context(|| format!("creating the {service} database")),
        }
    }
}

/// The admin password: given, or the one kept from an earlier start, or a new one.
fn admin_password(state: &Path, given: Option<String>) -> anyhow::Result<String> {
    if let Some(p) = given {
        clouds::write_private(&state.join("admin-password"), &p)?;
        return Ok(p);
    }
    secret(state, "admin-password")
}

/// A secret kept in the state directory: the one from an earlier start, or a
/// new random one.
fn secret(state: &Path, name: &str) -> anyhow::Result<String> {
    let file = state.join(name);
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

/// The all-in-one's defaults: every database and key under the state
/// directory, and a networking layout that works on one host (VXLAN project
/// networks, a flat `public` physical network, VLANs on `physnet1`).
fn defaults(config: &mut Config, state: &Path) {
    let path = |name: &str| state.join(name).display().to_string();
    config.set_default("fernet_tokens", "key_repository", path("fernet-keys"));
    config.set_default("credential", "key_repository", path("credential-keys"));
    config.set_default("ml2", "tenant_network_types", "vxlan");
    config.set_default("ml2_type_vxlan", "vni_ranges", "1:1000");
    config.set_default("ml2_type_gre", "tunnel_id_ranges", "1:1000");
    config.set_default("ml2_type_vlan", "network_vlan_ranges", "physnet1:100:200,public");
    config.set_default("ml2_type_flat", "flat_networks", "public,physnet1");
    config.set_default("glance_store", "filesystem_store_datadir", path("images"));
    // Two simulated compute hosts, so moves and anti-affinity have somewhere
    // to go; resizes may stay put, as on devstack.
    config.set_default("fake", "hosts", "2");
    // The fake hypervisors keep their guests across restarts, as real ones do.
    config.set_default("fake", "state_path", path("fake-hypervisors"));
    config.set_default("DEFAULT", "allow_resize_to_same_host", "true");
}

/// A service's configuration: the shared one, with its own database.
async fn with_database(config: &Config, databases: &Databases, service: &str) -> anyhow::Result<Config> {
    let mut c = config.clone();
    c.set("database", "connection", databases.connection(service).await?);
    Ok(c)
}

async fn listen(bind: IpAddr, port: u16, service: &str) -> anyhow::Result<tokio::net::TcpListener> {
    api::server::bind(SocketAddr::new(bind, port)).await.with_context(|| format!("binding {service} to {bind}:{port}"))
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
    defaults(&mut config, &state);
    let databases = match &args.database_server {
        Some(url) => Databases::Server { url: url.clone(), prefix: args.database_prefix.clone() },
        None => Databases::Files(state.clone()),
    };
    if config.raw("database", "connection").is_none() {
        config.set("database", "connection", databases.connection("identity").await?);
    }
    let password = admin_password(&state, args.admin_password.clone())?;
    let host = public_host(args.bind);
    let bus = crate::messaging::bus(&config, "all-in-one", "openstack")?;

    let identity_listener = listen(args.bind, args.identity_port, "identity").await?;
    let network_listener = listen(args.bind, args.network_port, "networking").await?;
    let image_listener = listen(args.bind, args.image_port, "image").await?;
    let compute_listener = listen(args.bind, args.compute_port, "compute").await?;
    let console_listener = listen(args.bind, args.console_port, "console proxy").await?;
    let url = |l: &tokio::net::TcpListener| -> anyhow::Result<String> {
        Ok(format!("http://{host}:{}", l.local_addr()?.port()))
    };
    let auth_url = format!("{}/v3", url(&identity_listener)?);
    let network_url = url(&network_listener)?;
    let image_url = url(&image_listener)?;
    let compute_url = url(&compute_listener)?;

    let identity = Identity::open(IdentityConfig::from_config(&config)?).await?;
    // Each service has its own database beside identity's.
    let network_config = with_database(&config, &databases, "network").await?;
    let network = Network::open(NetworkConfig::from_config(&network_config)?, bus.clone()).await?;
    let images =
        ImageService::open(ImageConfig::from_config(&with_database(&config, &databases, "image").await?)?).await?;
    let agent_host = network::config::host(&network_config);
    services::start_network_agents(&network, &agent_host).await?;

    let region = "RegionOne";
    let catalog = vec![
        CatalogEntry { service_type: "identity".into(), name: "keystone".into(), url: auth_url.clone() },
        CatalogEntry { service_type: "network".into(), name: "neutron".into(), url: network_url.clone() },
        CatalogEntry { service_type: "image".into(), name: "glance".into(), url: image_url.clone() },
        CatalogEntry { service_type: "compute".into(), name: "nova".into(), url: format!("{compute_url}/v2.1") },
    ];
    identity::bootstrap(&identity, &Bootstrap { admin_password: password.clone(), region: region.into(), catalog })
        .await
        .context("bootstrapping identity")?;

    let tokens = identity.token_cache.clone();
    let identity_server =
        tokio::spawn(api::server::serve(identity_listener, identity::api::router(identity), shutdown_signal()));
    let network_server = tokio::spawn(api::server::serve(
        network_listener,
        network::api::router(network.clone(), tokens.clone()),
        shutdown_signal(),
    ));
    let image_server =
        tokio::spawn(api::server::serve(image_listener, image::api::router(images, tokens.clone()), shutdown_signal()));
    let operator = Operator::login(&auth_url, &password).await.context("logging in as admin")?;
    operator.public_network(&network_url).await.context("creating the public network")?;
    operator.default_image(&image_url).await.context("registering the default image")?;

    // Compute acts as its own service user, as Nova does.
    let service_password = secret(&state, "compute-service-password")?;
    operator.service_user(&auth_url, "nova", &service_password).await.context("creating the compute service user")?;
    let mut compute_config = with_database(&config, &databases, "compute").await?;
    compute_config.set_default("service_user", "auth_url", auth_url.clone());
    compute_config.set_default("service_user", "password", service_password);
    let console_url = format!("{}/vnc_auto.html", url(&console_listener)?);
    compute_config.set_default("vnc", "novncproxy_base_url", console_url);
    let host_config = compute_host::HostConfig::from_config(&compute_config)?;
    let compute_config = ComputeConfig::from_config(&compute_config)?;
    let hosts = host_config.host_names();
    for h in hosts.iter().filter(|h| **h != agent_host) {
        services::stand_in_l2_agent(&network, h).await?;
    }
    let compute = Compute::start_controller(compute_config.clone(), bus.clone(), saga::Hooks::from_env()).await?;
    compute_host::start_hosts(&host_config, &bus, compute.api.session.clone(), &hosts).await?;
    let compute_server = tokio::spawn(api::server::serve(
        compute_listener,
        compute::api::router(compute.api.clone(), tokens),
        shutdown_signal(),
    ));
    let console_server = tokio::spawn(api::server::serve(
        console_listener,
        compute::console_proxy::router(compute.api.store.clone(), compute_config.novnc_web.clone()),
        shutdown_signal(),
    ));
    operator.default_flavors(&compute_url).await.context("creating the default flavors")?;

    let creds = Credentials { auth_url: &auth_url, password: &password, region };
    let clouds_file = state.join("clouds.yaml");
    clouds::write_private(&clouds_file, &clouds::clouds_yaml(&creds))?;
    clouds::write_private(&state.join("openrc"), &clouds::openrc(&creds))?;
    println!(
        "ferrostack all-in-one ready in {} ms: identity {auth_url}, network {network_url}, image {image_url}, compute {compute_url}/v2.1 ({} hosts); use it with `export OS_CLIENT_CONFIG_FILE={}` and `openstack --os-cloud ferrostack …`, or `source {}`",
        started.elapsed().as_millis(),
        hosts.len(),
        clouds_file.display(),
        state.join("openrc").display(),
    );
    identity_server.await??;
    network_server.await??;
    image_server.await??;
    compute_server.await??;
    console_server.await??;
    Ok(())
}
