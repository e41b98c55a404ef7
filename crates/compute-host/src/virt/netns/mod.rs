//! The `netns` driver: an instance is a network namespace named after it
//! (`instance-…`, Nova's instance name), with one interface per port — a veth
//! whose host end is the port's `tap…` device, which the Linux bridge agent
//! puts on the network's bridge — with the port's MAC and MTU, and a small
//! web server (busybox httpd on port 80) answering with the instance's name.
//! Like a cloud guest it takes its IPv4 address, gateway, routes and MTU by
//! DHCP at power-on ([`dhcp`]: busybox udhcpc, renewing while it runs); its
//! IPv6 addresses are set from the port's fixed IPs. It is what the LXC
//! driver was to Nova: a real, light instance for datapath tests and for
//! machines without hardware virtualisation.
//!
//! Each instance keeps its files under `instances_path/<uuid>/`: `www/` (what
//! it serves), `console.log` (what it did), `power` (its power state),
//! `httpd.pid`, and its DHCP client's pid, script and leases; they outlive
//! the compute service, as a real guest does.

mod dhcp;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use compute_rpc::model::{power_state, Instance, Vif};
use netdev::{parse_mac, Netlink};
use serde_json::{json, Value};

use super::{ComputeDriver, ConsoleEndpoint, DriverError, DriverResult, HostInfo};
use crate::config::HostResources;

pub struct NetnsDriver {
    host: String,
    my_ip: String,
    resources: HostResources,
    dir: PathBuf,
    netlink: Netlink,
}

fn failed(e: impl std::fmt::Display) -> DriverError {
    DriverError::Failed(e.to_string())
}

/// The instance's end of a port's veth, before it moves in and is renamed.
fn peer_name(port_id: &str) -> String {
    format!("nsp{}", port_id.get(..11).unwrap_or(port_id))
}

impl NetnsDriver {
    pub async fn new(host: &str, resources: HostResources, instances_path: &Path) -> netdev::Result<NetnsDriver> {
        std::fs::create_dir_all(instances_path)?;
        Ok(NetnsDriver {
            host: host.to_string(),
            my_ip: "127.0.0.1".into(),
            resources,
            dir: instances_path.to_path_buf(),
            netlink: Netlink::connect()?,
        })
    }

    pub fn with_my_ip(mut self, ip: &str) -> NetnsDriver {
        self.my_ip = ip.to_string();
        self
    }

    fn home(&self, i: &Instance) -> PathBuf {
        self.dir.join(&i.uuid)
    }

    fn console(&self, i: &Instance, line: &str) {
        use std::io::Write;
        let stamp = common::time::now_micros() / 1000;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(self.home(i).join("console.log"))
        {
            let _ = writeln!(f, "[{stamp}] {line}");
        }
    }

    fn set_power(&self, i: &Instance, state: &str) -> DriverResult<()> {
        std::fs::write(self.home(i).join("power"), state).map_err(failed)
    }

    fn power(&self, i: &Instance) -> Option<String> {
        std::fs::read_to_string(self.home(i).join("power")).ok()
    }

    fn defined(&self, i: &Instance) -> DriverResult<()> {
        if netdev::namespace_exists(&i.name()) {
            Ok(())
        } else {
            Err(DriverError::NotFound(i.uuid.clone()))
        }
    }

    /// The interfaces inside the instance, `eth0` …
    async fn inside(&self, i: &Instance) -> DriverResult<Netlink> {
        self.defined(i)?;
        Netlink::in_namespace(&i.name()).await.map_err(failed)
    }

    async fn set_links(&self, i: &Instance, up: bool) -> DriverResult<()> {
        let nl = self.inside(i).await?;
        for l in nl.links().await.map_err(failed)?.iter().filter(|l| l.name.starts_with("eth")) {
            if up { nl.set_up(l.index).await } else { nl.set_down(l.index).await }.map_err(failed)?;
        }
        Ok(())
    }

    /// The web server's pid, if it is running (and is ours).
    fn httpd(&self, i: &Instance) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.home(i).join("httpd.pid")).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline).contains(&i.uuid).then_some(pid)
    }

    async fn start_httpd(&self, i: &Instance) -> DriverResult<()> {
        if self.httpd(i).is_some() {
            return Ok(());
        }
        let www = self.home(i).join("www");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home(i).join("console.log"))
            .map_err(failed)?;
        let mut cmd = netdev::command_in(&i.name(), "busybox").map_err(failed)?;
        cmd.args(["httpd", "-f", "-p", "80", "-h"]).arg(&www);
        cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone().map_err(failed)?).stderr(log);
        let child = cmd.spawn().map_err(|e| failed(format!("starting busybox httpd: {e}")))?;
        let pid = child.id().ok_or_else(|| failed("httpd exited at once"))?;
        std::fs::write(self.home(i).join("httpd.pid"), pid.to_string()).map_err(failed)?;
        // Reaped by the runtime when it exits; the instance outlives us otherwise.
        drop(child);
        self.console(i, &format!("httpd: serving {} on port 80 (pid {pid})", www.display()));
        Ok(())
    }

    fn stop_httpd(&self, i: &Instance) {
        if let Some(pid) = self.httpd(i) {
            let _ = nix_kill(pid, Signal::SIGTERM);
            // A paused instance's server is stopped: let it take the signal.
            let _ = nix_kill(pid, Signal::SIGCONT);
            self.console(i, "httpd: stopped");
        }
        let _ = std::fs::remove_file(self.home(i).join("httpd.pid"));
    }

    fn signal_httpd(&self, i: &Instance, sig: Signal) {
        if let Some(pid) = self.httpd(i) {
            let _ = nix_kill(pid, sig);
        }
    }

    /// One port's interface: the veth pair, the instance's end moved in,
    /// named `eth<index>`, with the port's MAC, MTU and addresses.
    async fn plug(&self, i: &Instance, vif: &Vif, index: usize) -> DriverResult<()> {
        let tap = network_rpc::tap_name(&vif.port_id);
        if self.netlink.link(&tap).await.map_err(failed)?.is_some() {
            return Ok(());
        }
        let peer = peer_name(&vif.port_id);
        let _ = self.netlink.delete(&peer).await;
        let host_end = self.netlink.ensure_veth(&tap, &peer).await.map_err(failed)?;
        if let Some(mtu) = vif.mtu {
            self.netlink.set_mtu(host_end, mtu).await.map_err(failed)?;
        }
        self.netlink.set_up(host_end).await.map_err(failed)?;
        let peer_index = self.netlink.link(&peer).await.map_err(failed)?.ok_or_else(|| failed("veth peer vanished"))?;
        self.netlink.move_to_namespace(peer_index.index, &i.name()).await.map_err(failed)?;
        let nl = self.inside(i).await?;
        let link = nl.link(&peer).await.map_err(failed)?.ok_or_else(|| failed("veth peer not in the namespace"))?;
        let name = format!("eth{index}");
        nl.rename(link.index, &name).await.map_err(failed)?;
        if let Some(mac) = parse_mac(&vif.mac_address) {
            nl.set_mac(link.index, mac).await.map_err(failed)?;
        }
        if let Some(mtu) = vif.mtu {
            nl.set_mtu(link.index, mtu).await.map_err(failed)?;
        }
        // IPv4 comes by DHCP; IPv6 as the port says.
        for ip in vif.fixed_ips.iter().filter(|f| f.version == 6) {
            let Ok(addr) = ip.ip_address.parse::<IpAddr>() else { continue };
            nl.add_address(link.index, addr, ip.prefix_len.unwrap_or(64)).await.map_err(failed)?;
        }
        nl.set_up(link.index).await.map_err(failed)?;
        self.console(i, &format!("{name}: {} mtu {:?}", vif.mac_address, vif.mtu));
        if self.power(i).as_deref() == Some("running") {
            self.take_lease(i, &name).await;
        }
        Ok(())
    }

    /// Runs the interface's DHCP client, saying on the console how it went.
    async fn take_lease(&self, i: &Instance, interface: &str) {
        match dhcp::start(&i.name(), &self.home(i), interface, &i.hostname).await {
            Ok(true) => {}
            Ok(false) => self.console(i, &format!("{interface}: no DHCP lease yet; udhcpc keeps trying")),
            Err(e) => self.console(i, &format!("{interface}: cannot start udhcpc: {e}")),
        }
    }

    /// Every interface takes its lease, all at once.
    async fn take_leases(&self, i: &Instance) -> DriverResult<()> {
        let nl = self.inside(i).await?;
        let names: Vec<String> =
            nl.links().await.map_err(failed)?.into_iter().map(|l| l.name).filter(|n| n.starts_with("eth")).collect();
        futures::future::join_all(names.iter().map(|n| self.take_lease(i, n))).await;
        Ok(())
    }
}

use nix::sys::signal::Signal;

fn nix_kill(pid: i32, sig: Signal) -> nix::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
}

#[async_trait]
impl ComputeDriver for NetnsDriver {
    fn host_info(&self) -> HostInfo {
        HostInfo {
            hypervisor_hostname: self.host.clone(),
            hypervisor_type: "netns".into(),
            hypervisor_version: 1000,
            host_ip: self.my_ip.clone(),
            vcpus: self.resources.vcpus,
            memory_mb: self.resources.memory_mb,
            local_gb: self.resources.local_gb,
            cpu_info: json!({"arch": "x86_64", "vendor": "linux", "model": "netns", "topology": {"sockets": 1, "cores": self.resources.vcpus, "threads": 1}, "features": []}),
            supported_instances: vec![
                ["x86_64".into(), "netns".into(), "exe".into()],
                ["x86_64".into(), "qemu".into(), "hvm".into()],
            ],
        }
    }

    async fn prepare_image(&self, _i: &Instance) -> DriverResult<()> {
        // A namespace runs the host's own programs: there is no image to fetch.
        Ok(())
    }

    async fn create_disk(&self, i: &Instance) -> DriverResult<()> {
        let www = self.home(i).join("www");
        std::fs::create_dir_all(&www).map_err(failed)?;
        let page = format!("{} {} {}\n", i.name(), i.display_name, i.uuid);
        std::fs::write(www.join("index.html"), page).map_err(failed)
    }

    async fn delete_disk(&self, i: &Instance) -> DriverResult<()> {
        match std::fs::remove_dir_all(self.home(i)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
            _ => Ok(()),
        }
    }

    async fn define(&self, i: &Instance, _vifs: &[Vif], _admin_password: Option<&str>) -> DriverResult<()> {
        if !self.home(i).exists() {
            return Err(failed(format!("instance {} has no files on this host", i.uuid)));
        }
        netdev::create_namespace(&i.name()).await.map_err(failed)?;
        if self.power(i).is_none() {
            self.set_power(i, "shutdown")?;
            self.console(i, &format!("netns: defined {} ({}) as namespace {}", i.display_name, i.uuid, i.name()));
        }
        Ok(())
    }

    async fn undefine(&self, i: &Instance) -> DriverResult<()> {
        self.stop_httpd(i);
        dhcp::stop_all(&self.home(i));
        netdev::delete_namespace(&i.name()).await.map_err(failed)?;
        let _ = std::fs::remove_file(self.home(i).join("power"));
        Ok(())
    }

    async fn plug_vifs(&self, i: &Instance, vifs: &[Vif]) -> DriverResult<()> {
        self.defined(i)?;
        for (index, vif) in vifs.iter().enumerate() {
            self.plug(i, vif, index).await?;
        }
        Ok(())
    }

    async fn unplug_vifs(&self, i: &Instance, vifs: &[Vif]) -> DriverResult<()> {
        if let Ok(nl) = self.inside(i).await {
            let links = nl.links().await.map_err(failed)?;
            for vif in vifs {
                let mac = parse_mac(&vif.mac_address);
                if let Some(l) = links.iter().find(|l| l.mac.is_some() && l.mac == mac) {
                    dhcp::stop(&self.home(i), &l.name);
                }
            }
        }
        for vif in vifs {
            // The pair goes with either end.
            self.netlink.delete(&network_rpc::tap_name(&vif.port_id)).await.map_err(failed)?;
        }
        Ok(())
    }

    async fn power_on(&self, i: &Instance) -> DriverResult<()> {
        self.set_links(i, true).await?;
        self.set_power(i, "running")?;
        self.take_leases(i).await?;
        self.start_httpd(i).await?;
        self.set_power(i, "running")?;
        self.console(i, &format!("{} login:", i.hostname));
        Ok(())
    }

    async fn power_off(&self, i: &Instance) -> DriverResult<()> {
        self.defined(i)?;
        self.stop_httpd(i);
        dhcp::stop_all(&self.home(i));
        self.set_links(i, false).await?;
        self.set_power(i, "shutdown")?;
        self.console(i, "reboot: power down");
        Ok(())
    }

    async fn live_migrate(&self, i: &Instance, _dest: &str) -> DriverResult<()> {
        Err(failed(format!("netns instances do not live-migrate ({})", i.uuid)))
    }

    async fn reboot(&self, i: &Instance, hard: bool) -> DriverResult<()> {
        self.console(i, if hard { "hard reboot" } else { "reboot: restarting system" });
        self.power_off(i).await?;
        self.power_on(i).await
    }

    async fn pause(&self, i: &Instance) -> DriverResult<()> {
        self.signal_httpd(i, Signal::SIGSTOP);
        dhcp::signal_all(&self.home(i), Signal::SIGSTOP);
        self.set_links(i, false).await?;
        self.set_power(i, "paused")
    }

    async fn unpause(&self, i: &Instance) -> DriverResult<()> {
        self.set_links(i, true).await?;
        self.signal_httpd(i, Signal::SIGCONT);
        dhcp::signal_all(&self.home(i), Signal::SIGCONT);
        self.set_power(i, "running")
    }

    async fn suspend(&self, i: &Instance) -> DriverResult<()> {
        self.pause(i).await?;
        self.set_power(i, "suspended")
    }

    async fn resume(&self, i: &Instance) -> DriverResult<()> {
        self.unpause(i).await
    }

    async fn rescue(&self, i: &Instance) -> DriverResult<()> {
        self.defined(i)?;
        self.console(i, "rescue: booted the rescue environment");
        Ok(())
    }

    async fn unrescue(&self, i: &Instance) -> DriverResult<()> {
        self.defined(i)?;
        self.console(i, "rescue: back on the instance's own disk");
        Ok(())
    }

    async fn snapshot(&self, i: &Instance) -> DriverResult<Vec<u8>> {
        std::fs::read(self.home(i).join("www").join("index.html")).map_err(|_| DriverError::NotFound(i.uuid.clone()))
    }

    async fn console_output(&self, i: &Instance) -> DriverResult<String> {
        std::fs::read_to_string(self.home(i).join("console.log")).map_err(|_| DriverError::NotFound(i.uuid.clone()))
    }

    async fn vnc_console(&self, i: &Instance) -> DriverResult<ConsoleEndpoint> {
        Err(failed(format!("netns instance {} has no display", i.uuid)))
    }

    async fn diagnostics(&self, i: &Instance) -> DriverResult<Value> {
        self.defined(i)?;
        Ok(json!({
            "state": self.power(i).unwrap_or_default(),
            "driver": "netns",
            "hypervisor": "netns",
            "hypervisor_os": "linux",
            "uptime": 0,
            "num_cpus": i.flavor.vcpus,
            "num_disks": 0,
            "num_nics": i.network_info.len(),
            "memory_details": {"maximum": i.flavor.memory_mb, "used": 0},
            "cpu_details": [],
            "nic_details": [],
            "disk_details": [],
            "config_drive": false,
        }))
    }

    async fn attach_interface(&self, i: &Instance, vif: &Vif) -> DriverResult<()> {
        let nl = self.inside(i).await?;
        let count = nl.links().await.map_err(failed)?.iter().filter(|l| l.name.starts_with("eth")).count();
        self.plug(i, vif, count).await
    }

    async fn detach_interface(&self, i: &Instance, vif: &Vif) -> DriverResult<()> {
        self.unplug_vifs(i, std::slice::from_ref(vif)).await
    }

    async fn power_state(&self, i: &Instance) -> DriverResult<i64> {
        self.defined(i)?;
        Ok(match self.power(i).as_deref() {
            Some("running") if self.httpd(i).is_some() => power_state::RUNNING,
            Some("paused") => power_state::PAUSED,
            Some("suspended") => power_state::SUSPENDED,
            _ => power_state::SHUTDOWN,
        })
    }

    async fn list_instances(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("power").exists())
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .collect()
    }
}
