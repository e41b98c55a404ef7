//! The Linux bridge agent's datapath, as Neutron's builds it, over netlink: a
//! `brq<network>` bridge per network with a port on it; a `tap<port>` per
//! port, made by the hypervisor and enslaved here; flat networks leave
//! through the mapped physical interface, VLAN networks through
//! `<interface>.<vlan>`, VXLAN networks through `vxlan-<vni>` from
//! `local_ip`, and local networks not at all. With l2population the VXLAN
//! device neither learns nor floods to a group: the server says where each
//! remote port is (a forwarding entry to its host) and which MAC answers for
//! its addresses (an ARP answer from the device), and broadcasts go to every
//! host with ports on the network. A bridge with a filtered port sends its
//! IP traffic through br_netfilter (per bridge: the firewall turns the
//! namespace-wide switch off), so only filtered networks pay for conntrack.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use async_trait::async_trait;
use netdev::{parse_mac, Netlink};
use network_rpc::{bridge_name, tap_name, DeviceDetails, FdbEntry, VXLAN_UDP_PORT};
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use super::{Datapath, DatapathError, DatapathResult, Wiring};
use crate::config::LinuxBridgeConfig;

const FLOOD_MAC: [u8; 6] = [0; 6];

/// br_netfilter per bridge: the filtered ports wired on each bridge, and
/// the `nf_call_iptables` each bridge has been given since the agent started.
#[derive(Default)]
struct Netfilter {
    filtered: HashMap<String, HashSet<String>>,
    set: HashMap<String, bool>,
    /// Bridges found at start, kept filtered until the first resync has
    /// wired what the server wants on them: the firewall then turns the
    /// namespace-wide switch off, and a bridge that relied on it (an older
    /// agent's) is never left unfiltered in between.
    held: HashSet<String>,
}

pub struct LinuxBridge {
    config: LinuxBridgeConfig,
    netlink: Netlink,
    /// Why this host cannot carry a network type (what the kernel lacks).
    unsupported: Map<String, Value>,
    /// Which bridges send their traffic through br_netfilter.
    netfilter: Mutex<Netfilter>,
}

impl LinuxBridge {
    /// The datapath in this process's network namespace, after finding out
    /// what the kernel can do.
    pub async fn new(config: LinuxBridgeConfig) -> DatapathResult<LinuxBridge> {
        LinuxBridge::with_netlink(config, Netlink::connect()?).await
    }

    /// The datapath of another network namespace (how tests drive hosts).
    pub async fn in_namespace(config: LinuxBridgeConfig, namespace: &str) -> DatapathResult<LinuxBridge> {
        LinuxBridge::with_netlink(config, Netlink::in_namespace(namespace).await?).await
    }

    async fn with_netlink(config: LinuxBridgeConfig, netlink: Netlink) -> DatapathResult<LinuxBridge> {
        let mut unsupported = Map::new();
        unsupported.insert("gre".into(), json!("Linux bridges have no GRE ports (use Open vSwitch)"));
        if !config.enable_vxlan {
            unsupported.insert("vxlan".into(), json!("[vxlan] enable_vxlan is false on this host"));
        }
        if let Some(reason) = vlan_unsupported(&netlink).await {
            unsupported.insert("vlan".into(), json!(reason));
        }
        let mut netfilter = Netfilter::default();
        for l in netlink.links().await?.iter().filter(|l| l.kind == "bridge" && l.name.starts_with("brq")) {
            netlink.set_bridge_netfilter(&l.name, true).await?;
            netfilter.set.insert(l.name.clone(), true);
            netfilter.held.insert(l.name.clone());
        }
        Ok(LinuxBridge { config, netlink, unsupported, netfilter: Mutex::new(netfilter) })
    }

    fn cannot(&self, port: &DeviceDetails, reason: impl Into<String>) -> DatapathError {
        DatapathError::CannotWire { port: port.device.clone(), reason: reason.into() }
    }

    fn interface_for(&self, physnet: Option<&str>) -> Option<&str> {
        let physnet = physnet?;
        self.config.interface_mappings.iter().find(|(p, _)| p == physnet).map(|(_, i)| i.as_str())
    }

    /// The device that carries the network off this host, made if needed
    /// (`None` for a local network).
    async fn uplink(&self, port: &DeviceDetails) -> DatapathResult<Option<u32>> {
        let network_type = port.network_type.as_deref().unwrap_or("local");
        if let Some(reason) = self.unsupported.get(network_type).and_then(Value::as_str) {
            return Err(self.cannot(port, format!("{network_type} networks: {reason}")));
        }
        match network_type {
            "local" => Ok(None),
            "flat" => {
                let iface = self.interface_for(port.physical_network.as_deref()).ok_or_else(|| {
                    self.cannot(port, format!("no interface mapped for physical network {:?}", port.physical_network))
                })?;
                let link = self
                    .netlink
                    .link(iface)
                    .await?
                    .ok_or_else(|| self.cannot(port, format!("no interface {iface}")))?;
                Ok(Some(link.index))
            }
            "vlan" => {
                let iface = self.interface_for(port.physical_network.as_deref()).ok_or_else(|| {
                    self.cannot(port, format!("no interface mapped for physical network {:?}", port.physical_network))
                })?;
                let vlan = port.segmentation_id.ok_or_else(|| self.cannot(port, "a VLAN segment without an id"))?;
                let base = self
                    .netlink
                    .link(iface)
                    .await?
                    .ok_or_else(|| self.cannot(port, format!("no interface {iface}")))?;
                self.netlink.set_up(base.index).await?;
                Ok(Some(self.netlink.ensure_vlan(&format!("{iface}.{vlan}"), base.index, vlan as u16).await?))
            }
            "vxlan" => {
                let vni = port.segmentation_id.ok_or_else(|| self.cannot(port, "a VXLAN segment without a VNI"))?;
                let local = self.config.local_ip.ok_or_else(|| self.cannot(port, "[vxlan] local_ip is not set"))?;
                let dev = self.netlink.link_with_address(IpAddr::V4(local)).await?;
                let name = format!("vxlan-{vni}");
                let index = self
                    .netlink
                    .ensure_vxlan(&name, vni as u32, local, dev, VXLAN_UDP_PORT, self.config.l2_population)
                    .await?;
                Ok(Some(index))
            }
            other => Err(self.cannot(port, format!("network type {other} is not carried by Linux bridges"))),
        }
    }

    /// The VXLAN device on the network's bridge, if there is one.
    async fn vxlan_of(&self, network_id: &str) -> DatapathResult<Option<u32>> {
        let Some(bridge) = self.netlink.link(&bridge_name(network_id)).await? else { return Ok(None) };
        let links = self.netlink.links().await?;
        Ok(links.iter().find(|l| l.controller == Some(bridge.index) && l.kind == "vxlan").map(|l| l.index))
    }

    /// Sends the bridge's IP traffic through br_netfilter, where the
    /// stateful firewall sees it, while a filtered port is on it: the other
    /// bridges (port security off, DHCP and router networks) pay nothing for
    /// it. Called before the port is plugged, so its first packet is
    /// filtered, and after it is unplugged.
    async fn netfilter(&self, bridge: &str, port: &str, filtered: bool) -> DatapathResult<()> {
        let mut nf = self.netfilter.lock().await;
        let ports = nf.filtered.entry(bridge.to_string()).or_default();
        if filtered {
            ports.insert(port.to_string());
        } else {
            ports.remove(port);
        }
        let want = !ports.is_empty() || nf.held.contains(bridge);
        if nf.set.get(bridge) != Some(&want) {
            self.netlink.set_bridge_netfilter(bridge, want).await?;
            nf.set.insert(bridge.to_string(), want);
        }
        Ok(())
    }

    async fn remove_bridge(&self, name: &str) -> DatapathResult<()> {
        let Some(bridge) = self.netlink.link(name).await? else { return Ok(()) };
        for l in self.netlink.links().await?.iter().filter(|l| l.controller == Some(bridge.index)) {
            if l.kind == "vxlan" || l.kind == "vlan" {
                // Ours: made for this network alone.
                self.netlink.delete(&l.name).await?;
            } else {
                // A physical interface or a hypervisor's tap: only let go.
                self.netlink.release(l.index).await?;
            }
        }
        self.netlink.delete(name).await?;
        let mut nf = self.netfilter.lock().await;
        nf.filtered.remove(name);
        nf.set.remove(name);
        nf.held.remove(name);
        tracing::info!(bridge = name, "removed the network's bridge");
        Ok(())
    }
}

/// Why this kernel cannot make 802.1Q devices, if it cannot: tried on a veth
/// pair made for the purpose.
async fn vlan_unsupported(nl: &Netlink) -> Option<String> {
    let (a, b) = ("fsprobe-vl0", "fsprobe-vl1");
    let result = async {
        let index = nl.ensure_veth(a, b).await?;
        nl.ensure_vlan("fsprobe-vl0.9", index, 9).await
    }
    .await;
    let _ = nl.delete(a).await;
    match result {
        Ok(_) => None,
        Err(e) => Some(format!("this kernel cannot make 802.1Q VLAN devices ({e})")),
    }
}

#[async_trait]
impl Datapath for LinuxBridge {
    fn configurations(&self) -> Value {
        let mappings: Map<String, Value> =
            self.config.interface_mappings.iter().map(|(p, i)| (p.clone(), json!(i))).collect();
        let tunnel_types: Vec<&str> = if self.config.enable_vxlan { vec!["vxlan"] } else { vec![] };
        json!({
            "interface_mappings": mappings,
            "bridge_mappings": {},
            "tunnel_types": tunnel_types,
            "tunneling_ip": self.config.local_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            "l2_population": self.config.l2_population,
            "unsupported_network_types": self.unsupported,
            "datapath": "linuxbridge (netlink)",
        })
    }

    async fn wire(&self, port: &DeviceDetails) -> DatapathResult<Wiring> {
        let uplink = self.uplink(port).await?;
        let name = bridge_name(&port.network_id);
        let bridge = self.netlink.ensure_bridge(&name).await?;
        self.netfilter(&name, &port.device, crate::firewall::is_filtered(port)).await?;
        if let Some(up) = uplink {
            self.netlink.enslave(up, bridge).await?;
        }
        let Some(tap) = self.netlink.link(&tap_name(&port.device)).await? else { return Ok(Wiring::NoDevice) };
        if tap.controller != Some(bridge) || !tap.up {
            self.netlink.enslave(tap.index, bridge).await?;
        }
        Ok(Wiring::Wired)
    }

    async fn unwire(&self, port: &DeviceDetails) -> DatapathResult<()> {
        if let Some(tap) = self.netlink.link(&tap_name(&port.device)).await? {
            if tap.controller.is_some() {
                self.netlink.release(tap.index).await?;
            }
        }
        let bridge = bridge_name(&port.network_id);
        if self.netlink.link(&bridge).await?.is_some() {
            self.netfilter(&bridge, &port.device, false).await?;
        }
        Ok(())
    }

    async fn remove_network(&self, network_id: &str) -> DatapathResult<()> {
        self.remove_bridge(&bridge_name(network_id)).await
    }

    async fn set_fdb(&self, network_id: &str, entries: &[FdbEntry]) -> DatapathResult<()> {
        let Some(vx) = self.vxlan_of(network_id).await? else { return Ok(()) };
        let local = self.config.local_ip.map(|ip| ip.to_string()).unwrap_or_default();
        let mut forward: HashSet<([u8; 6], Ipv4Addr)> = HashSet::new();
        let mut answers: HashMap<Ipv4Addr, [u8; 6]> = HashMap::new();
        for e in entries.iter().filter(|e| e.tunnel_ip != local) {
            let (Ok(dst), Some(mac)) = (e.tunnel_ip.parse::<Ipv4Addr>(), parse_mac(&e.mac_address)) else { continue };
            forward.insert((FLOOD_MAC, dst));
            forward.insert((mac, dst));
            for ip in e.ip_addresses.iter().filter_map(|ip| ip.parse::<Ipv4Addr>().ok()) {
                answers.insert(ip, mac);
            }
        }
        let present: HashSet<([u8; 6], Ipv4Addr)> = self.netlink.fdb(vx).await?.into_iter().collect();
        for (mac, dst) in forward.difference(&present) {
            self.netlink.add_fdb(vx, *mac, *dst).await?;
        }
        for (mac, dst) in present.difference(&forward) {
            self.netlink.delete_fdb(vx, *mac, *dst).await?;
        }
        if self.config.l2_population {
            let known: HashMap<Ipv4Addr, [u8; 6]> = self.netlink.neighbours(vx).await?.into_iter().collect();
            for (ip, mac) in &answers {
                if known.get(ip) != Some(mac) {
                    self.netlink.set_neighbour(vx, IpAddr::V4(*ip), *mac).await?;
                }
            }
            for ip in known.keys().filter(|ip| !answers.contains_key(ip)) {
                self.netlink.delete_neighbour(vx, IpAddr::V4(*ip)).await?;
            }
        }
        Ok(())
    }

    async fn remove_stale(&self, networks: &HashSet<String>, ports: &HashSet<String>) -> DatapathResult<()> {
        let bridges: HashSet<String> = networks.iter().map(|n| bridge_name(n)).collect();
        let taps: HashSet<String> = ports.iter().map(|p| tap_name(p)).collect();
        let links = self.netlink.links().await?;
        let ours: HashMap<u32, &str> = links
            .iter()
            .filter(|l| l.kind == "bridge" && l.name.starts_with("brq"))
            .map(|l| (l.index, l.name.as_str()))
            .collect();
        for l in &links {
            let on_our_bridge = l.controller.is_some_and(|c| ours.contains_key(&c));
            if on_our_bridge && l.name.starts_with("tap") && !taps.contains(&l.name) {
                tracing::info!(tap = %l.name, "releasing the tap of a port no longer here");
                self.netlink.release(l.index).await?;
            }
        }
        for name in ours.values().filter(|b| !bridges.contains(**b)) {
            self.remove_bridge(name).await?;
        }
        // Everything wanted is wired: the bridges held since start get the
        // filtering their ports need, and no more.
        let mut nf = self.netfilter.lock().await;
        for name in std::mem::take(&mut nf.held) {
            let want = nf.filtered.get(&name).is_some_and(|p| !p.is_empty());
            // `ours` was listed above; the stale ones removed since left `held`.
            if nf.set.get(&name) == Some(&want) || !ours.values().any(|b| *b == name) {
                continue;
            }
            self.netlink.set_bridge_netfilter(&name, want).await?;
            nf.set.insert(name, want);
        }
        Ok(())
    }

    fn watch(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        match netdev::watch_links() {
            Ok(rx) => Some(rx),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch links; waiting ports are retried on a timer");
                None
            }
        }
    }
}
