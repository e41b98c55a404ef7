//! The fake driver: guests are entries in memory with a power state and a
//! console log. Nothing runs, so one process can hold thousands of hosts; a
//! host may be told to fail every spawn, to exercise rescheduling.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{ComputeDriver, ConsoleEndpoint, DriverError, DriverResult, HostInfo};
use crate::config::HostResources;
use crate::model::{power_state, Instance, Vif};

struct Guest {
    power_state: i64,
    console: Vec<String>,
    vifs: Vec<String>,
    started: std::time::Instant,
    /// Its VNC display, opened when a console is first asked for (so idle
    /// guests hold no socket) and closed with the guest.
    display: Option<super::fake_vnc::Display>,
}

pub struct FakeDriver {
    host: String,
    resources: HostResources,
    spawn_time: Duration,
    fail_spawn: bool,
    guests: Mutex<HashMap<String, Guest>>,
}

impl FakeDriver {
    pub fn new(host: &str, resources: HostResources, spawn_time: Duration, fail_spawn: bool) -> FakeDriver {
        FakeDriver { host: host.into(), resources, spawn_time, fail_spawn, guests: Mutex::new(HashMap::new()) }
    }

    fn with_guest<T>(&self, uuid: &str, f: impl FnOnce(&mut Guest) -> T) -> DriverResult<T> {
        let mut guests = self.guests.lock().map_err(|_| DriverError::Failed("driver state poisoned".into()))?;
        guests.get_mut(uuid).map(f).ok_or_else(|| DriverError::NotFound(uuid.into()))
    }

    fn set_power(&self, i: &Instance, state: i64, line: &str) -> DriverResult<()> {
        self.with_guest(&i.uuid, |g| {
            g.power_state = state;
            g.console.push(line.to_string());
        })
    }
}

#[async_trait]
impl ComputeDriver for FakeDriver {
    fn host_info(&self) -> HostInfo {
        HostInfo {
            hypervisor_hostname: self.host.clone(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1000,
            host_ip: "127.0.0.1".into(),
            vcpus: self.resources.vcpus,
            memory_mb: self.resources.memory_mb,
            local_gb: self.resources.local_gb,
            cpu_info: json!({"arch": "x86_64", "vendor": "fake", "model": "fake", "topology": {"sockets": 1, "cores": self.resources.vcpus, "threads": 1}, "features": []}),
            supported_instances: vec![
                ["x86_64".into(), "fake".into(), "hvm".into()],
                ["x86_64".into(), "qemu".into(), "hvm".into()],
                ["i686".into(), "qemu".into(), "hvm".into()],
            ],
        }
    }

    async fn spawn(&self, instance: &Instance, vifs: &[Vif], _admin_password: Option<&str>) -> DriverResult<()> {
        if !self.spawn_time.is_zero() {
            tokio::time::sleep(self.spawn_time).await;
        }
        if self.fail_spawn {
            return Err(DriverError::Failed(format!("host {} is set to fail every spawn", self.host)));
        }
        let mut console = vec![format!("fake BIOS: booting {} ({})", instance.display_name, instance.uuid)];
        for v in vifs {
            for ip in &v.fixed_ips {
                console.push(format!("eth: {} has address {}", v.mac_address, ip.ip_address));
            }
        }
        console.push(format!("{} login:", instance.hostname));
        let guest = Guest {
            power_state: power_state::RUNNING,
            console,
            vifs: vifs.iter().map(|v| v.port_id.clone()).collect(),
            started: std::time::Instant::now(),
            display: None,
        };
        self.guests
            .lock()
            .map_err(|_| DriverError::Failed("driver state poisoned".into()))?
            .insert(instance.uuid.clone(), guest);
        Ok(())
    }

    async fn destroy(&self, instance: &Instance) -> DriverResult<()> {
        self.guests.lock().map_err(|_| DriverError::Failed("driver state poisoned".into()))?.remove(&instance.uuid);
        Ok(())
    }

    async fn reboot(&self, i: &Instance, hard: bool) -> DriverResult<()> {
        self.set_power(i, power_state::RUNNING, if hard { "hard reboot" } else { "reboot: restarting system" })
    }

    async fn power_off(&self, i: &Instance) -> DriverResult<()> {
        self.set_power(i, power_state::SHUTDOWN, "reboot: power down")
    }

    async fn power_on(&self, i: &Instance) -> DriverResult<()> {
        self.set_power(i, power_state::RUNNING, "fake BIOS: booting")
    }

    async fn pause(&self, i: &Instance) -> DriverResult<()> {
        self.set_power(i, power_state::PAUSED, "paused")
    }

    async fn unpause(&self, i: &Instance) -> DriverResult<()> {
        self.set_power(i, power_state::RUNNING, "unpaused")
    }

    async fn suspend(&self, i: &Instance) -> DriverResult<()> {
        self.set_power(i, power_state::SUSPENDED, "PM: suspend entry")
    }

    async fn resume(&self, i: &Instance) -> DriverResult<()> {
        self.set_power(i, power_state::RUNNING, "PM: resume")
    }

    async fn rescue(&self, i: &Instance) -> DriverResult<()> {
        self.set_power(i, power_state::RUNNING, "booting the rescue image")
    }

    async fn unrescue(&self, i: &Instance) -> DriverResult<()> {
        self.set_power(i, power_state::RUNNING, "booting from the instance's own disk")
    }

    async fn snapshot(&self, i: &Instance) -> DriverResult<Vec<u8>> {
        self.with_guest(&i.uuid, |_| format!("fake snapshot of {}\n", i.uuid).into_bytes())
    }

    async fn console_output(&self, i: &Instance) -> DriverResult<String> {
        self.with_guest(&i.uuid, |g| g.console.join("\n") + "\n")
    }

    /// A fake guest does no work: its counters are all zero. Like Nova's fake
    /// driver it calls itself libvirt, the only value clients accept that fits.
    async fn diagnostics(&self, i: &Instance) -> DriverResult<Value> {
        let (power, uptime, ports) =
            self.with_guest(&i.uuid, |g| (g.power_state, g.started.elapsed().as_secs(), g.vifs.clone()))?;
        let state = match power {
            power_state::RUNNING => "running",
            power_state::PAUSED => "paused",
            power_state::SUSPENDED => "suspended",
            power_state::SHUTDOWN => "shutdown",
            _ => "pending",
        };
        let nics: Vec<Value> = ports
            .iter()
            .map(|p| {
                let mac = i.network_info.iter().find(|v| v.port_id == *p).map(|v| v.mac_address.clone());
                json!({"mac_address": mac, "rx_octets": 0, "rx_errors": 0, "rx_drop": 0, "rx_packets": 0, "rx_rate": null,
                    "tx_octets": 0, "tx_errors": 0, "tx_drop": 0, "tx_packets": 0, "tx_rate": null})
            })
            .collect();
        let cpus: Vec<Value> = (0..i.flavor.vcpus).map(|n| json!({"id": n, "time": 0, "utilisation": null})).collect();
        Ok(json!({
            "state": state, "driver": "libvirt", "hypervisor": "fake", "hypervisor_os": "linux",
            "uptime": uptime, "config_drive": i.config_drive == "True", "num_cpus": i.flavor.vcpus,
            "num_nics": nics.len(), "num_disks": 1,
            "memory_details": {"maximum": i.flavor.memory_mb, "used": 0},
            "cpu_details": cpus, "nic_details": nics,
            "disk_details": [{"read_bytes": 0, "read_requests": 0, "write_bytes": 0, "write_requests": 0, "errors_count": 0}],
        }))
    }

    async fn vnc_console(&self, i: &Instance) -> DriverResult<ConsoleEndpoint> {
        let (power, port) = self.with_guest(&i.uuid, |g| (g.power_state, g.display.as_ref().map(|d| d.port)))?;
        if power != power_state::RUNNING && power != power_state::PAUSED {
            return Err(DriverError::NotReady(i.uuid.clone()));
        }
        let port = match port {
            Some(p) => p,
            None => {
                let display = super::fake_vnc::open(i.display_name.clone())
                    .await
                    .map_err(|e| DriverError::Failed(format!("opening the guest's display: {e}")))?;
                // Two first requests at once: the one stored first wins.
                self.with_guest(&i.uuid, |g| g.display.get_or_insert(display).port)?
            }
        };
        Ok(ConsoleEndpoint { host: "127.0.0.1".into(), port })
    }

    async fn attach_interface(&self, i: &Instance, vif: &Vif) -> DriverResult<()> {
        self.with_guest(&i.uuid, |g| g.vifs.push(vif.port_id.clone()))
    }

    async fn detach_interface(&self, i: &Instance, vif: &Vif) -> DriverResult<()> {
        self.with_guest(&i.uuid, |g| g.vifs.retain(|p| *p != vif.port_id))
    }

    async fn power_state(&self, i: &Instance) -> DriverResult<i64> {
        self.with_guest(&i.uuid, |g| g.power_state)
    }

    async fn list_instances(&self) -> Vec<String> {
        self.guests.lock().map(|g| g.keys().cloned().collect()).unwrap_or_default()
    }
}
