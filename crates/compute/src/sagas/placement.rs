//! Choosing a host for an instance (a build, a move, an unshelve): the
//! scheduler's request made from the instance, the choice claimed in the
//! ledger, and the zone a host is in.

use compute_rpc::model::{Flavor, Instance, Usage};
use saga::StepError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{failed, SagaEnv};
use crate::error::ComputeError;
use crate::scheduler::rpc::SelectDestinations;
use crate::scheduler::service::capacity;
use crate::scheduler::{FlavorSpec, GroupSpec, RequestSpec};

/// Where an instance goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Placement {
    pub host: String,
    pub node: String,
}

/// How a placement is asked for.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// Another flavor than the instance's (a resize).
    pub flavor: Option<Flavor>,
    /// Hosts to leave out (the source of a move).
    pub ignore: Vec<String>,
    /// A host the admin named.
    pub host: Option<String>,
    /// Take the named host without the filters (a forced or live move).
    pub force: bool,
    /// Whether hosts already tried for the instance are left out (builds).
    pub retry: bool,
}

/// Hint values may be one string or a list.
fn hint_list(hints: &serde_json::Map<String, Value>, key: &str) -> Vec<String> {
    match hints.get(key) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    }
}

impl SagaEnv {
    /// What the scheduler needs to know of one instance.
    pub async fn request_spec(&self, i: &Instance) -> Result<RequestSpec, ComputeError> {
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
        let (zone, force_host) = requested_zone_and_host(i.requested_availability_zone.as_deref());
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
            index: 0,
        })
    }

    /// The zone a host is in: its aggregates' `availability_zone`, else the
    /// default zone.
    pub async fn zone_of(&self, host: &str) -> Result<String, ComputeError> {
        Ok(self
            .store
            .aggregates()
            .await?
            .into_iter()
            .find(|a| a.hosts.iter().any(|h| h == host) && a.availability_zone().is_some())
            .and_then(|a| a.availability_zone().map(String::from))
            .unwrap_or_else(|| self.default_zone.clone()))
    }

    /// Chooses a host for the instance and claims `ask.flavor` (or its own)
    /// there for it. The claim replaces any the instance held (the ledger's
    /// rule), so running this again after a crash leaves one claim, not two.
    pub async fn place(&self, i: &Instance, ask: Ask, request_id: Option<String>) -> Result<Placement, StepError> {
        let flavor = ask.flavor.clone().unwrap_or_else(|| i.flavor.clone());
        if let (Some(host), true) = (&ask.host, ask.force) {
            let node =
                self.store.compute_nodes().await.map_err(failed)?.into_iter().find(|n| n.host == *host).ok_or_else(
                    || failed(ComputeError::BadRequest(format!("Compute host {host} could not be found."))),
                )?;
            self.store.claim(&i.uuid, host, Usage::of(&flavor), &capacity(&node)).await.map_err(failed)?;
            return Ok(Placement { host: node.host, node: node.hypervisor_hostname });
        }
        let mut spec = self.request_spec(i).await.map_err(failed)?;
        spec.flavor = FlavorSpec {
            vcpus: flavor.vcpus,
            memory_mb: flavor.memory_mb,
            root_gb: flavor.root_gb,
            ephemeral_gb: flavor.ephemeral_gb,
            swap: flavor.swap,
            extra_specs: flavor.extra_specs.clone(),
        };
        if !ask.retry {
            spec.tried_hosts.clear();
        }
        spec.ignore_hosts = ask.ignore.clone();
        if let Some(h) = &ask.host {
            spec.force_host = Some(h.clone());
        }
        // One group's placements one at a time: each sees the claims of the last.
        let lock = i.server_group.as_deref().map(|g| self.group_lock(g));
        let _held = match &lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let chosen = self
            .scheduler
            .for_request(request_id)
            .select_destinations(&SelectDestinations { specs: vec![spec] })
            .await
            .map_err(|e| failed(crate::error::from_bus(e)))?;
        let sel = chosen
            .into_iter()
            .next()
            .ok_or_else(|| failed(ComputeError::NoValidHost("No valid host was found.".into())))?;
        Ok(Placement { host: sel.host, node: sel.node })
    }
}

/// `zone`, `zone:host` or `:host` as a request names them (Nova's forced host).
pub fn requested_zone_and_host(requested: Option<&str>) -> (Option<String>, Option<String>) {
    match requested.map(|z| z.split(':').collect::<Vec<_>>()) {
        Some(parts) if parts.len() >= 2 && !parts[1].is_empty() => {
            (Some(parts[0]).filter(|z| !z.is_empty()).map(String::from), Some(parts[1].to_string()))
        }
        Some(parts) => (parts.first().filter(|z| !z.is_empty()).map(|z| z.to_string()), None),
        None => (None, None),
    }
}
