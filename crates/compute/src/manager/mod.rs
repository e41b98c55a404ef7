//! A compute host (`nova-compute`): owns one hypervisor through its driver,
//! serves `compute.<host>` on the bus, heartbeats its service, reports its
//! resources on a period and after every change, and never opens the
//! database: every state change goes through the conductor.
//!
//! Operations on one instance run one at a time (a per-instance lock), so a
//! delete arriving during a build waits and then finds what the build left.

mod actions;
mod build;
mod moves;
mod network;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::{Message, Reply};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::clients::ServiceSession;
use crate::config::HostResources;
use crate::error::{ComputeError, Result};
use crate::model::{power_state, vm_state, Instance};
use crate::rpc::{args, ConductorApi, COMPUTE};
use crate::virt::{ComputeDriver, DriverError};

pub const BINARY: &str = "nova-compute";

pub struct ComputeHost {
    pub host: String,
    pub driver: Arc<dyn ComputeDriver>,
    pub conductor: ConductorApi,
    pub session: Arc<ServiceSession>,
    pub resources: HostResources,
    pub report_interval: Duration,
    io_ops: AtomicI64,
    dirty: AtomicBool,
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    group_lock: tokio::sync::Mutex<()>,
}

impl From<DriverError> for ComputeError {
    fn from(e: DriverError) -> ComputeError {
        match e {
            DriverError::NotFound(uuid) => {
                ComputeError::NotFound(format!("Instance {uuid} could not be found on its host."))
            }
            DriverError::Failed(m) => ComputeError::Internal(m),
            DriverError::NotReady(uuid) => ComputeError::Conflict(format!("Instance {uuid} is not ready")),
        }
    }
}

#[derive(Deserialize)]
struct UuidArgs {
    uuid: String,
    #[serde(default)]
    admin_password: Option<String>,
}

impl ComputeHost {
    pub fn new(
        host: &str,
        driver: Arc<dyn ComputeDriver>,
        conductor: ConductorApi,
        session: Arc<ServiceSession>,
        resources: HostResources,
        report_interval: Duration,
    ) -> ComputeHost {
        ComputeHost {
            host: host.into(),
            driver,
            conductor,
            session,
            resources,
            report_interval,
            io_ops: AtomicI64::new(0),
            dirty: AtomicBool::new(true),
            locks: Default::default(),
            group_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Registers the service, reports the node, puts its instances right
    /// after a restart, then serves the bus and reports on a period.
    pub async fn start(self: Arc<Self>) -> Result<()> {
        self.conductor.service_heartbeat(&self.host, BINARY, COMPUTE).await?;
        self.report().await?;
        let me = self.clone();
        self.conductor
            .bus
            .serve(COMPUTE, &self.host, move |m: Message| {
                let me = me.clone();
                async move { me.handle(m).await }
            })
            .await?;
        self.clone().init_instances().await;
        let me = self.clone();
        tokio::spawn(async move { me.periodic().await });
        Ok(())
    }

    /// Heartbeats every `report_interval`; resource reports then too, and
    /// within a second of any change.
    async fn periodic(self: Arc<Self>) {
        let mut last = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let due = last.elapsed() >= self.report_interval;
            if due {
                last = Instant::now();
                if let Err(e) = self.conductor.service_heartbeat(&self.host, BINARY, COMPUTE).await {
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
        let node = json!({
            "id": 0, "uuid": "", "host": self.host, "hypervisor_hostname": info.hypervisor_hostname,
            "hypervisor_type": info.hypervisor_type, "hypervisor_version": info.hypervisor_version,
            "host_ip": info.host_ip, "vcpus": info.vcpus, "memory_mb": info.memory_mb, "local_gb": info.local_gb,
            "reserved_host_memory_mb": r.reserved_host_memory_mb, "reserved_host_disk_mb": r.reserved_host_disk_mb,
            "reserved_host_cpus": r.reserved_host_cpus, "cpu_allocation_ratio": r.cpu_allocation_ratio,
            "ram_allocation_ratio": r.ram_allocation_ratio, "disk_allocation_ratio": r.disk_allocation_ratio,
            "cpu_info": info.cpu_info, "supported_instances": info.supported_instances, "failed_builds": 0,
            "stats": {"num_io_ops": self.io_ops.load(Ordering::Relaxed)}, "updated_at": 0,
        });
        self.conductor.compute_node_report(node).await
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

    async fn handle(self: Arc<Self>, m: Message) -> Reply {
        let request_id = m.request_id.clone().unwrap_or_else(common::id::new_request_id);
        let result = self.dispatch(&m, &request_id).await;
        result.map_err(bus::RemoteError::from)
    }

    async fn dispatch(self: &Arc<Self>, m: &Message, request_id: &str) -> Result<Value> {
        let a: UuidArgs = args(m).map_err(|e| ComputeError::BadRequest(e.message))?;
        let lock = self.lock_for(&a.uuid);
        let _held = lock.lock().await;
        match m.method.as_str() {
            "build_and_run_instance" => {
                self.build_and_run(&a.uuid, a.admin_password.as_deref(), request_id).await;
                Ok(Value::Null)
            }
            "terminate_instance" => self.terminate(&a.uuid, request_id).await.map(|_| Value::Null),
            "get_console_output" => self.console_output(&a.uuid).await.map(Value::String),
            "get_diagnostics" => self.diagnostics(&a.uuid).await,
            "get_vnc_console" => self.vnc_console(&a.uuid).await,
            other => self.instance_action(other, &a.uuid, &m.args, request_id).await,
        }
    }

    /// After a restart: finish deletes, roll back and reschedule builds that
    /// were under way, settle interrupted actions, and bring back guests the
    /// hypervisor lost.
    async fn init_instances(self: Arc<Self>) {
        let instances = match self.conductor.instances_on_host(&self.host).await {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(host = %self.host, error = %e, "could not list this host's instances");
                return;
            }
        };
        let running = self.driver.list_instances().await;
        for i in instances {
            let request_id = common::id::new_request_id();
            let lock = self.lock_for(&i.uuid);
            let _held = lock.lock().await;
            let outcome = if i.task_state.as_deref() == Some("deleting") {
                self.terminate(&i.uuid, &request_id).await
            } else if i.vm_state == vm_state::BUILDING {
                tracing::info!(instance = %i.uuid, step = ?i.build_step, "rolling back a build interrupted by a restart");
                self.undo_build(&i, i.build_step.as_deref()).await;
                self.conductor
                    .build_failed(
                        &i.uuid,
                        &self.host,
                        "the compute service restarted during the build",
                        None,
                        &request_id,
                    )
                    .await
            } else {
                self.settle(&i, running.contains(&i.uuid)).await
            };
            if let Err(e) = outcome {
                tracing::error!(instance = %i.uuid, error = %e, "could not recover the instance");
            }
        }
        self.changed();
    }

    /// Brings a guest's hypervisor state and its record back in line.
    async fn settle(&self, i: &Instance, on_hypervisor: bool) -> Result<()> {
        let guest_should_exist =
            !matches!(i.vm_state.as_str(), vm_state::SHELVED_OFFLOADED | vm_state::ERROR | vm_state::DELETED);
        if guest_should_exist && !on_hypervisor {
            self.driver.spawn(i, &i.network_info, None).await?;
            match i.vm_state.as_str() {
                vm_state::STOPPED => self.driver.power_off(i).await?,
                vm_state::PAUSED => self.driver.pause(i).await?,
                vm_state::SUSPENDED => self.driver.suspend(i).await?,
                _ => {}
            }
        }
        if i.task_state.is_some() {
            let power =
                if guest_should_exist { self.driver.power_state(i).await.unwrap_or(power_state::NOSTATE) } else { 0 };
            let vm = match power {
                power_state::SHUTDOWN => vm_state::STOPPED,
                power_state::PAUSED => vm_state::PAUSED,
                power_state::SUSPENDED => vm_state::SUSPENDED,
                power_state::RUNNING if i.vm_state == vm_state::RESCUED => vm_state::RESCUED,
                power_state::RUNNING => vm_state::ACTIVE,
                _ => i.vm_state.as_str(),
            };
            self.conductor
                .instance_update(&i.uuid, json!({"vm_state": vm, "task_state": null, "power_state": power}), None)
                .await?;
        }
        Ok(())
    }
}
