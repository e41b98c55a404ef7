//! Building one server. The API records the instance and this saga together;
//! the conductor runs it.
//!
//! On failure every step done is undone (latest first) and, when the host was
//! at fault and `[scheduler] max_attempts` allows, the build starts again as
//! a new attempt that leaves out the hosts already tried; otherwise the
//! server goes to ERROR with the fault. A build whose server is deleted
//! meanwhile unwinds and leaves the rest to the delete.

use compute_rpc::conductor::ActionEvent;
use compute_rpc::host::{GuestArgs, InstanceArgs};
use compute_rpc::model::{power_state, vm_state, Instance, InstanceFault, Vif};
use saga::{Saga, SagaContext, StepError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::placement::{Ask, Placement};
use super::{failed, host_failure, SagaEnv, DELETING, HOST_FAILURE};

/// The kind of a build that ran past `[DEFAULT] instance_build_timeout`.
pub const BUILD_TIMEOUT: &str = "BuildTimeout";
use std::sync::Arc;

saga::steps! {
    pub enum BuildStep {
        /// The scheduler picks a host (leaving out hosts tried) and claims
        /// the flavor there. Undo: the claim goes.
        Schedule = "schedule",
        /// The host and its zone are written on the instance, and added to
        /// the hosts tried. Undo: host and node are cleared.
        RecordHost = "record_host",
        /// Ports are made (or the user's taken) and bound to the host.
        /// Undo: ports made go, ports brought are unbound.
        AllocateNetwork = "allocate_network",
        /// The host fetches the image into its cache. Undo: none (the cache
        /// is shared and aged out by the host).
        PrepareImage = "prepare_image",
        /// The host makes the disk on the cached image. Undo: the disk goes.
        CreateDisk = "create_disk",
        /// The host writes the guest's definition. Undo: it is removed.
        DefineGuest = "define_guest",
        /// The host plugs the interfaces; its L2 agent sets them up.
        /// Undo: they are unplugged.
        PlugVifs = "plug_vifs",
        /// The guest boots. Undo: it is powered off.
        PowerOn = "power_on",
        /// The server is ACTIVE. Undo: it is building again.
        MarkActive = "mark_active",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildParams {
    pub instance_uuid: String,
    #[serde(default)]
    pub admin_password: Option<String>,
    /// 1 for the first host tried, then one more per reschedule.
    pub attempt: u32,
    /// Why the attempt before this one failed.
    #[serde(default)]
    pub last_failure: Option<String>,
}

/// The saga's id: one per instance and attempt, so recording it twice
/// records it once.
pub fn saga_id(uuid: &str, attempt: u32) -> String {
    format!("build-{uuid}-{attempt}")
}

pub struct Build {
    env: Arc<SagaEnv>,
    /// The instance as the build's last write left it, so the host steps
    /// that follow need not read it again (the steps that write check for a
    /// delete; a resumed build reads afresh).
    seen: std::sync::Mutex<std::collections::HashMap<String, Instance>>,
}

impl Build {
    pub fn new(env: Arc<SagaEnv>) -> Build {
        Build { env, seen: Default::default() }
    }

    fn remember(&self, i: &Instance) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert(i.uuid.clone(), i.clone());
    }

    fn forget(&self, uuid: &str) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(uuid);
    }
}

type Ctx = SagaContext<BuildParams>;

impl Build {
    fn placement(ctx: &Ctx) -> Result<Placement, StepError> {
        ctx.output(BuildStep::Schedule)
    }

    /// The instance, for a step that needs it live and still building here.
    async fn building(&self, ctx: &Ctx) -> Result<Instance, StepError> {
        let i = self.env.live(&ctx.params.instance_uuid).await?;
        self.time_left(&i)?;
        Ok(i)
    }

    /// What is left of `[DEFAULT] instance_build_timeout` (counted from the
    /// request, as Nova counts it); an error once it is spent.
    fn time_left(&self, i: &Instance) -> Result<Option<std::time::Duration>, StepError> {
        let Some(limit) = self.env.build_timeout else { return Ok(None) };
        let age = std::time::Duration::from_micros((common::time::now_micros() - i.created_at).max(0) as u64);
        match limit.checked_sub(age) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(StepError::new(BUILD_TIMEOUT, "Instance build timed out. Set to error state.")),
        }
    }

    /// A step on the build's host, given no longer than the build has left.
    async fn on_host<T, F, Fut>(&self, ctx: &Ctx, i: &Instance, host: &str, call: F) -> Result<T, StepError>
    where
        F: FnOnce(compute_rpc::host::ComputeHostClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, bus::BusError>>,
    {
        let mut client = self.env.host(host, ctx.request_id());
        if let Some(left) = self.time_left(i)? {
            client = client.with_timeout(left.min(self.env.long_rpc_timeout));
        }
        let out = self.env.on_host(host, call(client)).await;
        // A step cut short by the build's limit is the build timing out.
        self.time_left(i)?;
        out
    }

    fn event(&self, ctx: &Ctx, event: &str, host: &str, result: Option<&str>, details: Option<&str>) -> ActionEvent {
        ActionEvent {
            uuid: ctx.params.instance_uuid.clone(),
            request_id: ctx.request_id.clone().unwrap_or_default(),
            event: event.into(),
            host: host.into(),
            result: result.map(String::from),
            details: details.map(String::from),
        }
    }

    async fn guest(&self, ctx: &Ctx) -> Result<(Instance, Placement, Vec<Vif>), StepError> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(&ctx.params.instance_uuid).cloned();
        let i = match seen {
            Some(i) => {
                self.time_left(&i)?;
                i
            }
            None => self.building(ctx).await?,
        };
        let at = Self::placement(ctx)?;
        let vifs = ctx.maybe_output::<Vec<Vif>>(BuildStep::AllocateNetwork).unwrap_or_default();
        Ok((i, at, vifs))
    }

    /// Where the build got to on a host, for an undo (from the output of
    /// `schedule`, or the instance's host when it has none).
    async fn undo_target(&self, ctx: &Ctx) -> Result<Option<(Instance, String)>, StepError> {
        let i = self.env.any(&ctx.params.instance_uuid).await?;
        let host = ctx.maybe_output::<Placement>(BuildStep::Schedule).map(|p| p.host).or_else(|| i.host.clone());
        Ok(host.map(|h| (i, h)))
    }
}

impl Saga for Build {
    const NAME: &'static str = "build_instance";
    type Params = BuildParams;
    type Step = BuildStep;

    async fn action(&self, step: BuildStep, ctx: &Ctx) -> Result<Value, StepError> {
        let env = &self.env;
        let rid = ctx.request_id();
        match step {
            BuildStep::Schedule => {
                let i = self.building(ctx).await?;
                env.event(self.event(ctx, "conductor_schedule_and_build_instances", "", None, None)).await;
                let at = env.place(&i, Ask { retry: true, ..Ask::default() }, rid).await?;
                tracing::info!(instance = %i.uuid, host = %at.host, attempt = ctx.params.attempt, "scheduled");
                Ok(json!(at))
            }
            BuildStep::RecordHost => {
                let at = Self::placement(ctx)?;
                let zone = env.zone_of(&at.host).await.map_err(failed)?;
                let recorded = env
                    .update(&ctx.params.instance_uuid, true, |i| {
                        i.host = Some(at.host.clone());
                        i.node = Some(at.node.clone());
                        i.availability_zone = Some(zone.clone());
                        if !i.tried_hosts.contains(&at.host) {
                            i.tried_hosts.push(at.host.clone());
                        }
                        i.task_state = Some("networking".into());
                    })
                    .await?;
                self.remember(&recorded);
                let done = self.event(ctx, "conductor_schedule_and_build_instances", "", Some("Success"), None);
                env.event(done).await;
                env.event(self.event(ctx, "compute_build_and_run_instance", &at.host, None, None)).await;
                Ok(Value::Null)
            }
            BuildStep::AllocateNetwork => {
                let (i, at, _) = self.guest(ctx).await?;
                let vifs = env.ports().allocate(&i, &at.host).await.map_err(|e| match e {
                    compute_rpc::ComputeError::PortBindingFailed(m) => host_failure(&at.host, m),
                    other => failed(other),
                })?;
                let recorded = env
                    .update(&i.uuid, true, |x| {
                        x.network_info = vifs.clone();
                        x.task_state = Some("spawning".into());
                    })
                    .await?;
                self.remember(&recorded);
                Ok(json!(vifs))
            }
            BuildStep::PrepareImage => {
                let (i, at, _) = self.guest(ctx).await?;
                let args = InstanceArgs { instance: i.clone() };
                self.on_host(ctx, &i, &at.host, |h| async move { h.prepare_image(&args).await }).await?;
                Ok(Value::Null)
            }
            BuildStep::CreateDisk => {
                let (i, at, _) = self.guest(ctx).await?;
                let args = InstanceArgs { instance: i.clone() };
                self.on_host(ctx, &i, &at.host, |h| async move { h.create_disk(&args).await }).await?;
                Ok(Value::Null)
            }
            BuildStep::DefineGuest => {
                let (i, at, vifs) = self.guest(ctx).await?;
                let args = GuestArgs { instance: i.clone(), vifs, admin_password: ctx.params.admin_password.clone() };
                self.on_host(ctx, &i, &at.host, |h| async move { h.define_guest(&args).await }).await?;
                Ok(Value::Null)
            }
            BuildStep::PlugVifs => {
                let (i, at, vifs) = self.guest(ctx).await?;
                let args = GuestArgs { instance: i.clone(), vifs, admin_password: None };
                let plugged = self.on_host(ctx, &i, &at.host, |h| async move { h.plug_vifs(&args).await }).await?;
                // Recorded with the server going ACTIVE: one write fewer.
                Ok(json!(plugged))
            }
            BuildStep::PowerOn => {
                let (i, at, _) = self.guest(ctx).await?;
                let args = InstanceArgs { instance: i.clone() };
                self.on_host(ctx, &i, &at.host, |h| async move { h.power_on(&args).await }).await?;
                Ok(Value::Null)
            }
            BuildStep::MarkActive => {
                self.building(ctx).await?;
                let at = Self::placement(ctx)?;
                let now = common::time::now_micros();
                let plugged = ctx.maybe_output::<Vec<Vif>>(BuildStep::PlugVifs);
                env.update(&ctx.params.instance_uuid, true, |i| {
                    if let Some(vifs) = &plugged {
                        i.network_info = vifs.clone();
                    }
                    i.vm_state = vm_state::ACTIVE.into();
                    i.task_state = None;
                    i.power_state = power_state::RUNNING;
                    i.progress = 100;
                    i.build_step = None;
                    i.launched_at = Some(now);
                    i.fault = None;
                })
                .await?;
                self.forget(&ctx.params.instance_uuid);
                env.store.record_build_result(&at.host, false).await.map_err(failed)?;
                env.event(self.event(ctx, "compute_build_and_run_instance", &at.host, Some("Success"), None)).await;
                Ok(Value::Null)
            }
        }
    }

    async fn undo(&self, step: BuildStep, ctx: &Ctx) -> Result<(), StepError> {
        let env = &self.env;
        let uuid = &ctx.params.instance_uuid;
        let rid = ctx.request_id();
        match step {
            BuildStep::Schedule => env.store.release(uuid, None).await.map_err(failed),
            BuildStep::RecordHost => {
                let ours = ctx.maybe_output::<Placement>(BuildStep::Schedule).map(|p| p.host);
                env.update(uuid, false, |i| {
                    if i.host.is_some() && (ours.is_none() || i.host == ours) {
                        i.host = None;
                        i.node = None;
                    }
                })
                .await
                .map(|_| ())
            }
            BuildStep::AllocateNetwork => {
                let i = env.any(uuid).await?;
                env.ports().release_all(&i).await.map_err(failed)?;
                env.update(uuid, false, |x| x.network_info.clear()).await.map(|_| ())
            }
            BuildStep::PrepareImage => Ok(()),
            BuildStep::MarkActive => env
                .update(uuid, false, |i| {
                    if i.vm_state == vm_state::ACTIVE {
                        i.vm_state = vm_state::BUILDING.into();
                        i.power_state = power_state::NOSTATE;
                        i.launched_at = None;
                    }
                })
                .await
                .map(|_| ()),
            BuildStep::CreateDisk => {
                let Some((i, host)) = self.undo_target(ctx).await? else { return Ok(()) };
                env.undo_on_host(&host, env.host(&host, rid).delete_disk(&InstanceArgs { instance: i })).await
            }
            BuildStep::DefineGuest => {
                let Some((i, host)) = self.undo_target(ctx).await? else { return Ok(()) };
                env.undo_on_host(&host, env.host(&host, rid).undefine_guest(&InstanceArgs { instance: i })).await
            }
            BuildStep::PlugVifs => {
                let Some((i, host)) = self.undo_target(ctx).await? else { return Ok(()) };
                let vifs = i.network_info.clone();
                let args = GuestArgs { instance: i, vifs, admin_password: None };
                env.undo_on_host(&host, env.host(&host, rid).unplug_vifs(&args)).await
            }
            BuildStep::PowerOn => {
                let Some((i, host)) = self.undo_target(ctx).await? else { return Ok(()) };
                env.undo_on_host(&host, env.host(&host, rid).power_off(&InstanceArgs { instance: i })).await
            }
        }
    }

    /// After an unwind: a delete takes over; a host's failure tries the next
    /// host while attempts are left; anything else is the server's fault.
    async fn unwound(&self, ctx: &Ctx, error: &StepError) -> Result<(), StepError> {
        let env = &self.env;
        let uuid = &ctx.params.instance_uuid;
        self.forget(uuid);
        let i = env.any(uuid).await?;
        if i.deleted || i.task_state.as_deref() == Some("deleting") || error.kind == DELETING {
            return Ok(());
        }
        let failed_host = ctx.maybe_output::<Placement>(BuildStep::Schedule).map(|p| p.host);
        if let Some(h) = &failed_host {
            env.store.record_build_result(h, true).await.map_err(failed)?;
            let e = self.event(ctx, "compute_build_and_run_instance", h, Some("Error"), Some(&error.message));
            env.event(e).await;
        }
        let retryable = matches!(error.kind.as_str(), HOST_FAILURE | "Injected" | "Timeout");
        // A forced host has no other host to try (Nova's populate_retry).
        let forced = super::placement::requested_zone_and_host(i.requested_availability_zone.as_deref()).1.is_some();
        let attempts_left = i.tried_hosts.len() < env.max_attempts && (ctx.params.attempt as usize) < env.max_attempts;
        if retryable && attempts_left && !forced {
            let next = BuildParams {
                attempt: ctx.params.attempt + 1,
                last_failure: Some(error.message.clone()),
                ..ctx.params.clone()
            };
            tracing::info!(instance = %uuid, failed = ?failed_host, attempt = next.attempt, reason = %error, "rescheduling");
            env.update(uuid, false, |x| {
                x.task_state = Some("scheduling".into());
                x.progress = 0;
            })
            .await?;
            return env.start::<Build>(&saga_id(uuid, next.attempt), uuid, &next, ctx.request_id()).await;
        }
        // A reschedule that finds no host left has run out of hosts, as one
        // that has run out of attempts has.
        let last = match (&ctx.params.last_failure, error.kind.as_str()) {
            (Some(previous), "NoValidHost") => Some(previous.clone()),
            _ if retryable => Some(error.message.clone()),
            _ => None,
        };
        let message = match last {
            Some(last) => format!(
                "Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance {uuid}. Last failure: {last}"
            ),
            None => error.message.clone(),
        };
        let fault = InstanceFault {
            code: 500,
            message: message.clone(),
            details: String::new(),
            created: common::time::now_micros(),
        };
        env.update(uuid, false, |x| {
            x.vm_state = vm_state::ERROR.into();
            x.task_state = None;
            x.fault = Some(fault.clone());
            x.host = None;
            x.node = None;
        })
        .await?;
        env.store.release(uuid, None).await.map_err(failed)?;
        let e = self.event(ctx, "conductor_schedule_and_build_instances", "", Some("Error"), Some(&message));
        env.event(e).await;
        Ok(())
    }
}
