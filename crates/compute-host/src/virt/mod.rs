//! Virt drivers: how a compute host drives its hypervisor. One trait, shaped
//! for real hypervisors (a libvirt/QEMU driver implements the same calls):
//! a guest is built in steps — image into the cache, disk, definition,
//! interfaces, power — each with its opposite, so the conductor's sagas can
//! run and undo them one by one. Every call is idempotent: making what exists
//! or removing what is gone succeeds. `fake` keeps its guests in memory (and
//! optionally in a file, to outlive the compute service as real guests do),
//! so one process can simulate a large cloud.

pub mod fake;
mod fake_vnc;
pub mod netns;

use async_trait::async_trait;
use serde_json::Value;

pub use compute_rpc::model::ConsoleEndpoint;
use compute_rpc::model::{Instance, Vif};

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("instance {0} is not on this hypervisor")]
    NotFound(String),
    #[error("hypervisor failure: {0}")]
    Failed(String),
    #[error("instance {0} is not running")]
    NotReady(String),
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

/// `Ok` for a guest that is not there: what an undo wants.
pub fn gone_is_fine(r: DriverResult<()>) -> DriverResult<()> {
    match r {
        Err(DriverError::NotFound(_)) => Ok(()),
        other => other,
    }
}

#[async_trait]
pub trait ComputeDriver: Send + Sync {
    fn host_info(&self) -> HostInfo;
    /// Fetches the instance's image into the host's image cache.
    async fn prepare_image(&self, instance: &Instance) -> DriverResult<()>;
    /// Makes the instance's disk on the cached image.
    async fn create_disk(&self, instance: &Instance) -> DriverResult<()>;
    async fn delete_disk(&self, instance: &Instance) -> DriverResult<()>;
    /// Writes (or rewrites, with a new flavor) the machine definition.
    async fn define(&self, instance: &Instance, vifs: &[Vif], admin_password: Option<&str>) -> DriverResult<()>;
    async fn undefine(&self, instance: &Instance) -> DriverResult<()>;
    async fn plug_vifs(&self, instance: &Instance, vifs: &[Vif]) -> DriverResult<()>;
    async fn unplug_vifs(&self, instance: &Instance, vifs: &[Vif]) -> DriverResult<()>;
    async fn power_on(&self, instance: &Instance) -> DriverResult<()>;
    async fn power_off(&self, instance: &Instance) -> DriverResult<()>;
    /// Sends the running guest to the host `dest`, where it is defined.
    async fn live_migrate(&self, instance: &Instance, dest: &str) -> DriverResult<()>;
    async fn reboot(&self, instance: &Instance, hard: bool) -> DriverResult<()>;
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
    /// Uuids of the guests this hypervisor has.
    async fn list_instances(&self) -> Vec<String>;

    /// Definition, interfaces and power on, as a first boot does.
    async fn spawn(&self, instance: &Instance, vifs: &[Vif], admin_password: Option<&str>) -> DriverResult<()> {
        self.define(instance, vifs, admin_password).await?;
        self.plug_vifs(instance, vifs).await?;
        self.power_on(instance).await
    }

    /// Everything of the guest goes; a guest already gone is not an error.
    async fn destroy(&self, instance: &Instance) -> DriverResult<()> {
        gone_is_fine(self.power_off(instance).await)?;
        gone_is_fine(self.unplug_vifs(instance, &instance.network_info).await)?;
        gone_is_fine(self.undefine(instance).await)?;
        gone_is_fine(self.delete_disk(instance).await)
    }
}
