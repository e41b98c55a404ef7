//! The compute service's nouns as they travel between its parts: an instance
//! (what the API shows, the conductor stores and a host builds), its flavor,
//! its network interfaces and its fault. States follow Nova: `vm_state` is
//! where the instance is, `task_state` what is being done to it, `power_state`
//! what the hypervisor last said.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod vm_state {
    pub const ACTIVE: &str = "active";
    pub const BUILDING: &str = "building";
    pub const PAUSED: &str = "paused";
    pub const SUSPENDED: &str = "suspended";
    pub const STOPPED: &str = "stopped";
    pub const RESCUED: &str = "rescued";
    pub const RESIZED: &str = "resized";
    pub const SHELVED: &str = "shelved";
    pub const SHELVED_OFFLOADED: &str = "shelved_offloaded";
    pub const DELETED: &str = "deleted";
    pub const SOFT_DELETED: &str = "soft-delete";
    pub const ERROR: &str = "error";
}

pub mod power_state {
    pub const NOSTATE: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const PAUSED: i64 = 3;
    pub const SHUTDOWN: i64 = 4;
    pub const SUSPENDED: i64 = 7;
}

/// A flavor as an instance carries it (a copy: later flavor changes do not
/// touch existing servers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    pub flavorid: String,
    pub name: String,
    pub memory_mb: i64,
    pub vcpus: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    /// MiB.
    pub swap: i64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
    /// Nova's integer primary key (`instance_type_id`), as migrations show it.
    #[serde(default)]
    pub internal_id: i64,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
}

/// One fixed address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub ip_address: String,
    pub subnet_id: String,
    pub version: u8,
    /// Floating addresses mapped to this one.
    #[serde(default)]
    pub floating_ips: Vec<String>,
    /// The subnet's prefix length and gateway.
    #[serde(default)]
    pub prefix_len: Option<u8>,
    #[serde(default)]
    pub gateway: Option<String>,
}

/// One network interface of an instance: a port of the network service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vif {
    pub port_id: String,
    pub network_id: String,
    /// The network's name: the key in `addresses`.
    pub network_label: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    /// Ports made for the instance are deleted with it; ports the user
    /// brought are only detached.
    pub created_here: bool,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub port_state: String,
    /// The network's MTU.
    #[serde(default)]
    pub mtu: Option<u32>,
}

/// What a user asked for in `networks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RequestedNetworks {
    /// `"auto"`: the project's only network, or the shared one.
    #[default]
    Auto,
    /// `"none"`: no interface.
    None,
    List(Vec<RequestedNetwork>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RequestedNetwork {
    pub network_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip: Option<String>,
    pub tag: Option<String>,
}

/// Why an instance is in ERROR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceFault {
    pub code: u16,
    pub message: String,
    pub details: String,
    pub created: i64,
}

/// A server. Stored as a record's attributes; `uuid`, `project_id`,
/// `user_id`, `host`, `created_at` and `updated_at` mirror the record's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Instance {
    pub uuid: String,
    pub project_id: String,
    pub user_id: String,
    pub display_name: String,
    #[serde(default)]
    pub display_description: Option<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
    /// The zone asked for at create (None: any), then the host's zone.
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub requested_availability_zone: Option<String>,
    pub flavor: Flavor,
    /// During a resize: the flavor being left and the one being moved to.
    #[serde(default)]
    pub old_flavor: Option<Flavor>,
    #[serde(default)]
    pub new_flavor: Option<Flavor>,
    pub image_ref: String,
    /// The image's metadata at boot: `properties` plus formats and sizes.
    #[serde(default)]
    pub image_meta: Map<String, Value>,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub key_data: Option<String>,
    pub vm_state: String,
    #[serde(default)]
    pub task_state: Option<String>,
    #[serde(default)]
    pub power_state: i64,
    #[serde(default)]
    pub progress: i64,
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub locked_by: Option<String>,
    #[serde(default)]
    pub locked_reason: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub user_data: Option<String>,
    #[serde(default)]
    pub config_drive: String,
    #[serde(default)]
    pub access_ip_v4: Option<String>,
    #[serde(default)]
    pub access_ip_v6: Option<String>,
    #[serde(default)]
    pub disk_config: String,
    #[serde(default)]
    pub launched_at: Option<i64>,
    #[serde(default)]
    pub terminated_at: Option<i64>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub deleted_at: Option<i64>,
    #[serde(default)]
    pub fault: Option<InstanceFault>,
    /// Security group names asked for at create, and their ids.
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub requested_networks: RequestedNetworks,
    #[serde(default)]
    pub network_info: Vec<Vif>,
    #[serde(default)]
    pub scheduler_hints: Map<String, Value>,
    #[serde(default)]
    pub server_group: Option<String>,
    #[serde(default)]
    pub reservation_id: String,
    #[serde(default)]
    pub launch_index: i64,
    /// The build workflow's last completed step, so a restart knows what to undo.
    #[serde(default)]
    pub build_step: Option<String>,
    /// Hosts tried for this build, and the attempt under way.
    #[serde(default)]
    pub tried_hosts: Vec<String>,
    #[serde(default)]
    pub alternates: Vec<String>,
    /// The host an instance being moved (resize, migration) is leaving.
    #[serde(default)]
    pub source_host: Option<String>,
    /// The encrypted admin password the guest posted (os-server-password).
    #[serde(default)]
    pub password: String,
    /// The image a shelved instance's disk was saved to.
    #[serde(default)]
    pub shelved_image_id: Option<String>,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

impl Instance {
    /// Nova's `OS-EXT-SRV-ATTR:instance_name`: what the hypervisor calls it.
    pub fn name(&self) -> String {
        format!("instance-{}", &self.uuid.replace('-', "")[..8.min(self.uuid.len())])
    }
}

impl Instance {
    /// The API's `status` from the states (Nova's `status_from_state`).
    pub fn status(&self) -> &'static str {
        use vm_state::*;
        let task = self.task_state.as_deref();
        match self.vm_state.as_str() {
            BUILDING => "BUILD",
            ACTIVE => match task {
                Some("rebooting") | Some("reboot_pending") | Some("reboot_started") => "REBOOT",
                Some("rebooting_hard") | Some("reboot_pending_hard") | Some("reboot_started_hard") => "HARD_REBOOT",
                Some("rebuilding") | Some("rebuild_block_device_mapping") | Some("rebuild_spawning") => "REBUILD",
                Some("updating_password") => "PASSWORD",
                Some("resize_prep") | Some("resize_migrating") | Some("resize_migrated") | Some("resize_finish") => {
                    "RESIZE"
                }
                Some("migrating") => "MIGRATING",
                _ => "ACTIVE",
            },
            STOPPED => match task {
                Some("resize_prep") | Some("resize_migrating") | Some("resize_migrated") | Some("resize_finish") => {
                    "RESIZE"
                }
                Some("rebuilding") | Some("rebuild_spawning") => "REBUILD",
                _ => "SHUTOFF",
            },
            RESIZED => match task {
                Some("resize_reverting") => "REVERT_RESIZE",
                _ => "VERIFY_RESIZE",
            },
            PAUSED => "PAUSED",
            SUSPENDED => "SUSPENDED",
            RESCUED => "RESCUE",
            ERROR => match task {
                Some("rebuilding") | Some("rebuild_spawning") => "REBUILD",
                _ => "ERROR",
            },
            DELETED => "DELETED",
            SOFT_DELETED => "SOFT_DELETED",
            SHELVED => "SHELVED",
            SHELVED_OFFLOADED => "SHELVED_OFFLOADED",
            _ => "UNKNOWN",
        }
    }

    /// Memory, disk and vCPUs the instance takes on its host.
    pub fn usage(&self) -> Usage {
        Usage::of(&self.flavor)
    }
}

/// What a compute host reports about its hypervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeNode {
    pub id: i64,
    pub uuid: String,
    pub host: String,
    pub hypervisor_hostname: String,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub host_ip: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub reserved_host_memory_mb: i64,
    pub reserved_host_disk_mb: i64,
    pub reserved_host_cpus: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    pub cpu_info: Value,
    pub supported_instances: Vec<[String; 3]>,
    pub failed_builds: i64,
    /// Counters the host keeps: `num_io_ops` (builds and moves under way).
    pub stats: Value,
    pub updated_at: i64,
}

/// Where a guest's console listens (on its compute host), for the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleEndpoint {
    pub host: String,
    pub port: u16,
}

/// Resources a flavor takes on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Usage {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

impl Usage {
    pub fn of(f: &Flavor) -> Usage {
        Usage { vcpus: f.vcpus, memory_mb: f.memory_mb, disk_gb: f.root_gb + f.ephemeral_gb + (f.swap + 1023) / 1024 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_states() {
        let mut i = Instance { vm_state: "active".into(), ..Default::default() };
        assert_eq!(i.status(), "ACTIVE");
        i.task_state = Some("rebooting_hard".into());
        assert_eq!(i.status(), "HARD_REBOOT");
        i.vm_state = "resized".into();
        i.task_state = None;
        assert_eq!(i.status(), "VERIFY_RESIZE");
        i.vm_state = "stopped".into();
        assert_eq!(i.status(), "SHUTOFF");
        i.vm_state = "building".into();
        assert_eq!(i.status(), "BUILD");
    }
}
