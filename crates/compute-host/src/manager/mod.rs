//! A compute host (`nova-compute`): owns one hypervisor through its driver,
//! serves `compute.<host>` on the bus, heartbeats its service, reports its
//! resources on a period and after every change, and never opens the
//! database: every read and write goes to the conductor.
//!
//! It keeps no record of workflows: the conductor's sagas drive it one
//! idempotent step at a time (`steps.rs`); the server actions it does alone
//! (`actions.rs`) are settled after a restart from what the hypervisor shows.
//! Operations on one instance run one at a time (a per-instance lock).

mod actions;
mod handler;
mod steps;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::{Bus, ServeOptions};
use compute_rpc::conductor::{ConductorClient, Heartbeat, HostRef, InstanceRef, InstanceUpdate};
use compute_rpc::host::ComputeHost;
use compute_rpc::model::{power_state, vm_state, ComputeNode, Instance};
use compute_rpc::session::ServiceSession;
use compute_rpc::{ComputeError, Result};
use serde_json::{json, Value};

use crate::config::HostResources;
use crate::virt::{ComputeDriver, DriverError};

pub use compute_rpc::host::BINARY;

/// How often a host looks for guests nothing needs.
const ORPHAN_SWEEP: Duration = Duration::from_secs(60);

pub struct Host {
    pub host: String,
    pub driver: Arc<dyn ComputeDriver>,
    pub conductor: ConductorClient,
    pub session: Arc<ServiceSession>,
    pub resources: HostResources,
    pub report_interval: Duration,
    bus: Bus,
    io_ops: AtomicI64,
    dirty: AtomicBool,
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub(crate) fn driver_error(e: DriverError) -> ComputeError {
    match e {
        DriverError::NotFound(uuid) => {
            ComputeError::NotFound(format!("Instance {uuid} could not be found on its host."))
        }
        DriverError::Failed(m) => ComputeError::Internal(m),
        DriverError::NotReady(uuid) => ComputeError::Conflict(format!("Instance {uuid} is not ready")),
    }
}

impl Host {
    pub fn new(
        host: &str,
        driver: Arc<dyn ComputeDriver>,
        bus: &Bus,
        session: Arc<ServiceSession>,
        resources: HostResources,
        report_interval: Duration,
    ) -> Host {
        Host {
            host: host.into(),
            driver,
            conductor: ConductorClient::new(bus),
            session,
            resources,
            report_interval,
            bus: bus.clone(),
            io_ops: AtomicI64::new(0),
            dirty: AtomicBool::new(true),
            locks: Default::default(),
        }
    }

    /// Registers the service, reports the node, serves the bus, puts its
    /// guests right after a restart, and reports on a period.
    pub async fn start(self: Arc<Self>) -> Result<()> {
        self.heartbeat().await?;
        self.report().await?;
        ComputeHost::serve(&self.bus, &self.host, self.clone(), ServeOptions::default()).await?;
        self.clone().init_instances().await;
        let me = self.clone();
        tokio::spawn(async move { me.periodic().await });
        Ok(())
    }

    async fn heartbeat(&self) -> Result<()> {
        let beat = Heartbeat { host: self.host.clone(), binary: BINARY.into(), topic: ComputeHost::TOPIC.into() };
        Ok(self.conductor.service_heartbeat(&beat).await?)
    }

    /// Heartbeats every `report_interval`; resource reports then too, and
    /// within a second of any change; every minute, destroys the guests no
    /// instance needs any more (Nova's running-deleted cleanup).
    async fn periodic(self: Arc<Self>) {
        let mut last = Instant::now();
        let mut last_sweep = Instant::now();
        loop {
            if last_sweep.elapsed() >= ORPHAN_SWEEP {
                last_sweep = Instant::now();
                if let Ok(placed) = self.conductor.instances_on_host(&HostRef { host: self.host.clone() }).await {
                    self.destroy_orphans(&placed).await;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let due = last.elapsed() >= self.report_interval;
            if due {
                last = Instant::now();
                if let Err(e) = self.heartbeat().await {
                    tracing::warn!(host = %self.host, error = %e, "heartbeat failed");
                }
            }
            if due || self.dirty.load(Ordering::Relaxed) {
                if let Err(e) = self.report().await {
                    tracing::warn!(host = %self.host, error = %e, "resource report failed");
                }
            }
        }
    }

    /// Sends what the hypervisor offers and what the host is busy with.
    pub async fn report(&self) -> Result<()> {
        self.dirty.store(false, Ordering::Relaxed);
        let info = self.driver.host_info();
        let r = &self.resources;
        let node = ComputeNode {
            id: 0,
            uuid: String::new(),
            host: self.host.clone(),
            hypervisor_hostname: info.hypervisor_hostname,
            hypervisor_type: info.hypervisor_type,
            hypervisor_version: info.hypervisor_version,
            host_ip: info.host_ip,
            vcpus: info.vcpus,
            memory_mb: info.memory_mb,
            local_gb: info.local_gb,
            reserved_host_memory_mb: r.reserved_host_memory_mb,
            reserved_host_disk_mb: r.reserved_host_disk_mb,
            reserved_host_cpus: r.reserved_host_cpus,
            cpu_allocation_ratio: r.cpu_allocation_ratio,
            ram_allocation_ratio: r.ram_allocation_ratio,
            disk_allocation_ratio: r.disk_allocation_ratio,
            cpu_info: info.cpu_info,
            supported_instances: info.supported_instances,
            failed_builds: 0,
            stats: json!({"num_io_ops": self.io_ops.load(Ordering::Relaxed)}),
            updated_at: 0,
        };
        Ok(self.conductor.compute_node_report(&node).await?)
    }

    fn changed(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// The lock that keeps operations on one instance in order.
    fn lock_for(&self, uuid: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(uuid.to_string()).or_default().clone()
    }

    /// Runs `work` on the instance under its lock, counted as an operation
    /// under way, and notes that the host changed.
    async fn on_instance<T>(&self, uuid: &str, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let lock = self.lock_for(uuid);
        let _held = lock.lock().await;
        self.io_ops.fetch_add(1, Ordering::Relaxed);
        let out = work.await;
        self.io_ops.fetch_sub(1, Ordering::Relaxed);
        self.changed();
        out
    }

    async fn instance(&self, uuid: &str) -> Result<Instance> {
        match self.conductor.instance_get(&InstanceRef { uuid: uuid.into() }).await? {
            Some(i) if !i.deleted => Ok(i),
            _ => Err(ComputeError::NotFound(format!("Instance {uuid} could not be found."))),
        }
    }

    async fn update(&self, uuid: &str, changes: Value) -> Result<Instance> {
        let changes = match changes {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        let update = InstanceUpdate { uuid: uuid.into(), changes, expected_task_state: None };
        Ok(self.conductor.instance_update(&update).await?)
    }

    /// After a restart: guests of live instances placed here are put back in
    /// line with their records (unless a saga is working on them: it will),
    /// and guests nothing here should run any more — their instance was
    /// deleted, or moved while this host was down — are destroyed.
    async fn init_instances(self: Arc<Self>) {
        let placed = match self.conductor.instances_on_host(&HostRef { host: self.host.clone() }).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(host = %self.host, error = %e, "could not list this host's instances");
                return;
            }
        };
        let guests = self.driver.list_instances().await;
        for p in &placed {
            if p.in_saga || p.instance.vm_state == vm_state::BUILDING {
                continue;
            }
            let lock = self.lock_for(&p.instance.uuid);
            let _held = lock.lock().await;
            if let Err(e) = self.settle(&p.instance, guests.contains(&p.instance.uuid)).await {
                tracing::error!(instance = %p.instance.uuid, error = %e, "could not settle the instance");
            }
        }
        self.destroy_orphans(&placed).await;
        self.changed();
    }

    /// Destroys the guests whose instance was deleted, or moved away while
    /// no workflow was under way (a host down during a delete or a move).
    async fn destroy_orphans(&self, placed: &[compute_rpc::conductor::HostInstance]) {
        let guests = self.driver.list_instances().await;
        for uuid in guests.iter().filter(|g| !placed.iter().any(|p| p.instance.uuid == **g)) {
            let record = self.conductor.instance_get(&InstanceRef { uuid: uuid.clone() }).await;
            let orphan = match &record {
                Ok(None) => true,
                Ok(Some(i)) => {
                    let here = i.host.as_deref() == Some(&self.host) || i.source_host.as_deref() == Some(&self.host);
                    i.deleted || (!here && i.task_state.is_none())
                }
                Err(e) => {
                    tracing::warn!(instance = %uuid, error = %e, "cannot tell whether the guest is still wanted");
                    false
                }
            };
            if let (true, Ok(found)) = (orphan, record) {
                let lock = self.lock_for(uuid);
                let _held = lock.lock().await;
                let i = found.unwrap_or_else(|| Instance { uuid: uuid.clone(), ..Default::default() });
                tracing::info!(instance = %uuid, "destroying a guest no instance here needs any more");
                if let Err(e) = self.driver.destroy(&i).await {
                    tracing::error!(instance = %uuid, error = %e, "could not destroy an orphaned guest");
                }
                self.changed();
            }
        }
    }

    /// Brings a guest's hypervisor state and its record back in line.
    async fn settle(&self, i: &Instance, on_hypervisor: bool) -> Result<()> {
        let guest_should_exist =
            !matches!(i.vm_state.as_str(), vm_state::SHELVED_OFFLOADED | vm_state::ERROR | vm_state::DELETED);
        if guest_should_exist && !on_hypervisor {
            self.driver.prepare_image(i).await.map_err(driver_error)?;
            self.driver.create_disk(i).await.map_err(driver_error)?;
            self.driver.spawn(i, &i.network_info, None).await.map_err(driver_error)?;
            match i.vm_state.as_str() {
                vm_state::STOPPED | vm_state::SHELVED => self.driver.power_off(i).await.map_err(driver_error)?,
                vm_state::PAUSED => self.driver.pause(i).await.map_err(driver_error)?,
                vm_state::SUSPENDED => self.driver.suspend(i).await.map_err(driver_error)?,
                _ => {}
            }
        }
        if i.task_state.is_some() && i.task_state.as_deref() != Some("deleting") {
            let power =
                if guest_should_exist { self.driver.power_state(i).await.unwrap_or(power_state::NOSTATE) } else { 0 };
            let vm = match power {
                power_state::SHUTDOWN if i.vm_state == vm_state::SHELVED => vm_state::SHELVED,
                power_state::SHUTDOWN => vm_state::STOPPED,
                power_state::PAUSED => vm_state::PAUSED,
                power_state::SUSPENDED => vm_state::SUSPENDED,
                power_state::RUNNING if i.vm_state == vm_state::RESCUED => vm_state::RESCUED,
                power_state::RUNNING => vm_state::ACTIVE,
                _ => i.vm_state.as_str(),
            };
            self.update(&i.uuid, json!({"vm_state": vm, "task_state": null, "power_state": power})).await?;
        }
        Ok(())
    }
}
