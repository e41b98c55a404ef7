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
    /// The API's state, the conductor and the scheduler: each opens the
    /// database, and the conductor and scheduler serve their topics on
    /// `bus`. The conductor runs its sagas with the test `hooks` (none in
    /// production: `saga::Hooks::from_env` reads them for tests).
    pub async fn start_controller(config: ComputeConfig, bus: Bus, hooks: saga::Hooks) -> Result<Compute> {
        let store = store::Store::open(&config.database_url).await?;
        let session = Arc::new(session::ServiceSession::new(config.service_user.clone()));
        let scheduler = Arc::new(scheduler::service::SchedulerService {
            store: store.clone(),
            scheduler: scheduler::Scheduler::new(config.scheduler.clone())
                .map_err(|e| error::ComputeError::Internal(e.to_string()))?,
            service_down_time: config.service_down_time,
        });
        scheduler.clone().serve(&bus, &config.host).await?;
        store.register_service(&config.host, "nova-scheduler", scheduler::rpc::Scheduler::TOPIC).await?;
        let env = Arc::new(sagas::SagaEnv::new(
            store.clone(),
            bus.clone(),
            session.clone(),
            config.scheduler.max_attempts,
            config.scheduler.default_availability_zone.clone(),
            config.long_rpc_timeout,
            config.instance_build_timeout,
            config.service_down_time,
        ));
        let conductor = conductor::Conductor::new(env, &config.host, hooks);
        store.register_service(&config.host, "nova-conductor", compute_rpc::conductor::Conductor::TOPIC).await?;
        conductor.clone().serve(&config.host).await?;
        let api = Arc::new(api::ComputeApi {
            store: store.clone(),
            conductor: compute_rpc::conductor::ConductorClient::new(&bus),
            bus: bus.clone(),
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
        Ok(Compute { api, conductor, scheduler })
    }
}
