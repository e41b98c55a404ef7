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
    help: "Port the service listens on (default: the service's standard port, e.g. identity 5000, image 9292).",
};

pub const REPORT_INTERVAL: Opt =
    Opt { section: "agent", name: "report_interval", default: "30", help: "Seconds between an agent's state reports." };

pub fn config_sample() -> String {
    let mut opts = vec![BIND_HOST, BIND_PORT, REPORT_INTERVAL];
    opts.extend_from_slice(crate::messaging::OPTS);
    opts.extend_from_slice(identity::config::OPTS);
    opts.extend_from_slice(network::config::OPTS);
    opts.extend_from_slice(image::config::OPTS);
    opts.extend_from_slice(compute::config::OPTS);
    opts.extend_from_slice(compute_host::config::OPTS);
    opts.extend_from_slice(compute::scheduler::OPTS);
    opts.extend_from_slice(api::keystone::OPTS);
    sample(&opts)
}

/// The network server's side of the agents (its RPC topics), and the in-tree
/// stand-in agents of this host: an Open vSwitch L2 agent that acknowledges
/// ports, a DHCP agent and an L3 agent. They report state and wire nothing.
pub async fn start_network_agents(net: &std::sync::Arc<network::Network>, host: &str) -> anyhow::Result<()> {
    use network::agents::reporter::StandIn;
    use serde_json::json;
    network::agents::rpc::serve(net.clone(), host).await?;
    let interval = std::time::Duration::from_secs(30);
    let stand_ins = [
        StandIn {
            agent_type: "Open vSwitch agent".into(),
            binary: "ferrostack-openvswitch-agent".into(),
            topic: "N/A".into(),
            host: host.into(),
            configurations: json!({"bridge_mappings": {"public": "br-ex", "physnet1": "br-physnet1"},
                "tunnel_types": ["vxlan", "gre"], "tunneling_ip": "127.0.0.1"}),
            availability_zone: None,
            report_interval: interval,
            acks_ports: true,
        },
        StandIn {
            agent_type: network::api::agents::DHCP_AGENT.into(),
            binary: "ferrostack-dhcp-agent".into(),
            topic: "dhcp_agent".into(),
            host: host.into(),
            configurations: json!({"networks": 0}),
            availability_zone: Some("nova".into()),
            report_interval: interval,
            acks_ports: false,
        },
        StandIn {
            agent_type: network::api::agents::L3_AGENT.into(),
            binary: "ferrostack-l3-agent".into(),
            topic: "l3_agent".into(),
            host: host.into(),
            configurations: json!({"agent_mode": "legacy"}),
            availability_zone: Some("nova".into()),
            report_interval: interval,
            acks_ports: false,
        },
    ];
    for a in stand_ins {
        a.start(net.notifier.bus().clone()).await?;
    }
    // Let the first reports land, so bindings find the agents at once.
    for _ in 0..100 {
        if net.store.list(&network::store::AGENT, None).await?.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}

/// A stand-in L2 agent for a simulated compute host, so ports bound there
/// come up as they would with a real agent.
pub async fn stand_in_l2_agent(net: &std::sync::Arc<network::Network>, host: &str) -> anyhow::Result<()> {
    use network::agents::reporter::StandIn;
    StandIn {
        agent_type: "Open vSwitch agent".into(),
        binary: "ferrostack-openvswitch-agent".into(),
        topic: "N/A".into(),
        host: host.into(),
        configurations: serde_json::json!({"bridge_mappings": {"public": "br-ex", "physnet1": "br-physnet1"},
            "tunnel_types": ["vxlan", "gre"], "tunneling_ip": "127.0.0.1", "datapath": "none"}),
        availability_zone: None,
        report_interval: std::time::Duration::from_secs(30),
        acks_ports: true,
    }
    .start(net.notifier.bus().clone())
    .await?;
    Ok(())
}

/// `ferrostack network-server --config-file F`: networking alone, validating
/// tokens with the identity service named in `[keystone_authtoken]`.
pub async fn network_server(config_file: &Path, bind: Option<IpAddr>, port: Option<u16>) -> anyhow::Result<()> {
    let config = load(config_file)?;
    let net = network::Network::open(
        network::NetworkConfig::from_config(&config)?,
        crate::messaging::bus(&config, "network-server", "neutron")?,
    )
    .await?;
    start_network_agents(&net, &network::config::host(&config)).await?;
    let tokens = remote_tokens(&config)?;
    let listener = listen(&config, "network", bind, port, 9696).await?;
    api::server::serve(listener, network::api::router(net, tokens), shutdown_signal()).await?;
    Ok(())
}

/// Tokens validated by the identity service named in `[keystone_authtoken]`.
fn remote_tokens(config: &Config) -> anyhow::Result<std::sync::Arc<api::TokenCache>> {
    let validator = api::keystone::KeystoneValidator::from_config(config)?;
    let ttl = validator.cache_time;
    Ok(std::sync::Arc::new(api::TokenCache::new(std::sync::Arc::new(validator), ttl)))
}

/// `ferrostack image-api --config-file F`: the image service alone.
pub async fn image_api(config_file: &Path, bind: Option<IpAddr>, port: Option<u16>) -> anyhow::Result<()> {
    let config = load(config_file)?;
    let images = image::ImageService::open(image::ImageConfig::from_config(&config)?).await?;
    let tokens = remote_tokens(&config)?;
    let listener = listen(&config, "image", bind, port, 9292).await?;
    api::server::serve(listener, image::api::router(images, tokens), shutdown_signal()).await?;
    Ok(())
}

/// The service's listener: the address and port given on the command line, else
/// `[DEFAULT] bind_host` / `bind_port`, else the service's standard port.
async fn listen(
    config: &Config,
    service: &str,
    bind: Option<IpAddr>,
    port: Option<u16>,
    standard_port: u16,
) -> anyhow::Result<tokio::net::TcpListener> {
    let host: IpAddr = match bind {
        Some(b) => b,
        None => BIND_HOST.get(config)?,
    };
    let port: u16 = match port {
        Some(p) => p,
        None => config.raw("DEFAULT", "bind_port").map(str::parse).transpose()?.unwrap_or(standard_port),
    };
    let listener = api::server::bind(SocketAddr::new(host, port))
        .await
        .with_context(|| format!("binding {service} to {host}:{port}"))?;
    tracing::info!(service, address = %listener.local_addr()?, "listening");
    Ok(listener)
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
    let identity = Identity::open(IdentityConfig::from_config(&config)?).await?;
    let listener = listen(&config, "identity", bind, port, 5000).await?;
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
