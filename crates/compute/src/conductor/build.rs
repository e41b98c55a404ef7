//! Building servers: schedule (the scheduler claims a host and names
//! alternates), record the choice, hand the build to the host. When a host
//! fails a build it gives back its claim and the conductor moves on to the
//! next alternate, until `max_attempts` hosts were tried; then the instance
//! goes to ERROR with the fault. A build the conductor was handed but had not
//! scheduled when it stopped is picked up again when it starts.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Conductor;
use crate::error::{ComputeError, Result};
use crate::model::{vm_state, Instance, InstanceFault};
use crate::scheduler::service::capacity;
use crate::scheduler::{FlavorSpec, GroupSpec, RequestSpec};

#[derive(Deserialize)]
pub struct BuildArgs {
    pub uuids: Vec<String>,
    #[serde(default)]
    pub admin_passwords: Vec<Option<String>>,
}

#[derive(Deserialize)]
pub struct FailedArgs {
    pub uuid: String,
    pub host: String,
    pub reason: String,
    pub admin_password: Option<String>,
}

/// Hint values may be one string or a list.
fn hint_list(hints: &serde_json::Map<String, Value>, key: &str) -> Vec<String> {
    match hints.get(key) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}

impl Conductor {
    /// What the scheduler needs to know of one instance.
    pub async fn request_spec(&self, i: &Instance, index: usize) -> Result<RequestSpec> {
        let group = match &i.server_group {
            Some(id) => {
                let g = self.store.group(id).await?;
                Some(GroupSpec {
                    uuid: g.id.clone(),
                    policy: g.policy.clone(),
                    max_server_per_host: g.max_server_per_host(),
                    members: g.members.iter().filter(|m| **m != i.uuid).cloned().collect(),
                    hosts: Default::default(),
                })
            }
            None => None,
        };
        let properties = i.image_meta.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let (zone, force_host) =
            match i.requested_availability_zone.as_deref().map(|z| z.split(':').collect::<Vec<_>>()) {
                Some(parts) if parts.len() >= 2 && !parts[1].is_empty() => {
                    (Some(parts[0]).filter(|z| !z.is_empty()).map(String::from), Some(parts[1].to_string()))
                }
                Some(parts) => (parts.first().filter(|z| !z.is_empty()).map(|z| z.to_string()), None),
                None => (None, None),
            };
        Ok(RequestSpec {
            instance_uuid: i.uuid.clone(),
            project_id: i.project_id.clone(),
            flavor: FlavorSpec {
                vcpus: i.flavor.vcpus,
                memory_mb: i.flavor.memory_mb,
                root_gb: i.flavor.root_gb,
                ephemeral_gb: i.flavor.ephemeral_gb,
                swap: i.flavor.swap,
                extra_specs: i.flavor.extra_specs.clone(),
            },
            image_properties: properties
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
                .collect(),
            availability_zone: zone,
            group,
            same_host: hint_list(&i.scheduler_hints, "same_host"),
            different_host: hint_list(&i.scheduler_hints, "different_host"),
            tried_hosts: i.tried_hosts.clone(),
            ignore_hosts: Vec::new(),
            force_host,
            index,
        })
    }

    /// Sets the instance to ERROR with a fault; its claims go.
    async fn fail_build(&self, uuid: &str, code: u16, message: &str, request_id: &str) -> Result<()> {
        let fault = InstanceFault {
            code,
            message: message.into(),
            details: String::new(),
            created: common::time::now_micros(),
        };
        self.store
            .update_instance(uuid, |i| {
                i.vm_state = vm_state::ERROR.into();
                i.task_state = None;
                i.fault = Some(fault);
                // No host holds it any more (the last one undid its build), as
                // Nova nils out host and node before each reschedule.
                i.host = None;
                i.node = None;
                Ok(())
            })
            .await?;
        self.store.release(uuid, None).await?;
        self.store
            .action_event(
                uuid,
                request_id,
                "conductor_schedule_and_build_instances",
                None,
                Some("Error"),
                Some(message),
            )
            .await?;
        Ok(())
    }

    pub async fn build_instances(&self, a: BuildArgs, request_id: &str) {
        if let Err(e) = self.try_build_instances(&a, request_id).await {
            // No room is the cloud working as designed; anything else is ours.
            let message = match &e {
                ComputeError::NoValidHost(m) => {
                    tracing::warn!(reason = %m, "no valid host for the build");
                    m.clone()
                }
                other => {
                    tracing::error!(error = %other, "build_instances failed");
                    other.to_string()
                }
            };
            let code = 500;
            for uuid in &a.uuids {
                if let Err(e) = self.fail_build(uuid, code, &message, request_id).await {
                    tracing::error!(%uuid, error = %e, "could not record the build failure");
                }
            }
        }
    }

    async fn try_build_instances(&self, a: &BuildArgs, request_id: &str) -> Result<()> {
        let mut instances = Vec::new();
        for uuid in &a.uuids {
            let i = self.store.instance(uuid).await?;
            // Deleted or taken over meanwhile: nothing to build.
            if i.vm_state == vm_state::BUILDING && i.host.is_none() {
                instances.push(i);
            }
        }
        if instances.is_empty() {
            return Ok(());
        }
        for i in &instances {
            self.store
                .action_event(&i.uuid, request_id, "conductor_schedule_and_build_instances", None, None, None)
                .await?;
        }
        let mut specs = Vec::new();
        for (index, i) in instances.iter().enumerate() {
            specs.push(self.request_spec(i, index).await?);
        }
        let selections = self.scheduler.select_destinations(&specs, request_id).await?;
        for ((i, sel), password) in
            instances.iter().zip(selections).zip(a.admin_passwords.iter().chain(std::iter::repeat(&None)))
        {
            let zone = self.zone_of(&sel.host).await?;
            let placed = self
                .store
                .update_instance(&i.uuid, |inst| {
                    if inst.deleted || inst.task_state.as_deref() == Some("deleting") || inst.host.is_some() {
                        return Err(ComputeError::Conflict(format!(
                            "instance {} was deleted or placed elsewhere while scheduling",
                            inst.uuid
                        )));
                    }
                    inst.host = Some(sel.host.clone());
                    inst.node = Some(sel.node.clone());
                    inst.availability_zone = Some(zone.clone());
                    inst.tried_hosts = vec![sel.host.clone()];
                    inst.alternates = sel.alternates.clone();
                    Ok(())
                })
                .await;
            if let Err(e) = placed {
                tracing::info!(instance = %i.uuid, error = %e, "not building");
                self.store.release(&i.uuid, Some(&sel.host)).await?;
                continue;
            }
            self.store
                .action_event(
                    &i.uuid,
                    request_id,
                    "conductor_schedule_and_build_instances",
                    None,
                    Some("Success"),
                    None,
                )
                .await?;
            self.compute
                .cast(
                    &sel.host,
                    "build_and_run_instance",
                    json!({"uuid": i.uuid, "admin_password": password}),
                    request_id,
                )
                .await?;
        }
        Ok(())
    }

    /// A host could not build the instance: try the next alternate that still
    /// has room, or give up.
    pub async fn build_failed(&self, a: FailedArgs, request_id: &str) -> Result<()> {
        self.store.release(&a.uuid, Some(&a.host)).await?;
        self.store.record_build_result(&a.host, true).await?;
        let i = self.store.instance(&a.uuid).await?;
        if i.task_state.as_deref() == Some("deleting") {
            return Ok(());
        }
        let nodes = self.store.compute_nodes().await?;
        let usage = i.usage();
        let mut next = None;
        if i.tried_hosts.len() < self.max_attempts {
            for host in i.alternates.iter().filter(|h| !i.tried_hosts.contains(h)) {
                let Some(node) = nodes.iter().find(|n| n.host == *host) else { continue };
                match self.store.claim(&a.uuid, host, usage, &capacity(node)).await {
                    Ok(()) => {
                        next = Some(node.clone());
                        break;
                    }
                    Err(ComputeError::NoValidHost(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        let Some(node) = next else {
            let message = format!(
                "Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance {}. Last failure: {}",
                a.uuid, a.reason
            );
            return self.fail_build(&a.uuid, 500, &message, request_id).await;
        };
        let zone = self.zone_of(&node.host).await?;
        let tried: Vec<String> = i.tried_hosts.iter().cloned().chain([node.host.clone()]).collect();
        tracing::info!(instance = %a.uuid, failed = %a.host, next = %node.host, reason = %a.reason, "rescheduling");
        self.store
            .update_instance(&a.uuid, |inst| {
                inst.host = Some(node.host.clone());
                inst.node = Some(node.hypervisor_hostname.clone());
                inst.availability_zone = Some(zone.clone());
                inst.tried_hosts = tried.clone();
                inst.task_state = Some("scheduling".into());
                inst.build_step = None;
                inst.progress = 0;
                Ok(())
            })
            .await?;
        self.compute
            .cast(
                &node.host,
                "build_and_run_instance",
                json!({"uuid": a.uuid, "admin_password": a.admin_password}),
                request_id,
            )
            .await
    }

    /// Builds the conductor was handed but never scheduled (it stopped
    /// first) start again.
    pub async fn recover(&self) {
        let pending = match self.store.instances(None).await {
            Ok(all) => all
                .into_iter()
                .filter(|i| !i.deleted && i.vm_state == vm_state::BUILDING && i.host.is_none())
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::error!(error = %e, "could not look for unscheduled builds");
                return;
            }
        };
        for i in pending {
            tracing::info!(instance = %i.uuid, "resuming an unscheduled build");
            let request_id = common::id::new_request_id();
            self.build_instances(BuildArgs { uuids: vec![i.uuid.clone()], admin_passwords: vec![] }, &request_id).await;
        }
    }
}
