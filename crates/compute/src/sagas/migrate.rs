//! Resizing a server, or migrating it cold (a resize that keeps the flavor),
//! up to VERIFY_RESIZE: the guest is started on the destination with the new
//! flavor while the source keeps its disk (and its claim, held by the
//! migration) until `confirm_resize` or `revert_resize` ends the move.
//! Any failure before the end puts the server back on its source, as it was.

use std::sync::Arc;

use compute_rpc::conductor::ActionEvent;
use compute_rpc::host::{GuestArgs, InstanceArgs};
use compute_rpc::model::{power_state, vm_state, Flavor, Instance, InstanceFault};
use saga::{Saga, SagaContext, StepError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::placement::{Ask, Placement};
use super::{failed, was_running, SagaEnv};

saga::steps! {
    pub enum MigrateStep {
        /// The migration is recorded and takes over the instance's claim on
        /// the source. Undo: the claim returns; the migration is in error.
        CreateMigration = "create_migration",
        /// The scheduler (or the admin) picks the destination and the new
        /// flavor is claimed there. Undo: that claim goes.
        SelectDestination = "select_destination",
        /// The destination is written on the migration. Undo: none.
        RecordDestination = "record_destination",
        /// The guest is powered off on the source. Undo: powered on again
        /// if it was running.
        PowerOffSource = "power_off_source",
        /// The destination gets the image, the disk and a definition with
        /// the new flavor. Undo: they go (on the same host, the old flavor
        /// is defined again).
        PrepareDestination = "prepare_destination",
        /// The ports are bound to the destination. Undo: back to the source.
        BindPorts = "bind_ports",
        /// The destination plugs them and its agent sets them up. Undo:
        /// unplugged (on another host).
        PlugDestination = "plug_destination",
        /// The guest starts on the destination if it was running. Undo:
        /// powered off.
        StartDestination = "start_destination",
        /// The server is RESIZED (VERIFY_RESIZE) on the destination. Undo:
        /// its record says source and old flavor again.
        Finish = "finish",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MigrateParams {
    pub instance_uuid: String,
    pub migration_uuid: String,
    /// Set for a resize; a cold migration keeps the flavor.
    #[serde(default)]
    pub new_flavor: Option<Flavor>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub allow_same_host: bool,
}

pub fn saga_id(migration_uuid: &str) -> String {
    format!("migrate-{migration_uuid}")
}

pub struct Migrate(pub Arc<SagaEnv>);

type Ctx = SagaContext<MigrateParams>;

/// What the move started from.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Source {
    host: String,
    running: bool,
}

impl Migrate {
    fn source(ctx: &Ctx) -> Result<Source, StepError> {
        ctx.output(MigrateStep::CreateMigration)
    }

    fn dest(ctx: &Ctx) -> Result<Placement, StepError> {
        ctx.output(MigrateStep::SelectDestination)
    }

    /// The instance as the destination runs it: with the new flavor.
    fn moved(ctx: &Ctx, mut i: Instance) -> Instance {
        if let Some(f) = &ctx.params.new_flavor {
            i.flavor = f.clone();
        }
        i
    }

    fn event_name(ctx: &Ctx) -> &'static str {
        if ctx.params.new_flavor.is_some() {
            "compute_resize_instance"
        } else {
            "conductor_migrate_server"
        }
    }
}

impl Saga for Migrate {
    const NAME: &'static str = "migrate_instance";
    type Params = MigrateParams;
    type Step = MigrateStep;

    async fn action(&self, step: MigrateStep, ctx: &Ctx) -> Result<Value, StepError> {
        let env = &self.0;
        let rid = ctx.request_id();
        let i = env.live(&ctx.params.instance_uuid).await?;
        match step {
            MigrateStep::CreateMigration => {
                let flavor = ctx.params.new_flavor.clone().unwrap_or_else(|| i.flavor.clone());
                let kind = if ctx.params.new_flavor.is_some() { "resize" } else { "migration" };
                let source =
                    env.begin_migration(&i, &ctx.params.migration_uuid, kind, "pre-migrating", &flavor).await?;
                let e = ActionEvent {
                    uuid: i.uuid.clone(),
                    request_id: rid.clone().unwrap_or_default(),
                    event: "conductor_migrate_server".into(),
                    host: String::new(),
                    result: None,
                    details: None,
                };
                env.event(e).await;
                Ok(json!(Source { host: source, running: was_running(&i) }))
            }
            MigrateStep::SelectDestination => {
                let source = Self::source(ctx)?;
                let ask = Ask {
                    flavor: ctx.params.new_flavor.clone(),
                    ignore: if ctx.params.allow_same_host { Vec::new() } else { vec![source.host.clone()] },
                    host: ctx.params.host.clone(),
                    force: false,
                    retry: false,
                };
                Ok(json!(env.place(&i, ask, rid).await?))
            }
            MigrateStep::RecordDestination => {
                let dest = Self::dest(ctx)?;
                env.store
                    .set_migration(&ctx.params.migration_uuid, "migrating", Some(&dest.host))
                    .await
                    .map_err(failed)?;
                env.update(&i.uuid, true, |x| x.task_state = Some("resize_migrating".into())).await?;
                Ok(Value::Null)
            }
            MigrateStep::PowerOffSource => {
                let source = Self::source(ctx)?;
                let client = env.host(&source.host, rid);
                env.on_host(&source.host, client.power_off(&InstanceArgs { instance: i })).await?;
                Ok(Value::Null)
            }
            MigrateStep::PrepareDestination => {
                let dest = Self::dest(ctx)?;
                let moved = Self::moved(ctx, i);
                let client = env.host(&dest.host, rid);
                let args = InstanceArgs { instance: moved.clone() };
                env.on_host(&dest.host, client.prepare_image(&args)).await?;
                env.on_host(&dest.host, client.create_disk(&args)).await?;
                let guest = GuestArgs { vifs: moved.network_info.clone(), instance: moved, admin_password: None };
                env.on_host(&dest.host, client.define_guest(&guest)).await?;
                env.update(&ctx.params.instance_uuid, true, |x| x.task_state = Some("resize_migrated".into())).await?;
                Ok(Value::Null)
            }
            MigrateStep::BindPorts => {
                let dest = Self::dest(ctx)?;
                env.ports().rebind(&i.network_info, &dest.host).await.map_err(failed)?;
                Ok(Value::Null)
            }
            MigrateStep::PlugDestination => {
                let dest = Self::dest(ctx)?;
                let moved = Self::moved(ctx, i);
                let guest = GuestArgs { vifs: moved.network_info.clone(), instance: moved, admin_password: None };
                env.on_host(&dest.host, env.host(&dest.host, rid).plug_vifs(&guest)).await?;
                Ok(Value::Null)
            }
            MigrateStep::StartDestination => {
                let (source, dest) = (Self::source(ctx)?, Self::dest(ctx)?);
                env.update(&i.uuid, true, |x| x.task_state = Some("resize_finish".into())).await?;
                if source.running {
                    let moved = Self::moved(ctx, i);
                    let client = env.host(&dest.host, rid);
                    env.on_host(&dest.host, client.power_on(&InstanceArgs { instance: moved })).await?;
                }
                Ok(Value::Null)
            }
            MigrateStep::Finish => {
                let (source, dest) = (Self::source(ctx)?, Self::dest(ctx)?);
                let new_flavor = ctx.params.new_flavor.clone();
                env.update(&i.uuid, true, |x| {
                    // Once: run again, the flavor is the new one already.
                    if x.vm_state != vm_state::RESIZED {
                        x.old_flavor = Some(x.flavor.clone());
                        if let Some(f) = &new_flavor {
                            x.flavor = f.clone();
                        }
                    }
                    x.new_flavor = None;
                    x.vm_state = vm_state::RESIZED.into();
                    x.task_state = None;
                    x.power_state = if source.running { power_state::RUNNING } else { power_state::SHUTDOWN };
                    x.host = Some(dest.host.clone());
                    x.node = Some(dest.node.clone());
                    x.source_host = Some(source.host.clone());
                })
                .await?;
                env.store.set_migration(&ctx.params.migration_uuid, "finished", None).await.map_err(failed)?;
                let e = ActionEvent {
                    uuid: ctx.params.instance_uuid.clone(),
                    request_id: rid.unwrap_or_default(),
                    event: Self::event_name(ctx).into(),
                    host: dest.host.clone(),
                    result: Some("Success".into()),
                    details: None,
                };
                env.event(e).await;
                Ok(Value::Null)
            }
        }
    }

    async fn undo(&self, step: MigrateStep, ctx: &Ctx) -> Result<(), StepError> {
        let env = &self.0;
        let rid = ctx.request_id();
        let i = env.any(&ctx.params.instance_uuid).await?;
        let source = ctx.maybe_output::<Source>(MigrateStep::CreateMigration);
        let dest = ctx.maybe_output::<Placement>(MigrateStep::SelectDestination);
        let same_host = matches!((&source, &dest), (Some(s), Some(d)) if s.host == d.host);
        match step {
            MigrateStep::CreateMigration => env.abandon_migration(&ctx.params.migration_uuid, &i.uuid).await,
            MigrateStep::SelectDestination => env.store.release(&i.uuid, None).await.map_err(failed),
            MigrateStep::RecordDestination => Ok(()),
            MigrateStep::Finish => {
                // Back on the source with the old flavor, as it was.
                let (Some(s), true) = (source, i.vm_state == vm_state::RESIZED) else { return Ok(()) };
                let node = env
                    .store
                    .compute_nodes()
                    .await
                    .map_err(failed)?
                    .into_iter()
                    .find(|n| n.host == s.host)
                    .map(|n| n.hypervisor_hostname);
                env.update(&i.uuid, false, |x| {
                    if let Some(f) = x.old_flavor.take() {
                        x.flavor = f;
                    }
                    x.vm_state = if s.running { vm_state::ACTIVE } else { vm_state::STOPPED }.into();
                    x.power_state = if s.running { power_state::RUNNING } else { power_state::SHUTDOWN };
                    x.host = Some(s.host.clone());
                    x.node = node.clone().or_else(|| Some(s.host.clone()));
                    x.source_host = None;
                })
                .await?;
                env.store.set_migration(&ctx.params.migration_uuid, "error", None).await.map_err(failed)
            }
            MigrateStep::PowerOffSource => match source {
                Some(s) if s.running => {
                    env.undo_on_host(&s.host, env.host(&s.host, rid).power_on(&InstanceArgs { instance: i })).await
                }
                _ => Ok(()),
            },
            MigrateStep::PrepareDestination => {
                let Some(d) = dest else { return Ok(()) };
                let client = env.host(&d.host, rid);
                if same_host {
                    // The guest is the source's too: give it its old flavor back.
                    let guest = GuestArgs { vifs: i.network_info.clone(), instance: i, admin_password: None };
                    env.undo_on_host(&d.host, client.define_guest(&guest)).await
                } else {
                    env.undo_on_host(&d.host, client.destroy_guest(&InstanceArgs { instance: i })).await
                }
            }
            MigrateStep::BindPorts => {
                let Some(s) = source else { return Ok(()) };
                env.ports().rebind(&i.network_info, &s.host).await.map_err(failed)
            }
            MigrateStep::PlugDestination => match dest {
                Some(d) if !same_host => {
                    let guest = GuestArgs { vifs: i.network_info.clone(), instance: i, admin_password: None };
                    env.undo_on_host(&d.host, env.host(&d.host, rid).unplug_vifs(&guest)).await
                }
                _ => Ok(()),
            },
            MigrateStep::StartDestination => {
                let Some(d) = dest else { return Ok(()) };
                env.undo_on_host(&d.host, env.host(&d.host, rid).power_off(&InstanceArgs { instance: i })).await
            }
        }
    }

    /// Back on the source as it was, with the failure on record.
    async fn unwound(&self, ctx: &Ctx, error: &StepError) -> Result<(), StepError> {
        let env = &self.0;
        let fault = InstanceFault {
            code: 400,
            message: error.message.clone(),
            details: String::new(),
            created: common::time::now_micros(),
        };
        env.update(&ctx.params.instance_uuid, false, |x| {
            if x.task_state.as_deref() != Some("deleting") {
                x.task_state = None;
            }
            x.new_flavor = None;
            x.fault = Some(fault.clone());
        })
        .await?;
        let e = ActionEvent {
            uuid: ctx.params.instance_uuid.clone(),
            request_id: ctx.request_id.clone().unwrap_or_default(),
            event: "conductor_migrate_server".into(),
            host: String::new(),
            result: Some("Error".into()),
            details: Some(error.message.clone()),
        };
        env.event(e).await;
        Ok(())
    }
}
