//! Shelving a server: its disk is saved into an image, the guest is powered
//! off, and — when shelving offloads, or for `shelveOffload` — the host lets
//! go of it entirely: no guest, no port binding, no claim. A failure before
//! the server is SHELVED leaves it as it was; offloading always finishes.

use std::sync::Arc;

use compute_rpc::conductor::ActionEvent;
use compute_rpc::host::{InstanceArgs, SnapshotArgs};
use compute_rpc::model::{power_state, vm_state};
use reqwest::{Method, StatusCode};
use saga::{Saga, SagaContext, StepError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{failed, was_running, SagaEnv};

saga::steps! {
    pub enum ShelveStep {
        /// The host uploads the disk into the image the API registered.
        /// Undo: the image is deleted.
        UploadImage = "upload_image",
        /// The guest is powered off. Undo: on again if it was running.
        PowerOff = "power_off",
        /// The server is SHELVED. Undo: as it was before.
        MarkShelved = "mark_shelved",
        /// (Offloading, from here on.) The host destroys the guest.
        DestroyGuest = "destroy_guest",
        /// The ports are bound to no host.
        UnbindPorts = "unbind_ports",
        /// The claim goes; the server is SHELVED_OFFLOADED, on no host.
        Offload = "offload",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShelveParams {
    pub instance_uuid: String,
    /// The image to save the disk into; `None` for `shelveOffload` of a
    /// server shelved already.
    #[serde(default)]
    pub image_id: Option<String>,
    pub offload: bool,
}

pub fn saga_id(uuid: &str, nonce: &str) -> String {
    format!("shelve-{uuid}-{nonce}")
}

pub struct Shelve(pub Arc<SagaEnv>);

type Ctx = SagaContext<ShelveParams>;

fn offloading(step: ShelveStep) -> bool {
    matches!(step, ShelveStep::DestroyGuest | ShelveStep::UnbindPorts | ShelveStep::Offload)
}

impl Saga for Shelve {
    const NAME: &'static str = "shelve_instance";
    type Params = ShelveParams;
    type Step = ShelveStep;

    fn forward_only(&self, step: ShelveStep) -> bool {
        offloading(step)
    }

    async fn action(&self, step: ShelveStep, ctx: &Ctx) -> Result<Value, StepError> {
        let env = &self.0;
        let rid = ctx.request_id();
        let uuid = &ctx.params.instance_uuid;
        if offloading(step) && !ctx.params.offload {
            return Ok(Value::Null);
        }
        let i = if offloading(step) { env.any(uuid).await? } else { env.live(uuid).await? };
        let host = i.host.clone().unwrap_or_default();
        match step {
            ShelveStep::UploadImage => {
                let running = was_running(&i) && i.vm_state != vm_state::SHELVED;
                if let Some(image_id) = &ctx.params.image_id {
                    env.update(uuid, true, |x| x.task_state = Some("shelving_image_uploading".into())).await?;
                    let args = SnapshotArgs { instance: i, image_id: image_id.clone() };
                    env.on_host(&host, env.host(&host, rid).snapshot_guest(&args)).await?;
                }
                Ok(json!(running))
            }
            ShelveStep::PowerOff => {
                env.on_host(&host, env.host(&host, rid).power_off(&InstanceArgs { instance: i })).await?;
                Ok(Value::Null)
            }
            ShelveStep::MarkShelved => {
                let image = ctx.params.image_id.clone();
                let offload = ctx.params.offload;
                env.update(uuid, true, |x| {
                    x.vm_state = vm_state::SHELVED.into();
                    x.power_state = power_state::SHUTDOWN;
                    x.task_state = if offload { Some("shelving_offloading".into()) } else { None };
                    if image.is_some() {
                        x.shelved_image_id = image.clone();
                    }
                })
                .await?;
                Ok(Value::Null)
            }
            ShelveStep::DestroyGuest => {
                if !host.is_empty() {
                    env.destroy_on(&host, &i, rid).await?;
                }
                Ok(Value::Null)
            }
            ShelveStep::UnbindPorts => {
                env.ports().rebind(&i.network_info, "").await.map_err(failed)?;
                Ok(Value::Null)
            }
            ShelveStep::Offload => {
                env.store.release(uuid, None).await.map_err(failed)?;
                env.update(uuid, false, |x| {
                    if x.vm_state == vm_state::SHELVED {
                        x.vm_state = vm_state::SHELVED_OFFLOADED.into();
                    }
                    if x.task_state.as_deref() != Some("deleting") {
                        x.task_state = None;
                    }
                    x.power_state = 0;
                    x.host = None;
                    x.node = None;
                })
                .await?;
                let e = ActionEvent {
                    uuid: uuid.clone(),
                    request_id: rid.unwrap_or_default(),
                    event: "compute_shelve_offload_instance".into(),
                    host,
                    result: Some("Success".into()),
                    details: None,
                };
                env.event(e).await;
                Ok(Value::Null)
            }
        }
    }

    async fn undo(&self, step: ShelveStep, ctx: &Ctx) -> Result<(), StepError> {
        let env = &self.0;
        let i = env.any(&ctx.params.instance_uuid).await?;
        match step {
            ShelveStep::UploadImage => {
                let Some(image) = &ctx.params.image_id else { return Ok(()) };
                let path = format!("/v2/images/{image}");
                let (status, body) =
                    env.session.call("image", Method::DELETE, &path, None, None).await.map_err(failed)?;
                if status.is_success() || status == StatusCode::NOT_FOUND {
                    Ok(())
                } else {
                    Err(failed(compute_rpc::session::remote_error("image", status, &body)))
                }
            }
            ShelveStep::PowerOff => {
                let running = ctx.maybe_output::<bool>(ShelveStep::UploadImage).unwrap_or(false);
                match (&i.host, running) {
                    (Some(host), true) => {
                        let client = env.host(host, ctx.request_id());
                        env.undo_on_host(host, client.power_on(&InstanceArgs { instance: i.clone() })).await
                    }
                    _ => Ok(()),
                }
            }
            ShelveStep::MarkShelved => {
                let running = ctx.maybe_output::<bool>(ShelveStep::UploadImage).unwrap_or(false);
                let saved = ctx.params.image_id.is_some();
                env.update(&ctx.params.instance_uuid, false, |x| {
                    if x.vm_state == vm_state::SHELVED && saved {
                        x.vm_state = if running { vm_state::ACTIVE } else { vm_state::STOPPED }.into();
                        x.power_state = if running { power_state::RUNNING } else { power_state::SHUTDOWN };
                        x.shelved_image_id = None;
                    }
                })
                .await
                .map(|_| ())
            }
            ShelveStep::DestroyGuest | ShelveStep::UnbindPorts | ShelveStep::Offload => Ok(()),
        }
    }

    async fn unwound(&self, ctx: &Ctx, _error: &StepError) -> Result<(), StepError> {
        let env = &self.0;
        env.update(&ctx.params.instance_uuid, false, |x| {
            if x.task_state.as_deref() != Some("deleting") {
                x.task_state = None;
            }
        })
        .await
        .map(|_| ())
    }
}
