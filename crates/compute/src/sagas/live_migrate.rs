//! Live-migrating a server: the destination is prepared, the running guest
//! is handed over and started there, and only then does the source let go.
//! Until the guest runs on the destination a failure leaves it on the source
//! untouched; from then on (the point of no return) the move is finished.

use std::sync::Arc;

use compute_rpc::conductor::ActionEvent;
use compute_rpc::host::{GuestArgs, InstanceArgs, LiveMigrateArgs};
use compute_rpc::model::{vm_state, Instance};
use saga::{Saga, SagaContext, StepError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::placement::{Ask, Placement};
use super::{failed, SagaEnv};

saga::steps! {
    pub enum LiveMigrateStep {
        /// The migration is recorded and takes over the source's claim.
        /// Undo: the claim returns; the migration is in error.
        CreateMigration = "create_migration",
        /// The destination is chosen (or the admin's taken) and claimed.
        /// Undo: that claim goes.
        SelectDestination = "select_destination",
        /// The destination is written on the migration. Undo: none.
        RecordDestination = "record_destination",
        /// The destination gets the image, the disk and the definition.
        /// Undo: it destroys them.
        PreLiveMigration = "pre_live_migration",
        /// The ports are bound to the destination. Undo: back to the source.
        BindPorts = "bind_ports",
        /// The destination plugs them. Undo: unplugged.
        PlugDestination = "plug_destination",
        /// The source hands the guest's memory over. Undo: none.
        TransferGuest = "transfer_guest",
        /// The guest runs on the destination (paused if it was). Undo:
        /// powered off there.
        StartDestination = "start_destination",
        /// The server is on the destination (past the point of no return).
        RecordHost = "record_host",
        /// The source destroys its guest.
        CleanSource = "clean_source",
        /// The migration's claim on the source goes; the migration completes.
        Complete = "complete",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveMigrateParams {
    pub instance_uuid: String,
    pub migration_uuid: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub force: bool,
}

pub fn saga_id(migration_uuid: &str) -> String {
    format!("live-migrate-{migration_uuid}")
}

pub struct LiveMigrate(pub Arc<SagaEnv>);

type Ctx = SagaContext<LiveMigrateParams>;

impl LiveMigrate {
    fn source(ctx: &Ctx) -> Result<String, StepError> {
        ctx.output(LiveMigrateStep::CreateMigration)
    }

    fn dest(ctx: &Ctx) -> Result<Placement, StepError> {
        ctx.output(LiveMigrateStep::SelectDestination)
    }

    fn guest(i: Instance) -> GuestArgs {
        GuestArgs { vifs: i.network_info.clone(), instance: i, admin_password: None }
    }
}

impl Saga for LiveMigrate {
    const NAME: &'static str = "live_migrate_instance";
    type Params = LiveMigrateParams;
    type Step = LiveMigrateStep;

    fn forward_only(&self, step: LiveMigrateStep) -> bool {
        matches!(step, LiveMigrateStep::RecordHost | LiveMigrateStep::CleanSource | LiveMigrateStep::Complete)
    }

    async fn action(&self, step: LiveMigrateStep, ctx: &Ctx) -> Result<Value, StepError> {
        let env = &self.0;
        let rid = ctx.request_id();
        let i = if self.forward_only(step) {
            env.any(&ctx.params.instance_uuid).await?
        } else {
            env.live(&ctx.params.instance_uuid).await?
        };
        match step {
            LiveMigrateStep::CreateMigration => {
                let flavor = i.flavor.clone();
                let uuid = &ctx.params.migration_uuid;
                Ok(json!(env.begin_migration(&i, uuid, "live-migration", "preparing", &flavor).await?))
            }
            LiveMigrateStep::SelectDestination => {
                let source = Self::source(ctx)?;
                let ask = Ask {
                    flavor: None,
                    ignore: vec![source],
                    host: ctx.params.host.clone(),
                    force: ctx.params.host.is_some() && ctx.params.force,
                    retry: false,
                };
                Ok(json!(env.place(&i, ask, rid).await?))
            }
            LiveMigrateStep::RecordDestination => {
                let dest = Self::dest(ctx)?;
                env.store
                    .set_migration(&ctx.params.migration_uuid, "running", Some(&dest.host))
                    .await
                    .map_err(failed)?;
                Ok(Value::Null)
            }
            LiveMigrateStep::PreLiveMigration => {
                let dest = Self::dest(ctx)?;
                let client = env.host(&dest.host, rid);
                env.on_host(&dest.host, client.prepare_image(&InstanceArgs { instance: i.clone() })).await?;
                env.on_host(&dest.host, client.create_disk(&InstanceArgs { instance: i.clone() })).await?;
                env.on_host(&dest.host, client.define_guest(&Self::guest(i))).await?;
                Ok(Value::Null)
            }
            LiveMigrateStep::BindPorts => {
                let dest = Self::dest(ctx)?;
                env.ports().rebind(&i.network_info, &dest.host).await.map_err(failed)?;
                Ok(Value::Null)
            }
            LiveMigrateStep::PlugDestination => {
                let dest = Self::dest(ctx)?;
                env.on_host(&dest.host, env.host(&dest.host, rid).plug_vifs(&Self::guest(i))).await?;
                Ok(Value::Null)
            }
            LiveMigrateStep::TransferGuest => {
                let (source, dest) = (Self::source(ctx)?, Self::dest(ctx)?);
                let args = LiveMigrateArgs { instance: i, dest: dest.host };
                env.on_host(&source, env.host(&source, rid).live_migrate(&args)).await?;
                Ok(Value::Null)
            }
            LiveMigrateStep::StartDestination => {
                let dest = Self::dest(ctx)?;
                let client = env.host(&dest.host, rid);
                env.on_host(&dest.host, client.power_on(&InstanceArgs { instance: i.clone() })).await?;
                if i.vm_state == vm_state::PAUSED {
                    env.on_host(&dest.host, client.pause_guest(&InstanceArgs { instance: i })).await?;
                }
                Ok(Value::Null)
            }
            LiveMigrateStep::RecordHost => {
                let dest = Self::dest(ctx)?;
                env.update(&i.uuid, false, |x| {
                    x.host = Some(dest.host.clone());
                    x.node = Some(dest.node.clone());
                    if x.task_state.as_deref() != Some("deleting") {
                        x.task_state = None;
                    }
                })
                .await?;
                Ok(Value::Null)
            }
            LiveMigrateStep::CleanSource => {
                let source = Self::source(ctx)?;
                env.destroy_on(&source, &i, rid).await?;
                Ok(Value::Null)
            }
            LiveMigrateStep::Complete => {
                env.store.release(&ctx.params.migration_uuid, None).await.map_err(failed)?;
                env.store.set_migration(&ctx.params.migration_uuid, "completed", None).await.map_err(failed)?;
                let e = ActionEvent {
                    uuid: i.uuid.clone(),
                    request_id: rid.unwrap_or_default(),
                    event: "compute_live_migration".into(),
                    host: Self::source(ctx)?,
                    result: Some("Success".into()),
                    details: None,
                };
                env.event(e).await;
                Ok(Value::Null)
            }
        }
    }

    async fn undo(&self, step: LiveMigrateStep, ctx: &Ctx) -> Result<(), StepError> {
        let env = &self.0;
        let rid = ctx.request_id();
        let i = env.any(&ctx.params.instance_uuid).await?;
        let dest = ctx.maybe_output::<Placement>(LiveMigrateStep::SelectDestination);
        match step {
            LiveMigrateStep::CreateMigration => env.abandon_migration(&ctx.params.migration_uuid, &i.uuid).await,
            LiveMigrateStep::SelectDestination => env.store.release(&i.uuid, None).await.map_err(failed),
            LiveMigrateStep::PreLiveMigration => match dest {
                Some(d) => env.destroy_on(&d.host, &i, rid).await,
                None => Ok(()),
            },
            LiveMigrateStep::BindPorts => match ctx.maybe_output::<String>(LiveMigrateStep::CreateMigration) {
                Some(source) => env.ports().rebind(&i.network_info, &source).await.map_err(failed),
                None => Ok(()),
            },
            LiveMigrateStep::PlugDestination => match dest {
                Some(d) => env.undo_on_host(&d.host, env.host(&d.host, rid).unplug_vifs(&Self::guest(i))).await,
                None => Ok(()),
            },
            LiveMigrateStep::StartDestination => match dest {
                Some(d) => {
                    env.undo_on_host(&d.host, env.host(&d.host, rid).power_off(&InstanceArgs { instance: i })).await
                }
                None => Ok(()),
            },
            LiveMigrateStep::RecordDestination
            | LiveMigrateStep::TransferGuest
            | LiveMigrateStep::RecordHost
            | LiveMigrateStep::CleanSource
            | LiveMigrateStep::Complete => Ok(()),
        }
    }

    async fn unwound(&self, ctx: &Ctx, error: &StepError) -> Result<(), StepError> {
        let env = &self.0;
        env.clear_task(&ctx.params.instance_uuid).await?;
        let e = ActionEvent {
            uuid: ctx.params.instance_uuid.clone(),
            request_id: ctx.request_id.clone().unwrap_or_default(),
            event: "conductor_live_migrate_instance".into(),
            host: String::new(),
            result: Some("Error".into()),
            details: Some(error.message.clone()),
        };
        env.event(e).await;
        Ok(())
    }
}
