//! nova-compute: one hypervisor host. [`Host`] serves the compute host's bus
//! interface (`compute_rpc::host`) over a virt driver (`virt`), heartbeats and
//! reports its resources, and asks the conductor for everything it needs to
//! know: this crate cannot reach a database (it does not depend on one).

pub mod config;
pub mod manager;
pub mod virt;

use std::sync::Arc;
use std::time::Duration;

use bus::Bus;
use compute_rpc::session::ServiceSession;
use compute_rpc::{ComputeError, Result};

pub use config::HostConfig;
pub use manager::Host;

/// Starts one compute host per name, each with its own hypervisor.
pub async fn start_hosts(
    config: &HostConfig,
    bus: &Bus,
    session: Arc<ServiceSession>,
    names: &[String],
) -> Result<Vec<Arc<Host>>> {
    if let Some(dir) = &config.fake_state_path {
        std::fs::create_dir_all(dir).map_err(|e| ComputeError::Internal(format!("creating {}: {e}", dir.display())))?;
    }
    let mut hosts = Vec::new();
    for name in names {
        let driver: Arc<dyn virt::ComputeDriver> = match config.driver.as_str() {
            "fake" | "fake.FakeDriver" => Arc::new(
                virt::fake::FakeDriver::new(
                    name,
                    config.resources.clone(),
                    Duration::from_millis(config.fake_spawn_ms),
                    config.fake_fail_hosts.contains(name),
                    config.fake_state_path.clone(),
                )
                .with_addresses(config.addresses.clone()),
            ),
            "netns" => Arc::new(
                virt::netns::NetnsDriver::new(name, config.resources.clone(), &config.instances_path)
                    .await
                    .map_err(|e| ComputeError::Internal(format!("the netns driver: {e}")))?
                    .with_my_ip(&config.addresses.my_ip),
            ),
            other => {
                return Err(ComputeError::Internal(format!(
                    "compute_driver {other:?} is not built into this ferrostack (available: fake, netns)"
                )))
            }
        };
        let host =
            Arc::new(Host::new(name, driver, bus, session.clone(), config.resources.clone(), config.report_interval));
        hosts.push(host);
    }
    // Each start asks the conductor twice (heartbeat, first report): a
    // process simulating hundreds of hosts starts them side by side.
    let mut starting = tokio::task::JoinSet::new();
    for host in &hosts {
        starting.spawn(host.clone().start());
    }
    while let Some(started) = starting.join_next().await {
        started.map_err(|e| ComputeError::Internal(format!("starting a host: {e}")))??;
    }
    Ok(hosts)
}
