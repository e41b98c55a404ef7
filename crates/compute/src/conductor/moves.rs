//! Moving servers: the conductor picks the destination (through the
//! scheduler, or the admin's choice checked against capacity), sets up the
//! claims and the migration record, and hands the move to the source host.
//! During a move the source's claim belongs to the migration, the
//! destination's to the instance; confirming drops the first, reverting the
//! second.

use serde::Deserialize;
use serde_json::json;

use super::Conductor;
use crate::error::{ComputeError, Result};
use crate::model::{vm_state, Flavor, Instance, InstanceFault};
use crate::scheduler::service::capacity;
use crate::store::migrations::Migration;

#[derive(Deserialize)]
pub struct MigrateArgs {
    pub uuid: String,
    /// Set for a resize; a cold migration keeps the flavor.
    pub new_flavor: Option<Flavor>,
    #[serde(default)]
    pub allow_same_host: bool,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub live: bool,
    #[serde(default)]
    pub force: bool,
}

impl Conductor {
    /// Where the instance can go (claimed), leaving its current host out
    /// unless a same-host resize is allowed.
    async fn destination(
        &self,
        i: &Instance,
        flavor: &Flavor,
        a: &MigrateArgs,
        request_id: &str,
    ) -> Result<(String, String)> {
        let source = i.host.clone().unwrap_or_default();
        if let (Some(host), true) = (&a.host, a.force || a.live) {
            let node = self
                .store
                .compute_nodes()
                .await?
                .into_iter()
                .find(|n| n.host == *host)
                .ok_or_else(|| ComputeError::BadRequest(format!("Compute host {host} could not be found.")))?;
            self.store.claim(&i.uuid, host, crate::model::Usage::of(flavor), &capacity(&node)).await?;
            return Ok((node.host, node.hypervisor_hostname));
        }
        let mut spec = self.request_spec(i, 0).await?;
        spec.flavor.vcpus = flavor.vcpus;
        spec.flavor.memory_mb = flavor.memory_mb;
        spec.flavor.root_gb = flavor.root_gb;
        spec.flavor.ephemeral_gb = flavor.ephemeral_gb;
        spec.flavor.swap = flavor.swap;
        spec.flavor.extra_specs = flavor.extra_specs.clone();
        spec.tried_hosts.clear();
        if !a.allow_same_host {
            spec.ignore_hosts.push(source);
        }
        if let Some(h) = &a.host {
            spec.force_host = Some(h.clone());
        }
        let chosen = self.scheduler.select_destinations(&[spec], request_id).await?;
        let sel =
            chosen.into_iter().next().ok_or_else(|| ComputeError::NoValidHost("No valid host was found.".into()))?;
        Ok((sel.host, sel.node))
    }

    /// Resize, cold migration and live migration.
    pub async fn migrate_server(&self, a: MigrateArgs, request_id: &str) -> Result<()> {
        let i = self.store.instance(&a.uuid).await?;
        let source = i.host.clone().ok_or_else(|| ComputeError::Conflict("The instance has no host.".into()))?;
        let flavor = a.new_flavor.clone().unwrap_or_else(|| i.flavor.clone());
        let now = common::time::now_micros();
        let kind = if a.live {
            "live-migration"
        } else if a.new_flavor.is_some() {
            "resize"
        } else {
            "migration"
        };
        let migration = Migration {
            id: 0,
            uuid: common::id::new_uuid(),
            instance_uuid: i.uuid.clone(),
            migration_type: kind.into(),
            status: "pre-migrating".into(),
            source_compute: Some(source.clone()),
            dest_compute: None,
            old_flavor: Some(i.flavor.internal_id.to_string()),
            new_flavor: Some(flavor.internal_id.to_string()),
            project_id: i.project_id.clone(),
            user_id: i.user_id.clone(),
            created_at: now,
            updated_at: now,
        };
        self.store.create_migration(&migration).await?;
        self.store.move_claim(&i.uuid, &migration.uuid, &source).await?;
        let event = if a.live { "conductor_live_migrate_instance" } else { "conductor_migrate_server" };
        self.store.action_event(&i.uuid, request_id, event, None, None, None).await?;
        let (dest, _node) = match self.destination(&i, &flavor, &a, request_id).await {
            Ok(d) => d,
            Err(e) => {
                self.store.move_claim(&migration.uuid, &i.uuid, &source).await?;
                self.store.set_migration(&migration.uuid, "error", None).await?;
                let message = e.to_string();
                self.store
                    .update_instance(&i.uuid, |inst| {
                        inst.task_state = None;
                        inst.new_flavor = None;
                        inst.fault = Some(InstanceFault {
                            code: 400,
                            message: message.clone(),
                            details: String::new(),
                            created: now,
                        });
                        Ok(())
                    })
                    .await?;
                self.store.action_event(&i.uuid, request_id, event, None, Some("Error"), Some(&message)).await?;
                return Ok(());
            }
        };
        self.store.set_migration(&migration.uuid, if a.live { "running" } else { "migrating" }, Some(&dest)).await?;
        self.store.action_event(&i.uuid, request_id, event, None, Some("Success"), None).await?;
        if a.live {
            self.compute.cast(&source, "live_migration", json!({"uuid": i.uuid, "dest": dest}), request_id).await
        } else {
            self.compute.cast(&source, "resize_instance", json!({"uuid": i.uuid, "dest": dest}), request_id).await
        }
    }

    /// Unshelving an offloaded instance: a host is chosen and claimed again.
    pub async fn unshelve(
        &self,
        uuid: &str,
        zone: Option<String>,
        host: Option<String>,
        request_id: &str,
    ) -> Result<()> {
        let mut i = self.store.instance(uuid).await?;
        if zone.is_some() {
            i.requested_availability_zone = zone.clone();
        }
        let mut spec = self.request_spec(&i, 0).await?;
        spec.force_host = host;
        let chosen = match self.scheduler.select_destinations(&[spec], request_id).await {
            Ok(c) => c,
            Err(e) => {
                let message = e.to_string();
                self.store
                    .update_instance(uuid, |inst| {
                        inst.task_state = None;
                        inst.vm_state = vm_state::SHELVED_OFFLOADED.into();
                        inst.fault = Some(InstanceFault {
                            code: 500,
                            message: message.clone(),
                            details: String::new(),
                            created: common::time::now_micros(),
                        });
                        Ok(())
                    })
                    .await?;
                return Ok(());
            }
        };
        let Some(sel) = chosen.into_iter().next() else { return Ok(()) };
        let zone = self.zone_of(&sel.host).await?;
        self.store
            .update_instance(uuid, |inst| {
                inst.host = Some(sel.host.clone());
                inst.node = Some(sel.node.clone());
                inst.availability_zone = Some(zone.clone());
                if let Some(z) = &i.requested_availability_zone {
                    inst.requested_availability_zone = Some(z.clone());
                }
                Ok(())
            })
            .await?;
        self.compute.cast(&sel.host, "unshelve_instance", json!({"uuid": uuid}), request_id).await
    }
}
