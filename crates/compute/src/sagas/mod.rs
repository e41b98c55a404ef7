//! Compute's workflows, one saga a file, each listing its steps at the top:
//!
//! - `build`: schedule, claim, ports, then the host's image, disk, guest,
//!   interfaces and power; a failure on the host unwinds and tries the next
//!   host (`[scheduler] max_attempts`), else ERROR;
//! - `delete`: one path whoever asks; guest, ports, claims, record;
//! - `migrate`: resize and cold migration to VERIFY_RESIZE; `confirm_resize`
//!   and `revert_resize` end it;
//! - `live_migrate`, `shelve` (and offload), `unshelve`, `snapshot`.
//!
//! The conductor runs them all (`saga::Executor`, its log the `saga` table).
//! Hosts keep no workflow state: each host step is an idempotent call with an
//! opposite. Every step but a delete's first checks the instance is not being
//! deleted (`live`): a delete then waits for the other saga to unwind.

pub mod build;
pub mod confirm_resize;
pub mod delete;
pub mod live_migrate;
pub mod migrate;
mod placement;
pub mod revert_resize;
pub mod shelve;
pub mod snapshot;
pub mod unshelve;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bus::{Bus, RemoteError};
use compute_rpc::conductor::ActionEvent;
use compute_rpc::host::{ComputeHostClient, InstanceArgs};
use compute_rpc::model::{vm_state, Instance};
use compute_rpc::ports::Ports;
use compute_rpc::session::ServiceSession;
use saga::{Executor, Saga, StepError};

use crate::error::ComputeError;
use crate::scheduler::rpc::SchedulerClient;
use crate::store::Store;

/// What every compute saga's steps use.
pub struct SagaEnv {
    pub store: Store,
    pub bus: Bus,
    pub session: Arc<ServiceSession>,
    pub scheduler: SchedulerClient,
    pub max_attempts: usize,
    pub default_zone: String,
    /// How long a host may take over one step.
    pub long_rpc_timeout: Duration,
    /// How long a build may take from its request, if limited.
    pub build_timeout: Option<Duration>,
    pub service_down_time: Duration,
    group_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    executor: OnceLock<Arc<Executor>>,
}

/// A step's failure from a compute error, keeping its kind.
pub fn failed(e: impl Into<ComputeError>) -> StepError {
    let r: RemoteError = e.into().into();
    StepError::new(r.kind, r.message)
}

/// The kind of a failure on a host: another host may do better.
pub const HOST_FAILURE: &str = "HostFailure";
/// The kind of a step that found its instance being deleted.
pub const DELETING: &str = "Deleting";

pub fn host_failure(host: &str, e: impl std::fmt::Display) -> StepError {
    StepError::new(HOST_FAILURE, format!("on host {host}: {e}"))
}

/// A host's answer to a step: what the host needs (the network, the image
/// service) being down for now is tried again there; any other failure is
/// the host's, and another host may do better.
fn from_host(host: &str, e: bus::BusError) -> StepError {
    match compute_rpc::ComputeError::from(e) {
        e @ compute_rpc::ComputeError::Unavailable(_) => failed(e),
        e => host_failure(host, e),
    }
}

impl SagaEnv {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        bus: Bus,
        session: Arc<ServiceSession>,
        max_attempts: usize,
        default_zone: String,
        long_rpc_timeout: Duration,
        build_timeout: Option<Duration>,
        service_down_time: Duration,
    ) -> SagaEnv {
        SagaEnv {
            scheduler: SchedulerClient::new(&bus),
            store,
            bus,
            session,
            max_attempts,
            default_zone,
            long_rpc_timeout,
            build_timeout,
            service_down_time,
            group_locks: Mutex::new(HashMap::new()),
            executor: OnceLock::new(),
        }
    }

    /// Sagas that start other sagas (a build's next attempt) run them here.
    pub fn set_executor(&self, executor: Arc<Executor>) {
        let _ = self.executor.set(executor);
    }

    /// Records a saga (idempotently: its id says which) and runs it.
    pub async fn start<S: Saga>(
        &self,
        id: &str,
        key: &str,
        params: &S::Params,
        request_id: Option<String>,
    ) -> Result<(), StepError> {
        let exec = self.executor.get().ok_or_else(|| StepError::new("Internal", "no saga executor"))?;
        exec.start::<S>(id, Some(key.to_string()), params, request_id)
            .await
            .map_err(|e| StepError::new("Internal", e.0))
    }

    pub fn ports(&self) -> Ports<'_> {
        Ports { session: &self.session }
    }

    /// A client for `host`, waiting as long as a host's step may take.
    pub fn host(&self, host: &str, request_id: Option<String>) -> ComputeHostClient {
        ComputeHostClient::to_server(&self.bus, host).for_request(request_id).with_timeout(self.long_rpc_timeout)
    }

    /// The instance, deleted ones included (for undos, which must run
    /// whatever happened since).
    pub async fn any(&self, uuid: &str) -> Result<Instance, StepError> {
        self.store
            .instance_any(uuid)
            .await
            .map_err(failed)?
            .ok_or_else(|| StepError::new("NotFound", format!("Instance {uuid} could not be found.")))
    }

    /// The instance, unless it is gone or being deleted: the check every
    /// step of a saga but a delete makes first.
    pub async fn live(&self, uuid: &str) -> Result<Instance, StepError> {
        let i = self.any(uuid).await?;
        if i.deleted || i.task_state.as_deref() == Some("deleting") {
            return Err(StepError::new(DELETING, format!("Instance {uuid} is being deleted.")));
        }
        Ok(i)
    }

    /// Changes the instance (unless it is being deleted, when `fenced`).
    pub async fn update(
        &self,
        uuid: &str,
        fenced: bool,
        change: impl FnOnce(&mut Instance) + Send,
    ) -> Result<Instance, StepError> {
        let mut deleting = false;
        let updated = self
            .store
            .update_instance(uuid, |i| {
                if fenced && (i.deleted || i.task_state.as_deref() == Some("deleting")) {
                    deleting = true;
                    return Err(ComputeError::Conflict(format!("Instance {} is being deleted.", i.uuid)));
                }
                change(i);
                Ok(())
            })
            .await;
        updated.map_err(|e| if deleting { StepError::new(DELETING, e.to_string()) } else { failed(e) })
    }

    /// Clears the task a saga set, unless a delete has taken over.
    pub async fn clear_task(&self, uuid: &str) -> Result<(), StepError> {
        self.update(uuid, false, |i| {
            if i.task_state.as_deref() != Some("deleting") {
                i.task_state = None;
            }
        })
        .await
        .map(|_| ())
    }

    pub async fn event(&self, e: ActionEvent) {
        let r = self
            .store
            .action_event(&e.uuid, &e.request_id, &e.event, Some(&e.host), e.result.as_deref(), e.details.as_deref())
            .await;
        if let Err(err) = r {
            tracing::warn!(instance = %e.uuid, event = %e.event, error = %err, "could not record an instance action event");
        }
    }

    /// Whether `host`'s compute service has heartbeaten lately.
    pub async fn host_is_up(&self, host: &str) -> bool {
        match self.store.service_on(host, compute_rpc::host::BINARY).await {
            Ok(service) => service.is_some_and(|s| s.is_up(self.service_down_time)),
            Err(_) => true,
        }
    }

    /// A host's step; any failure is the host's.
    pub async fn on_host<T, F>(&self, host: &str, call: F) -> Result<T, StepError>
    where
        F: Future<Output = Result<T, bus::BusError>>,
    {
        call.await.map_err(|e| from_host(host, e))
    }

    /// A host's undo: done, or — when the host is down — left to the host,
    /// which destroys what no instance needs when it comes back (and now and
    /// then while it runs). An undo that fails on a host that is up is retried.
    pub async fn undo_on_host<F>(&self, host: &str, call: F) -> Result<(), StepError>
    where
        F: Future<Output = Result<(), bus::BusError>>,
    {
        if !self.host_is_up(host).await {
            tracing::warn!(host, "the host is down; it cleans up when it comes back");
            return Ok(());
        }
        call.await.map_err(|e| from_host(host, e))
    }

    /// Destroys the guest on `host` unless the host is down (it then does
    /// it itself when it returns).
    pub async fn destroy_on(&self, host: &str, i: &Instance, request_id: Option<String>) -> Result<(), StepError> {
        let client = self.host(host, request_id);
        self.undo_on_host(host, client.destroy_guest(&InstanceArgs { instance: i.clone() })).await
    }

    /// Records a move (once: its uuid says which) and hands the instance's
    /// claim on its source to it, so the source stays claimed while the
    /// destination is claimed for the instance. Answers the source.
    pub async fn begin_migration(
        &self,
        i: &Instance,
        uuid: &str,
        kind: &str,
        status: &str,
        new_flavor: &compute_rpc::model::Flavor,
    ) -> Result<String, StepError> {
        // Run again, the source is what the first run recorded.
        let source = match self.store.migration(uuid).await.map_err(failed)? {
            Some(m) => m.source_compute.unwrap_or_default(),
            None => i.host.clone().ok_or_else(|| StepError::new("Conflict", "The instance has no host."))?,
        };
        let now = common::time::now_micros();
        let m = crate::store::migrations::Migration {
            id: 0,
            uuid: uuid.to_string(),
            instance_uuid: i.uuid.clone(),
            migration_type: kind.into(),
            status: status.into(),
            source_compute: Some(source.clone()),
            dest_compute: None,
            old_flavor: Some(i.flavor.internal_id.to_string()),
            new_flavor: Some(new_flavor.internal_id.to_string()),
            project_id: i.project_id.clone(),
            user_id: i.user_id.clone(),
            created_at: now,
            updated_at: now,
        };
        self.store.create_migration(&m).await.map_err(failed)?;
        self.store.move_claim(&i.uuid, uuid, &source).await.map_err(failed)?;
        Ok(source)
    }

    /// Undoes `begin_migration`: the source's claim returns to the
    /// instance and the migration is in error.
    pub async fn abandon_migration(&self, uuid: &str, instance: &str) -> Result<(), StepError> {
        if let Some(m) = self.store.migration(uuid).await.map_err(failed)? {
            if let Some(src) = &m.source_compute {
                self.store.move_claim(uuid, instance, src).await.map_err(failed)?;
            }
            self.store.set_migration(uuid, "error", None).await.map_err(failed)?;
        }
        Ok(())
    }

    /// The move a saga ends (confirms or reverts).
    pub async fn migration(&self, uuid: &str) -> Result<crate::store::migrations::Migration, StepError> {
        self.store
            .migration(uuid)
            .await
            .map_err(failed)?
            .ok_or_else(|| StepError::new("NotFound", format!("Migration {uuid} could not be found.")))
    }

    /// The lock scheduling takes for a server group, so two builds of one
    /// group do not both take the last host the policy allows.
    pub fn group_lock(&self, group: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.group_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(group.to_string()).or_default().clone()
    }
}

/// A move to end: what `confirm_resize` and `revert_resize` work on.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MoveRef {
    pub instance_uuid: String,
    pub migration_uuid: String,
}

/// The power an instance had before a move, to give it back after.
pub fn was_running(i: &Instance) -> bool {
    i.vm_state != vm_state::STOPPED && i.power_state != compute_rpc::model::power_state::SHUTDOWN
}

/// A short unique suffix for saga ids.
pub fn nonce() -> String {
    common::id::new_uuid()
}
