//! `ferrostack`: one binary for every way of running the cloud.
//!
//! - `ferrostack all-in-one --state-dir DIR`: every service in one process, SQLite
//!   and the in-process bus, ready in about a second;
//! - `ferrostack identity|image-api|network-server|compute-api|scheduler|conductor|
//!   compute|novncproxy|openvswitch-agent|linuxbridge-agent|dhcp-agent|l3-agent
//!   --config-file F`: one service alone (scale-out; `scripts/cloud` runs them all);
//! - `ferrostack seed …`: an operator's first steps on a scale-out cloud;
//! - `ferrostack bootstrap --config-file F`: what `keystone-manage bootstrap` does;
//! - `ferrostack fernet-rotate --config-file F`: rotate the token keys;
//! - `ferrostack config-sample`: every option, documented;
//! - `ferrostack bench …`: the speed figures.

mod all_in_one;
mod bench;
mod clouds;
mod logging;
mod messaging;
mod operator;
mod services;

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ferrostack", version, about = "An OpenStack-compatible cloud in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A service with an API: its INI file (OpenStack's sections and option
/// names), and where it listens if not where the file says.
#[derive(clap::Args)]
struct ServiceArgs {
    #[arg(long)]
    config_file: PathBuf,
    /// Address to listen on (overrides [DEFAULT] bind_host).
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Port to listen on (overrides [DEFAULT] bind_port).
    #[arg(long)]
    port: Option<u16>,
}

/// A service without an API: its INI file.
#[derive(clap::Args)]
struct ConfigFile {
    #[arg(long)]
    config_file: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process on embedded defaults.
    AllInOne(all_in_one::Args),
    /// Run the identity service (Keystone v3) alone.
    Identity(ServiceArgs),
    /// Run the networking service (Neutron v2.0 with ML2) alone.
    NetworkServer(ServiceArgs),
    /// Run the image service (Glance v2) alone.
    ImageApi(ServiceArgs),
    /// Run Nova's REST API (v2.1) alone; it reaches the conductor over RabbitMQ.
    ComputeApi(ServiceArgs),
    /// Run a scheduler (nova-scheduler); several may share the work.
    Scheduler(ConfigFile),
    /// Run a conductor (nova-conductor: the workflows); several may share the work.
    Conductor(ConfigFile),
    /// Run one hypervisor host (nova-compute) named `[DEFAULT] host`.
    Compute(ConfigFile),
    /// Run the noVNC console proxy (nova-novncproxy).
    Novncproxy(ServiceArgs),
    /// Run a host's Open vSwitch L2 agent (the state-only stand-in for now).
    OpenvswitchAgent(ConfigFile),
    /// Run a host's Linux bridge L2 agent (the state-only stand-in for now).
    LinuxbridgeAgent(ConfigFile),
    /// Run a DHCP agent (the state-only stand-in for now).
    DhcpAgent(ConfigFile),
    /// Run an L3 agent (the state-only stand-in for now).
    L3Agent(ConfigFile),
    /// Create the default domain, admin user and project, roles and catalog.
    Bootstrap {
        #[arg(long)]
        config_file: PathBuf,
        #[arg(long, env = "FERROSTACK_ADMIN_PASSWORD")]
        bootstrap_password: String,
        /// The identity endpoint's URL for the catalog, e.g. http://keystone:5000/v3
        #[arg(long)]
        bootstrap_public_url: String,
        #[arg(long, default_value = "RegionOne")]
        bootstrap_region_id: String,
        /// Another service's endpoint for the catalog, TYPE=URL (network, image,
        /// compute); repeat for each.
        #[arg(long = "endpoint", value_name = "TYPE=URL")]
        endpoints: Vec<String>,
    },
    /// What an operator does once a cloud is up: the compute service's user,
    /// the `public` network, a first image, the usual flavors; then writes
    /// `clouds.yaml` and `openrc` into --clouds-dir. Safe to run again.
    Seed {
        #[arg(long)]
        auth_url: String,
        #[arg(long, env = "FERROSTACK_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: String,
        /// The compute service user's (`nova`) password, as in nova.conf's [service_user].
        #[arg(long, env = "FERROSTACK_NOVA_PASSWORD", hide_env_values = true)]
        nova_password: String,
        #[arg(long)]
        network_url: String,
        #[arg(long)]
        image_url: String,
        /// The compute endpoint without /v2.1.
        #[arg(long)]
        compute_url: String,
        #[arg(long, default_value = "RegionOne")]
        region: String,
        #[arg(long)]
        clouds_dir: PathBuf,
        /// Wait until this many compute hosts report up.
        #[arg(long, default_value_t = 0)]
        expect_compute_hosts: usize,
    },
    /// Rotate the Fernet token keys (keystone-manage fernet_rotate).
    FernetRotate {
        #[arg(long)]
        config_file: PathBuf,
    },
    /// Print a sample configuration file with every option documented.
    ConfigSample,
    /// Measure ferrostack.
    #[command(subcommand)]
    Bench(bench::Bench),
}

use services::Agent;

impl Command {
    /// The name this process logs under.
    fn service(&self) -> &'static str {
        match self {
            Command::AllInOne(_) => "all-in-one",
            Command::Identity(_) => "identity",
            Command::NetworkServer(_) => "network-server",
            Command::ImageApi(_) => "image-api",
            Command::ComputeApi(_) => "compute-api",
            Command::Scheduler(_) => "scheduler",
            Command::Conductor(_) => "conductor",
            Command::Compute(_) => "compute",
            Command::Novncproxy(_) => "novncproxy",
            Command::OpenvswitchAgent(_) => Agent::Openvswitch.name(),
            Command::LinuxbridgeAgent(_) => Agent::Linuxbridge.name(),
            Command::DhcpAgent(_) => Agent::Dhcp.name(),
            Command::L3Agent(_) => Agent::L3.name(),
            Command::Bootstrap { .. } | Command::Seed { .. } | Command::FernetRotate { .. } => "manage",
            Command::ConfigSample => "config-sample",
            Command::Bench(_) => "bench",
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.command.service());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::AllInOne(args) => all_in_one::run(args).await,
            Command::Identity(a) => services::identity(&a.config_file, a.bind, a.port).await,
            Command::NetworkServer(a) => services::network_server(&a.config_file, a.bind, a.port).await,
            Command::ImageApi(a) => services::image_api(&a.config_file, a.bind, a.port).await,
            Command::ComputeApi(a) => services::compute_api(&a.config_file, a.bind, a.port).await,
            Command::Scheduler(c) => services::scheduler(&c.config_file).await,
            Command::Conductor(c) => services::conductor(&c.config_file).await,
            Command::Compute(c) => services::compute_host(&c.config_file).await,
            Command::Novncproxy(a) => services::novncproxy(&a.config_file, a.bind, a.port).await,
            Command::OpenvswitchAgent(c) => services::agent(Agent::Openvswitch, &c.config_file).await,
            Command::LinuxbridgeAgent(c) => services::agent(Agent::Linuxbridge, &c.config_file).await,
            Command::DhcpAgent(c) => services::agent(Agent::Dhcp, &c.config_file).await,
            Command::L3Agent(c) => services::agent(Agent::L3, &c.config_file).await,
            Command::Bootstrap {
                config_file,
                bootstrap_password,
                bootstrap_public_url,
                bootstrap_region_id,
                endpoints,
            } => {
                services::bootstrap(
                    &config_file,
                    bootstrap_password,
                    bootstrap_public_url,
                    bootstrap_region_id,
                    &endpoints,
                )
                .await
            }
            Command::Seed {
                auth_url,
                admin_password,
                nova_password,
                network_url,
                image_url,
                compute_url,
                region,
                clouds_dir,
                expect_compute_hosts,
            } => {
                let urls = services::SeedUrls { auth_url, network_url, image_url, compute_url };
                services::seed(&urls, &admin_password, &nova_password, &region, &clouds_dir, expect_compute_hosts).await
            }
            Command::FernetRotate { config_file } => services::fernet_rotate(&config_file),
            Command::ConfigSample => {
                print!("{}", services::config_sample());
                Ok(())
            }
            Command::Bench(b) => bench::run(b).await,
        }
    })
}
