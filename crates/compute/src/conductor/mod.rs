//! The conductor: the compute hosts' only door to the database, and the
//! orchestrator of builds (schedule, claim, hand to a host, retry on the
//! alternates when a host fails). Its handlers are small; `build.rs` holds
//! the build and reschedule workflow.

mod build;
mod moves;

use std::sync::Arc;

use bus::{Message, Reply};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{ComputeError, Result};
use crate::model::{vm_state, Instance};
use crate::rpc::{args, ComputeRpc, SchedulerApi, CONDUCTOR};
use crate::store::services::ComputeNode;
use crate::store::Store;

pub struct Conductor {
    pub store: Store,
    pub scheduler: SchedulerApi,
    pub compute: ComputeRpc,
    pub max_attempts: usize,
    pub default_zone: String,
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

#[derive(Deserialize)]
struct Uuid {
    uuid: String,
}

#[derive(Deserialize)]
struct Update {
    uuid: String,
    changes: Map<String, Value>,
    expected_task_state: Option<Vec<Option<String>>>,
}

#[derive(Deserialize)]
struct Event {
    uuid: String,
    request_id: String,
    event: String,
    host: String,
    result: Option<String>,
    details: Option<String>,
}

#[derive(Deserialize)]
struct Heartbeat {
    host: String,
    binary: String,
    topic: String,
}

#[derive(Deserialize)]
struct GroupHosts {
    group: String,
    except: String,
}

fn remote(e: ComputeError) -> bus::RemoteError {
    e.into()
}

impl Conductor {
    pub async fn serve(self: Arc<Self>, server: &str) -> Result<()> {
        let bus = self.compute.bus.clone();
        let me = self.clone();
        bus.serve(CONDUCTOR, server, move |m: Message| {
            let me = me.clone();
            async move { me.handle(m).await }
        })
        .await?;
        self.recover().await;
        Ok(())
    }

    async fn handle(&self, m: Message) -> Reply {
        let request_id = m.request_id.clone().unwrap_or_default();
        match m.method.as_str() {
            "build_instances" => {
                let a: build::BuildArgs = args(&m)?;
                self.build_instances(a, &request_id).await;
                Ok(Value::Null)
            }
            "build_failed" => {
                let a: build::FailedArgs = args(&m)?;
                self.build_failed(a, &request_id).await.map_err(remote)?;
                Ok(Value::Null)
            }
            "instance_get" => {
                let a: Uuid = args(&m)?;
                Ok(json!(self
                    .store
                    .instance_any(&a.uuid)
                    .await
                    .map_err(remote)?
                    .ok_or_else(|| remote(crate::store::instances::not_found(&a.uuid)))?))
            }
            "instance_update" => {
                let a: Update = args(&m)?;
                let updated = self
                    .store
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
                    .map_err(remote)?;
                Ok(json!(updated))
            }
            "instances_on_host" => {
                #[derive(Deserialize)]
                struct Host {
                    host: String,
                }
                let a: Host = args(&m)?;
                Ok(json!(self.store.instances_on_host(&a.host).await.map_err(remote)?))
            }
            "action_event" => {
                let a: Event = args(&m)?;
                self.store
                    .action_event(
                        &a.uuid,
                        &a.request_id,
                        &a.event,
                        Some(&a.host),
                        a.result.as_deref(),
                        a.details.as_deref(),
                    )
                    .await
                    .map_err(remote)?;
                Ok(Value::Null)
            }
            "instance_destroyed" => {
                let a: Uuid = args(&m)?;
                self.instance_destroyed(&a.uuid).await.map_err(remote)?;
                Ok(Value::Null)
            }
            "instance_offloaded" => {
                let a: Uuid = args(&m)?;
                self.store
                    .update_instance(&a.uuid, |i| {
                        i.vm_state = vm_state::SHELVED_OFFLOADED.into();
                        i.task_state = None;
                        i.power_state = 0;
                        i.host = None;
                        i.node = None;
                        Ok(())
                    })
                    .await
                    .map_err(remote)?;
                self.store.release(&a.uuid, None).await.map_err(remote)?;
                Ok(Value::Null)
            }
            "service_heartbeat" => {
                let a: Heartbeat = args(&m)?;
                self.store.register_service(&a.host, &a.binary, &a.topic).await.map_err(remote)?;
                Ok(Value::Null)
            }
            "compute_node_report" => {
                let node: ComputeNode = args(&m)?;
                self.store.report_compute_node(&node).await.map_err(remote)?;
                Ok(Value::Null)
            }
            "group_hosts" => {
                let a: GroupHosts = args(&m)?;
                Ok(json!(self.group_hosts(&a.group, &a.except).await.map_err(remote)?))
            }
            "migrate_server" => {
                let a: moves::MigrateArgs = args(&m)?;
                self.migrate_server(a, &request_id).await.map_err(remote)?;
                Ok(Value::Null)
            }
            "unshelve_instance" => {
                #[derive(Deserialize)]
                struct Unshelve {
                    uuid: String,
                    availability_zone: Option<String>,
                    #[serde(default)]
                    host: Option<String>,
                }
                let a: Unshelve = args(&m)?;
                self.unshelve(&a.uuid, a.availability_zone, a.host, &request_id).await.map_err(remote)?;
                Ok(Value::Null)
            }
            "build_succeeded" => {
                #[derive(Deserialize)]
                struct Host {
                    host: String,
                }
                let a: Host = args(&m)?;
                self.store.record_build_result(&a.host, false).await.map_err(remote)?;
                Ok(Value::Null)
            }
            "migration_update" => {
                #[derive(Deserialize)]
                struct MigrationUpdate {
                    uuid: String,
                    status: String,
                }
                let a: MigrationUpdate = args(&m)?;
                self.migration_update(&a.uuid, &a.status).await.map_err(remote)?;
                Ok(Value::Null)
            }
            other => Err(bus::RemoteError::new("BadRequest", format!("unknown conductor method {other}"))),
        }
    }

    /// The end of a delete: the instance is marked deleted, its claims and its
    /// place in a server group go.
    pub async fn instance_destroyed(&self, uuid: &str) -> Result<()> {
        let now = common::time::now_micros();
        self.store
            .update_instance(uuid, |i| {
                i.vm_state = vm_state::DELETED.into();
                i.task_state = None;
                i.power_state = 0;
                i.deleted = true;
                i.deleted_at = Some(now);
                i.terminated_at = Some(now);
                i.network_info.clear();
                Ok(())
            })
            .await?;
        self.store.release(uuid, None).await?;
        for m in self.store.migrations(Some(uuid)).await? {
            self.store.release(&m.uuid, None).await?;
        }
        self.store.remove_group_member(uuid).await?;
        self.store.delete_console_tokens(uuid).await?;
        Ok(())
    }

    /// How many of a group's members (other than `except`) each host holds.
    async fn group_hosts(&self, group: &str, except: &str) -> Result<std::collections::BTreeMap<String, usize>> {
        let g = self.store.group(group).await?;
        let allocations = self.store.allocations().await?;
        Ok(allocations
            .iter()
            .map(|(h, claims)| (h.clone(), claims.iter().filter(|(c, _)| c != except && g.members.contains(c)).count()))
            .filter(|(_, n)| *n > 0)
            .collect())
    }

    /// A move reached a state: its claims follow.
    async fn migration_update(&self, uuid: &str, status: &str) -> Result<()> {
        let m = self.store.active_migration(uuid).await?;
        self.store.set_migration(&m.uuid, status, None).await?;
        match status {
            // The source's claim (held by the migration) goes: the instance
            // stays on the destination.
            "confirmed" | "completed" => {
                self.store.release(&m.uuid, None).await?;
            }
            // A move that failed: back to where it was.
            "error" => {
                if let Some(dest) = &m.dest_compute {
                    self.store.release(uuid, Some(dest)).await?;
                }
                if let Some(source) = &m.source_compute {
                    self.store.move_claim(&m.uuid, uuid, source).await?;
                }
                self.store
                    .update_instance(uuid, |i| {
                        i.task_state = None;
                        Ok(())
                    })
                    .await?;
            }
            // Back to the source: its claim returns to the instance, and
            // the destination's goes.
            "reverted" => {
                if let Some(dest) = &m.dest_compute {
                    self.store.release(uuid, Some(dest)).await?;
                }
                if let Some(source) = &m.source_compute {
                    self.store.move_claim(&m.uuid, uuid, source).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The zone a host is in: its aggregates' `availability_zone`, else the
    /// default zone.
    pub async fn zone_of(&self, host: &str) -> Result<String> {
        Ok(self
            .store
            .aggregates()
            .await?
            .into_iter()
            .find(|a| a.hosts.iter().any(|h| h == host) && a.availability_zone().is_some())
            .and_then(|a| a.availability_zone().map(String::from))
            .unwrap_or_else(|| self.default_zone.clone()))
    }
}
