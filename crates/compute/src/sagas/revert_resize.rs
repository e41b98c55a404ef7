//! Reverting a resize or cold migration: the destination lets go, the
//! ports and the claim go back to the source, and the guest runs there again
//! with its old flavor. Past the point of no return from the start.

use std::sync::Arc;

use compute_rpc::conductor::ActionEvent;
use compute_rpc::host::{GuestArgs, InstanceArgs};
use compute_rpc::model::{power_state, vm_state};
use saga::{Saga, SagaContext, StepError};
use serde_json::Value;

use super::{failed, MoveRef, SagaEnv};

saga::steps! {
    pub enum RevertStep {
        /// The destination destroys its guest (on one host, the old flavor
        /// is defined again instead).
        DestroyDestination = "destroy_destination",
        /// The ports are bound to the source again.
        BindPortsToSource = "bind_ports_to_source",
        /// The destination's claim goes and the source's returns to the server.
        RestoreClaims = "restore_claims",
        /// The source plugs the interfaces and starts the guest if it ran.
        StartSource = "start_source",
        /// The server is back on the source with its old flavor.
        Finish = "finish",
    }
}

pub fn saga_id(migration_uuid: &str) -> String {
    format!("revert-{migration_uuid}")
}

pub struct RevertResize(pub Arc<SagaEnv>);

impl Saga for RevertResize {
    const NAME: &'static str = "revert_resize";
    type Params = MoveRef;
    type Step = RevertStep;

    fn forward_only(&self, _step: RevertStep) -> bool {
        true
    }

    async fn action(&self, step: RevertStep, ctx: &SagaContext<MoveRef>) -> Result<Value, StepError> {
        let env = &self.0;
        let rid = ctx.request_id();
        let i = env.any(&ctx.params.instance_uuid).await?;
        let m = env.migration(&ctx.params.migration_uuid).await?;
        let source = m.source_compute.clone().unwrap_or_default();
        let dest = m.dest_compute.clone().unwrap_or_default();
        // The server as it was before the move.
        let mut back = i.clone();
        if let Some(f) = &i.old_flavor {
            back.flavor = f.clone();
        }
        match step {
            RevertStep::DestroyDestination => {
                if source == dest {
                    let guest = GuestArgs { vifs: back.network_info.clone(), instance: back, admin_password: None };
                    env.on_host(&dest, env.host(&dest, rid).define_guest(&guest)).await?;
                } else {
                    env.destroy_on(&dest, &i, rid).await?;
                }
            }
            RevertStep::BindPortsToSource => env.ports().rebind(&i.network_info, &source).await.map_err(failed)?,
            RevertStep::RestoreClaims => {
                env.store.revert_claims(&i.uuid, &m.uuid, &source, &dest).await.map_err(failed)?;
            }
            RevertStep::StartSource => {
                let client = env.host(&source, rid);
                let guest = GuestArgs { vifs: back.network_info.clone(), instance: back.clone(), admin_password: None };
                env.on_host(&source, client.plug_vifs(&guest)).await?;
                if i.power_state != power_state::SHUTDOWN {
                    env.on_host(&source, client.power_on(&InstanceArgs { instance: back })).await?;
                }
            }
            RevertStep::Finish => {
                let node = env
                    .store
                    .compute_nodes()
                    .await
                    .map_err(failed)?
                    .into_iter()
                    .find(|n| n.host == source)
                    .map(|n| n.hypervisor_hostname);
                env.update(&i.uuid, false, |x| {
                    if let Some(f) = x.old_flavor.take() {
                        x.flavor = f;
                    }
                    x.new_flavor = None;
                    x.host = Some(source.clone());
                    x.node = node.clone().or_else(|| Some(source.clone()));
                    x.source_host = None;
                    if x.vm_state == vm_state::RESIZED {
                        x.vm_state =
                            if x.power_state == power_state::SHUTDOWN { vm_state::STOPPED } else { vm_state::ACTIVE }
                                .into();
                    }
                    if x.task_state.as_deref() != Some("deleting") {
                        x.task_state = None;
                    }
                })
                .await?;
                env.store.set_migration(&m.uuid, "reverted", None).await.map_err(failed)?;
                let e = ActionEvent {
                    uuid: i.uuid.clone(),
                    request_id: ctx.request_id.clone().unwrap_or_default(),
                    event: "compute_revert_resize".into(),
                    host: dest.clone(),
                    result: Some("Success".into()),
                    details: None,
                };
                env.event(e).await;
            }
        }
        Ok(Value::Null)
    }

    async fn undo(&self, _step: RevertStep, _ctx: &SagaContext<MoveRef>) -> Result<(), StepError> {
        Ok(())
    }
}
