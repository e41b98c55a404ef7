//! The Linux bridge datapath on two "hosts" that are network namespaces
//! joined by an underlay veth, each with an "instance" namespace plugged by
//! a tap: VXLAN with l2population's entries carries a ping between them,
//! and a resync that wants nothing takes the network's devices away. Needs
//! root (namespaces); says so and passes otherwise.

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use common::{is_root, mac_text, Namespaces};
use netdev::{create_namespace, delete_namespace, Netlink};
use network_agents::config::LinuxBridgeConfig;
use network_agents::datapath::linuxbridge::LinuxBridge;
use network_agents::datapath::{Datapath, Wiring};
use network_rpc::{bridge_name, DeviceDetails, FdbEntry};

const NETWORK: &str = "6c1f5a0e-7d2b-4e58-9a0c-3b7e5d1f2a90";
const VNI: i64 = 4077;

struct Side {
    host: String,
    instance: String,
    port: String,
    mac: [u8; 6],
    ip: Ipv4Addr,
    underlay: Ipv4Addr,
}

impl Side {
    fn mac_text(&self) -> String {
        mac_text(self.mac)
    }

    fn details(&self) -> DeviceDetails {
        DeviceDetails {
            device: self.port.clone(),
            network_id: NETWORK.into(),
            mac_address: self.mac_text(),
            admin_state_up: true,
            network_type: Some("vxlan".into()),
            segmentation_id: Some(VNI),
            host: self.host.clone(),
            vif_type: "bridge".into(),
            ..DeviceDetails::default()
        }
    }

    fn fdb_entry(&self) -> FdbEntry {
        FdbEntry {
            network_id: NETWORK.into(),
            network_type: "vxlan".into(),
            segmentation_id: VNI,
            port_id: self.port.clone(),
            host: self.host.clone(),
            tunnel_ip: self.underlay.to_string(),
            mac_address: self.mac_text(),
            ip_addresses: vec![self.ip.to_string()],
        }
    }

    async fn plug(&self) {
        common::plug(&self.host, &self.instance, &self.port, self.mac, self.ip, 1450).await;
    }
}

async fn pings(from: &Side, to: &Side) -> bool {
    common::pings(&from.instance, to.ip, None).await
}

#[tokio::test]
async fn vxlan_with_l2population_carries_a_ping_and_resync_takes_it_away() {
    if !is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    let tag = std::process::id() % 100_000;
    let names: Vec<String> = ["h1", "h2", "vm1", "vm2"].iter().map(|n| format!("fsat{tag}-{n}")).collect();
    let _cleanup = Namespaces(names.clone());
    for ns in &names {
        create_namespace(ns).await.unwrap();
    }
    let sides = [
        Side {
            host: names[0].clone(),
            instance: names[2].clone(),
            port: "b1000000-0001-4000-8000-000000000001".into(),
            mac: [0xfa, 0x16, 0x3e, 0, 0, 1],
            ip: Ipv4Addr::new(10, 251, 7, 1),
            underlay: Ipv4Addr::new(10, 252, 7, 1),
        },
        Side {
            host: names[1].clone(),
            instance: names[3].clone(),
            port: "b2000000-0002-4000-8000-000000000002".into(),
            mac: [0xfa, 0x16, 0x3e, 0, 0, 2],
            ip: Ipv4Addr::new(10, 251, 7, 2),
            underlay: Ipv4Addr::new(10, 252, 7, 2),
        },
    ];

    // The underlay: one veth between the hosts.
    let h1 = Netlink::in_namespace(&names[0]).await.unwrap();
    h1.ensure_veth("fsat-u1", "fsat-u2").await.unwrap();
    let peer = h1.link("fsat-u2").await.unwrap().unwrap();
    h1.move_to_namespace(peer.index, &names[1]).await.unwrap();
    for (side, dev) in sides.iter().zip(["fsat-u1", "fsat-u2"]) {
        let nl = Netlink::in_namespace(&side.host).await.unwrap();
        let link = nl.link(dev).await.unwrap().unwrap();
        nl.add_address(link.index, IpAddr::V4(side.underlay), 24).await.unwrap();
        nl.set_up(link.index).await.unwrap();
    }

    let mut datapaths = Vec::new();
    for side in &sides {
        let config = LinuxBridgeConfig {
            interface_mappings: Vec::new(),
            enable_vxlan: true,
            local_ip: Some(side.underlay),
            l2_population: true,
        };
        let dp = LinuxBridge::in_namespace(config, &side.host).await.unwrap();
        // The tap is not there yet: the agent will wait for it.
        assert_eq!(dp.wire(&side.details()).await.unwrap(), Wiring::NoDevice);
        side.plug().await;
        assert_eq!(dp.wire(&side.details()).await.unwrap(), Wiring::Wired);
        datapaths.push(dp);
    }
    // Each host learns the other's port from l2population, and only that.
    for (dp, other) in datapaths.iter().zip(sides.iter().rev()) {
        dp.set_fdb(NETWORK, &[other.fdb_entry()]).await.unwrap();
    }
    assert!(pings(&sides[0], &sides[1]).await, "no ping over VXLAN");
    assert!(pings(&sides[1], &sides[0]).await, "no ping back over VXLAN");

    // Entries gone: the overlay no longer knows where the other port is.
    datapaths[0].set_fdb(NETWORK, &[]).await.unwrap();
    assert!(!pings(&sides[0], &sides[1]).await, "a ping without forwarding entries");
    datapaths[0].set_fdb(NETWORK, &[sides[1].fdb_entry()]).await.unwrap();
    assert!(pings(&sides[0], &sides[1]).await, "entries back, still no ping");

    // A resync on host 1 that wants nothing removes the network's devices.
    datapaths[0].remove_stale(&HashSet::new(), &HashSet::new()).await.unwrap();
    for name in [bridge_name(NETWORK), format!("vxlan-{VNI}")] {
        assert!(h1.link(&name).await.unwrap().is_none(), "{name} survived the resync");
    }
    assert!(!pings(&sides[0], &sides[1]).await, "a ping after the resync removed the network");

    for ns in &names {
        delete_namespace(ns).await.unwrap();
    }
}

/// Whether the bridge sends its IP traffic through br_netfilter, as
/// `ip -d link` in the host shows it.
async fn nf_call_iptables(host: &str, bridge: &str) -> bool {
    let mut cmd = netdev::command_in(host, "ip").unwrap();
    let out = cmd.args(["-d", "link", "show", bridge]).output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nf_call_iptables"), "no bridge details for {bridge}: {text}");
    text.contains("nf_call_iptables 1")
}

/// An agent started over bridges it did not make in this process (an
/// older agent's, which relied on the namespace-wide br_netfilter switch)
/// keeps them filtered until its resync has wired what the server wants;
/// then each bridge is filtered exactly when a filtered port is on it.
#[tokio::test]
async fn bridges_found_at_start_stay_filtered_until_the_resync() {
    if !is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    let host = format!("fsnf{}-h", std::process::id() % 100_000);
    let _cleanup = Namespaces(vec![host.clone()]);
    create_namespace(&host).await.unwrap();
    let (open_net, filtered_net) = ("0e000000-0000-4000-8000-00000000000e", "0f000000-0000-4000-8000-00000000000f");
    let nl = Netlink::in_namespace(&host).await.unwrap();
    for net in [open_net, filtered_net] {
        nl.ensure_bridge(&bridge_name(net)).await.unwrap();
        nl.set_bridge_netfilter(&bridge_name(net), false).await.unwrap();
    }
    let config =
        LinuxBridgeConfig { interface_mappings: Vec::new(), enable_vxlan: false, local_ip: None, l2_population: false };
    let dp = LinuxBridge::in_namespace(config, &host).await.unwrap();
    for net in [open_net, filtered_net] {
        assert!(nf_call_iptables(&host, &bridge_name(net)).await, "{net}'s bridge is unfiltered at start");
    }
    let port = |id: &str, net: &str, port_security: bool| DeviceDetails {
        device: id.into(),
        network_id: net.into(),
        mac_address: "fa:16:3e:00:0e:01".into(),
        admin_state_up: true,
        network_type: Some("local".into()),
        device_owner: "compute:nova".into(),
        port_security_enabled: port_security,
        security_groups: vec!["default".into()],
        host: host.clone(),
        vif_type: "bridge".into(),
        ..DeviceDetails::default()
    };
    let open = port("e1000000-0001-4000-8000-000000000001", open_net, false);
    let filtered = port("e2000000-0002-4000-8000-000000000002", filtered_net, true);
    for p in [&open, &filtered] {
        // No taps: the ports wait for them, and their bridges are known.
        assert_eq!(dp.wire(p).await.unwrap(), Wiring::NoDevice);
    }
    assert!(nf_call_iptables(&host, &bridge_name(open_net)).await, "unfiltered before the resync ended");
    let networks: HashSet<String> = [open_net, filtered_net].map(String::from).into();
    let ports: HashSet<String> = [&open, &filtered].map(|p| p.device.clone()).into();
    dp.remove_stale(&networks, &ports).await.unwrap();
    assert!(!nf_call_iptables(&host, &bridge_name(open_net)).await, "a bridge with no filtered port still filtered");
    assert!(nf_call_iptables(&host, &bridge_name(filtered_net)).await, "a filtered port's bridge left unfiltered");
    delete_namespace(&host).await.unwrap();
}
