//! Nova v2.1's controller: the compute API, the scheduler, the conductor and
//! its sagas, and the console proxy, talking to the compute hosts
//! (`compute-host`) over the bus through the interfaces in `compute-rpc`.
//!
//! Start reading at [`Compute::start_controller`] (how the parts are put
//! together), `api::router` (every route), `sagas` (every workflow, a file
//! each), `conductor` (what hosts ask and where sagas run) and `scheduler`
//! (filters and weighers).

pub mod api;
pub mod conductor;
pub mod config;
pub mod console_proxy;
pub mod error;
pub mod keygen;
pub mod sagas;
pub mod scheduler;
pub mod schema;
pub mod store;

pub use compute_rpc::{model, session};

use std::sync::Arc;

use bus::Bus;

pub use config::ComputeConfig;
use error::Result;

/// The controller's parts running in one process.
pub struct Compute {
    pub api: Arc<api::ComputeApi>,
    pub conductor: Arc<conductor::Conductor>,
    pub scheduler: Arc<scheduler::service::SchedulerService>,
}

impl Compute {
    /// The API's state, the conductor and the scheduler in one process, on one
    /// database pool; see [`start_scheduler`], [`start_conductor`] and [`api`]
    /// for each alone. The conductor runs its sagas with the test `hooks`
    /// (none in production: `saga::Hooks::from_env` reads them for tests).
    pub async fn start_controller(config: ComputeConfig, bus: Bus, hooks: saga::Hooks) -> Result<Compute> {
        let store = store::Store::open(&config.database).await?;
        let scheduler = start_scheduler(store.clone(), &config, &bus).await?;
        let conductor = start_conductor(store.clone(), &config, bus.clone(), hooks).await?;
        let api = api(store, &config, &bus);
        Ok(Compute { api, conductor, scheduler })
    }
}

/// The scheduler (`nova-scheduler` on `[DEFAULT] host`): serves its topic,
/// registers and heartbeats. Several may run; each claim locks its host.
pub async fn start_scheduler(
    store: store::Store,
    config: &ComputeConfig,
    bus: &Bus,
) -> Result<Arc<scheduler::service::SchedulerService>> {
    let scheduler = Arc::new(scheduler::service::SchedulerService {
        store: store.clone(),
        scheduler: scheduler::Scheduler::new(config.scheduler.clone())
            .map_err(|e| error::ComputeError::Internal(e.to_string()))?,
        service_down_time: config.service_down_time,
    });
    scheduler.clone().serve(bus, &config.host).await?;
    store.register_service(&config.host, "nova-scheduler", scheduler::rpc::Scheduler::TOPIC).await?;
    spawn_heartbeat(store, &config.host, "nova-scheduler", config.report_interval);
    Ok(scheduler)
}

/// The conductor (`nova-conductor` on `[DEFAULT] host`): serves its topic and
/// resumes the sagas this host owned. Several may run, each with its own
/// `host`: a saga belongs to the conductor that adopted it.
pub async fn start_conductor(
    store: store::Store,
    config: &ComputeConfig,
    bus: Bus,
    hooks: saga::Hooks,
) -> Result<Arc<conductor::Conductor>> {
    let session = Arc::new(session::ServiceSession::new(config.service_user.clone()));
    let env = Arc::new(sagas::SagaEnv::new(
        store.clone(),
        bus,
        session,
        config.scheduler.max_attempts,
        config.scheduler.default_availability_zone.clone(),
        config.long_rpc_timeout,
        config.instance_build_timeout,
        config.service_down_time,
    ));
    let conductor = conductor::Conductor::new(env, &config.host, hooks);
    store.register_service(&config.host, "nova-conductor", compute_rpc::conductor::Conductor::TOPIC).await?;
    conductor.clone().serve(&config.host).await?;
    spawn_heartbeat(store, &config.host, "nova-conductor", config.report_interval);
    Ok(conductor)
}

/// The API's state; it reaches the conductor only over `bus`.
pub fn api(store: store::Store, config: &ComputeConfig, bus: &Bus) -> Arc<api::ComputeApi> {
    Arc::new(api::ComputeApi {
        store,
        conductor: compute_rpc::conductor::ConductorClient::new(bus),
        bus: bus.clone(),
        session: Arc::new(session::ServiceSession::new(config.service_user.clone())),
        config: config.clone(),
    })
}

/// A controller service says it is alive every `interval`.
fn spawn_heartbeat(store: store::Store, host: &str, binary: &'static str, interval: std::time::Duration) {
    let host = host.to_string();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            if let Err(e) = store.heartbeat(&host, binary).await {
                tracing::warn!(binary, error = %e, "heartbeat failed");
            }
        }
    });
}
