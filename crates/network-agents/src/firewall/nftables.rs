//! `firewall_driver = iptables_hybrid`: Neutron's stateful per-port
//! filter, built with nftables on the host's bridges.
//!
//! A bridge-family table cannot track connections on this kernel, and an
//! inet table cannot tell which bridge port a bridged packet crosses, so the
//! work is split the way br_netfilter allows:
//! - `bridge neutron_sg` sees every frame between bridge ports. It stamps
//!   the packet's mark with the number of the filtered port it leaves by
//!   (high 16 bits, from the `ingress_marks` map, 0 for any other port)
//!   and, through the `egress_chains` verdict map, runs the sending port's
//!   anti-spoofing chain, which also stamps that port's number (low 16
//!   bits).
//! - `inet neutron_sg` sees the same packet afterwards (br_netfilter hands
//!   bridged IP to the inet hooks on bridges with `nf_call_iptables` on,
//!   which the datapath sets on bridges with a filtered port). Its
//!   forward chain accepts what conntrack knows as established or related
//!   first, whatever the ports (both ports' chains would let it through,
//!   and most packets are such), and otherwise jumps, by mark, to the
//!   sender's egress chain and then the receiver's ingress chain, which hold
//!   the security group rules. Either way it clears the mark: a marked
//!   packet would make the VXLAN device look its route up again for every
//!   packet instead of using its cached one. Its prerouting chain puts each
//!   network in its own conntrack zone (keyed by the network's bridge), so
//!   networks with the same addresses never share connections. The VXLAN
//!   underlay is not tracked (the encapsulated packets, in and out, which
//!   the table's conntrack hooks would otherwise track once per packet on
//!   each host).
//!
//! Every packet of a filtered network crosses these chains on both hosts,
//! so they are kept short: one lookup per hook where one will do, and no
//! chain on the bridge's prerouting hook at all.
//!
//! Each change is one `nft -f` transaction: a port's chains are flushed and
//! refilled atomically, the maps change only when a port comes or goes, and
//! a remote group's members are a named set refreshed on its own. Resync
//! replaces both tables in one transaction. Established connections live in
//! conntrack, not in the rules, so they survive every change that still
//! allows them.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::Stdio;

use async_trait::async_trait;
use ipnet::IpNet;
use network_rpc::{bridge_name, tap_name, DeviceDetails, SecurityGroupInfo, SecurityGroupRule, VXLAN_UDP_PORT};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{is_filtered, Firewall, FirewallError, FirewallResult};

/// Both tables' name.
pub const TABLE: &str = "neutron_sg";
/// Port numbers fill 16 bits of the mark each way.
const MAX_PORTS: u32 = 0xffff;

/// The host's filter: for which ports, under which numbers.
pub struct Nftables {
    /// The network namespace it filters in (`None`: this process's).
    namespace: Option<String>,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Default)]
struct State {
    /// Filtered port → its number, network and MAC (as in the maps).
    ports: HashMap<String, (u32, String, String)>,
    /// A network's bridge → the network's conntrack zone. Zones outlive a
    /// resync and a restart of the agent (read back from the table), since
    /// the connections tracked in them must still be found.
    zones: HashMap<String, u32>,
}

impl State {
    fn free_number(&self, taken: impl Iterator<Item = u32>) -> FirewallResult<u32> {
        let used: BTreeSet<u32> = taken.collect();
        (1..=MAX_PORTS).find(|n| !used.contains(n)).ok_or(FirewallError::Full(MAX_PORTS as usize))
    }

    /// The port's number, and whether it is new (its map entries must be
    /// made).
    fn number_for(&mut self, port: &DeviceDetails) -> FirewallResult<(u32, bool)> {
        if let Some((n, network, mac)) = self.ports.get(&port.device) {
            if *network == port.network_id && *mac == port.mac_address.to_ascii_lowercase() {
                return Ok((*n, false));
            }
        }
        let n = self.free_number(self.ports.values().map(|(n, _, _)| *n))?;
        self.ports.insert(port.device.clone(), (n, port.network_id.clone(), port.mac_address.to_ascii_lowercase()));
        Ok((n, true))
    }

    /// The network's zone, and whether it is new.
    fn zone_for(&mut self, network: &str) -> FirewallResult<(u32, bool)> {
        let bridge = bridge_name(network);
        if let Some(z) = self.zones.get(&bridge) {
            return Ok((*z, false));
        }
        let z = self.free_number(self.zones.values().copied())?;
        self.zones.insert(bridge, z);
        Ok((z, true))
    }
}

impl Nftables {
    /// The filter of this process's namespace (`None`) or of another; makes
    /// the tables if they are not there (and keeps them if they are, so a
    /// restarted agent filters as before until it resyncs).
    pub async fn new(namespace: Option<String>) -> FirewallResult<Nftables> {
        let fw = Nftables { namespace, state: Mutex::new(State::default()) };
        fw.enable_bridge_netfilter().await?;
        let tables = fw.nft_output(&["list", "tables"]).await?;
        if tables.lines().any(|l| l.trim() == format!("table inet {TABLE}")) {
            let zones = fw.nft_output(&["list", "map", "inet", TABLE, "zones"]).await?;
            fw.state.lock().await.zones = parse_zones(&zones);
        } else {
            fw.run(&base()).await?;
        }
        Ok(fw)
    }

    /// Bridged packets reach the inet hooks through br_netfilter. Its
    /// namespace-wide switch (on by default) would send every bridge's
    /// traffic there; it is turned off, and the datapath turns it on per
    /// bridge for bridges with filtered ports (`nf_call_iptables`), so
    /// unfiltered networks forward at full speed. Loading the sysctls also
    /// proves br_netfilter is there.
    async fn enable_bridge_netfilter(&self) -> FirewallResult<()> {
        let mut cmd = self.command("sysctl")?;
        cmd.args(["-q", "-w", "net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0"]);
        let out = cmd.output().await.map_err(|e| FirewallError::Spawn(format!("sysctl: {e}")))?;
        if !out.status.success() {
            return Err(FirewallError::Nft(format!(
                "cannot set bridge-nf-call-iptables (is br_netfilter there?): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    fn command(&self, program: &str) -> FirewallResult<tokio::process::Command> {
        Ok(match &self.namespace {
            Some(ns) => netdev::command_in(ns, program)?,
            None => tokio::process::Command::new(program),
        })
    }

    async fn nft_output(&self, args: &[&str]) -> FirewallResult<String> {
        let mut cmd = self.command("nft")?;
        let out = cmd.args(args).output().await.map_err(|e| FirewallError::Spawn(e.to_string()))?;
        if !out.status.success() {
            return Err(FirewallError::Nft(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Applies a script as one transaction: all of it or none.
    async fn run(&self, script: &str) -> FirewallResult<()> {
        let mut cmd = self.command("nft")?;
        cmd.args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| FirewallError::Spawn(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).await.map_err(|e| FirewallError::Spawn(e.to_string()))?;
        }
        let out = child.wait_with_output().await.map_err(|e| FirewallError::Spawn(e.to_string()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            tracing::debug!(script, "nft rejected the script");
            return Err(FirewallError::Nft(err.lines().take(6).collect::<Vec<_>>().join(" | ")));
        }
        Ok(())
    }
}

#[async_trait]
impl Firewall for Nftables {
    async fn sync(&self, ports: &[DeviceDetails], groups: &SecurityGroupInfo) -> FirewallResult<()> {
        let mut state = self.state.lock().await;
        // The zones of networks still here keep their numbers.
        let bridges: BTreeSet<String> =
            ports.iter().filter(|p| is_filtered(p)).map(|p| bridge_name(&p.network_id)).collect();
        let zones = state.zones.iter().filter(|(b, _)| bridges.contains(*b)).map(|(b, z)| (b.clone(), *z)).collect();
        let mut next = State { zones, ..State::default() };
        let mut script = format!(
            "table bridge {TABLE}\ndelete table bridge {TABLE}\ntable inet {TABLE}\ndelete table inet {TABLE}\n{}",
            base()
        );
        let filtered: Vec<&DeviceDetails> = ports.iter().filter(|p| is_filtered(p)).collect();
        script.push_str(&member_sets(&filtered, groups));
        for port in filtered {
            let (n, _) = next.number_for(port)?;
            let (zone, _) = next.zone_for(&port.network_id)?;
            script.push_str(&port_chains(port, n, groups));
            script.push_str(&port_elements(port, n));
            let _ =
                writeln!(script, "add element inet {TABLE} zones {{ \"{}\" : {zone} }}", bridge_name(&port.network_id));
        }
        self.run(&script).await?;
        *state = next;
        Ok(())
    }

    async fn update(&self, ports: &[DeviceDetails], groups: &SecurityGroupInfo) -> FirewallResult<()> {
        let mut state = self.state.lock().await;
        let mut next = state.clone();
        let filtered: Vec<&DeviceDetails> = ports.iter().filter(|p| is_filtered(p)).collect();
        let mut script = member_sets(&filtered, groups);
        for port in ports {
            if !is_filtered(port) {
                // Port security off (or a network port now): all passes.
                script.push_str(&release(&mut next, &port.device));
                continue;
            }
            // Moved to another network, or a new MAC: its entries are made anew.
            let moved = |(_, net, mac): &(u32, String, String)| {
                *net != port.network_id || *mac != port.mac_address.to_ascii_lowercase()
            };
            if next.ports.get(&port.device).is_some_and(moved) {
                script.push_str(&release(&mut next, &port.device));
            }
            let (n, new) = next.number_for(port)?;
            script.push_str(&port_chains(port, n, groups));
            if new {
                script.push_str(&port_elements(port, n));
            }
            let (zone, new_zone) = next.zone_for(&port.network_id)?;
            if new_zone {
                let _ = writeln!(
                    script,
                    "add element inet {TABLE} zones {{ \"{}\" : {zone} }}",
                    bridge_name(&port.network_id)
                );
            }
        }
        if script.is_empty() {
            return Ok(());
        }
        self.run(&script).await?;
        *state = next;
        Ok(())
    }

    async fn remove(&self, ports: &[String]) -> FirewallResult<()> {
        let mut state = self.state.lock().await;
        let mut next = state.clone();
        let script: String = ports.iter().map(|p| release(&mut next, p)).collect();
        if script.is_empty() {
            return Ok(());
        }
        self.run(&script).await?;
        *state = next;
        Ok(())
    }
}

/// The zones map as `nft list map` prints it: `"brq…" : 7` pairs.
fn parse_zones(listing: &str) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    let mut rest = listing;
    while let Some(open) = rest.find('"') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else { break };
        let name = &after[..close];
        let tail = after[close + 1..].trim_start();
        if let Some(number) = tail.strip_prefix(':') {
            let digits: String = number.trim_start().chars().take_while(char::is_ascii_digit).collect();
            if let Ok(z) = digits.parse() {
                out.insert(name.to_string(), z);
            }
        }
        rest = &after[close + 1..];
    }
    out
}

/// The tables, their maps and base chains, empty of ports.
fn base() -> String {
    let t = TABLE;
    format!(
        "add table bridge {t}
add map bridge {t} ingress_marks {{ type ifname : mark; }}
add element bridge {t} ingress_marks {{ * : 0x0 }}
add map bridge {t} egress_chains {{ type ifname : verdict; }}
add chain bridge {t} forward {{ type filter hook forward priority -10; policy accept; }}
add rule bridge {t} forward meta mark set oifname map @ingress_marks
add rule bridge {t} forward iifname vmap @egress_chains
add table inet {t}
add map inet {t} zones {{ typeof iifname : ct zone; }}
add map inet {t} egress {{ type mark : verdict; }}
add map inet {t} ingress {{ type mark : verdict; }}
add chain inet {t} prerouting {{ type filter hook prerouting priority raw; policy accept; }}
add rule inet {t} prerouting ct zone set iifname map @zones accept
add rule inet {t} prerouting udp dport {VXLAN_UDP_PORT} notrack
add chain inet {t} output {{ type filter hook output priority raw; policy accept; }}
add rule inet {t} output udp dport {VXLAN_UDP_PORT} notrack
add chain inet {t} forward {{ type filter hook forward priority filter; policy accept; }}
add rule inet {t} forward ct state established,related meta mark set 0 accept
add rule inet {t} forward meta mark and 0x0000ffff vmap @egress
add rule inet {t} forward meta mark and 0xffff0000 vmap @ingress
add rule inet {t} forward meta mark set 0
"
    )
}

/// A port's part of the chain names: the start of its id, as nft spells it.
fn chain_id(port: &str) -> String {
    port.chars().take(11).map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn set_name(group: &str, v6: bool) -> String {
    let id: String = group.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("members_{id}_{}", if v6 { "v6" } else { "v4" })
}

/// The named sets of the remote groups the ports' rules name: made if
/// missing, and refilled for the groups `groups` has members for.
fn member_sets(ports: &[&DeviceDetails], groups: &SecurityGroupInfo) -> String {
    let mut remote: BTreeSet<&str> = ports
        .iter()
        .flat_map(|p| p.security_groups.iter())
        .filter_map(|g| groups.security_groups.get(g))
        .flatten()
        .filter_map(|r| r.remote_group_id.as_deref())
        .collect();
    remote.extend(groups.sg_member_ips.keys().map(String::as_str));
    let mut s = String::new();
    for group in remote {
        for v6 in [false, true] {
            let name = set_name(group, v6);
            let kind = if v6 { "ipv6_addr" } else { "ipv4_addr" };
            let _ = writeln!(s, "add set inet {TABLE} {name} {{ type {kind}; flags interval; auto-merge; }}");
            let Some(members) = groups.sg_member_ips.get(group) else {
                continue;
            };
            let _ = writeln!(s, "flush set inet {TABLE} {name}");
            let addresses = if v6 { &members.ipv6 } else { &members.ipv4 };
            if let Some(list) = address_list(addresses.iter().map(String::as_str)) {
                let _ = writeln!(s, "add element inet {TABLE} {name} {list}");
            }
        }
    }
    s
}

/// `{ a, b/24 }` from addresses and prefixes, overlaps merged; `None` if
/// there are none.
fn address_list<'a>(addresses: impl Iterator<Item = &'a str>) -> Option<String> {
    let nets: Vec<IpNet> = addresses
        .filter_map(|a| a.parse::<IpNet>().ok().or_else(|| a.parse::<IpAddr>().ok().map(IpNet::from)))
        .map(|n| n.trunc())
        .collect();
    let merged = IpNet::aggregate(&nets);
    if merged.is_empty() {
        return None;
    }
    let items: Vec<String> = merged
        .iter()
        .map(|n| if n.prefix_len() == n.max_prefix_len() { n.addr().to_string() } else { n.to_string() })
        .collect();
    Some(format!("{{ {} }}", items.join(", ")))
}

/// The port's three chains, flushed and filled.
fn port_chains(port: &DeviceDetails, n: u32, groups: &SecurityGroupInfo) -> String {
    let id = chain_id(&port.device);
    let mut s = String::new();
    let mut chain = |family: &str, name: String, rules: Vec<String>| {
        let _ = writeln!(s, "add chain {family} {TABLE} {name}\nflush chain {family} {TABLE} {name}");
        for r in rules {
            let _ = writeln!(s, "add rule {family} {TABLE} {name} {r}");
        }
    };
    chain("bridge", format!("spoof_{id}"), spoof_rules(port, n));
    let rules: BTreeSet<&SecurityGroupRule> =
        port.security_groups.iter().filter_map(|g| groups.security_groups.get(g)).flatten().collect();
    let (ingress, egress): (Vec<&SecurityGroupRule>, Vec<&SecurityGroupRule>) =
        rules.into_iter().partition(|r| r.direction == "ingress");
    let mut ingress_rules = vec![
        "ct state invalid drop".to_string(),
        // DHCP answers, and what IPv6 needs from routers and neighbours.
        "meta nfproto ipv4 udp sport 67 udp dport 68 return".into(),
        "meta nfproto ipv6 icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query } return".into(),
        "meta nfproto ipv6 udp sport 547 udp dport 546 return".into(),
    ];
    ingress_rules.extend(ingress.iter().filter_map(|r| rule_text(r)));
    ingress_rules.push("drop".into());
    chain("inet", format!("ingress_{id}"), ingress_rules);
    let mut egress_rules = vec![
        "ct state invalid drop".to_string(),
        "meta nfproto ipv4 udp sport 68 udp dport 67 return".into(),
        "meta nfproto ipv6 icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report } return".into(),
        "meta nfproto ipv6 udp sport 546 udp dport 547 return".into(),
    ];
    egress_rules.extend(egress.iter().filter_map(|r| rule_text(r)));
    egress_rules.push("drop".into());
    chain("inet", format!("egress_{id}"), egress_rules);
    s
}

/// What the port may send as: its MAC and addresses (and its allowed address
/// pairs'); it may not answer as a DHCP server or an IPv6 router. The first
/// rule stamps the sender's number for the inet table.
fn spoof_rules(port: &DeviceDetails, n: u32) -> Vec<String> {
    let mut macs: BTreeSet<String> = BTreeSet::from([port.mac_address.to_ascii_lowercase()]);
    let mut addresses: Vec<String> = port.fixed_ips.iter().map(|f| f.ip_address.clone()).collect();
    for pair in &port.allowed_address_pairs {
        if let Some(ip) = pair.get("ip_address").and_then(|v| v.as_str()) {
            addresses.push(ip.to_string());
        }
        if let Some(mac) = pair.get("mac_address").and_then(|v| v.as_str()) {
            macs.insert(mac.to_ascii_lowercase());
        }
    }
    let v4: Vec<&str> = addresses.iter().map(String::as_str).filter(|a| !a.contains(':')).collect();
    let v6: Vec<&str> = addresses.iter().map(String::as_str).filter(|a| a.contains(':')).collect();
    let macs = format!("{{ {} }}", macs.into_iter().collect::<Vec<_>>().join(", "));
    // In the order that lets the common packet (IPv4 from the port's own
    // MAC and address) leave after three rules.
    let mut rules = vec![format!("meta mark set meta mark or {n:#x}"), format!("ether saddr != {macs} drop")];
    let v4_list = address_list(v4.iter().copied());
    if let Some(list) = &v4_list {
        rules.push(format!("ip saddr {list} meta l4proto {{ tcp, icmp }} return"));
        // Anything but a DHCP server's answer.
        rules.push(format!("ip saddr {list} udp sport != 67 return"));
    }
    // DHCP discovery comes from 0.0.0.0; any other IPv4 source is spoofed.
    rules.push("ip saddr 0.0.0.0 udp sport 68 udp dport 67 return".into());
    rules.push("ether type ip drop".into());
    rules.push(format!("arp saddr ether != {macs} drop"));
    let arp = address_list(v4.iter().copied().chain(["0.0.0.0"])).unwrap_or_default();
    rules.push(format!("arp saddr ip != {arp} drop"));
    rules.push("ip6 nexthdr udp udp sport 547 udp dport 546 drop".into());
    rules.push("icmpv6 type nd-router-advert drop".into());
    // Link-local and the unspecified address (duplicate address detection).
    let v6_list = address_list(v6.iter().copied().chain(["fe80::/64", "::"])).unwrap_or_default();
    rules.push(format!("ip6 saddr != {v6_list} drop"));
    rules.push("return".into());
    rules
}

/// IANA numbers of the protocol names Neutron accepts.
const PROTOCOL_NUMBERS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("tcp", 6),
    ("egp", 8),
    ("udp", 17),
    ("dccp", 33),
    ("ipv6-encap", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", 58),
    ("ipv6-icmp", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ospf", 89),
    ("pgm", 113),
    ("vrrp", 112),
    ("l2tp", 115),
    ("sctp", 132),
    ("udplite", 136),
];

fn protocol_number(p: &str) -> Option<u8> {
    PROTOCOL_NUMBERS.iter().find(|(name, _)| *name == p).map(|(_, n)| *n).or_else(|| p.parse().ok())
}

/// One security group rule as an nft rule that returns (allows); `None` for
/// a rule this driver cannot express (logged, and then nothing is allowed
/// by it).
fn rule_text(r: &SecurityGroupRule) -> Option<String> {
    let v6 = r.ethertype == "IPv6";
    let (family, ip) = if v6 { ("ipv6", "ip6") } else { ("ipv4", "ip") };
    let mut m = vec![format!("meta nfproto {family}")];
    let addr = if r.direction == "ingress" { "saddr" } else { "daddr" };
    if let Some(prefix) = r.remote_ip_prefix.as_deref() {
        let Some(list) = address_list([prefix].into_iter()) else {
            tracing::warn!(rule = %r.id, prefix, "cannot read the rule's remote prefix; it allows nothing");
            return None;
        };
        let whole = list.ends_with("/0 }");
        if !whole {
            m.push(format!("{ip} {addr} {list}"));
        }
    }
    if let Some(group) = r.remote_group_id.as_deref() {
        m.push(format!("{ip} {addr} @{}", set_name(group, v6)));
    }
    if let Some(p) = r.protocol.as_deref() {
        let Some(number) = protocol_number(p) else {
            tracing::warn!(rule = %r.id, protocol = p, "unknown protocol; the rule allows nothing");
            return None;
        };
        m.push(format!("meta l4proto {number}"));
        let (min, max) = (r.port_range_min, r.port_range_max);
        match number {
            6 | 17 | 33 | 132 | 136 => match (min, max) {
                (Some(a), Some(b)) if a == b => m.push(format!("th dport {a}")),
                (Some(a), Some(b)) => m.push(format!("th dport {a}-{b}")),
                (Some(a), None) | (None, Some(a)) => m.push(format!("th dport {a}")),
                (None, None) => {}
            },
            1 | 58 => {
                let kw = if number == 1 { "icmp" } else { "icmpv6" };
                if let Some(t) = min {
                    m.push(format!("{kw} type {t}"));
                    if let Some(c) = max {
                        m.push(format!("{kw} code {c}"));
                    }
                }
            }
            _ => {}
        }
    }
    m.push("return".into());
    Some(m.join(" "))
}

/// The map entries that send the port's traffic through its chains.
fn port_elements(port: &DeviceDetails, n: u32) -> String {
    let (id, tap) = (chain_id(&port.device), tap_name(&port.device));
    let t = TABLE;
    let high = n << 16;
    format!(
        "add element bridge {t} ingress_marks {{ \"{tap}\" : {high:#x} }}
add element bridge {t} egress_chains {{ \"{tap}\" : jump spoof_{id} }}
add element inet {t} egress {{ {n:#x} : jump egress_{id} }}
add element inet {t} ingress {{ {high:#x} : jump ingress_{id} }}
"
    )
}

/// Stops filtering a port: its map entries, then its chains; its network's
/// zone goes with its last filtered port.
fn release(state: &mut State, port: &str) -> String {
    let Some((n, network, _)) = state.ports.remove(port) else { return String::new() };
    let (id, tap, t, high) = (chain_id(port), tap_name(port), TABLE, n << 16);
    let mut s = format!(
        "delete element bridge {t} ingress_marks {{ \"{tap}\" }}
delete element bridge {t} egress_chains {{ \"{tap}\" }}
delete element inet {t} egress {{ {n:#x} }}
delete element inet {t} ingress {{ {high:#x} }}
delete chain bridge {t} spoof_{id}
delete chain inet {t} ingress_{id}
delete chain inet {t} egress_{id}
"
    );
    if !state.ports.values().any(|(_, net, _)| *net == network) && state.zones.remove(&bridge_name(&network)).is_some()
    {
        let _ = writeln!(s, "delete element inet {t} zones {{ \"{}\" }}", bridge_name(&network));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use network_rpc::FixedIp;

    fn rule(direction: &str, protocol: Option<&str>, min: Option<i64>, max: Option<i64>) -> SecurityGroupRule {
        SecurityGroupRule {
            id: "r".into(),
            direction: direction.into(),
            ethertype: "IPv4".into(),
            protocol: protocol.map(String::from),
            port_range_min: min,
            port_range_max: max,
            remote_ip_prefix: None,
            remote_group_id: None,
        }
    }

    #[test]
    fn rules_become_nft_matches() {
        assert_eq!(
            rule_text(&rule("ingress", Some("tcp"), Some(22), Some(22))).as_deref(),
            Some("meta nfproto ipv4 meta l4proto 6 th dport 22 return")
        );
        assert_eq!(
            rule_text(&rule("ingress", Some("udp"), Some(1000), Some(2000))).as_deref(),
            Some("meta nfproto ipv4 meta l4proto 17 th dport 1000-2000 return")
        );
        assert_eq!(
            rule_text(&rule("ingress", Some("icmp"), Some(8), Some(0))).as_deref(),
            Some("meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 return")
        );
        assert_eq!(rule_text(&rule("egress", None, None, None)).as_deref(), Some("meta nfproto ipv4 return"));
        let mut r = rule("ingress", Some("47"), None, None);
        r.remote_ip_prefix = Some("10.0.0.9/24".into());
        assert_eq!(rule_text(&r).as_deref(), Some("meta nfproto ipv4 ip saddr { 10.0.0.0/24 } meta l4proto 47 return"));
        r.remote_ip_prefix = Some("0.0.0.0/0".into());
        assert_eq!(rule_text(&r).as_deref(), Some("meta nfproto ipv4 meta l4proto 47 return"));
        let mut g = rule("egress", None, None, None);
        g.ethertype = "IPv6".into();
        g.remote_group_id = Some("5c1e-8b".into());
        assert_eq!(rule_text(&g).as_deref(), Some("meta nfproto ipv6 ip6 daddr @members_5c1e_8b_v6 return"));
        assert_eq!(rule_text(&rule("ingress", Some("bogus"), None, None)), None);
    }

    #[test]
    fn established_packets_skip_the_port_chains() {
        let base = base();
        let forward: Vec<&str> = base.lines().filter(|l| l.starts_with("add rule inet neutron_sg forward")).collect();
        assert_eq!(
            forward.first(),
            Some(&"add rule inet neutron_sg forward ct state established,related meta mark set 0 accept")
        );
        assert!(forward.iter().any(|l| l.ends_with("vmap @egress")));
        let chains = port_chains(
            &DeviceDetails { device: "a".into(), port_security_enabled: true, ..DeviceDetails::default() },
            1,
            &SecurityGroupInfo::default(),
        );
        assert!(!chains.contains("established"), "the forward chain has already accepted those");
        assert!(chains.contains("ct state invalid drop"));
    }

    #[test]
    fn addresses_merge_and_port_numbers_are_reused() {
        assert_eq!(
            address_list(["10.0.0.5", "10.0.0.0/24", "10.0.1.1"].into_iter()).as_deref(),
            Some("{ 10.0.0.0/24, 10.0.1.1 }")
        );
        assert_eq!(address_list(std::iter::empty()), None);
        let port = |id: &str| DeviceDetails {
            device: id.into(),
            network_id: "net".into(),
            mac_address: "fa:16:3e:00:00:01".into(),
            fixed_ips: vec![FixedIp { subnet_id: "s".into(), ip_address: "10.0.0.5".into() }],
            port_security_enabled: true,
            ..DeviceDetails::default()
        };
        let mut state = State::default();
        assert_eq!(state.number_for(&port("a")).unwrap(), (1, true));
        assert_eq!(state.number_for(&port("b")).unwrap(), (2, true));
        assert_eq!(state.number_for(&port("a")).unwrap(), (1, false));
        assert_eq!(state.zone_for("net").unwrap(), (1, true));
        let listed = "table inet neutron_sg {\n\tmap zones {\n\t\ttypeof iifname : ct zone\n\t\telements = { \"brq6c1f5a0e-7d\" : 1,\n\t\t\t     \"brq11111111-22\" : 12 }\n\t}\n}\n";
        let zones = parse_zones(listed);
        assert_eq!((zones.get("brq6c1f5a0e-7d"), zones.get("brq11111111-22"), zones.len()), (Some(&1), Some(&12), 2));
        let removal = release(&mut state, "a");
        assert!(removal.contains("delete chain inet neutron_sg ingress_a"));
        assert!(!removal.contains("zones"), "b still uses the network's zone");
        assert_eq!(state.number_for(&port("c")).unwrap(), (1, true));
        let spoof = spoof_rules(&port("a"), 1).join("\n");
        assert!(spoof.contains("ip saddr { 10.0.0.5 } meta l4proto { tcp, icmp } return"));
        assert!(spoof.contains("ether type ip drop"));
        assert!(spoof.contains("ether saddr != { fa:16:3e:00:00:01 } drop"));
    }
}
