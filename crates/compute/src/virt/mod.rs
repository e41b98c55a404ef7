//! Virt drivers: how a compute host drives its hypervisor. One trait, shaped
//! for real hypervisors (a libvirt/QEMU driver implements the same calls);
//! `fake` keeps instances in memory so one process can simulate a large cloud.

pub mod fake;
mod fake_vnc;

use async_trait::async_trait;
use serde_json::Value;

use crate::model::{Instance, Vif};

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("instance {0} is not on this hypervisor")]
    NotFound(String),
    #[error("hypervisor failure: {0}")]
    Failed(String),
    #[error("instance {0} is not running")]
    NotReady(String),
}

/// Where a guest's console listens (on its compute host), for the proxy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsoleEndpoint {
    pub host: String,
    pub port: u16,
}

pub type DriverResult<T> = Result<T, DriverError>;

/// What a hypervisor offers, as the host reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    pub hypervisor_hostname: String,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub host_ip: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub cpu_info: Value,
    pub supported_instances: Vec<[String; 3]>,
}

#[async_trait]
pub trait ComputeDriver: Send + Sync {
    fn host_info(&self) -> HostInfo;
    /// Creates and starts the guest with its interfaces plugged.
    async fn spawn(&self, instance: &Instance, vifs: &[Vif], admin_password: Option<&str>) -> DriverResult<()>;
    /// Stops and removes the guest; a guest already gone is not an error.
    async fn destroy(&self, instance: &Instance) -> DriverResult<()>;
    async fn reboot(&self, instance: &Instance, hard: bool) -> DriverResult<()>;
    async fn power_off(&self, instance: &Instance) -> DriverResult<()>;
    async fn power_on(&self, instance: &Instance) -> DriverResult<()>;
    async fn pause(&self, instance: &Instance) -> DriverResult<()>;
    async fn unpause(&self, instance: &Instance) -> DriverResult<()>;
    async fn suspend(&self, instance: &Instance) -> DriverResult<()>;
    async fn resume(&self, instance: &Instance) -> DriverResult<()>;
    /// Boots the guest from a rescue image, its own disk attached.
    async fn rescue(&self, instance: &Instance) -> DriverResult<()>;
    async fn unrescue(&self, instance: &Instance) -> DriverResult<()>;
    /// The guest's disk as an image (qcow2 or raw bytes).
    async fn snapshot(&self, instance: &Instance) -> DriverResult<Vec<u8>>;
    /// The guest's console log.
    async fn console_output(&self, instance: &Instance) -> DriverResult<String>;
    /// Where the guest's VNC display listens.
    async fn vnc_console(&self, instance: &Instance) -> DriverResult<ConsoleEndpoint>;
    /// The guest's counters in Nova's standard diagnostics form (2.48).
    async fn diagnostics(&self, instance: &Instance) -> DriverResult<Value>;
    /// Tells the guest its current interfaces (a driver without a channel
    /// into the guest has nothing to do).
    async fn inject_network_info(&self, _instance: &Instance, _vifs: &[Vif]) -> DriverResult<()> {
        Ok(())
    }
    async fn attach_interface(&self, instance: &Instance, vif: &Vif) -> DriverResult<()>;
    async fn detach_interface(&self, instance: &Instance, vif: &Vif) -> DriverResult<()>;
    /// The power state the hypervisor reports (`model::power_state`).
    async fn power_state(&self, instance: &Instance) -> DriverResult<i64>;
    /// Uuids of the guests this hypervisor runs.
    async fn list_instances(&self) -> Vec<String>;
}
