//! `ferrostack bench datapath --cloud clouds.yaml`: the Linux bridge
//! datapath of a running netns cloud (`scripts/cloud up --hosts 2
//! --compute-driver netns`), measured by traffic and through the API:
//! - TCP throughput (iperf3) and ping latency between two instances on two
//!   hosts over VXLAN, wired by the agents and filtered by their firewalls,
//!   next to a hand-built veth + bridge + VXLAN path of the same shape in the
//!   same run (namespaces `fsbench-*`, no agent, no firewall);
//! - wiring latency: ports bound one at a time to a host whose taps exist,
//!   from the bind request to the port shown ACTIVE; then many ports bound
//!   at once on one host;
//! - security group update to enforcement: from a rule's create (or delete)
//!   request to the first TCP connection it lets through (or refuses).
//!
//! Needs root, iperf3 and busybox. Everything it makes — servers, ports,
//! networks, the group, the taps, the hand-built namespaces — goes at the
//! end, also when it fails.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use netdev::{command_in, create_namespace, Netlink};
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The netns cloud's clouds.yaml.
    #[arg(long)]
    cloud: PathBuf,
    /// Seconds of TCP throughput on each path.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Throughput runs on each path, in pairs with the hand-built path (the
    /// median of the pairs' ratios counts).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Ports bound one after another for the wiring latency.
    #[arg(long, default_value_t = 200)]
    ports: usize,
    /// Ports bound all at once on one host.
    #[arg(long, default_value_t = 1000)]
    many: usize,
    /// Rule creations (and as many deletions) timed to enforcement.
    #[arg(long, default_value_t = 20)]
    sg_updates: usize,
    /// The two hosts (their network namespaces, as scripts/cloud names them).
    #[arg(long, default_value = "host-1")]
    host_a: String,
    #[arg(long, default_value = "host-2")]
    host_b: String,
}

/// What the run made, removed however it ends.
#[derive(Default)]
struct Made {
    namespaces: Vec<String>,
    /// (host namespace, tap) pairs made to stand in for hypervisors' taps.
    taps: Vec<(String, String)>,
}

impl Drop for Made {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            if let Ok(out) = std::process::Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = std::process::Command::new("kill").arg(pid).status();
                }
            }
            let _ = std::process::Command::new("ip").args(["netns", "del", ns]).status();
        }
        for (host, tap) in &self.taps {
            let _ = std::process::Command::new("ip").args(["-n", host, "link", "del", tap]).status();
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    for tool in ["iperf3", "busybox"] {
        if std::process::Command::new(tool).arg("--help").output().is_err() {
            bail!("bench datapath needs {tool} (apt-get install {tool})");
        }
    }
    let c = Arc::new(Client::from_clouds_yaml(&args.cloud).await?);
    c.lift_quotas().await?;
    let mut made = Made::default();
    let mut cleanup = Cleanup::default();
    let result = measure(&args, &c, &mut made, &mut cleanup).await;
    cleanup.run(&c).await;
    drop(made);
    let out = result?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// What the API made, deleted at the end in reverse.
#[derive(Default)]
pub(super) struct Cleanup {
    pub(super) urls: Vec<String>,
}

impl Cleanup {
    pub(super) async fn run(&mut self, c: &Client) {
        while let Some(url) = self.urls.pop() {
            if let Err(e) = c.call(Method::DELETE, url.clone(), None).await {
                if !e.to_string().contains("404") {
                    eprintln!("cleanup: {e}");
                }
            }
            if url.contains("/servers/") {
                for _ in 0..600 {
                    if c.call(Method::GET, url.clone(), None).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn measure(args: &Args, c: &Arc<Client>, made: &mut Made, cleanup: &mut Cleanup) -> anyhow::Result<Value> {
    let throughput = throughput(args, c, made, cleanup).await?;
    let wiring = wiring(args, c, made, cleanup).await?;
    Ok(json!({"benchmark": "datapath", "mechanism": "linuxbridge", "throughput": throughput, "wiring": wiring.0,
        "security_groups": wiring.1}))
}

pub(super) async fn network(c: &Client, cleanup: &mut Cleanup, name: &str, cidr: &str) -> anyhow::Result<String> {
    let body = json!({"network": {"name": name, "provider:network_type": "vxlan"}});
    let net = c.call(Method::POST, format!("{}/v2.0/networks", c.network), Some(body)).await?;
    let id = net["network"]["id"].as_str().context("network id")?.to_string();
    cleanup.urls.push(format!("{}/v2.0/networks/{id}", c.network));
    let subnet = json!({"subnet": {"network_id": id, "cidr": cidr, "ip_version": 4, "name": name}});
    c.call(Method::POST, format!("{}/v2.0/subnets", c.network), Some(subnet)).await?;
    Ok(id)
}

/// Boots a server on `host` and waits until it is ACTIVE.
async fn boot(c: &Client, cleanup: &mut Cleanup, name: &str, host: &str, network: &str) -> anyhow::Result<Value> {
    let (image, flavor) = c.blank_image_and_nano_flavor().await?;
    let body = json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor,
        "networks": [{"uuid": network}], "availability_zone": format!("nova:{host}")}});
    let server = c.call(Method::POST, format!("{}/servers", c.compute), Some(body)).await?;
    let id = server["server"]["id"].as_str().context("server id")?.to_string();
    let url = format!("{}/servers/{id}", c.compute);
    cleanup.urls.push(url.clone());
    for _ in 0..1200 {
        let s = c.call(Method::GET, url.clone(), None).await?;
        match s["server"]["status"].as_str() {
            Some("ACTIVE") => return Ok(s["server"].clone()),
            Some("BUILD") => tokio::time::sleep(Duration::from_millis(100)).await,
            other => bail!("{name} went {other:?}: {}", s["server"]["fault"]),
        }
    }
    bail!("{name} did not become ACTIVE")
}

fn first_address(server: &Value) -> anyhow::Result<String> {
    let addresses = server["addresses"].as_object().context("addresses")?;
    let addr = addresses.values().next().and_then(|a| a[0]["addr"].as_str()).context("an address")?;
    Ok(addr.to_string())
}

fn instance_ns(server: &Value) -> anyhow::Result<String> {
    Ok(server["OS-EXT-SRV-ATTR:instance_name"].as_str().context("instance_name")?.to_string())
}

/// iperf3 from `client` to `server` (namespaces) at `ip`: bits per second received.
async fn iperf(client: &str, server: &str, ip: &str, seconds: u64) -> anyhow::Result<f64> {
    let mut listener = command_in(server, "iperf3")?;
    listener.args(["-s", "-1", "-p", "5201"]).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
    let mut listener = listener.spawn().context("iperf3 -s")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cmd = command_in(client, "iperf3")?;
    let out = cmd.args(["-c", ip, "-p", "5201", "-t", &seconds.to_string(), "-J"]).output().await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), listener.wait()).await;
    let report: Value = serde_json::from_slice(&out.stdout).context("iperf3's JSON")?;
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .with_context(|| format!("iperf3 from {client} to {ip}: {}", report["error"]))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// busybox ping's min/avg/max round trip, in milliseconds.
async fn ping(from: &str, ip: &str) -> anyhow::Result<Value> {
    let mut cmd = command_in(from, "busybox")?;
    let out = cmd.args(["ping", "-q", "-c", "50", "-i", "0.05", ip]).output().await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("round-trip")).with_context(|| format!("no answer: {text}"))?;
    let numbers: Vec<f64> = line
        .split('=')
        .nth(1)
        .unwrap_or("")
        .trim()
        .trim_end_matches(" ms")
        .split('/')
        .filter_map(|n| n.parse().ok())
        .collect();
    match numbers[..] {
        [min, avg, max] => Ok(json!({"min": min, "avg": avg, "max": max})),
        _ => bail!("cannot read {line:?}"),
    }
}

/// The same shape as two netns hosts of scripts/cloud, built by hand: an
/// underlay bridge joining two host namespaces, each with a bridge, a VXLAN
/// device (static forwarding entries and ARP answers, as l2population
/// leaves them) and an instance on a veth with MTU 1450.
async fn hand_built(made: &mut Made) -> anyhow::Result<(String, String, String)> {
    let names = ["fsbench-u", "fsbench-h1", "fsbench-h2", "fsbench-vm1", "fsbench-vm2"];
    for n in names {
        made.namespaces.push(n.to_string());
        create_namespace(n).await?;
    }
    let u = Netlink::in_namespace(names[0]).await?;
    let under = u.ensure_bridge("br-u").await?;
    let mac = |i: u8| [0x02, 0, 0, 0, 0xfe, i];
    let vm_ip = |i: u8| Ipv4Addr::new(10, 254, 0, i);
    let host_ip = |i: u8| Ipv4Addr::new(10, 253, 0, i);
    for i in 1..=2u8 {
        let (host, vm) = (names[i as usize], names[i as usize + 2]);
        let end = u.ensure_veth(&format!("u{i}"), &format!("e{i}")).await?;
        u.enslave(end, under).await?;
        let e = u.link(&format!("e{i}")).await?.context("veth end")?;
        u.move_to_namespace(e.index, host).await?;
        let h = Netlink::in_namespace(host).await?;
        let e = h.link(&format!("e{i}")).await?.context("veth end")?;
        h.add_address(e.index, host_ip(i).into(), 24).await?;
        h.set_up(e.index).await?;
        let bridge = h.ensure_bridge("brq-bench").await?;
        let vx = h.ensure_vxlan("vxlan-bench", 4242, host_ip(i), Some(e.index), 4789, true).await?;
        h.enslave(vx, bridge).await?;
        let other = 3 - i;
        h.add_fdb(vx, [0; 6], host_ip(other)).await?;
        h.add_fdb(vx, mac(other), host_ip(other)).await?;
        h.set_neighbour(vx, vm_ip(other).into(), mac(other)).await?;
        let tap = h.ensure_veth("tapbench", "ethbench").await?;
        h.enslave(tap, bridge).await?;
        let inner = h.link("ethbench").await?.context("veth end")?;
        h.move_to_namespace(inner.index, vm).await?;
        let v = Netlink::in_namespace(vm).await?;
        let eth = v.link("ethbench").await?.context("veth end")?;
        v.set_mac(eth.index, mac(i)).await?;
        v.set_mtu(eth.index, 1450).await?;
        v.add_address(eth.index, vm_ip(i).into(), 24).await?;
        v.set_up(eth.index).await?;
    }
    Ok((names[3].to_string(), names[4].to_string(), vm_ip(2).to_string()))
}

/// Loads (or, with `on` false, removes) an inet table that tracks every
/// bridged packet and accepts it: the least a stateful filter costs. The
/// VXLAN underlay is left untracked, as the agents' firewall leaves it.
async fn stateful_accept_all(host: &str, on: bool) -> anyhow::Result<()> {
    let mut sysctl = command_in(host, "sysctl")?;
    let switch = format!("net.bridge.bridge-nf-call-iptables={}", u8::from(on));
    sysctl.args(["-q", "-w", &switch]).status().await?;
    let script = if on {
        format!(
            "table inet fsbench {{\n\
             chain prerouting {{ type filter hook prerouting priority raw; policy accept; udp dport {port} notrack; }}\n\
             chain output {{ type filter hook output priority raw; policy accept; udp dport {port} notrack; }}\n\
             chain forward {{ type filter hook forward priority 0; policy accept;\n\
             ct state established,related accept\n ct state invalid drop\n accept\n }}\n}}\n",
            port = network_rpc::VXLAN_UDP_PORT
        )
    } else {
        "delete table inet fsbench\n".to_string()
    };
    let out = command_in(host, "nft")?.arg(script).output().await?;
    if !out.status.success() {
        bail!("nft in {host}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

async fn throughput(args: &Args, c: &Client, made: &mut Made, cleanup: &mut Cleanup) -> anyhow::Result<Value> {
    let net = network(c, cleanup, "bench-datapath", "10.93.0.0/24").await?;
    let s1 = boot(c, cleanup, "bench-dp-1", &args.host_a, &net).await?;
    let s2 = boot(c, cleanup, "bench-dp-2", &args.host_b, &net).await?;
    let (ns1, ns2, ip2) = (instance_ns(&s1)?, instance_ns(&s2)?, first_address(&s2)?);
    let (b1, b2, bip2) = hand_built(made).await?;
    let agents_path = (ns1.as_str(), ns2.as_str(), ip2.as_str());
    let hand_path = (b1.as_str(), b2.as_str(), bip2.as_str());
    let agents = paired(args, agents_path, hand_path).await?;
    let agents_ping = ping(&ns1, &ip2).await?;
    let hand_ping = ping(&b1, &bip2).await?;
    // The same default-group path next to the hand-built one with the least
    // a stateful filter costs.
    let hosts = ["fsbench-h1", "fsbench-h2"];
    for host in hosts {
        stateful_accept_all(host, true).await?;
    }
    let stateful = paired(args, agents_path, hand_path).await?;
    for host in hosts {
        stateful_accept_all(host, false).await?;
    }
    // The same two instances with port security off: the wiring alone.
    for server in [&s1, &s2] {
        let id = server["id"].as_str().context("server id")?;
        let ports = c.call(Method::GET, format!("{}/v2.0/ports?device_id={id}", c.network), None).await?;
        let port = ports["ports"][0]["id"].as_str().context("server port")?;
        let open = json!({"port": {"port_security_enabled": false, "security_groups": []}});
        c.call(Method::PUT, format!("{}/v2.0/ports/{port}", c.network), Some(open)).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let open = paired(args, agents_path, hand_path).await?;
    let open_ping = ping(&ns1, &ip2).await?;
    let hand_bps = median(agents.hand.iter().chain(&open.hand).copied().collect());
    let agents_bps = median(agents.path.iter().chain(&stateful.path).copied().collect());
    Ok(json!({
        "seconds": args.seconds,
        "rounds": args.rounds,
        "agents": {"gbit_per_s": agents_bps / 1e9, "ping_ms": agents_ping,
            "path": "netns instances on two hosts, VXLAN with l2population, nftables security groups (default group)"},
        "agents_port_security_off": {"gbit_per_s": median(open.path.clone()) / 1e9, "ping_ms": open_ping,
            "path": "the same instances and wiring, no filter"},
        "hand_built": {"gbit_per_s": hand_bps / 1e9, "ping_ms": hand_ping,
            "path": "the same shape by hand: veth, bridge, VXLAN with static entries, no firewall"},
        "hand_built_conntrack": {"gbit_per_s": median(stateful.hand.clone()) / 1e9,
            "path": "the hand-built path with an accept-all stateful filter (conntrack through br_netfilter, underlay untracked)"},
        "ratio": agents.ratio(),
        "ratio_per_round": agents.ratios(),
        "ratio_to_hand_built_conntrack": stateful.ratio(),
        "ratio_to_hand_built_conntrack_per_round": stateful.ratios(),
        "ratio_port_security_off": open.ratio(),
        "ratio_port_security_off_per_round": open.ratios(),
    }))
}

/// Throughput of a path and of the hand-built one, measured in pairs.
struct Pairs {
    path: Vec<f64>,
    hand: Vec<f64>,
}

impl Pairs {
    /// Each round's path over its own hand-built run.
    fn ratios(&self) -> Vec<f64> {
        self.path.iter().zip(&self.hand).map(|(p, h)| p / h).collect()
    }

    /// The median of the rounds' ratios: each round compares runs made
    /// seconds apart, so a machine that drifts (a shared host's neighbours)
    /// moves both sides of a ratio together.
    fn ratio(&self) -> f64 {
        median(self.ratios())
    }
}

/// `rounds` pairs of runs, the path and the hand-built one back to back,
/// which goes first alternating from round to round.
async fn paired(args: &Args, path: (&str, &str, &str), hand: (&str, &str, &str)) -> anyhow::Result<Pairs> {
    let mut out = Pairs { path: Vec::new(), hand: Vec::new() };
    for round in 0..args.rounds {
        if round % 2 == 0 {
            out.path.push(iperf(path.0, path.1, path.2, args.seconds).await?);
            out.hand.push(iperf(hand.0, hand.1, hand.2, args.seconds).await?);
        } else {
            out.hand.push(iperf(hand.0, hand.1, hand.2, args.seconds).await?);
            out.path.push(iperf(path.0, path.1, path.2, args.seconds).await?);
        }
    }
    Ok(out)
}

/// Creates `n` ports on `network` (unbound), with a tap on `host` for each
/// (the hypervisor's part); returns their ids.
async fn ports_with_taps(
    c: &Client,
    made: &mut Made,
    cleanup: &mut Cleanup,
    host: &str,
    network: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let nl = Netlink::in_namespace(host).await?;
    let mut ids = Vec::new();
    while ids.len() < n {
        let batch = (n - ids.len()).min(100);
        let ports: Vec<Value> =
            (0..batch).map(|_| json!({"network_id": network, "device_owner": "compute:bench"})).collect();
        let made_ports =
            c.call(Method::POST, format!("{}/v2.0/ports", c.network), Some(json!({"ports": ports}))).await?;
        for p in made_ports["ports"].as_array().context("ports")? {
            let id = p["id"].as_str().context("port id")?.to_string();
            cleanup.urls.push(format!("{}/v2.0/ports/{id}", c.network));
            let tap = network_rpc::tap_name(&id);
            let peer = format!("fsw{}", &id[..8]);
            nl.ensure_veth(&tap, &peer).await?;
            made.taps.push((host.to_string(), tap.clone()));
            ids.push(id);
        }
    }
    Ok(ids)
}

async fn bind(c: &Client, port: &str, host: &str) -> anyhow::Result<()> {
    let body = json!({"port": {"binding:host_id": host, "device_id": format!("bench-{}", &port[..8])}});
    c.call(Method::PUT, format!("{}/v2.0/ports/{port}", c.network), Some(body)).await?;
    Ok(())
}

async fn status(c: &Client, port: &str) -> anyhow::Result<String> {
    let p = c.call(Method::GET, format!("{}/v2.0/ports/{port}", c.network), None).await?;
    Ok(p["port"]["status"].as_str().unwrap_or_default().to_string())
}

async fn wiring(
    args: &Args,
    c: &Arc<Client>,
    made: &mut Made,
    cleanup: &mut Cleanup,
) -> anyhow::Result<(Value, Value)> {
    // Rule updates first, on a quiet cloud (a thousand new ports keep the
    // agents busy refreshing the default group's members for a while).
    let sg = security_group_updates(args, c, cleanup).await?;
    let host = args.host_a.clone();
    // One at a time: bind, then poll until ACTIVE.
    let net = network(c, cleanup, "bench-wiring", "10.94.0.0/22").await?;
    let ports = ports_with_taps(c, made, cleanup, &host, &net, args.ports).await?;
    let mut one_by_one = Vec::new();
    for p in &ports {
        let started = Instant::now();
        bind(c, p, &host).await?;
        while status(c, p).await? != "ACTIVE" {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("port {p} not ACTIVE 30 s after its bind");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        one_by_one.push(started.elapsed().as_micros() as u64);
    }

    // All at once on one host (another network: a Linux bridge holds 1,024 ports).
    let net = network(c, cleanup, "bench-many", "10.95.0.0/20").await?;
    let many = ports_with_taps(c, made, cleanup, &host, &net, args.many).await?;
    let started = Instant::now();
    let many = Arc::new(many);
    super::run_concurrently(many.len(), 8, {
        let (c, many, host) = (c.clone(), many.clone(), host.clone());
        move |i| {
            let (c, port, host) = (c.clone(), many[i].clone(), host.clone());
            async move {
                bind(&c, &port, &host).await?;
                Ok(String::new())
            }
        }
    })
    .await?;
    let bound_secs = started.elapsed().as_secs_f64();
    loop {
        let url = format!("{}/v2.0/ports?network_id={net}&status=ACTIVE&fields=id", c.network);
        let active = c.call(Method::GET, url, None).await?["ports"].as_array().map_or(0, Vec::len);
        if active >= many.len() {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("{active} of {} ports ACTIVE after 600 s", many.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let many_secs = started.elapsed().as_secs_f64();
    let nl = Netlink::in_namespace(&host).await?;
    let bridge = nl.link(&network_rpc::bridge_name(&net)).await?.context("the network's bridge")?;
    let on_bridge =
        nl.links().await?.iter().filter(|l| l.controller == Some(bridge.index) && l.name.starts_with("tap")).count();

    let wiring = json!({
        "one_by_one": {"ports": ports.len(), "bind_to_active_ms": super::percentiles(one_by_one)},
        "all_at_once": {"ports": many.len(), "host": host, "bind_requests_s": bound_secs, "all_active_s": many_secs,
            "ports_per_s": many.len() as f64 / many_secs, "taps_on_bridge": on_bridge},
    });
    Ok((wiring, sg))
}

/// Whether a TCP connection to `addr` from inside `ns` opens within 20 ms.
async fn connects(ns: &str, addr: SocketAddr) -> anyhow::Result<bool> {
    Ok(netdev::run_in(ns, move || TcpStream::connect_timeout(&addr, Duration::from_millis(20)).is_ok()).await?)
}

/// Polls until a connection's outcome is `open`; the time since `started`.
async fn until_connects(ns: &str, addr: SocketAddr, open: bool, started: Instant) -> anyhow::Result<u64> {
    loop {
        if connects(ns, addr).await? == open {
            return Ok(started.elapsed().as_micros() as u64);
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("tcp to {addr} still {} 30 s after the rule change", if open { "refused" } else { "open" });
        }
    }
}

async fn security_group_updates(args: &Args, c: &Client, cleanup: &mut Cleanup) -> anyhow::Result<Value> {
    let sg = c
        .call(
            Method::POST,
            format!("{}/v2.0/security-groups", c.network),
            Some(json!({"security_group": {"name": "bench-sg"}})),
        )
        .await?;
    let sg = sg["security_group"]["id"].as_str().context("group id")?.to_string();
    cleanup.urls.push(format!("{}/v2.0/security-groups/{sg}", c.network));
    let net = network(c, cleanup, "bench-sg", "10.96.0.0/24").await?;
    let client = boot(c, cleanup, "bench-sg-client", &args.host_a, &net).await?;
    let server = boot(c, cleanup, "bench-sg-server", &args.host_b, &net).await?;
    // The server's port in the group alone: nothing gets in until a rule says so.
    let sid = server["id"].as_str().context("server id")?;
    let ports = c.call(Method::GET, format!("{}/v2.0/ports?device_id={sid}", c.network), None).await?;
    let port = ports["ports"][0]["id"].as_str().context("server port")?.to_string();
    let body = json!({"port": {"security_groups": [sg]}});
    c.call(Method::PUT, format!("{}/v2.0/ports/{port}", c.network), Some(body)).await?;
    let addr: SocketAddr = format!("{}:80", first_address(&server)?).parse()?;
    let ns = instance_ns(&client)?;
    until_connects(&ns, addr, false, Instant::now()).await?;
    let (mut opened, mut closed) = (Vec::new(), Vec::new());
    for _ in 0..args.sg_updates {
        let rule = json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress",
            "protocol": "tcp", "port_range_min": 80, "port_range_max": 80}});
        let started = Instant::now();
        let rule = c.call(Method::POST, format!("{}/v2.0/security-group-rules", c.network), Some(rule)).await?;
        opened.push(until_connects(&ns, addr, true, started).await?);
        let id = rule["security_group_rule"]["id"].as_str().context("rule id")?;
        let started = Instant::now();
        c.call(Method::DELETE, format!("{}/v2.0/security-group-rules/{id}", c.network), None).await?;
        closed.push(until_connects(&ns, addr, false, started).await?);
    }
    Ok(json!({
        "updates": args.sg_updates,
        "rule_created_to_enforced_ms": super::percentiles(opened),
        "rule_deleted_to_enforced_ms": super::percentiles(closed),
        "probe": "a new TCP connection from an instance on the other host every ~20 ms",
    }))
}

#[cfg(test)]
mod tests {
    use super::Pairs;

    #[test]
    fn the_ratio_is_the_median_of_the_rounds_ratios() {
        // The machine slows down from round to round; each round's ratio
        // compares two runs made together.
        let pairs = Pairs { path: vec![9.0, 4.6, 2.7], hand: vec![10.0, 5.0, 3.0] };
        let ratios = pairs.ratios();
        assert!((ratios[1] - 0.92).abs() < 1e-9 && (ratios[2] - 0.9).abs() < 1e-9);
        assert!((pairs.ratio() - 0.9).abs() < 1e-9, "{}", pairs.ratio());
    }
}
