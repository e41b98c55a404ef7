//! Nova v2.1: the compute API, the scheduler, the conductor and the compute
//! hosts with their virt drivers, talking over the bus.
//!
//! Start reading at [`Compute::start`] (how the parts are put together),
//! `api::router` (every route), `conductor` (builds and moves),
//! `scheduler` (filters and weighers) and `manager` (a host's work).

pub mod api;
pub mod clients;
pub mod conductor;
pub mod config;
pub mod console_proxy;
pub mod error;
pub mod keygen;
pub mod manager;
pub mod model;
pub mod rpc;
pub mod scheduler;
pub mod schema;
pub mod store;
pub mod virt;

use std::sync::Arc;
use std::time::Duration;

use bus::Bus;

pub use config::ComputeConfig;
use error::Result;

/// The compute service's parts running in one process.
pub struct Compute {
    pub api: Arc<api::ComputeApi>,
    pub conductor: Arc<conductor::Conductor>,
    pub scheduler: Arc<scheduler::service::SchedulerService>,
    pub hosts: Vec<Arc<manager::ComputeHost>>,
}

/// Host names of the fake hosts: the configured host alone, or
/// `compute-1` … `compute-N`.
pub fn fake_host_names(config: &ComputeConfig) -> Vec<String> {
    if config.fake_hosts <= 1 {
        vec![config.host.clone()]
    } else {
        (1..=config.fake_hosts).map(|i| format!("compute-{i}")).collect()
    }
}

impl Compute {
    /// The API's state, the conductor and the scheduler (the "controller"
    /// half): each opens the database, and the conductor and scheduler
    /// serve their topics on `bus`.
    pub async fn start_controller(config: ComputeConfig, bus: Bus) -> Result<Compute> {
        let store = store::Store::open(&config.database_url).await?;
        let session = Arc::new(clients::ServiceSession::new(config.service_user.clone()));
        let scheduler = Arc::new(scheduler::service::SchedulerService {
            store: store.clone(),
            scheduler: scheduler::Scheduler::new(config.scheduler.clone())
                .map_err(|e| error::ComputeError::Internal(e.to_string()))?,
            service_down_time: config.service_down_time,
        });
        scheduler.clone().serve(&bus, &config.host).await?;
        store.register_service(&config.host, "nova-scheduler", rpc::SCHEDULER).await?;
        let conductor = Arc::new(conductor::Conductor {
            store: store.clone(),
            scheduler: rpc::SchedulerApi { bus: bus.clone() },
            compute: rpc::ComputeRpc { bus: bus.clone() },
            max_attempts: config.scheduler.max_attempts,
            default_zone: config.scheduler.default_availability_zone.clone(),
        });
        store.register_service(&config.host, "nova-conductor", rpc::CONDUCTOR).await?;
        conductor.clone().serve(&config.host).await?;
        let api = Arc::new(api::ComputeApi {
            store: store.clone(),
            conductor: rpc::ConductorApi { bus: bus.clone() },
            compute: rpc::ComputeRpc { bus: bus.clone() },
            session,
            config: config.clone(),
        });
        // The controller's own services heartbeat too.
        let host = config.host.clone();
        let interval = config.report_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                for binary in ["nova-scheduler", "nova-conductor"] {
                    if let Err(e) = store.heartbeat(&host, binary).await {
                        tracing::warn!(binary, error = %e, "heartbeat failed");
                    }
                }
            }
        });
        Ok(Compute { api, conductor, scheduler, hosts: Vec::new() })
    }

    /// Starts the compute hosts: one per name, each with its own fake
    /// hypervisor.
    pub async fn start_hosts(&mut self, config: &ComputeConfig, bus: &Bus, names: &[String]) -> Result<()> {
        let session = self.api.session.clone();
        for name in names {
            let driver: Arc<dyn virt::ComputeDriver> = match config.driver.as_str() {
                "fake" | "fake.FakeDriver" => Arc::new(virt::fake::FakeDriver::new(
                    name,
                    config.resources.clone(),
                    Duration::from_millis(config.fake_spawn_ms),
                    config.fake_fail_hosts.contains(name),
                )),
                other => {
                    return Err(error::ComputeError::Internal(format!(
                        "compute_driver {other:?} is not built into this ferrostack (available: fake)"
                    )))
                }
            };
            let host = Arc::new(manager::ComputeHost::new(
                name,
                driver,
                rpc::ConductorApi { bus: bus.clone() },
                session.clone(),
                config.resources.clone(),
                config.report_interval,
            ));
            host.clone().start().await?;
            self.hosts.push(host);
        }
        Ok(())
    }
}
