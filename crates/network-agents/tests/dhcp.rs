//! The DHCP driver with a real dnsmasq: a "host" namespace with the
//! network's bridge, the network's `qdhcp-` namespace made by the driver,
//! and an "instance" namespace whose busybox `udhcpc` asks for its address.
//! The lease carries the port's address, the router, the DNS server and
//! the MTU; a new port is served after a reload that keeps the same
//! dnsmasq, and so is an address a port gave up, at once, to another MAC;
//! disabling leaves no namespace, device, process or file. Needs
//! root and dnsmasq; says so and passes otherwise.

#[allow(dead_code)] // the helpers this test does not use
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{is_root, mac_text, Namespaces};
use netdev::{create_namespace, parse_mac, Netlink};
use network_agents::dhcp::{device, process, DhcpError, DnsmasqOptions, LocalDhcp, Served};
use network_rpc::{tap_name, DhcpNetwork, DhcpPort, DhcpSubnet, FixedIp};

const NETWORK: &str = "d4c1e7a2-5b3f-4c8d-9e0a-7f2b6c1d3e50";
const SUBNET: &str = "e8b2c6d1-0f4a-4e7b-8c3d-2a9f5b7e1c60";
const HOST: &str = "fsdh-host";
const INSTANCE: &str = "fsdh-vm";
const BRIDGE: &str = "fsdh-br";

fn port(id: &str, mac: [u8; 6], ip: &str, owner: &str) -> DhcpPort {
    DhcpPort {
        id: id.into(),
        mac_address: mac_text(mac),
        device_owner: owner.into(),
        device_id: String::new(),
        fixed_ips: vec![FixedIp { subnet_id: SUBNET.into(), ip_address: ip.into() }],
        extra_dhcp_opts: Vec::new(),
    }
}

const DHCP_PORT: &str = "a1d2c3b4-0000-4000-8000-0000000000d1";
const VM_PORT: &str = "b2e3d4c5-0000-4000-8000-0000000000e1";
const NEW_PORT: &str = "c3f4e5d6-0000-4000-8000-0000000000f1";
const DHCP_MAC: [u8; 6] = [0xfa, 0x16, 0x3e, 0xd4, 0x00, 0x02];
const VM_MAC: [u8; 6] = [0xfa, 0x16, 0x3e, 0xd4, 0x00, 0x10];
const NEW_MAC: [u8; 6] = [0xfa, 0x16, 0x3e, 0xd4, 0x00, 0x11];

fn network(ports: Vec<DhcpPort>) -> DhcpNetwork {
    DhcpNetwork {
        id: NETWORK.into(),
        mtu: 1450,
        subnets: vec![DhcpSubnet {
            id: SUBNET.into(),
            cidr: "10.251.40.0/24".into(),
            ip_version: 4,
            enable_dhcp: true,
            gateway_ip: Some("10.251.40.1".into()),
            ..DhcpSubnet::default()
        }],
        ports,
    }
}

/// A scratch directory removed however the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("dhcp").join(NETWORK).join("pid")) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The lease `udhcpc` in the instance obtains, as the variables its script
/// is given (`ip`, `mask`, `router`, `dns`, `mtu`, `hostname`, …).
async fn lease(dir: &Path) -> Option<std::collections::BTreeMap<String, String>> {
    let script = dir.join("udhcpc.sh");
    let out = dir.join("lease.env");
    let _ = std::fs::remove_file(&out);
    std::fs::write(&script, format!("#!/bin/sh\n[ \"$1\" = bound ] && env > {}\nexit 0\n", out.display())).ok()?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).ok()?;
    let mut cmd = netdev::command_in(INSTANCE, "busybox").ok()?;
    cmd.args(["udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-O", "mtu", "-s"]).arg(&script);
    let status = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().await.ok()?;
    if !status.success() {
        return None;
    }
    let env = std::fs::read_to_string(out).ok()?;
    Some(env.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

#[tokio::test]
async fn dnsmasq_in_the_networks_namespace_hands_out_the_ports_addresses() {
    if !is_root() || which("dnsmasq").is_none() {
        eprintln!("skipped: needs root and dnsmasq");
        return;
    }
    let _namespaces = Namespaces(vec![HOST.into(), INSTANCE.into(), device::namespace_name(NETWORK)]);
    let scratch = Scratch(std::env::temp_dir().join(format!("fsdh-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).unwrap();

    // A directory nobody cannot reach is refused up front.
    std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    create_namespace(HOST).await.unwrap();
    let host = || async { Netlink::in_namespace(HOST).await.unwrap() };
    let refused = LocalDhcp::new(&scratch.0.join("dhcp"), DnsmasqOptions::default(), host().await);
    assert!(matches!(refused, Err(DhcpError::Unreadable(_))), "{:?}", refused.err());
    std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o755)).unwrap();

    // The host's bridge, and the instance on it by a veth (what the L2
    // agent and the virt driver would have done).
    let nl = host().await;
    let bridge = nl.ensure_bridge(BRIDGE).await.unwrap();
    nl.set_up(bridge).await.unwrap();
    create_namespace(INSTANCE).await.unwrap();
    let vm_tap = nl.ensure_veth(&tap_name(VM_PORT), "fsdh-eth0").await.unwrap();
    nl.enslave(vm_tap, bridge).await.unwrap();
    nl.set_up(vm_tap).await.unwrap();
    let inner = nl.link("fsdh-eth0").await.unwrap().unwrap();
    nl.move_to_namespace(inner.index, INSTANCE).await.unwrap();
    let vm = Netlink::in_namespace(INSTANCE).await.unwrap();
    let eth = vm.link("fsdh-eth0").await.unwrap().unwrap();
    vm.rename(eth.index, "eth0").await.unwrap();
    vm.set_mac(eth.index, VM_MAC).await.unwrap();
    vm.set_up(eth.index).await.unwrap();

    let dhcp = LocalDhcp::new(&scratch.0.join("dhcp"), DnsmasqOptions::default(), host().await).unwrap();
    let dhcp_port = port(DHCP_PORT, DHCP_MAC, "10.251.40.2", "network:dhcp");
    let mut ports = vec![dhcp_port.clone(), port(VM_PORT, VM_MAC, "10.251.40.10", "compute:nova")];
    assert_eq!(dhcp.enable(&network(ports.clone()), &dhcp_port).await.unwrap(), Served::Started);
    assert_eq!(dhcp.networks(), vec![NETWORK.to_string()]);

    // The DHCP port's device: in the namespace, with the port's MAC, MTU
    // and address; its host end left for the L2 agent, which plugs it.
    let ns = Netlink::in_namespace(&device::namespace_name(NETWORK)).await.unwrap();
    let dev = ns.link(&device::device_name(DHCP_PORT)).await.unwrap().expect("the DHCP port's device");
    assert_eq!(dev.mac, parse_mac(&mac_text(DHCP_MAC)));
    assert_eq!(dev.mtu, 1450);
    let addresses = ns.addresses(dev.index).await.unwrap();
    assert!(addresses.contains(&("10.251.40.2".parse().unwrap(), 24)), "{addresses:?}");
    let outer = nl.link(&tap_name(DHCP_PORT)).await.unwrap().expect("the host end");
    nl.enslave(outer.index, bridge).await.unwrap();

    let got = lease(&scratch.0).await.expect("a lease");
    assert_eq!(got.get("ip").map(String::as_str), Some("10.251.40.10"), "{got:?}");
    assert_eq!(got.get("mask").map(String::as_str), Some("24"));
    assert_eq!(got.get("router").map(String::as_str), Some("10.251.40.1"));
    assert_eq!(got.get("dns").map(String::as_str), Some("10.251.40.2"));
    assert_eq!(got.get("mtu").map(String::as_str), Some("1450"));
    assert_eq!(got.get("hostname").map(String::as_str), Some("host-10-251-40-10"));

    // The same network again changes nothing.
    let dir = scratch.0.join("dhcp").join(NETWORK);
    let (pid, _) = process::running(&dir).expect("dnsmasq runs");
    assert_eq!(dhcp.enable(&network(ports.clone()), &dhcp_port).await.unwrap(), Served::Unchanged);

    // An unknown MAC gets nothing (the static range); once its port is
    // there, the same dnsmasq serves it after a reload.
    vm.set_mac(eth.index, NEW_MAC).await.unwrap();
    assert!(lease(&scratch.0).await.is_none(), "a MAC no port has got an address");
    ports.push(port(NEW_PORT, NEW_MAC, "10.251.40.11", "compute:nova"));
    assert_eq!(dhcp.enable(&network(ports.clone()), &dhcp_port).await.unwrap(), Served::Reloaded);
    assert_eq!(process::running(&dir).map(|(p, _)| p), Some(pid));
    let got = lease(&scratch.0).await.expect("a lease after the reload");
    assert_eq!(got.get("ip").map(String::as_str), Some("10.251.40.11"), "{got:?}");

    // The port goes and its address goes to a new port with another MAC:
    // the old lease is given back, so the new port gets the address at once.
    const REUSE_PORT: &str = "d4a5f6e7-0000-4000-8000-000000000001";
    const REUSE_MAC: [u8; 6] = [0xfa, 0x16, 0x3e, 0xd4, 0x00, 0x12];
    ports.retain(|p| p.id != NEW_PORT);
    ports.push(port(REUSE_PORT, REUSE_MAC, "10.251.40.11", "compute:nova"));
    assert_eq!(dhcp.enable(&network(ports.clone()), &dhcp_port).await.unwrap(), Served::Reloaded);
    vm.set_mac(eth.index, REUSE_MAC).await.unwrap();
    let got = lease(&scratch.0).await.expect("the freed address for its new port");
    assert_eq!(got.get("ip").map(String::as_str), Some("10.251.40.11"), "{got:?}");

    // A command line that changes (the MTU) restarts dnsmasq.
    let mut bigger = network(ports.clone());
    bigger.mtu = 1400;
    assert_eq!(dhcp.enable(&bigger, &dhcp_port).await.unwrap(), Served::Started);
    assert_ne!(process::running(&dir).map(|(p, _)| p), Some(pid));

    drop(ns);
    dhcp.disable(NETWORK).await.unwrap();
    assert!(!netdev::namespace_exists(&device::namespace_name(NETWORK)));
    assert!(process::running(&dir).is_none());
    assert!(!dir.exists());
    assert!(dhcp.networks().is_empty());
    assert!(nl.link(&tap_name(DHCP_PORT)).await.unwrap().is_none(), "the host end went with the namespace");
    // Disabling what is not served is fine.
    dhcp.disable(NETWORK).await.unwrap();
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.exists())
}
