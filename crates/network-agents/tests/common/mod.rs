//! What the datapath tests share: root detection, namespaces removed however
//! a test ends, and "instances" plugged into a host by a veth.

use std::net::{IpAddr, Ipv4Addr};

use netdev::Netlink;
use network_rpc::tap_name;

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// The namespaces a test made, deleted however it ends (with every process
/// still inside them killed first).
pub struct Namespaces(pub Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = std::process::Command::new("ip").args(["netns", "pids", ns]).output().map(|out| {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = std::process::Command::new("kill").arg(pid).status();
                }
            });
            let _ = std::process::Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Plugs `instance` into `host` as the port's tap: a veth whose inner end
/// has the MAC and address given.
pub async fn plug(host: &str, instance: &str, port: &str, mac: [u8; 6], ip: Ipv4Addr, mtu: u32) {
    let nl = Netlink::in_namespace(host).await.unwrap();
    nl.ensure_veth(&tap_name(port), "fsat-eth0").await.unwrap();
    let tap = nl.link(&tap_name(port)).await.unwrap().unwrap();
    nl.set_up(tap.index).await.unwrap();
    let inner = nl.link("fsat-eth0").await.unwrap().unwrap();
    nl.move_to_namespace(inner.index, instance).await.unwrap();
    let vm = Netlink::in_namespace(instance).await.unwrap();
    let eth = vm.link("fsat-eth0").await.unwrap().unwrap();
    vm.set_mac(eth.index, mac).await.unwrap();
    vm.set_mtu(eth.index, mtu).await.unwrap();
    vm.add_address(eth.index, IpAddr::V4(ip), 24).await.unwrap();
    vm.set_up(eth.index).await.unwrap();
}

/// Whether `from` (an instance namespace) gets an answer to a ping of `to`
/// (from `source`, if given), over IPv4 or IPv6.
pub async fn pings(from: &str, to: impl Into<IpAddr>, source: Option<IpAddr>) -> bool {
    let to = to.into();
    let mut cmd = netdev::command_in(from, "busybox").unwrap();
    cmd.args(["ping", if to.is_ipv6() { "-6" } else { "-4" }, "-c", "2", "-W", "2"]);
    if let Some(s) = source {
        cmd.args(["-I", &s.to_string()]);
    }
    cmd.arg(to.to_string()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    cmd.status().await.map(|s| s.success()).unwrap_or(false)
}
