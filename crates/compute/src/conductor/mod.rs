//! The conductor: the compute hosts' only door to the database, and the
//! runner of every compute workflow. The API records each workflow as a saga
//! (in the same transaction as the change that asks for it) and casts
//! `run_sagas`; the conductor runs them (`crate::sagas`), and when it starts
//! it takes up every saga a crash left unfinished.

use std::sync::Arc;

use bus::{CallContext, RemoteError, ServeOptions};
use compute_rpc::conductor::{
    ActionEvent, Conductor as ConductorRpc, ConductorHandler, Heartbeat, HostInstance, HostRef, InstanceRef,
    InstanceUpdate, SagaIds,
};
use compute_rpc::model::{ComputeNode, Instance};
use saga::{Executor, Hooks};
use serde_json::{Map, Value};

use crate::error::{ComputeError, Result};
use crate::sagas::{self, SagaEnv};
use crate::store::Store;

pub struct Conductor {
    pub store: Store,
    pub env: Arc<SagaEnv>,
    pub executor: Arc<Executor>,
}

/// Writes `changes` (fields of [`Instance`], as JSON) into `i`.
pub fn apply_changes(i: &mut Instance, changes: &Map<String, Value>) -> Result<()> {
    let mut v = serde_json::to_value(&*i).map_err(|e| ComputeError::Internal(e.to_string()))?;
    for (k, val) in changes {
        v[k] = val.clone();
    }
    *i = serde_json::from_value(v).map_err(|e| ComputeError::BadRequest(format!("bad instance change: {e}")))?;
    Ok(())
}

type Answer<T> = std::result::Result<T, RemoteError>;

/// How often the conductor looks for sagas nobody runs.
const SWEEP: std::time::Duration = std::time::Duration::from_secs(15);

impl Conductor {
    /// The conductor of `env`, running sagas as `owner` with test `hooks`.
    pub fn new(env: Arc<SagaEnv>, owner: &str, hooks: Hooks) -> Arc<Conductor> {
        let log: Arc<dyn saga::SagaLog> =
            Arc::new(crate::store::sagas::ConductorSagaLog::new(env.store.clone(), env.service_down_time));
        let executor = Executor::new(log, owner, hooks);
        executor.register(Arc::new(sagas::build::Build::new(env.clone())));
        executor.register(Arc::new(sagas::delete::Delete(env.clone())));
        executor.register(Arc::new(sagas::migrate::Migrate(env.clone())));
        executor.register(Arc::new(sagas::confirm_resize::ConfirmResize(env.clone())));
        executor.register(Arc::new(sagas::revert_resize::RevertResize(env.clone())));
        executor.register(Arc::new(sagas::live_migrate::LiveMigrate(env.clone())));
        executor.register(Arc::new(sagas::shelve::Shelve(env.clone())));
        executor.register(Arc::new(sagas::unshelve::Unshelve(env.clone())));
        executor.register(Arc::new(sagas::snapshot::Snapshot(env.clone())));
        env.set_executor(executor.clone());
        Arc::new(Conductor { store: env.store.clone(), env, executor })
    }

    /// Serves the conductor's topic as `server`, then resumes the sagas a
    /// crash left unfinished.
    pub async fn serve(self: Arc<Self>, server: &str) -> Result<()> {
        ConductorRpc::serve(&self.env.bus, server, self.clone(), ServeOptions::default()).await?;
        match self.executor.resume_all().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sagas = n, "resuming the sagas a restart interrupted"),
            Err(e) => tracing::error!(error = %e, "could not read the saga log"),
        }
        // A saga the API recorded whose `run_sagas` never arrived is taken up
        // on the next sweep.
        let executor = self.executor.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP).await;
                if let Err(e) = executor.resume_all().await {
                    tracing::warn!(error = %e, "could not read the saga log");
                }
            }
        });
        Ok(())
    }
}

fn remote(e: ComputeError) -> RemoteError {
    e.into()
}

impl ConductorHandler for Conductor {
    async fn run_sagas(&self, _ctx: &CallContext, args: SagaIds) -> Answer<()> {
        for id in &args.ids {
            self.executor.spawn(id);
        }
        Ok(())
    }

    async fn instance_get(&self, _ctx: &CallContext, args: InstanceRef) -> Answer<Option<Instance>> {
        self.store.instance_any(&args.uuid).await.map_err(remote)
    }

    async fn instance_update(&self, _ctx: &CallContext, a: InstanceUpdate) -> Answer<Instance> {
        self.store
            .update_instance(&a.uuid, |i| {
                if let Some(expected) = &a.expected_task_state {
                    if !expected.contains(&i.task_state) {
                        return Err(ComputeError::Conflict(format!(
                            "Conflict updating instance {}. Expected: {{'task_state': {:?}}}. Actual: {{'task_state': {:?}}}",
                            i.uuid, expected, i.task_state
                        )));
                    }
                }
                apply_changes(i, &a.changes)
            })
            .await
            .map_err(remote)
    }

    async fn instances_on_host(&self, _ctx: &CallContext, a: HostRef) -> Answer<Vec<HostInstance>> {
        let busy: std::collections::HashSet<String> =
            self.store.sagas().await.map_err(remote)?.into_iter().filter_map(|s| s.key).collect();
        let placed = self.store.instances_on_host(&a.host).await.map_err(remote)?;
        Ok(placed.into_iter().map(|i| HostInstance { in_saga: busy.contains(&i.uuid), instance: i }).collect())
    }

    async fn action_event(&self, _ctx: &CallContext, e: ActionEvent) -> Answer<()> {
        self.store
            .action_event(&e.uuid, &e.request_id, &e.event, Some(&e.host), e.result.as_deref(), e.details.as_deref())
            .await
            .map_err(remote)
    }

    async fn service_heartbeat(&self, _ctx: &CallContext, a: Heartbeat) -> Answer<()> {
        self.store.register_service(&a.host, &a.binary, &a.topic).await.map(|_| ()).map_err(remote)
    }

    async fn compute_node_report(&self, _ctx: &CallContext, node: ComputeNode) -> Answer<()> {
        self.store.report_compute_node(&node).await.map_err(remote)
    }
}
