//! The fake driver: a hypervisor in memory. It keeps an image cache, disks
//! and guests (definition, interfaces, power state, console log), and checks
//! the order a real one would (no disk without its image, no guest without
//! its disk), so the steps of a build are exercised for real. With a state
//! file it outlives the compute service, as libvirt's guests do when
//! nova-compute dies. Nothing runs, so one process can hold thousands of hosts;
//! a host may be told to fail every boot, to exercise rescheduling.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ComputeDriver, ConsoleEndpoint, DriverError, DriverResult, HostInfo};
use crate::config::HostResources;
use compute_rpc::model::{power_state, Instance, Vif};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Guest {
    power_state: i64,
    console: Vec<String>,
    vifs: Vec<String>,
    vcpus: i64,
    memory_mb: i64,
    /// When it last powered on (µs since the epoch), for its uptime.
    booted_at: Option<i64>,
}

/// What the hypervisor holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Hypervisor {
    images: BTreeSet<String>,
    disks: BTreeSet<String>,
    guests: BTreeMap<String, Guest>,
}

pub struct FakeDriver {
    host: String,
    resources: HostResources,
    spawn_time: Duration,
    fail_spawn: bool,
    state_file: Option<PathBuf>,
    state: Mutex<Hypervisor>,
    addresses: crate::config::Addresses,
    /// Guests' VNC displays, opened when a console is first asked for (so
    /// idle guests hold no socket) and closed with the guest.
    displays: Mutex<HashMap<String, super::fake_vnc::Display>>,
}

fn gone(uuid: &str) -> DriverError {
    DriverError::NotFound(uuid.into())
}

impl FakeDriver {
    /// A fake hypervisor for `host`; with `state_dir`, its guests are kept in
    /// `state_dir/<host>.json` and found there again after a restart.
    pub fn new(
        host: &str,
        resources: HostResources,
        spawn_time: Duration,
        fail_spawn: bool,
        state_dir: Option<PathBuf>,
    ) -> FakeDriver {
        let state_file = state_dir.map(|d| d.join(format!("{host}.json")));
        let state = state_file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        FakeDriver {
            host: host.into(),
            resources,
            spawn_time,
            fail_spawn,
            state_file,
            state: Mutex::new(state),
            addresses: crate::config::Addresses::default(),
            displays: Mutex::new(HashMap::new()),
        }
    }

    /// Reports `addresses` instead of loopback, and opens displays there.
    pub fn with_addresses(mut self, addresses: crate::config::Addresses) -> FakeDriver {
        self.addresses = addresses;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Hypervisor> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the hypervisor and, with a state file, writes it (a temporary
    /// file renamed into place, so a crash leaves the old state or the new).
    fn change<T>(&self, f: impl FnOnce(&mut Hypervisor) -> DriverResult<T>) -> DriverResult<T> {
        let mut state = self.lock();
        let out = f(&mut state)?;
        if let Some(file) = &self.state_file {
            let bytes = serde_json::to_vec(&*state).map_err(|e| DriverError::Failed(e.to_string()))?;
            let tmp = file.with_extension("json.tmp");
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, file))
                .map_err(|e| DriverError::Failed(format!("writing {}: {e}", file.display())))?;
        }
        Ok(out)
    }

    fn with_guest<T>(&self, uuid: &str, f: impl FnOnce(&mut Guest) -> T) -> DriverResult<T> {
        self.change(|h| h.guests.get_mut(uuid).map(f).ok_or_else(|| gone(uuid)))
    }

    fn set_power(&self, i: &Instance, state: i64, line: &str) -> DriverResult<()> {
        self.with_guest(&i.uuid, |g| {
            g.power_state = state;
            g.console.push(line.to_string());
        })
    }

    fn close_display(&self, uuid: &str) {
        self.displays.lock().unwrap_or_else(|p| p.into_inner()).remove(uuid);
    }
}

#[async_trait]
impl ComputeDriver for FakeDriver {
    fn host_info(&self) -> HostInfo {
        HostInfo {
            hypervisor_hostname: self.host.clone(),
            hypervisor_type: "fake".into(),
            hypervisor_version: 1000,
            host_ip: self.addresses.my_ip.clone(),
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

    async fn prepare_image(&self, i: &Instance) -> DriverResult<()> {
        self.change(|h| {
            h.images.insert(i.image_ref.clone());
            Ok(())
        })
    }

    async fn create_disk(&self, i: &Instance) -> DriverResult<()> {
        self.change(|h| {
            if !h.images.contains(&i.image_ref) {
                return Err(DriverError::Failed(format!("image {} is not in this host's cache", i.image_ref)));
            }
            h.disks.insert(i.uuid.clone());
            Ok(())
        })
    }

    async fn delete_disk(&self, i: &Instance) -> DriverResult<()> {
        self.change(|h| {
            h.disks.remove(&i.uuid);
            Ok(())
        })
    }

    async fn define(&self, i: &Instance, vifs: &[Vif], _admin_password: Option<&str>) -> DriverResult<()> {
        self.change(|h| {
            if !h.disks.contains(&i.uuid) {
                return Err(DriverError::Failed(format!("instance {} has no disk on this host", i.uuid)));
            }
            let guest = h.guests.entry(i.uuid.clone()).or_insert_with(|| Guest {
                power_state: power_state::SHUTDOWN,
                console: vec![format!("fake hypervisor: defined {} ({})", i.display_name, i.uuid)],
                vifs: Vec::new(),
                vcpus: 0,
                memory_mb: 0,
                booted_at: None,
            });
            // A redefinition (a resize) takes the new flavor.
            guest.vcpus = i.flavor.vcpus;
            guest.memory_mb = i.flavor.memory_mb;
            if guest.vifs.is_empty() {
                guest.vifs = vifs.iter().map(|v| v.port_id.clone()).collect();
            }
            Ok(())
        })
    }

    async fn undefine(&self, i: &Instance) -> DriverResult<()> {
        self.close_display(&i.uuid);
        self.change(|h| {
            h.guests.remove(&i.uuid);
            Ok(())
        })
    }

    async fn plug_vifs(&self, i: &Instance, vifs: &[Vif]) -> DriverResult<()> {
        self.with_guest(&i.uuid, |g| g.vifs = vifs.iter().map(|v| v.port_id.clone()).collect())
    }

    async fn unplug_vifs(&self, i: &Instance, _vifs: &[Vif]) -> DriverResult<()> {
        self.with_guest(&i.uuid, |g| g.vifs.clear())
    }

    async fn power_on(&self, i: &Instance) -> DriverResult<()> {
        if self.lock().guests.get(&i.uuid).is_some_and(|g| g.power_state == power_state::RUNNING) {
            return Ok(());
        }
        if !self.spawn_time.is_zero() {
            tokio::time::sleep(self.spawn_time).await;
        }
        if self.fail_spawn {
            return Err(DriverError::Failed(format!("host {} is set to fail every boot", self.host)));
        }
        let mut lines = vec![format!("fake BIOS: booting {} ({})", i.display_name, i.uuid)];
        for v in &i.network_info {
            for ip in &v.fixed_ips {
                lines.push(format!("eth: {} has address {}", v.mac_address, ip.ip_address));
            }
        }
        lines.push(format!("{} login:", i.hostname));
        self.with_guest(&i.uuid, |g| {
            g.power_state = power_state::RUNNING;
            g.booted_at = Some(common::time::now_micros());
            g.console.extend(lines);
        })
    }

    async fn power_off(&self, i: &Instance) -> DriverResult<()> {
        self.close_display(&i.uuid);
        self.set_power(i, power_state::SHUTDOWN, "reboot: power down")
    }

    async fn live_migrate(&self, i: &Instance, dest: &str) -> DriverResult<()> {
        self.with_guest(&i.uuid, |g| g.console.push(format!("live migration to {dest}: memory copied")))
    }

    async fn reboot(&self, i: &Instance, hard: bool) -> DriverResult<()> {
        self.set_power(i, power_state::RUNNING, if hard { "hard reboot" } else { "reboot: restarting system" })
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
        let h = self.lock();
        h.guests.get(&i.uuid).map(|g| g.console.join("\n") + "\n").ok_or_else(|| gone(&i.uuid))
    }

    /// A fake guest does no work: its counters are all zero. Like Nova's fake
    /// driver it calls itself libvirt, the only value clients accept that fits.
    async fn diagnostics(&self, i: &Instance) -> DriverResult<Value> {
        let (power, booted, ports) = {
            let h = self.lock();
            let g = h.guests.get(&i.uuid).ok_or_else(|| gone(&i.uuid))?;
            (g.power_state, g.booted_at, g.vifs.clone())
        };
        let uptime = booted.map(|b| (common::time::now_micros() - b).max(0) / 1_000_000).unwrap_or(0);
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
        let power = self.lock().guests.get(&i.uuid).map(|g| g.power_state).ok_or_else(|| gone(&i.uuid))?;
        if power != power_state::RUNNING && power != power_state::PAUSED {
            return Err(DriverError::NotReady(i.uuid.clone()));
        }
        let open = self.displays.lock().unwrap_or_else(|p| p.into_inner()).get(&i.uuid).map(|d| d.port);
        let port = match open {
            Some(p) => p,
            None => {
                let display = super::fake_vnc::open(i.display_name.clone(), self.addresses.vnc_listen)
                    .await
                    .map_err(|e| DriverError::Failed(format!("opening the guest's display: {e}")))?;
                // Two first requests at once: the one stored first wins.
                let mut displays = self.displays.lock().unwrap_or_else(|p| p.into_inner());
                displays.entry(i.uuid.clone()).or_insert(display).port
            }
        };
        Ok(ConsoleEndpoint { host: self.addresses.vnc_proxyclient.clone(), port })
    }

    async fn attach_interface(&self, i: &Instance, vif: &Vif) -> DriverResult<()> {
        self.with_guest(&i.uuid, |g| g.vifs.push(vif.port_id.clone()))
    }

    async fn detach_interface(&self, i: &Instance, vif: &Vif) -> DriverResult<()> {
        self.with_guest(&i.uuid, |g| g.vifs.retain(|p| *p != vif.port_id))
    }

    async fn power_state(&self, i: &Instance) -> DriverResult<i64> {
        self.lock().guests.get(&i.uuid).map(|g| g.power_state).ok_or_else(|| gone(&i.uuid))
    }

    async fn list_instances(&self) -> Vec<String> {
        self.lock().guests.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> HostResources {
        HostResources {
            vcpus: 4,
            memory_mb: 4096,
            local_gb: 40,
            reserved_host_memory_mb: 0,
            reserved_host_disk_mb: 0,
            reserved_host_cpus: 0,
            cpu_allocation_ratio: 1.0,
            ram_allocation_ratio: 1.0,
            disk_allocation_ratio: 1.0,
        }
    }

    fn instance() -> Instance {
        Instance { uuid: "u1".into(), image_ref: "img".into(), ..Default::default() }
    }

    #[tokio::test]
    async fn a_guest_is_built_in_order_and_outlives_its_driver_with_a_state_file() {
        let dir = std::env::temp_dir().join(format!("fake-hv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = FakeDriver::new("h1", resources(), Duration::ZERO, false, Some(dir.clone()));
        let i = instance();
        assert!(d.create_disk(&i).await.is_err(), "no disk before its image is cached");
        d.prepare_image(&i).await.unwrap();
        d.create_disk(&i).await.unwrap();
        d.define(&i, &[], None).await.unwrap();
        d.define(&i, &[], None).await.unwrap();
        d.power_on(&i).await.unwrap();
        d.power_on(&i).await.unwrap();
        assert_eq!(d.power_state(&i).await.unwrap(), power_state::RUNNING);
        drop(d);
        let again = FakeDriver::new("h1", resources(), Duration::ZERO, false, Some(dir.clone()));
        assert_eq!(again.list_instances().await, ["u1"]);
        again.destroy(&i).await.unwrap();
        again.destroy(&i).await.unwrap();
        assert!(again.list_instances().await.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
