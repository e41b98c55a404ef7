//! The scheduler service: answers `select_destinations` on the bus. Host
//! states are read fresh for each request (compute nodes, their services'
//! heartbeats, aggregates, and the claims in the resource ledger); the chosen
//! hosts' resources are then claimed in the ledger, re-checked there, so two
//! requests deciding at once cannot overfill a host.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bus::Bus;

use super::{AggregateInfo, HostState, RequestSpec, Scheduler, Selection};
use crate::error::{ComputeError, Result};
use crate::model::Usage;
use crate::store::allocations::Capacity;
use crate::store::services::ComputeNode;
use crate::store::Store;

pub struct SchedulerService {
    pub store: Store,
    pub scheduler: Scheduler,
    pub service_down_time: Duration,
}

/// What a host can hold in all, after its reservations, with its ratios.
pub fn capacity(n: &ComputeNode) -> Capacity {
    Capacity {
        vcpus: (n.vcpus - n.reserved_host_cpus) as f64 * n.cpu_allocation_ratio,
        memory_mb: (n.memory_mb - n.reserved_host_memory_mb) as f64 * n.ram_allocation_ratio,
        disk_gb: (n.local_gb - (n.reserved_host_disk_mb + 1023) / 1024) as f64 * n.disk_allocation_ratio,
    }
}

pub fn usage_of(spec: &RequestSpec) -> Usage {
    let f = &spec.flavor;
    Usage { vcpus: f.vcpus, memory_mb: f.memory_mb, disk_gb: f.root_gb + f.ephemeral_gb + (f.swap + 1023) / 1024 }
}

impl SchedulerService {
    /// Every compute host as the filters see it now.
    pub async fn host_states(&self) -> Result<(Vec<HostState>, HashMap<String, ComputeNode>)> {
        let nodes = self.store.compute_nodes().await?;
        let services: HashMap<String, _> = self
            .store
            .services()
            .await?
            .into_iter()
            .filter(|s| s.binary == "nova-compute")
            .map(|s| (s.host.clone(), s))
            .collect();
        let aggregates = self.store.aggregates().await?;
        let allocations = self.store.allocations().await?;
        let mut hosts = Vec::with_capacity(nodes.len());
        for n in &nodes {
            let claims = allocations.get(&n.host).map(Vec::as_slice).unwrap_or_default();
            let used = claims.iter().fold(Usage::default(), |mut u, (_, c)| {
                u.vcpus += c.vcpus;
                u.memory_mb += c.memory_mb;
                u.disk_gb += c.disk_gb;
                u
            });
            let service = services.get(&n.host);
            hosts.push(HostState {
                host: n.host.clone(),
                node: n.hypervisor_hostname.clone(),
                vcpus: n.vcpus - n.reserved_host_cpus,
                vcpus_used: used.vcpus,
                memory_mb: n.memory_mb - n.reserved_host_memory_mb,
                memory_mb_used: used.memory_mb,
                local_gb: n.local_gb - (n.reserved_host_disk_mb + 1023) / 1024,
                local_gb_used: used.disk_gb,
                up: service.is_some_and(|s| s.is_up(self.service_down_time)),
                disabled: service.is_none_or(|s| s.disabled),
                hypervisor_type: n.hypervisor_type.clone(),
                hypervisor_version: n.hypervisor_version,
                supported_instances: n.supported_instances.clone(),
                cpu_info: n.cpu_info.as_object().cloned().unwrap_or_default(),
                aggregates: aggregates
                    .iter()
                    .filter(|a| a.hosts.contains(&n.host))
                    .map(|a| AggregateInfo { name: a.name.clone(), metadata: a.metadata.clone() })
                    .collect(),
                instances: claims.iter().map(|(c, _)| c.clone()).collect(),
                num_io_ops: n.stats.get("num_io_ops").and_then(|v| v.as_i64()).unwrap_or(0),
                failed_builds: n.failed_builds,
                cpu_allocation_ratio: n.cpu_allocation_ratio,
                ram_allocation_ratio: n.ram_allocation_ratio,
                disk_allocation_ratio: n.disk_allocation_ratio,
            });
        }
        let nodes = nodes.into_iter().map(|n| (n.host.clone(), n)).collect();
        Ok((hosts, nodes))
    }

    /// Chooses and claims a host for each spec (all or none).
    pub async fn select_destinations(&self, mut specs: Vec<RequestSpec>) -> Result<Vec<Selection>> {
        let (mut hosts, nodes) = self.host_states().await?;
        // Where the group's members already are.
        for spec in &mut specs {
            if let Some(g) = spec.group.as_mut() {
                for h in &hosts {
                    if g.members.iter().any(|m| h.instances.contains(m)) {
                        g.hosts.insert(h.host.clone());
                    }
                }
            }
        }
        let mut selections = match self.scheduler.select(&mut hosts, &specs) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(instance = %e.instance_uuid, filters = %super::describe_steps(&e.steps), "no valid host");
                return Err(ComputeError::NoValidHost(e.to_string()));
            }
        };
        let mut claimed: Vec<(String, String)> = Vec::new();
        for (spec, sel) in specs.iter().zip(selections.iter_mut()) {
            let usage = usage_of(spec);
            let mut candidates = vec![sel.host.clone()];
            candidates.extend(sel.alternates.iter().cloned());
            let mut got = None;
            for host in &candidates {
                let Some(node) = nodes.get(host) else { continue };
                match self.store.claim(&spec.instance_uuid, host, usage, &capacity(node)).await {
                    Ok(()) => {
                        got = Some(host.clone());
                        break;
                    }
                    Err(ComputeError::NoValidHost(why)) => {
                        tracing::info!(host, why, "claim refused, trying the next host")
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(host) = got else {
                for (consumer, host) in &claimed {
                    self.store.release(consumer, Some(host)).await?;
                }
                return Err(ComputeError::NoValidHost(
                    "No valid host was found. Every candidate host filled up while claiming.".into(),
                ));
            };
            if host != sel.host {
                sel.alternates.retain(|h| *h != host);
                sel.node = nodes.get(&host).map(|n| n.hypervisor_hostname.clone()).unwrap_or_default();
                sel.host = host.clone();
            }
            tracing::info!(
                instance = %spec.instance_uuid,
                host = %sel.host,
                alternates = ?sel.alternates,
                filters = %super::describe_steps(&sel.steps),
                "scheduled"
            );
            claimed.push((spec.instance_uuid.clone(), host));
        }
        Ok(selections)
    }

    pub async fn serve(self: Arc<Self>, bus: &Bus, server: &str) -> Result<()> {
        super::rpc::Scheduler::serve(bus, server, self, bus::ServeOptions::default()).await?;
        Ok(())
    }
}

impl super::rpc::SchedulerHandler for SchedulerService {
    async fn select_destinations(
        &self,
        _ctx: &bus::CallContext,
        args: super::rpc::SelectDestinations,
    ) -> std::result::Result<Vec<Selection>, bus::RemoteError> {
        SchedulerService::select_destinations(self, args.specs).await.map_err(bus::RemoteError::from)
    }
}
