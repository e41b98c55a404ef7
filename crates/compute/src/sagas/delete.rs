//! Deleting a server: one path, whoever asks and whatever state the server
//! is in. A delete never unwinds — every step is past the point of no return
//! and is retried until it succeeds — so a delete once accepted always
//! finishes, and leaves no guest, port, claim or record of a live server.

use std::time::Duration;

use compute_rpc::conductor::ActionEvent;
use compute_rpc::model::Instance;
use saga::{Saga, SagaContext, StepError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use super::{failed, SagaEnv};

saga::steps! {
    pub enum DeleteStep {
        /// Another saga on the server (a build, a resize) sees the delete and
        /// unwinds; the delete waits until it has.
        WaitForOthers = "wait_for_others",
        /// The guest goes from every host that has it (unless a host is
        /// down: it destroys the guest itself when it returns).
        DestroyGuest = "destroy_guest",
        /// Ports made for the server go; ports the user brought are unbound.
        DeallocateNetwork = "deallocate_network",
        /// In one transaction: the server is marked deleted, every claim of
        /// it and of its moves leaves the ledger, it leaves its server group
        /// and its console tokens go.
        MarkDeleted = "mark_deleted",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteParams {
    pub instance_uuid: String,
}

pub fn saga_id(uuid: &str) -> String {
    format!("delete-{uuid}")
}

pub struct Delete(pub Arc<SagaEnv>);

type Ctx = SagaContext<DeleteParams>;

/// Every host the server may have a guest on: its own, and both ends of a
/// move under way or awaiting confirmation.
async fn hosts_of(env: &SagaEnv, i: &Instance) -> Result<Vec<String>, StepError> {
    let mut hosts: Vec<String> = i.host.iter().chain(i.source_host.iter()).cloned().collect();
    for m in env.store.migrations(Some(&i.uuid)).await.map_err(failed)? {
        if !matches!(m.status.as_str(), "confirmed" | "reverted" | "error" | "completed" | "failed") {
            hosts.extend(m.source_compute.iter().chain(m.dest_compute.iter()).cloned());
        }
    }
    hosts.sort();
    hosts.dedup();
    Ok(hosts)
}

impl Saga for Delete {
    const NAME: &'static str = "delete_instance";
    type Params = DeleteParams;
    type Step = DeleteStep;

    fn forward_only(&self, _step: DeleteStep) -> bool {
        true
    }

    async fn action(&self, step: DeleteStep, ctx: &Ctx) -> Result<Value, StepError> {
        let env = &self.0;
        let uuid = &ctx.params.instance_uuid;
        let event = |host: &Option<String>, result: Option<&str>| ActionEvent {
            uuid: uuid.clone(),
            request_id: ctx.request_id.clone().unwrap_or_default(),
            event: "compute_terminate_instance".into(),
            host: host.clone().unwrap_or_default(),
            result: result.map(String::from),
            details: None,
        };
        match step {
            DeleteStep::WaitForOthers => loop {
                let others = env.store.sagas_for(uuid).await.map_err(failed)?;
                if !others.iter().any(|s| s.id != ctx.id) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            },
            DeleteStep::DestroyGuest => {
                let i = env.any(uuid).await?;
                env.event(event(&i.host, None)).await;
                for host in hosts_of(env, &i).await? {
                    env.destroy_on(&host, &i, ctx.request_id()).await?;
                }
            }
            DeleteStep::DeallocateNetwork => {
                let i = env.any(uuid).await?;
                env.ports().release_all(&i).await.map_err(failed)?;
            }
            DeleteStep::MarkDeleted => {
                let i = env.store.forget_instance(uuid).await.map_err(failed)?;
                env.event(event(&i.host, Some("Success"))).await;
            }
        }
        Ok(Value::Null)
    }

    async fn undo(&self, _step: DeleteStep, _ctx: &Ctx) -> Result<(), StepError> {
        // Never reached: every step is forward only.
        Ok(())
    }
}
