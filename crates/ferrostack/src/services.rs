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

pub use network_agents::config::REPORT_INTERVAL;

pub fn config_sample() -> String {
    let mut opts = vec![BIND_HOST, BIND_PORT];
    opts.extend_from_slice(network_agents::config::OPTS);
    opts.extend_from_slice(crate::messaging::OPTS);
    opts.extend_from_slice(db::DATABASE_OPTS);
    opts.extend_from_slice(identity::config::OPTS);
    opts.extend_from_slice(network::config::OPTS);
    opts.extend_from_slice(image::config::OPTS);
    opts.extend_from_slice(compute::config::OPTS);
    opts.extend_from_slice(compute_host::config::OPTS);
    opts.extend_from_slice(compute::scheduler::OPTS);
    opts.extend_from_slice(api::keystone::OPTS);
    sample(&opts)
}

/// The agents, by the subcommand that runs one. The Linux bridge agent wires
/// its host for real (`network_agents::datapath::linuxbridge`), and so does
/// the DHCP agent given an `interface_driver` (`network_agents::dhcp`: one
/// dnsmasq per network); the others are still stand-ins that report their
/// state (and, for Open vSwitch, acknowledge the ports bound on their host)
/// and wire nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    Openvswitch,
    Linuxbridge,
    Dhcp,
    L3,
}

impl Agent {
    /// Its subcommand, and its name on the bus.
    pub fn name(self) -> &'static str {
        match self {
            Agent::Openvswitch => "openvswitch-agent",
            Agent::Linuxbridge => "linuxbridge-agent",
            Agent::Dhcp => "dhcp-agent",
            Agent::L3 => "l3-agent",
        }
    }

    /// What it reports as, reporting every `interval`.
    fn identity(self, interval: std::time::Duration) -> network_agents::AgentIdentity {
        let (agent_type, binary, topic, availability_zone) = match self {
            Agent::Openvswitch => (network_rpc::OPENVSWITCH_AGENT, "ferrostack-openvswitch-agent", "N/A", None),
            Agent::Linuxbridge => (network_rpc::LINUXBRIDGE_AGENT, "ferrostack-linuxbridge-agent", "N/A", None),
            Agent::Dhcp => (network_rpc::DHCP_AGENT, "ferrostack-dhcp-agent", "dhcp_agent", Some("nova")),
            Agent::L3 => (network_rpc::L3_AGENT, "ferrostack-l3-agent", "l3_agent", Some("nova")),
        };
        network_agents::AgentIdentity {
            agent_type: agent_type.into(),
            binary: binary.into(),
            topic: topic.into(),
            availability_zone: availability_zone.map(Into::into),
            report_interval: interval,
        }
    }

    /// The stand-in of this kind on `hosts`, reporting every `interval`.
    pub fn stand_in(self, hosts: &[String], interval: std::time::Duration) -> network_agents::Agent {
        use serde_json::json;
        let configurations = match self {
            Agent::Openvswitch => json!({"bridge_mappings": {"public": "br-ex", "physnet1": "br-physnet1"},
                "tunnel_types": ["vxlan", "gre"], "tunneling_ip": ""}),
            Agent::Linuxbridge => json!({"interface_mappings": {"public": "eth-public", "physnet1": "eth-physnet1"},
                "tunnel_types": ["vxlan"], "tunneling_ip": ""}),
            Agent::Dhcp => json!({"networks": 0}),
            Agent::L3 => json!({"agent_mode": "legacy"}),
        };
        network_agents::Agent {
            identity: self.identity(interval),
            hosts: hosts.to_vec(),
            datapath: std::sync::Arc::new(network_agents::datapath::standin::StandIn::new(configurations)),
            firewall: std::sync::Arc::new(network_agents::firewall::noop::Noop),
            wires_ports: matches!(self, Agent::Openvswitch | Agent::Linuxbridge),
        }
    }
}

/// The network server's side of the agents (its RPC topics), and the stand-in
/// agents of this host: Open vSwitch, DHCP and L3.
pub async fn start_network_agents(net: &std::sync::Arc<network::Network>, host: &str) -> anyhow::Result<()> {
    network::agents::rpc::serve(net.clone(), host).await?;
    let interval = std::time::Duration::from_secs(30);
    for a in [Agent::Openvswitch, Agent::Dhcp, Agent::L3] {
        a.stand_in(&[host.to_string()], interval).start(net.notifier.bus().clone()).await?;
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
    let hosts = [host.to_string()];
    Agent::Openvswitch.stand_in(&hosts, std::time::Duration::from_secs(30)).start(net.notifier.bus().clone()).await?;
    Ok(())
}

/// `ferrostack network-server --config-file F`: networking alone, validating
/// tokens with the identity service named in `[keystone_authtoken]`.
pub async fn network_server(config_file: &Path, bind: Option<IpAddr>, port: Option<u16>) -> anyhow::Result<()> {
    let config = load(config_file)?;
    let bus = crate::messaging::bus(&config, "network-server", "neutron")?;
    let net = network::Network::open(network::NetworkConfig::from_config(&config)?, bus.clone()).await?;
    let host = network::config::host(&config);
    if bus.is_in_process() {
        // No agent in another process can reach an in-process bus: run this
        // host's stand-ins here, as the all-in-one does.
        start_network_agents(&net, &host).await?;
    } else {
        network::agents::rpc::serve(net.clone(), &host).await?;
    }
    let tokens = remote_tokens(&config)?;
    let listener = listen(&config, "network", bind, port, 9696).await?;
    api::server::serve(listener, network::api::router(net, tokens), shutdown_signal()).await?;
    Ok(())
}

/// What a controller-side compute process (`service`) starts from: its file,
/// nova's options in it, the bus and the compute database.
async fn nova_process(
    config_file: &Path,
    service: &str,
) -> anyhow::Result<(Config, compute::ComputeConfig, bus::Bus, compute::store::Store)> {
    let config = load(config_file)?;
    let compute_config = compute::ComputeConfig::from_config(&config)?;
    let bus = crate::messaging::bus(&config, service, "nova")?;
    let store = compute::store::Store::open(&compute_config.database).await?;
    Ok((config, compute_config, bus, store))
}

/// `ferrostack compute-api --config-file F`: Nova's REST API alone; it asks
/// the conductor over the bus and validates tokens with identity.
pub async fn compute_api(config_file: &Path, bind: Option<IpAddr>, port: Option<u16>) -> anyhow::Result<()> {
    let (config, compute_config, bus, store) = nova_process(config_file, "compute-api").await?;
    let api = compute::api(store, &compute_config, &bus);
    let tokens = remote_tokens(&config)?;
    let listener = listen(&config, "compute", bind, port, 8774).await?;
    api::server::serve(listener, compute::api::router(api, tokens), shutdown_signal()).await?;
    Ok(())
}

/// `ferrostack scheduler --config-file F`: picks hosts for the conductors.
pub async fn scheduler(config_file: &Path) -> anyhow::Result<()> {
    let (_, compute_config, bus, store) = nova_process(config_file, "scheduler").await?;
    compute::start_scheduler(store, &compute_config, &bus).await?;
    tracing::info!(host = %compute_config.host, "scheduler ready");
    shutdown_signal().await;
    Ok(())
}

/// `ferrostack conductor --config-file F`: runs the workflows (sagas), resuming
/// the ones this `[DEFAULT] host` had started.
pub async fn conductor(config_file: &Path) -> anyhow::Result<()> {
    let (_, compute_config, bus, store) = nova_process(config_file, "conductor").await?;
    compute::start_conductor(store, &compute_config, bus, saga::Hooks::from_env()).await?;
    tracing::info!(host = %compute_config.host, "conductor ready");
    shutdown_signal().await;
    Ok(())
}

/// `ferrostack compute --config-file F`: one hypervisor host, `[DEFAULT] host`
/// (or `[fake] hosts` simulated ones), with no database of its own.
pub async fn compute_host(config_file: &Path) -> anyhow::Result<()> {
    let config = load(config_file)?;
    let host_config = compute_host::HostConfig::from_config(&config)?;
    let compute_config = compute::ComputeConfig::from_config(&config)?;
    let bus = crate::messaging::bus(&config, "compute", "nova")?;
    let session = std::sync::Arc::new(compute::session::ServiceSession::new(compute_config.service_user));
    let names = host_config.host_names();
    compute_host::start_hosts(&host_config, &bus, session, &names).await?;
    tracing::info!(hosts = names.len(), "compute ready");
    shutdown_signal().await;
    Ok(())
}

/// `ferrostack novncproxy --config-file F`: the console proxy; it reads the
/// tokens the compute API hands out from the compute database.
pub async fn novncproxy(config_file: &Path, bind: Option<IpAddr>, port: Option<u16>) -> anyhow::Result<()> {
    let config = load(config_file)?;
    let compute_config = compute::ComputeConfig::from_config(&config)?;
    let store = compute::store::Store::open(&compute_config.database).await?;
    let listener = listen(&config, "novncproxy", bind, port, 6080).await?;
    let router = compute::console_proxy::router(store, compute_config.novnc_web.clone());
    api::server::serve(listener, router, shutdown_signal()).await?;
    Ok(())
}

/// `ferrostack <kind>-agent --config-file F`: one agent of `[DEFAULT] host`,
/// reporting every `[agent] report_interval` to the network server.
pub async fn agent(kind: Agent, config_file: &Path) -> anyhow::Result<()> {
    let config = load(config_file)?;
    let name = kind.name();
    let bus = crate::messaging::bus(&config, name, "neutron")?;
    if bus.is_in_process() {
        anyhow::bail!("{name} needs [DEFAULT] transport_url: it reaches the network server over RabbitMQ");
    }
    let interval = std::time::Duration::from_secs(REPORT_INTERVAL.get(&config)?);
    let host = network::config::host(&config);
    if kind == Agent::Dhcp {
        let dhcp = network_agents::config::DhcpAgentConfig::from_config(&config)?;
        if dhcp.serves {
            let local = network_agents::dhcp::LocalDhcp::new(&dhcp.confs, dhcp.dnsmasq, netdev::Netlink::connect()?)?;
            let agent = network_agents::dhcp::agent::DhcpAgent {
                identity: kind.identity(interval),
                host: host.clone(),
                dhcp: local,
                resync_interval: dhcp.resync_interval,
            };
            agent.start(bus).await?;
            tracing::info!(agent = %name, %host, confs = %dhcp.confs.display(), "DHCP agent ready");
            shutdown_signal().await;
            return Ok(());
        }
    }
    let agent = if kind == Agent::Linuxbridge {
        let lb = network_agents::config::LinuxBridgeConfig::from_config(&config)?;
        let datapath = network_agents::datapath::linuxbridge::LinuxBridge::new(lb).await?;
        let firewall: std::sync::Arc<dyn network_agents::firewall::Firewall> =
            match network_agents::config::FirewallDriver::from_config(&config)? {
                network_agents::config::FirewallDriver::Nftables => {
                    std::sync::Arc::new(network_agents::firewall::nftables::Nftables::new(None).await?)
                }
                network_agents::config::FirewallDriver::Noop => {
                    std::sync::Arc::new(network_agents::firewall::noop::Noop)
                }
            };
        network_agents::Agent {
            identity: kind.identity(interval),
            hosts: vec![host],
            datapath: std::sync::Arc::new(datapath),
            firewall,
            wires_ports: true,
        }
    } else {
        // Beside a compute process simulating many hypervisors (`[fake]
        // hosts`), the stand-in serves each of them; else `[DEFAULT] host`.
        let simulated = compute_host::HostConfig::from_config(&config)?;
        let hosts = if simulated.fake_hosts > 1 { simulated.host_names() } else { vec![host] };
        kind.stand_in(&hosts, interval)
    };
    let hosts = agent.hosts.clone();
    agent.start(bus).await?;
    tracing::info!(agent = %name, hosts = hosts.len(), "agent ready");
    shutdown_signal().await;
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

pub async fn bootstrap(
    config_file: &Path,
    password: String,
    public_url: String,
    region: String,
    endpoints: &[String],
) -> anyhow::Result<()> {
    let config = load(config_file)?;
    let identity = Identity::open(IdentityConfig::from_config(&config)?).await?;
    let mut catalog = vec![CatalogEntry { service_type: "identity".into(), name: "keystone".into(), url: public_url }];
    for e in endpoints {
        let (kind, url) = e.split_once('=').with_context(|| format!("--endpoint {e:?}: expected TYPE=URL"))?;
        let name = match kind {
            "network" => "neutron",
            "image" => "glance",
            "compute" => "nova",
            other => anyhow::bail!("--endpoint {other}=…: the types are network, image and compute"),
        };
        catalog.push(CatalogEntry { service_type: kind.into(), name: name.into(), url: url.into() });
    }
    identity::bootstrap(&identity, &Bootstrap { admin_password: password, region, catalog }).await?;
    println!("bootstrap complete");
    Ok(())
}

/// The public endpoints `seed` works through.
pub struct SeedUrls {
    pub auth_url: String,
    pub network_url: String,
    pub image_url: String,
    /// Without `/v2.1`.
    pub compute_url: String,
}

/// `ferrostack seed`: the all-in-one's first-start steps, for a cloud whose
/// services run on their own.
pub async fn seed(
    urls: &SeedUrls,
    admin_password: &str,
    nova_password: &str,
    region: &str,
    clouds_dir: &Path,
    compute_hosts: usize,
) -> anyhow::Result<()> {
    let operator =
        crate::operator::Operator::login(&urls.auth_url, admin_password).await.context("logging in as admin")?;
    operator.service_user(&urls.auth_url, "nova", nova_password).await.context("creating the compute service user")?;
    operator.public_network(&urls.network_url).await.context("creating the public network")?;
    operator.default_image(&urls.image_url).await.context("registering the default image")?;
    operator.default_flavors(&urls.compute_url).await.context("creating the default flavors")?;
    operator
        .wait_for_compute_hosts(&urls.compute_url, compute_hosts, std::time::Duration::from_secs(120))
        .await
        .context("waiting for the compute hosts")?;
    let creds = crate::clouds::Credentials { auth_url: &urls.auth_url, password: admin_password, region };
    crate::clouds::write_private(&clouds_dir.join("clouds.yaml"), &crate::clouds::clouds_yaml(&creds))?;
    crate::clouds::write_private(&clouds_dir.join("openrc"), &crate::clouds::openrc(&creds))?;
    println!("seeded; use it with `export OS_CLIENT_CONFIG_FILE={}`", clouds_dir.join("clouds.yaml").display());
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
