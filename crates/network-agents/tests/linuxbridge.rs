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
