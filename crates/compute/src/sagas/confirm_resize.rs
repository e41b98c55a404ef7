//! Confirming a resize or cold migration: the source lets go of the guest
//! and its claim, and the server is itself again on its new host. Past the
//! point of no return from the start: it always finishes.

use std::sync::Arc;

use compute_rpc::conductor::ActionEvent;
use compute_rpc::model::{power_state, vm_state};
use saga::{Saga, SagaContext, StepError};
use serde_json::Value;

use super::{failed, MoveRef, SagaEnv};

saga::steps! {
    pub enum ConfirmStep {
        /// The source destroys its copy of the guest (unless source and
        /// destination are one host).
        DestroySource = "destroy_source",
        /// The migration's claim on the source goes.
        ReleaseSourceClaim = "release_source_claim",
        /// The migration is confirmed; the server is ACTIVE (or SHUTOFF).
        Finish = "finish",
    }
}

pub fn saga_id(migration_uuid: &str) -> String {
    format!("confirm-{migration_uuid}")
}

pub struct ConfirmResize(pub Arc<SagaEnv>);

impl Saga for ConfirmResize {
    const NAME: &'static str = "confirm_resize";
    type Params = MoveRef;
    type Step = ConfirmStep;

    fn forward_only(&self, _step: ConfirmStep) -> bool {
        true
    }

    async fn action(&self, step: ConfirmStep, ctx: &SagaContext<MoveRef>) -> Result<Value, StepError> {
        let env = &self.0;
        let i = env.any(&ctx.params.instance_uuid).await?;
        let m = env.migration(&ctx.params.migration_uuid).await?;
        match step {
            ConfirmStep::DestroySource => {
                if let (Some(src), Some(dst)) = (&m.source_compute, &m.dest_compute) {
                    if src != dst {
                        env.destroy_on(src, &i, ctx.request_id()).await?;
                    }
                }
            }
            ConfirmStep::ReleaseSourceClaim => env.store.release(&m.uuid, None).await.map_err(failed)?,
            ConfirmStep::Finish => {
                env.store.set_migration(&m.uuid, "confirmed", None).await.map_err(failed)?;
                env.update(&i.uuid, false, |x| {
                    if x.vm_state == vm_state::RESIZED {
                        x.vm_state =
                            if x.power_state == power_state::SHUTDOWN { vm_state::STOPPED } else { vm_state::ACTIVE }
                                .into();
                    }
                    if x.task_state.as_deref() != Some("deleting") {
                        x.task_state = None;
                    }
                    x.old_flavor = None;
                    x.new_flavor = None;
                    x.source_host = None;
                })
                .await?;
                let e = ActionEvent {
                    uuid: i.uuid.clone(),
                    request_id: ctx.request_id.clone().unwrap_or_default(),
                    event: "compute_confirm_resize".into(),
                    host: m.source_compute.clone().unwrap_or_default(),
                    result: Some("Success".into()),
                    details: None,
                };
                env.event(e).await;
            }
        }
        Ok(Value::Null)
    }

    async fn undo(&self, _step: ConfirmStep, _ctx: &SagaContext<MoveRef>) -> Result<(), StepError> {
        Ok(())
    }
}
