//! What the scheduler knows of a host and asks for an instance. Both are plain
//! data: the scheduler service fills them from the database, the benchmark
//! from a workload file, and the filters and weighers read nothing else.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

/// A host aggregate as the scheduler sees it: a name and metadata (an
/// `availability_zone` key puts its hosts in that zone).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AggregateInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// One compute host's capacity, usage and properties at scheduling time.
/// Usage counts what the host reserves for itself as used.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostState {
    pub host: String,
    #[serde(default)]
    pub node: String,
    pub vcpus: i64,
    pub vcpus_used: i64,
    pub memory_mb: i64,
    pub memory_mb_used: i64,
    pub local_gb: i64,
    pub local_gb_used: i64,
    #[serde(default = "yes")]
    pub up: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub hypervisor_type: String,
    #[serde(default)]
    pub hypervisor_version: i64,
    /// `[arch, hypervisor type, vm mode]` triples the host can run.
    #[serde(default)]
    pub supported_instances: Vec<[String; 3]>,
    #[serde(default)]
    pub cpu_info: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub aggregates: Vec<AggregateInfo>,
    /// Uuids of the instances on the host.
    #[serde(default)]
    pub instances: HashSet<String>,
    /// Builds, resizes and migrations under way on the host.
    #[serde(default)]
    pub num_io_ops: i64,
    #[serde(default)]
    pub failed_builds: i64,
    #[serde(default = "ratio_cpu")]
    pub cpu_allocation_ratio: f64,
    #[serde(default = "ratio_ram")]
    pub ram_allocation_ratio: f64,
    #[serde(default = "ratio_disk")]
    pub disk_allocation_ratio: f64,
}

fn yes() -> bool {
    true
}
fn ratio_cpu() -> f64 {
    16.0
}
fn ratio_ram() -> f64 {
    1.5
}
fn ratio_disk() -> f64 {
    1.0
}

impl HostState {
    pub fn num_instances(&self) -> i64 {
        self.instances.len() as i64
    }

    pub fn free_ram_mb(&self) -> i64 {
        self.memory_mb - self.memory_mb_used
    }

    pub fn free_disk_mb(&self) -> i64 {
        (self.local_gb - self.local_gb_used) * 1024
    }

    /// The zones the host's aggregates put it in.
    pub fn availability_zones(&self) -> impl Iterator<Item = &str> {
        self.aggregates.iter().filter_map(|a| a.metadata.get("availability_zone").map(String::as_str))
    }

    /// Takes what the request asks for, so the next decision sees it.
    pub fn consume(&mut self, spec: &RequestSpec) {
        self.memory_mb_used += spec.flavor.memory_mb;
        self.local_gb_used += spec.flavor.root_gb + spec.flavor.ephemeral_gb;
        self.vcpus_used += spec.flavor.vcpus;
        self.num_io_ops += 1;
        self.instances.insert(spec.instance_uuid.clone());
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FlavorSpec {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    #[serde(default)]
    pub ephemeral_gb: i64,
    /// MiB.
    #[serde(default)]
    pub swap: i64,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
}

impl FlavorSpec {
    /// Disk the instance takes, in MiB.
    pub fn disk_mb(&self) -> i64 {
        (self.root_gb + self.ephemeral_gb) * 1024 + self.swap
    }
}

/// A server group's policy and where its members are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GroupSpec {
    pub uuid: String,
    pub policy: String,
    #[serde(default)]
    pub max_server_per_host: Option<i64>,
    #[serde(default)]
    pub members: HashSet<String>,
    #[serde(default)]
    pub hosts: HashSet<String>,
}

/// What one instance asks of the scheduler.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestSpec {
    pub instance_uuid: String,
    #[serde(default)]
    pub project_id: String,
    pub flavor: FlavorSpec,
    /// Image properties as strings (`hw_architecture`, `img_hv_type`, …).
    #[serde(default)]
    pub image_properties: BTreeMap<String, String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub group: Option<GroupSpec>,
    /// `same_host` / `different_host` hints: instance uuids.
    #[serde(default)]
    pub same_host: Vec<String>,
    #[serde(default)]
    pub different_host: Vec<String>,
    /// Hosts already tried for this instance (RetryFilter).
    #[serde(default)]
    pub tried_hosts: Vec<String>,
    /// Hosts left out before filtering (a migration's source).
    #[serde(default)]
    pub ignore_hosts: Vec<String>,
    /// An admin's `zone:host` choice: only this host, and no filters.
    #[serde(default)]
    pub force_host: Option<String>,
    /// The instance's place in a multi-create (0 for the first).
    #[serde(default)]
    pub index: usize,
}
