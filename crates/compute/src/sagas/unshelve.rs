//! Unshelving a server. A shelved server still on its host is powered on
//! again; an offloaded one is scheduled (the zone or host asked for, if any),
//! claimed, and built on the chosen host from the image its disk was saved
//! to. Any failure leaves it shelved as it was. Done, the image goes.

use std::sync::Arc;

use compute_rpc::conductor::ActionEvent;
use compute_rpc::host::{GuestArgs, InstanceArgs};
use compute_rpc::model::{power_state, vm_state, Instance};
use reqwest::{Method, StatusCode};
use saga::{Saga, SagaContext, StepError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::placement::{Ask, Placement};
use super::{failed, SagaEnv};

saga::steps! {
    pub enum UnshelveStep {
        /// An offloaded server gets a host from the scheduler, claimed (one
        /// still on its host keeps it). Undo: the claim goes.
        Schedule = "schedule",
        /// The host is written on the server. Undo: cleared again.
        RecordHost = "record_host",
        /// The ports are bound to the host. Undo: bound to none again.
        BindPorts = "bind_ports",
        /// The host gets the saved image, a disk and the definition.
        /// Undo: it destroys them.
        PrepareGuest = "prepare_guest",
        /// The host plugs the interfaces. Undo: unplugged.
        PlugVifs = "plug_vifs",
        /// The guest boots. Undo: powered off.
        PowerOn = "power_on",
        /// The server is ACTIVE and the image it was saved to goes.
        Finish = "finish",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnshelveParams {
    pub instance_uuid: String,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
}

pub fn saga_id(uuid: &str, nonce: &str) -> String {
    format!("unshelve-{uuid}-{nonce}")
}

pub struct Unshelve(pub Arc<SagaEnv>);

type Ctx = SagaContext<UnshelveParams>;

/// Where the server is unshelved, and whether it had left its host.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Target {
    placement: Placement,
    offloaded: bool,
}

impl Unshelve {
    fn target(ctx: &Ctx) -> Result<Target, StepError> {
        ctx.output(UnshelveStep::Schedule)
    }

    /// The server as its host builds it: from the image its disk was saved to.
    fn from_saved_image(mut i: Instance) -> Instance {
        if let Some(image) = &i.shelved_image_id {
            i.image_ref = image.clone();
        }
        i
    }
}

impl Saga for Unshelve {
    const NAME: &'static str = "unshelve_instance";
    type Params = UnshelveParams;
    type Step = UnshelveStep;

    fn forward_only(&self, step: UnshelveStep) -> bool {
        step == UnshelveStep::Finish
    }

    async fn action(&self, step: UnshelveStep, ctx: &Ctx) -> Result<Value, StepError> {
        let env = &self.0;
        let rid = ctx.request_id();
        let uuid = &ctx.params.instance_uuid;
        let i = if step == UnshelveStep::Finish { env.any(uuid).await? } else { env.live(uuid).await? };
        match step {
            UnshelveStep::Schedule => {
                let offloaded = i.vm_state == vm_state::SHELVED_OFFLOADED;
                let placement = match (&i.host, offloaded) {
                    (Some(h), false) => {
                        Placement { host: h.clone(), node: i.node.clone().unwrap_or_else(|| h.clone()) }
                    }
                    _ => {
                        let mut asked = i.clone();
                        if let Some(z) = &ctx.params.availability_zone {
                            asked.requested_availability_zone = Some(z.clone());
                        }
                        let ask = Ask { host: ctx.params.host.clone(), ..Ask::default() };
                        env.place(&asked, ask, rid).await?
                    }
                };
                Ok(json!(Target { placement, offloaded }))
            }
            UnshelveStep::RecordHost => {
                let t = Self::target(ctx)?;
                if t.offloaded {
                    let zone = env.zone_of(&t.placement.host).await.map_err(failed)?;
                    let requested = ctx.params.availability_zone.clone();
                    env.update(uuid, true, |x| {
                        x.host = Some(t.placement.host.clone());
                        x.node = Some(t.placement.node.clone());
                        x.availability_zone = Some(zone.clone());
                        if requested.is_some() {
                            x.requested_availability_zone = requested.clone();
                        }
                        x.task_state = Some("spawning".into());
                    })
                    .await?;
                }
                Ok(Value::Null)
            }
            UnshelveStep::BindPorts => {
                let t = Self::target(ctx)?;
                env.ports().rebind(&i.network_info, &t.placement.host).await.map_err(failed)?;
                Ok(Value::Null)
            }
            UnshelveStep::PrepareGuest => {
                let t = Self::target(ctx)?;
                if t.offloaded {
                    let built = Self::from_saved_image(i);
                    let client = env.host(&t.placement.host, rid);
                    let h = &t.placement.host;
                    env.on_host(h, client.prepare_image(&InstanceArgs { instance: built.clone() })).await?;
                    env.on_host(h, client.create_disk(&InstanceArgs { instance: built.clone() })).await?;
                    let guest = GuestArgs { vifs: built.network_info.clone(), instance: built, admin_password: None };
                    env.on_host(h, client.define_guest(&guest)).await?;
                }
                Ok(Value::Null)
            }
            UnshelveStep::PlugVifs => {
                let t = Self::target(ctx)?;
                let h = &t.placement.host;
                let guest = GuestArgs { vifs: i.network_info.clone(), instance: i, admin_password: None };
                env.on_host(h, env.host(h, rid).plug_vifs(&guest)).await?;
                Ok(Value::Null)
            }
            UnshelveStep::PowerOn => {
                let t = Self::target(ctx)?;
                let h = &t.placement.host;
                env.on_host(h, env.host(h, rid).power_on(&InstanceArgs { instance: i })).await?;
                Ok(Value::Null)
            }
            UnshelveStep::Finish => {
                env.update(uuid, false, |x| {
                    x.vm_state = vm_state::ACTIVE.into();
                    x.power_state = power_state::RUNNING;
                    if x.task_state.as_deref() != Some("deleting") {
                        x.task_state = None;
                    }
                    x.shelved_image_id = None;
                })
                .await?;
                if let Some(image) = &i.shelved_image_id {
                    let path = format!("/v2/images/{image}");
                    let (status, _) =
                        env.session.call("image", Method::DELETE, &path, None, None).await.map_err(failed)?;
                    if !status.is_success() && status != StatusCode::NOT_FOUND {
                        tracing::warn!(instance = %uuid, image, %status, "could not delete the shelved image");
                    }
                }
                let e = ActionEvent {
                    uuid: uuid.clone(),
                    request_id: rid.unwrap_or_default(),
                    event: "compute_unshelve_instance".into(),
                    host: i.host.clone().unwrap_or_default(),
                    result: Some("Success".into()),
                    details: None,
                };
                env.event(e).await;
                Ok(Value::Null)
            }
        }
    }

    async fn undo(&self, step: UnshelveStep, ctx: &Ctx) -> Result<(), StepError> {
        let env = &self.0;
        let rid = ctx.request_id();
        let uuid = &ctx.params.instance_uuid;
        let i = env.any(uuid).await?;
        let Some(t) = ctx.maybe_output::<Target>(UnshelveStep::Schedule) else {
            // The schedule step may have claimed before it could say so.
            if i.vm_state == vm_state::SHELVED_OFFLOADED {
                env.store.release(uuid, None).await.map_err(failed)?;
            }
            return Ok(());
        };
        let h = &t.placement.host;
        match step {
            UnshelveStep::Schedule if t.offloaded => env.store.release(uuid, None).await.map_err(failed),
            UnshelveStep::RecordHost if t.offloaded => env
                .update(uuid, false, |x| {
                    x.host = None;
                    x.node = None;
                })
                .await
                .map(|_| ()),
            UnshelveStep::BindPorts if t.offloaded => env.ports().rebind(&i.network_info, "").await.map_err(failed),
            UnshelveStep::PrepareGuest if t.offloaded => env.destroy_on(h, &i, rid).await,
            UnshelveStep::PlugVifs if t.offloaded => {
                let guest = GuestArgs { vifs: i.network_info.clone(), instance: i, admin_password: None };
                env.undo_on_host(h, env.host(h, rid).unplug_vifs(&guest)).await
            }
            UnshelveStep::PowerOn => {
                env.undo_on_host(h, env.host(h, rid).power_off(&InstanceArgs { instance: i })).await
            }
            _ => Ok(()),
        }
    }

    async fn unwound(&self, ctx: &Ctx, _error: &StepError) -> Result<(), StepError> {
        self.0.clear_task(&ctx.params.instance_uuid).await
    }
}
