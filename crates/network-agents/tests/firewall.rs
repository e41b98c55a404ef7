//! Security groups enforced by the nftables firewall, proven by traffic: a
//! host namespace with a local network's bridge and three instances on it.
//! `vm1` and `vm2` are in the group "web" (ICMP and tcp/80 from anywhere,
//! tcp/9000 from the group's members, all egress); `vm3` is in no group and
//! has port security off. An established connection survives rule changes
//! that do not concern it, and a resync. Needs root (namespaces); says so and passes
//! otherwise.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Stdio;
use std::time::Duration;

use common::{is_root, mac_text, pings, plug, Namespaces};
use netdev::{create_namespace, delete_namespace, Netlink};
use network_agents::config::LinuxBridgeConfig;
use network_agents::datapath::linuxbridge::LinuxBridge;
use network_agents::datapath::{Datapath, Wiring};
use network_agents::firewall::nftables::{Nftables, TABLE};
use network_agents::firewall::Firewall;
use network_rpc::{DeviceDetails, FixedIp, MemberIps, SecurityGroupInfo, SecurityGroupRule};
use serde_json::json;

const NETWORK: &str = "7d2a6b1f-8e3c-4f69-ab1d-4c8f6e2a3b01";
const WEB: &str = "5eb00000-0000-4000-8000-00000000000a";

struct Vm {
    ns: String,
    port: String,
    mac: [u8; 6],
    ip: Ipv4Addr,
    groups: Vec<String>,
    port_security: bool,
}

impl Vm {
    fn details(&self, host: &str) -> DeviceDetails {
        DeviceDetails {
            device: self.port.clone(),
            network_id: NETWORK.into(),
            mac_address: mac_text(self.mac),
            admin_state_up: true,
            network_type: Some("local".into()),
            fixed_ips: vec![FixedIp { subnet_id: "subnet".into(), ip_address: self.ip.to_string() }],
            device_owner: "compute:nova".into(),
            security_groups: self.groups.clone(),
            port_security_enabled: self.port_security,
            host: host.into(),
            vif_type: "bridge".into(),
            ..DeviceDetails::default()
        }
    }
}

fn rule(direction: &str, protocol: Option<&str>, port: Option<i64>, remote_group: Option<&str>) -> SecurityGroupRule {
    rule_for("IPv4", direction, protocol, port, remote_group)
}

fn rule_for(
    ethertype: &str,
    direction: &str,
    protocol: Option<&str>,
    port: Option<i64>,
    remote_group: Option<&str>,
) -> SecurityGroupRule {
    SecurityGroupRule {
        id: format!("{ethertype}-{direction}-{protocol:?}-{port:?}"),
        direction: direction.into(),
        ethertype: ethertype.into(),
        protocol: protocol.map(String::from),
        port_range_min: port,
        port_range_max: port,
        remote_ip_prefix: None,
        remote_group_id: remote_group.map(String::from),
    }
}

fn web_rules(extra: &[SecurityGroupRule]) -> SecurityGroupInfo {
    let mut rules = vec![
        rule("egress", None, None, None),
        rule("ingress", Some("icmp"), None, None),
        rule("ingress", Some("tcp"), Some(80), None),
        rule("ingress", Some("tcp"), Some(9000), Some(WEB)),
    ];
    rules.extend_from_slice(extra);
    SecurityGroupInfo {
        security_groups: BTreeMap::from([(WEB.to_string(), rules)]),
        sg_member_ips: BTreeMap::from([(WEB.to_string(), members(&["10.251.9.1", "10.251.9.2"]))]),
    }
}

fn members(ips: &[&str]) -> MemberIps {
    MemberIps { ipv4: ips.iter().map(|s| s.to_string()).collect(), ipv6: Vec::new() }
}

/// Whether `from` gets an HTTP answer from `to`:`port` within two seconds.
async fn fetches(from: &str, to: impl Into<IpAddr>, port: u16) -> bool {
    let url = match to.into() {
        IpAddr::V4(a) => format!("http://{a}:{port}/"),
        IpAddr::V6(a) => format!("http://[{a}]:{port}/"),
    };
    let mut cmd = netdev::command_in(from, "curl").unwrap();
    cmd.args(["-s", "-o", "/dev/null", "--max-time", "2", &url]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd.status().await.map(|s| s.success()).unwrap_or(false)
}

/// Sends a line over the connection and expects it back (within two seconds).
async fn echoes(stream: std::net::TcpStream, line: &'static str) -> std::net::TcpStream {
    tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, BufReader, Write};
        let mut s = stream;
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        writeln!(s, "{line}").unwrap();
        let mut back = String::new();
        BufReader::new(&s).read_line(&mut back).unwrap_or_else(|e| panic!("no echo {line}: {e}"));
        assert_eq!(back.trim_end(), line, "the connection broke {line}");
        s
    })
    .await
    .unwrap()
}

async fn chains(host: &str) -> String {
    let mut cmd = netdev::command_in(host, "nft").unwrap();
    let out = cmd.args(["list", "table", "inet", TABLE]).output().await.unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn security_groups_are_enforced_on_the_bridge() {
    if !is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    let tag = std::process::id() % 100_000;
    let names: Vec<String> = ["h", "vm1", "vm2", "vm3"].iter().map(|n| format!("fsfw{tag}-{n}")).collect();
    let _cleanup = Namespaces(names.clone());
    for ns in &names {
        create_namespace(ns).await.unwrap();
    }
    let host = names[0].clone();
    let vm = |i: usize, groups: &[&str], port_security: bool| Vm {
        ns: names[i].clone(),
        port: format!("f{i}000000-000{i}-4000-8000-00000000000{i}"),
        mac: [0xfa, 0x16, 0x3e, 0, 9, i as u8],
        ip: Ipv4Addr::new(10, 251, 9, i as u8),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        port_security,
    };
    let vms = [vm(1, &[WEB], true), vm(2, &[WEB], true), vm(3, &[], false)];

    let config =
        LinuxBridgeConfig { interface_mappings: Vec::new(), enable_vxlan: false, local_ip: None, l2_population: false };
    let datapath = LinuxBridge::in_namespace(config, &host).await.unwrap();
    let firewall = Nftables::new(Some(host.clone())).await.unwrap();
    let ports: Vec<DeviceDetails> = vms.iter().map(|v| v.details(&host)).collect();
    // Filtered first, then wired, as the agent does.
    firewall.sync(&ports, &web_rules(&[])).await.unwrap();
    for (v, p) in vms.iter().zip(&ports) {
        plug(&host, &v.ns, &v.port, v.mac, v.ip, 1500).await;
        assert_eq!(datapath.wire(p).await.unwrap(), Wiring::Wired);
    }
    // A web server on 80, 22, 9000 in vm1, and on 2222 in vm3.
    let mut servers = Vec::new();
    for (ns, port) in [(0, 80), (0, 22), (0, 9000), (2, 2222)] {
        let mut cmd = netdev::command_in(&vms[ns].ns, "busybox").unwrap();
        cmd.args(["httpd", "-f", "-p", &port.to_string(), "-h", "/tmp"]).kill_on_drop(true);
        servers.push(cmd.spawn().unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (vm1, vm2, vm3) = (&vms[0], &vms[1], &vms[2]);

    assert!(pings(&vm3.ns, vm1.ip, None).await, "ICMP is allowed in");
    assert!(fetches(&vm3.ns, vm1.ip, 80).await, "tcp/80 is allowed in");
    assert!(!fetches(&vm3.ns, vm1.ip, 22).await, "tcp/22 has no rule");
    assert!(!fetches(&vm3.ns, vm1.ip, 9000).await, "vm3 is not a member of web");
    assert!(fetches(&vm2.ns, vm1.ip, 9000).await, "vm2 is a member of web");
    assert!(fetches(&vm1.ns, vm3.ip, 2222).await, "egress is allowed, and its replies by conntrack");
    assert!(pings(&vm1.ns, vm2.ip, None).await, "members ping each other");

    // A rule opens tcp/22 at once; deleting it closes it again.
    let with_ssh = web_rules(&[rule("ingress", Some("tcp"), Some(22), None)]);
    firewall.update(&ports[..2], &with_ssh).await.unwrap();
    assert!(fetches(&vm3.ns, vm1.ip, 22).await, "the new tcp/22 rule is not enforced");
    firewall.update(&ports[..2], &web_rules(&[])).await.unwrap();
    assert!(!fetches(&vm3.ns, vm1.ip, 22).await, "tcp/22 still open after its rule went");

    // vm3 joins web's members: the remote-group rule lets it in.
    let mut joined = SecurityGroupInfo::default();
    joined.sg_member_ips.insert(WEB.into(), members(&["10.251.9.1", "10.251.9.2", "10.251.9.3"]));
    firewall.update(&[], &joined).await.unwrap();
    assert!(fetches(&vm3.ns, vm1.ip, 9000).await, "a new member is not let in");

    // A connection stays up across a change that does not concern it.
    let echo = rule("ingress", Some("tcp"), Some(7000), None);
    firewall.update(&ports[..2], &web_rules(std::slice::from_ref(&echo))).await.unwrap();
    let mut cmd = netdev::command_in(&vm1.ns, "busybox").unwrap();
    cmd.args(["nc", "-l", "-p", "7000", "-e", "cat"]).kill_on_drop(true);
    servers.push(cmd.spawn().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let addr = std::net::SocketAddr::from((vm1.ip, 7000));
    let stream = netdev::run_in(&vm3.ns, move || std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
        .await
        .unwrap()
        .expect("tcp/7000 is allowed");
    let mut stream = echoes(stream, "before").await;
    firewall.update(&ports[..2], &web_rules(&[echo, rule("ingress", Some("tcp"), Some(22), None)])).await.unwrap();
    stream = echoes(stream, "after an unrelated rule").await;
    firewall.sync(&ports, &web_rules(&[rule("ingress", Some("tcp"), Some(7000), None)])).await.unwrap();
    echoes(stream, "after a resync").await;
    firewall.update(&ports[..2], &web_rules(&[])).await.unwrap();

    // A spoofed source address from vm1 is dropped; its own still works.
    let vm1_nl = Netlink::in_namespace(&vm1.ns).await.unwrap();
    let eth = vm1_nl.link("fsat-eth0").await.unwrap().unwrap();
    let spoofed = Ipv4Addr::new(10, 251, 9, 99);
    vm1_nl.add_address(eth.index, std::net::IpAddr::V4(spoofed), 24).await.unwrap();
    assert!(!pings(&vm1.ns, vm3.ip, Some(spoofed.into())).await, "a spoofed source got through");
    assert!(pings(&vm1.ns, vm3.ip, Some(vm1.ip.into())).await, "vm1's own address is refused");
    // ...unless it is an allowed address pair.
    let mut paired = ports[0].clone();
    paired.allowed_address_pairs = vec![json!({"ip_address": "10.251.9.99", "mac_address": mac_text(vm1.mac)})];
    firewall.update(std::slice::from_ref(&paired), &web_rules(&[])).await.unwrap();
    assert!(pings(&vm1.ns, vm3.ip, Some(spoofed.into())).await, "an allowed address pair is refused");

    // Port security off: everything passes.
    let mut open = ports[0].clone();
    open.port_security_enabled = false;
    firewall.update(std::slice::from_ref(&open), &web_rules(&[])).await.unwrap();
    assert!(fetches(&vm3.ns, vm1.ip, 22).await, "port security off still filters");
    let listed = chains(&host).await;
    assert!(!listed.contains(&format!("ingress_{}", &vm1.port[..8])), "vm1's chains survived: {listed}");

    // On again, by a resync: filtered as before; and removing drops the chains.
    firewall.sync(&ports, &web_rules(&[])).await.unwrap();
    assert!(!fetches(&vm3.ns, vm1.ip, 22).await, "the resync did not filter vm1 again");
    firewall.remove(&[vm1.port.clone(), vm2.port.clone()]).await.unwrap();
    let listed = chains(&host).await;
    assert!(!listed.contains("ingress_f"), "chains left after remove: {listed}");
    assert!(fetches(&vm3.ns, vm1.ip, 22).await, "a port no longer filtered is still filtered");

    drop(servers);
    for ns in &names {
        delete_namespace(ns).await.unwrap();
    }
}

/// The same filter over IPv6: neighbour discovery passes, ICMPv6 and tcp/80
/// are let in by rules, tcp/22 only once a rule opens it, remote-group rules
/// match IPv6 members, and a spoofed IPv6 source is dropped. Two instances
/// in the group "web" with dual-stack ports.
#[tokio::test]
async fn ipv6_is_filtered_too() {
    if !is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    let tag = std::process::id() % 100_000;
    let names: Vec<String> = ["h", "vm1", "vm2"].iter().map(|n| format!("fsfw6{tag}-{n}")).collect();
    let _cleanup = Namespaces(names.clone());
    for ns in &names {
        create_namespace(ns).await.unwrap();
    }
    let host = names[0].clone();
    let v6 = |i: u16| Ipv6Addr::new(0xfd00, 0x251, 9, 0, 0, 0, 0, i);
    let mut ports = Vec::new();
    for i in 1..=2u8 {
        // No duplicate address detection: the address is usable at once.
        let mut sysctl = netdev::command_in(&names[i as usize], "sysctl").unwrap();
        sysctl.args(["-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]);
        assert!(sysctl.status().await.unwrap().success());
        let vm = Vm {
            ns: names[i as usize].clone(),
            port: format!("f6{i}00000-000{i}-4000-8000-00000000000{i}"),
            mac: [0xfa, 0x16, 0x3e, 0, 6, i],
            ip: Ipv4Addr::new(10, 251, 6, i),
            groups: vec![WEB.to_string()],
            port_security: true,
        };
        let mut p = vm.details(&host);
        p.fixed_ips.push(FixedIp { subnet_id: "subnet6".into(), ip_address: v6(i.into()).to_string() });
        ports.push((vm, p));
    }
    let rules = |extra: &[SecurityGroupRule]| {
        let mut rules = vec![
            rule_for("IPv6", "egress", None, None, None),
            rule_for("IPv6", "ingress", Some("ipv6-icmp"), None, None),
            rule_for("IPv6", "ingress", Some("tcp"), Some(80), None),
            rule_for("IPv6", "ingress", Some("tcp"), Some(9000), Some(WEB)),
        ];
        rules.extend_from_slice(extra);
        let members = MemberIps { ipv4: Vec::new(), ipv6: vec![v6(1).to_string(), v6(2).to_string()] };
        SecurityGroupInfo {
            security_groups: BTreeMap::from([(WEB.to_string(), rules)]),
            sg_member_ips: BTreeMap::from([(WEB.to_string(), members)]),
        }
    };

    let config =
        LinuxBridgeConfig { interface_mappings: Vec::new(), enable_vxlan: false, local_ip: None, l2_population: false };
    let datapath = LinuxBridge::in_namespace(config, &host).await.unwrap();
    let firewall = Nftables::new(Some(host.clone())).await.unwrap();
    let details: Vec<DeviceDetails> = ports.iter().map(|(_, p)| p.clone()).collect();
    firewall.sync(&details, &rules(&[])).await.unwrap();
    for (i, (vm, p)) in ports.iter().enumerate() {
        plug(&host, &vm.ns, &vm.port, vm.mac, vm.ip, 1500).await;
        let nl = Netlink::in_namespace(&vm.ns).await.unwrap();
        let eth = nl.link("fsat-eth0").await.unwrap().unwrap();
        nl.add_address(eth.index, IpAddr::V6(v6(i as u16 + 1)), 64).await.unwrap();
        assert_eq!(datapath.wire(p).await.unwrap(), Wiring::Wired);
    }
    let mut servers = Vec::new();
    for port in [80, 22, 9000] {
        let mut cmd = netdev::command_in(&ports[0].0.ns, "busybox").unwrap();
        cmd.args(["httpd", "-f", "-p", &port.to_string(), "-h", "/tmp"]).kill_on_drop(true);
        servers.push(cmd.spawn().unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (vm1, vm2) = (&ports[0].0, &ports[1].0);

    assert!(pings(&vm2.ns, v6(1), None).await, "ICMPv6 (and neighbour discovery) is allowed in");
    assert!(fetches(&vm2.ns, v6(1), 80).await, "tcp/80 over IPv6 is allowed in");
    assert!(fetches(&vm2.ns, v6(1), 9000).await, "vm2 is an IPv6 member of web");
    assert!(!fetches(&vm2.ns, v6(1), 22).await, "tcp/22 over IPv6 has no rule");
    assert!(!fetches(&vm2.ns, vm1.ip, 80).await, "IPv4 has no ingress rule here");
    firewall.update(&details, &rules(&[rule_for("IPv6", "ingress", Some("tcp"), Some(22), None)])).await.unwrap();
    assert!(fetches(&vm2.ns, v6(1), 22).await, "the new IPv6 tcp/22 rule is not enforced");
    firewall.update(&details, &rules(&[])).await.unwrap();
    assert!(!fetches(&vm2.ns, v6(1), 22).await, "tcp/22 still open after its rule went");

    // A spoofed IPv6 source from vm1 is dropped; its own address works.
    let nl = Netlink::in_namespace(&vm1.ns).await.unwrap();
    let eth = nl.link("fsat-eth0").await.unwrap().unwrap();
    let spoofed = v6(0x99);
    nl.add_address(eth.index, IpAddr::V6(spoofed), 64).await.unwrap();
    assert!(!pings(&vm1.ns, v6(2), Some(spoofed.into())).await, "a spoofed IPv6 source got through");
    assert!(pings(&vm1.ns, v6(2), Some(v6(1).into())).await, "vm1's own IPv6 address is refused");

    drop(servers);
    for ns in &names {
        delete_namespace(ns).await.unwrap();
    }
}
