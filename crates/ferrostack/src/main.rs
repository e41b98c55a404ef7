//! `ferrostack`: one binary for every way of running the cloud.
//!
//! - `ferrostack all-in-one --state-dir DIR`: every service in one process, SQLite
//!   and the in-process bus, ready in about a second;
//! - `ferrostack identity|network-server|image-api --config-file F`: one service alone
//!   (scale-out);
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

#[derive(Subcommand)]
enum Command {
    /// Run every service in one process on embedded defaults.
    AllInOne(all_in_one::Args),
    /// Run the identity service (Keystone v3) alone.
    Identity {
        /// INI file with keystone.conf's sections and option names.
        #[arg(long)]
        config_file: PathBuf,
        /// Address to listen on (overrides [DEFAULT] bind_host).
        #[arg(long)]
        bind: Option<IpAddr>,
        /// Port to listen on (overrides [DEFAULT] bind_port).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run the networking service (Neutron v2.0 with ML2) alone.
    NetworkServer {
        /// INI file with neutron.conf's and ml2_conf.ini's sections and names.
        #[arg(long)]
        config_file: PathBuf,
        #[arg(long)]
        bind: Option<IpAddr>,
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run the image service (Glance v2) alone.
    ImageApi {
        /// INI file with glance-api.conf's sections and option names.
        #[arg(long)]
        config_file: PathBuf,
        #[arg(long)]
        bind: Option<IpAddr>,
        #[arg(long)]
        port: Option<u16>,
    },
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

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::AllInOne(args) => all_in_one::run(args).await,
            Command::Identity { config_file, bind, port } => services::identity(&config_file, bind, port).await,
            Command::NetworkServer { config_file, bind, port } => {
                services::network_server(&config_file, bind, port).await
            }
            Command::ImageApi { config_file, bind, port } => services::image_api(&config_file, bind, port).await,
            Command::Bootstrap { config_file, bootstrap_password, bootstrap_public_url, bootstrap_region_id } => {
                services::bootstrap(&config_file, bootstrap_password, bootstrap_public_url, bootstrap_region_id).await
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
