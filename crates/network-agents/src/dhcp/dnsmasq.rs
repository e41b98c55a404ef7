//! What one network's dnsmasq is given, as Neutron's `Dnsmasq` driver
//! writes it: a static-range command line (dnsmasq answers only the MACs
//! it is told of), and three files it re-reads on SIGHUP without dropping
//! leases — `host` (MAC → name and address), `addn_hosts` (names for DNS)
//! and `opts` (router, DNS servers, classless routes, per-port options) —
//! plus the lease file it starts from, so a restarted dnsmasq renews the
//! leases it gave instead of refusing them.
//!
//! Everything here is a pure function of the network and the options, so
//! the agent can compare what it would write with what is there.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use network_rpc::{DhcpNetwork, DhcpPort, DhcpSubnet};

/// Owners whose ports get no host entry (Neutron's
/// `DHCP_CONFIG_NOT_REQUIRED_OWNERS`).
const NO_DHCP_OWNERS: &[&str] =
    &["network:router_ha_interface", "network:floatingip", "network:dhcp", "network:distributed"];
/// A router port on a subnet's gateway address makes the subnet not
/// isolated (Neutron's `ROUTER_INTERFACE_OWNERS`).
const ROUTER_INTERFACE_OWNERS: &[&str] =
    &["network:router_interface", "network:ha_router_replicated_interface", "network:router_interface_distributed"];
const METADATA_CIDR: &str = "169.254.169.254/32";
/// Option 249: the classless routes again, for Windows clients.
const WIN2K3_STATIC_ROUTES: &str = "249";
const SLAAC: &str = "slaac";
const DHCPV6_STATELESS: &str = "dhcpv6-stateless";
const DHCPV6_STATEFUL: &str = "dhcpv6-stateful";
const CLIENT_ID: &[&str] = &["client-id", "61"];

/// The `dhcp_agent.ini` options dnsmasq's configuration depends on.
#[derive(Debug, Clone)]
pub struct DnsmasqOptions {
    /// `dhcp_lease_duration`, seconds; -1 for infinite.
    pub lease_duration: i64,
    /// `dns_domain`.
    pub dns_domain: String,
    /// `dnsmasq_lease_max`.
    pub lease_max: u128,
    /// `dnsmasq_dns_servers`: upstream servers for what dnsmasq does not know.
    pub dns_servers: Vec<String>,
    /// `dnsmasq_local_resolv`: forward to the host's resolvers.
    pub local_resolv: bool,
    /// `dnsmasq_config_file`.
    pub config_file: String,
    /// `enable_isolated_metadata`: networks without a router get the
    /// metadata route through the DHCP port.
    pub enable_isolated_metadata: bool,
    /// `force_metadata`: every network does.
    pub force_metadata: bool,
}

impl Default for DnsmasqOptions {
    fn default() -> Self {
        DnsmasqOptions {
            lease_duration: 86400,
            dns_domain: "openstacklocal".into(),
            lease_max: 1 << 24,
            dns_servers: Vec::new(),
            local_resolv: false,
            config_file: String::new(),
            enable_isolated_metadata: false,
            force_metadata: false,
        }
    }
}

/// The files' contents, by the names dnsmasq is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub host: String,
    pub addn_hosts: String,
    pub opts: String,
}

/// The file under the network's directory (`dhcp_confs/<network id>/`).
pub fn conf_file(dir: &Path, kind: &str) -> String {
    dir.join(kind).display().to_string()
}

fn subnet_tag(id: &str) -> String {
    format!("subnet-{id}")
}

fn port_tag(id: &str) -> String {
    format!("port-{id}")
}

fn is_v6(ip: &str) -> bool {
    ip.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6())
}

/// A literal dnsmasq can tell from a MAC: IPv6 in brackets.
fn literal(ip: &str) -> String {
    if is_v6(ip) {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

/// The command line (without the namespace around it).
pub fn command_line(net: &DhcpNetwork, o: &DnsmasqOptions, dir: &Path) -> Vec<String> {
    let f = |kind: &str| conf_file(dir, kind);
    let mut cmd = vec!["dnsmasq".to_string(), "--no-hosts".into()];
    if !o.dns_servers.is_empty() || !o.local_resolv {
        cmd.push("--no-resolv".into());
    }
    cmd.extend([
        format!("--pid-file={}", f("pid")),
        format!("--dhcp-hostsfile={}", f("host")),
        format!("--addn-hosts={}", f("addn_hosts")),
        format!("--dhcp-optsfile={}", f("opts")),
        format!("--dhcp-leasefile={}", f("leases")),
        "--dhcp-match=set:ipxe,175".into(),
        "--dhcp-userclass=set:ipxe6,iPXE".into(),
        "--local-service".into(),
        "--bind-dynamic".into(),
    ]);
    let lease = if o.lease_duration == -1 { "infinite".to_string() } else { format!("{}s", o.lease_duration) };
    let mut possible: u128 = 0;
    for s in net.subnets.iter().filter(|s| s.enable_dhcp) {
        let Ok(cidr) = s.cidr.parse::<IpNet>() else { continue };
        let stateful = matches!(s.ipv6_address_mode.as_deref(), Some(DHCPV6_STATEFUL | DHCPV6_STATELESS))
            || (s.ipv6_address_mode.is_none() && s.ipv6_ra_mode.is_none());
        let tag = subnet_tag(&s.id);
        match cidr {
            IpNet::V4(c) => cmd.push(format!("--dhcp-range=set:{tag},{},static,{},{lease}", c.network(), c.netmask())),
            IpNet::V6(c) if stateful && c.prefix_len() >= 64 => {
                cmd.push(format!("--dhcp-range=set:{tag},{},static,{},{lease}", c.network(), c.prefix_len()))
            }
            IpNet::V6(_) => continue,
        }
        let host_bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
        possible = possible.saturating_add(1u128.checked_shl(host_bits).unwrap_or(u128::MAX));
    }
    if net.mtu > 0 {
        cmd.push(format!("--dhcp-option-force=option:mtu,{}", net.mtu));
    }
    cmd.push(format!("--dhcp-lease-max={}", possible.min(o.lease_max)));
    let conf = o.config_file.trim();
    cmd.push(format!("--conf-file={}", if conf.is_empty() { "/dev/null" } else { conf }));
    cmd.extend(o.dns_servers.iter().map(|s| format!("--server={s}")));
    if !o.dns_domain.is_empty() {
        cmd.push(format!("--domain={}", o.dns_domain));
    }
    cmd
}

/// One address of a port dnsmasq is told of.
struct Host<'a> {
    port: &'a DhcpPort,
    ip: &'a str,
    subnet: Option<&'a DhcpSubnet>,
    hostname: String,
    fqdn: String,
    /// SLAAC or stateless DHCPv6: the address is not handed out.
    no_dhcp: bool,
    /// SLAAC: no options either.
    no_opts: bool,
}

fn hosts<'a>(net: &'a DhcpNetwork, o: &DnsmasqOptions) -> Vec<Host<'a>> {
    let subnets: BTreeMap<&str, &DhcpSubnet> = net.subnets.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut out = Vec::new();
    for port in net.ports.iter().filter(|p| !NO_DHCP_OWNERS.contains(&p.device_owner.as_str())) {
        for ip in &port.fixed_ips {
            let subnet = subnets.get(ip.subnet_id.as_str()).copied();
            let mode = subnet.filter(|s| s.ip_version == 6).and_then(|s| s.ipv6_address_mode.as_deref());
            let hostname = format!("host-{}", ip.ip_address.replace(['.', ':'], "-"));
            let fqdn = if o.dns_domain.is_empty() { hostname.clone() } else { format!("{hostname}.{}", o.dns_domain) };
            out.push(Host {
                port,
                ip: &ip.ip_address,
                subnet,
                hostname,
                fqdn,
                no_dhcp: matches!(mode, Some(SLAAC | DHCPV6_STATELESS)),
                no_opts: mode == Some(SLAAC),
            });
        }
    }
    out
}

fn client_id(port: &DhcpPort) -> Option<&str> {
    port.extra_dhcp_opts.iter().find(|o| CLIENT_ID.contains(&o.opt_name.as_str())).map(|o| o.opt_value.as_str())
}

fn host_file(net: &DhcpNetwork, o: &DnsmasqOptions) -> String {
    let mut out = String::new();
    for h in hosts(net, o) {
        let v6_tag = if h.subnet.is_some_and(|s| s.ip_version == 6) { "tag:dhcpv6," } else { "" };
        let mac = &h.port.mac_address;
        let extra = !h.port.extra_dhcp_opts.is_empty();
        if h.no_dhcp {
            if !h.no_opts && extra {
                out.push_str(&format!("{mac},{v6_tag}set:{}\n", port_tag(&h.port.id)));
            }
            continue;
        }
        if !h.subnet.is_some_and(|s| s.enable_dhcp) {
            continue;
        }
        let (ip, name) = (literal(h.ip), &h.fqdn);
        let line = match (extra, client_id(h.port)) {
            (true, Some(id)) if h.port.extra_dhcp_opts.len() > 1 => {
                format!("{mac},{v6_tag}id:{id},{name},{ip},set:{}", port_tag(&h.port.id))
            }
            (true, Some(id)) => format!("{mac},{v6_tag}id:{id},{name},{ip}"),
            (true, None) => format!("{mac},{v6_tag}{name},{ip},set:{}", port_tag(&h.port.id)),
            (false, _) => format!("{mac},{v6_tag}{name},{ip}"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn addn_hosts_file(net: &DhcpNetwork, o: &DnsmasqOptions) -> String {
    // The FQDN first, so PTR answers give it.
    hosts(net, o).iter().map(|h| format!("{}\t{} {}\n", h.ip, h.fqdn, h.hostname)).collect()
}

/// `tag:<tag>,option:<name>,<values…>` (`option6:` for IPv6; a bare number
/// for numbered IPv4 options). A value may carry its own `tag:…,` prefix.
fn option(ip_version: u8, tag: &str, name: &str, values: &[&str]) -> String {
    let name = name.lines().next().unwrap_or("");
    let (extra_tag, name) = match name.strip_prefix("tag:").and_then(|rest| rest.split_once(',')) {
        Some((t, n)) => (Some(format!("tag:{t}")), n),
        None => (None, name),
    };
    let name = if ip_version == 6 {
        format!("option6:{name}")
    } else if name.chars().all(|c| c.is_ascii_digit()) {
        name.to_string()
    } else {
        format!("option:{name}")
    };
    let mut parts = vec![format!("tag:{tag}")];
    parts.extend(extra_tag);
    parts.push(name);
    parts.extend(values.iter().map(|v| v.lines().next().unwrap_or("").to_string()));
    parts.join(",")
}

/// Subnets with no router port on their gateway address.
fn isolated(net: &DhcpNetwork) -> BTreeSet<&str> {
    let mut isolated: BTreeSet<&str> = net.subnets.iter().map(|s| s.id.as_str()).collect();
    for port in net.ports.iter().filter(|p| ROUTER_INTERFACE_OWNERS.contains(&p.device_owner.as_str())) {
        for ip in &port.fixed_ips {
            let on_gateway = net
                .subnets
                .iter()
                .any(|s| s.id == ip.subnet_id && s.gateway_ip.as_deref() == Some(ip.ip_address.as_str()));
            if on_gateway {
                isolated.remove(ip.subnet_id.as_str());
            }
        }
    }
    isolated
}

/// The DHCP port's address on each subnet (where the metadata route of an
/// isolated subnet points, and the DNS server when the subnet names none).
fn dhcp_addresses(net: &DhcpNetwork) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for port in net.ports.iter().filter(|p| p.device_owner == "network:dhcp") {
        for ip in &port.fixed_ips {
            out.entry(ip.subnet_id.as_str()).or_default().push(ip.ip_address.as_str());
        }
    }
    out
}

fn opts_file(net: &DhcpNetwork, o: &DnsmasqOptions, local_dhcp_ips: &BTreeMap<String, String>) -> String {
    let mut lines = Vec::new();
    let mut without_nameservers = BTreeSet::new();
    let isolated = isolated(net);
    for s in &net.subnets {
        if !s.enable_dhcp || (s.ip_version == 6 && s.ipv6_address_mode.as_deref() == Some(SLAAC)) {
            continue;
        }
        let tag = subnet_tag(&s.id);
        if s.dns_nameservers.is_empty() {
            without_nameservers.insert(s.id.as_str());
        } else if s.dns_nameservers.iter().all(|d| d.parse::<IpAddr>().is_ok_and(|a| a.is_unspecified())) {
            // 0.0.0.0 (or ::) says: announce no DNS server at all.
            lines.push(option(s.ip_version, &tag, "dns-server", &[]));
        } else {
            let servers: Vec<String> = s.dns_nameservers.iter().map(|d| literal(d)).collect();
            lines.push(option(s.ip_version, &tag, "dns-server", &[&servers.join(",")]));
        }
        if s.ip_version == 6 && !o.dns_domain.is_empty() {
            lines.push(option(6, &tag, "domain-search", &[&o.dns_domain]));
        }
        if s.ip_version != 4 {
            continue;
        }
        let mut gateway = s.gateway_ip.clone();
        let mut routes: Vec<String> = Vec::new();
        for r in &s.host_routes {
            if r.destination == "0.0.0.0/0" {
                gateway.get_or_insert_with(|| r.nexthop.clone());
            } else {
                routes.push(format!("{},{}", r.destination, r.nexthop));
            }
        }
        let is_isolated = isolated.contains(s.id.as_str());
        let metadata_via = if o.force_metadata || (is_isolated && o.enable_isolated_metadata) {
            local_dhcp_ips.get(&s.id).cloned()
        } else if !is_isolated {
            gateway.clone()
        } else {
            None
        };
        if let Some(via) = metadata_via {
            routes.push(format!("{METADATA_CIDR},{via}"));
        }
        // The network's other IPv4 subnets are on the link.
        for other in net.subnets.iter().filter(|x| x.ip_version == 4 && x.cidr != s.cidr) {
            routes.insert(0, format!("{},0.0.0.0", other.cidr));
        }
        if !routes.is_empty() {
            if let Some(g) = &gateway {
                routes.push(format!("0.0.0.0/0,{g}"));
            }
            let joined = routes.join(",");
            lines.push(option(4, &tag, "classless-static-route", &[&joined]));
            lines.push(option(4, &tag, WIN2K3_STATIC_ROUTES, &[&joined]));
        }
        match &gateway {
            Some(g) => lines.push(option(4, &tag, "router", &[g])),
            None => lines.push(option(4, &tag, "router", &[])),
        }
    }
    for port in &net.ports {
        let versions: BTreeSet<u8> =
            port.fixed_ips.iter().map(|ip| if is_v6(&ip.ip_address) { 6 } else { 4 }).collect();
        for opt in port.extra_dhcp_opts.iter().filter(|x| !CLIENT_ID.contains(&x.opt_name.as_str())) {
            if versions.contains(&opt.ip_version) {
                lines.push(option(opt.ip_version, &port_tag(&port.id), &opt.opt_name, &[&opt.opt_value]));
            }
        }
    }
    // With several DHCP ports on a subnet that names no DNS server, every
    // one of them is a server.
    for (subnet, ips) in dhcp_addresses(net) {
        if !without_nameservers.contains(subnet) {
            continue;
        }
        for v in [4u8, 6] {
            let of_v: Vec<String> = ips.iter().filter(|ip| is_v6(ip) == (v == 6)).map(|ip| literal(ip)).collect();
            if of_v.len() > 1 {
                lines.push(option(v, &subnet_tag(subnet), "dns-server", &[&of_v.join(",")]));
            }
        }
    }
    lines.join("\n")
}

/// The three files SIGHUP re-reads. `local_dhcp_ips`: this agent's DHCP
/// port address on each subnet, as configured in its namespace.
pub fn files(net: &DhcpNetwork, o: &DnsmasqOptions, local_dhcp_ips: &BTreeMap<String, String>) -> Files {
    Files { host: host_file(net, o), addn_hosts: addn_hosts_file(net, o), opts: opts_file(net, o, local_dhcp_ips) }
}

/// The lease file dnsmasq starts from: every IPv4 address it hands out,
/// leased from `now` (seconds since the epoch) for the configured length
/// (for ever when that is -1), so a client
/// renewing after a restart or a move of the network to another agent is
/// not refused. IPv6 leases are kept from `existing` (their IAID cannot be
/// made up), as is the DUID line.
/// The IPv4 leases in `leases` (dnsmasq's lease file) that no port holds
/// any more, as (address, MAC, client id): what `dhcp_release` gives back
/// before a reload, so an address freed by one port can go to another
/// (dnsmasq would refuse it while the old lease lasts), as Neutron does.
pub fn unused_leases(net: &DhcpNetwork, o: &DnsmasqOptions, leases: &str) -> Vec<(String, String, Option<String>)> {
    let held: BTreeSet<(String, String)> =
        hosts(net, o).iter().map(|h| (h.ip.to_string(), h.port.mac_address.to_ascii_lowercase())).collect();
    leases
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let [_, mac, ip, _, client] = fields[..] else { return None };
            if !ip.parse::<IpAddr>().is_ok_and(|a| a.is_ipv4())
                || held.contains(&(ip.to_string(), mac.to_ascii_lowercase()))
            {
                return None;
            }
            Some((ip.to_string(), mac.to_string(), (client != "*").then(|| client.to_string())))
        })
        .collect()
}

pub fn initial_leases(net: &DhcpNetwork, o: &DnsmasqOptions, existing: &str, now: i64) -> String {
    let mut out = String::new();
    let mut v6 = BTreeMap::new();
    for line in existing.lines() {
        if line.starts_with("duid ") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        if let [_, _, ip, _, _] = fields[..] {
            if let Ok(IpAddr::V6(a)) = ip.parse::<IpAddr>() {
                v6.insert(a, line);
            }
        }
    }
    let expiry = if o.lease_duration == -1 { 0 } else { now + o.lease_duration };
    for h in hosts(net, o) {
        if h.no_dhcp {
            continue;
        }
        let Some(s) = h.subnet.filter(|s| s.enable_dhcp) else { continue };
        if s.ip_version == 4 {
            out.push_str(&format!("{expiry} {} {} * *\n", h.port.mac_address, h.ip));
        } else if let Some(line) = h.ip.parse().ok().and_then(|a: std::net::Ipv6Addr| v6.get(&a)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use network_rpc::{ExtraDhcpOpt, FixedIp, HostRoute};

    fn subnet(id: &str, cidr: &str, gateway: Option<&str>) -> DhcpSubnet {
        DhcpSubnet {
            id: id.into(),
            cidr: cidr.into(),
            ip_version: if cidr.contains(':') { 6 } else { 4 },
            enable_dhcp: true,
            gateway_ip: gateway.map(String::from),
            ..DhcpSubnet::default()
        }
    }

    fn port(id: &str, mac: &str, owner: &str, ips: &[(&str, &str)]) -> DhcpPort {
        DhcpPort {
            id: id.into(),
            mac_address: mac.into(),
            device_owner: owner.into(),
            device_id: String::new(),
            fixed_ips: ips
                .iter()
                .map(|(s, ip)| FixedIp { subnet_id: s.to_string(), ip_address: ip.to_string() })
                .collect(),
            extra_dhcp_opts: Vec::new(),
        }
    }

    fn network() -> DhcpNetwork {
        DhcpNetwork {
            id: "net".into(),
            mtu: 1450,
            subnets: vec![subnet("s4", "10.0.0.0/24", Some("10.0.0.1")), {
                let mut s = subnet("s6", "2001:db8::/64", Some("2001:db8::1"));
                s.ipv6_address_mode = Some("dhcpv6-stateful".into());
                s.ipv6_ra_mode = Some("dhcpv6-stateful".into());
                s
            }],
            ports: vec![
                port("vm", "fa:16:3e:00:00:05", "compute:nova", &[("s4", "10.0.0.5"), ("s6", "2001:db8::5")]),
                port("dhcp", "fa:16:3e:00:00:02", "network:dhcp", &[("s4", "10.0.0.2")]),
            ],
        }
    }

    #[test]
    fn the_command_line_is_neutrons_static_range() {
        let cmd = command_line(&network(), &DnsmasqOptions::default(), Path::new("/d/net"));
        for arg in [
            "--no-resolv",
            "--dhcp-hostsfile=/d/net/host",
            "--dhcp-leasefile=/d/net/leases",
            "--dhcp-range=set:subnet-s4,10.0.0.0,static,255.255.255.0,86400s",
            "--dhcp-range=set:subnet-s6,2001:db8::,static,64,86400s",
            "--dhcp-option-force=option:mtu,1450",
            "--dhcp-lease-max=16777216",
            "--conf-file=/dev/null",
            "--domain=openstacklocal",
        ] {
            assert!(cmd.iter().any(|a| a == arg), "{arg} missing from {cmd:?}");
        }
        let mut small = network();
        small.subnets.truncate(1);
        small.mtu = 0;
        let o = DnsmasqOptions { lease_duration: -1, local_resolv: true, ..DnsmasqOptions::default() };
        let cmd = command_line(&small, &o, Path::new("/d/net"));
        assert!(cmd.iter().any(|a| a == "--dhcp-lease-max=256"));
        assert!(cmd.iter().any(|a| a.ends_with(",infinite")));
        assert!(!cmd.iter().any(|a| a == "--no-resolv" || a.contains("option:mtu")));
    }

    #[test]
    fn hosts_give_each_port_its_addresses_and_names() {
        let mut net = network();
        net.ports[0].extra_dhcp_opts =
            vec![ExtraDhcpOpt { opt_name: "bootfile-name".into(), opt_value: "pxelinux.0".into(), ip_version: 4 }];
        let f = files(&net, &DnsmasqOptions::default(), &BTreeMap::new());
        assert_eq!(
            f.host,
            "fa:16:3e:00:00:05,host-10-0-0-5.openstacklocal,10.0.0.5,set:port-vm\n\
             fa:16:3e:00:00:05,tag:dhcpv6,host-2001-db8--5.openstacklocal,[2001:db8::5],set:port-vm\n"
        );
        assert_eq!(
            f.addn_hosts,
            "10.0.0.5\thost-10-0-0-5.openstacklocal host-10-0-0-5\n\
             2001:db8::5\thost-2001-db8--5.openstacklocal host-2001-db8--5\n"
        );
        assert!(f.opts.contains("tag:port-vm,option:bootfile-name,pxelinux.0"), "{}", f.opts);
        let existing = "duid 00:01\n1 fa:16:3e:00:00:05 2001:db8::5 h 77\n";
        let leases = initial_leases(&net, &DnsmasqOptions::default(), existing, 1_000);
        assert_eq!(leases, "duid 00:01\n87400 fa:16:3e:00:00:05 10.0.0.5 * *\n1 fa:16:3e:00:00:05 2001:db8::5 h 77\n");
        let forever = DnsmasqOptions { lease_duration: -1, ..DnsmasqOptions::default() };
        assert!(initial_leases(&net, &forever, "", 1_000).starts_with("0 fa:16:3e:00:00:05 10.0.0.5 "));
    }

    #[test]
    fn leases_no_port_holds_are_released() {
        let net = network();
        let leases = "87400 fa:16:3e:00:00:05 10.0.0.5 host-10-0-0-5 *\n\
                      87400 fa:16:3e:00:00:99 10.0.0.5 old 01:fa:16:3e:00:00:99\n\
                      87400 fa:16:3e:00:00:98 10.0.0.8 gone *\n\
                      87400 1234 2001:db8::8 h 00:01\n";
        assert_eq!(
            unused_leases(&net, &DnsmasqOptions::default(), leases),
            vec![
                ("10.0.0.5".to_string(), "fa:16:3e:00:00:99".to_string(), Some("01:fa:16:3e:00:00:99".to_string())),
                ("10.0.0.8".to_string(), "fa:16:3e:00:00:98".to_string(), None),
            ]
        );
    }

    #[test]
    fn options_carry_router_dns_routes_and_metadata() {
        let mut net = network();
        net.subnets[0].dns_nameservers = vec!["8.8.8.8".into()];
        net.subnets[0].host_routes =
            vec![HostRoute { destination: "192.168.0.0/16".into(), nexthop: "10.0.0.9".into() }];
        let isolated = DnsmasqOptions { enable_isolated_metadata: true, ..DnsmasqOptions::default() };
        let local = BTreeMap::from([("s4".to_string(), "10.0.0.2".to_string())]);
        let opts = files(&net, &isolated, &local).opts;
        let lines: Vec<&str> = opts.lines().collect();
        assert!(lines.contains(&"tag:subnet-s4,option:dns-server,8.8.8.8"), "{opts}");
        assert!(lines.contains(&"tag:subnet-s4,option:router,10.0.0.1"));
        let routes = "192.168.0.0/16,10.0.0.9,169.254.169.254/32,10.0.0.2,0.0.0.0/0,10.0.0.1";
        assert!(lines.contains(&format!("tag:subnet-s4,option:classless-static-route,{routes}").as_str()), "{opts}");
        assert!(lines.contains(&format!("tag:subnet-s4,249,{routes}").as_str()));
        assert!(lines.contains(&"tag:subnet-s6,option6:domain-search,openstacklocal"));
        // A router on the gateway: metadata goes through it instead.
        net.ports.push(port("r", "fa:16:3e:00:00:01", "network:router_interface", &[("s4", "10.0.0.1")]));
        net.subnets[0].dns_nameservers = vec!["0.0.0.0".into()];
        let opts = files(&net, &isolated, &local).opts;
        assert!(opts.contains("169.254.169.254/32,10.0.0.1"), "{opts}");
        assert!(opts.lines().any(|l| l == "tag:subnet-s4,option:dns-server"), "announces none");
        // No gateway, no routes: an empty router option keeps dnsmasq from
        // offering its own address as the router.
        let bare = DhcpNetwork { subnets: vec![subnet("s", "10.1.0.0/24", None)], ..DhcpNetwork::default() };
        assert_eq!(files(&bare, &DnsmasqOptions::default(), &BTreeMap::new()).opts, "tag:subnet-s,option:router");
    }

    #[test]
    fn slaac_and_dhcp_ports_get_no_host_entry() {
        let mut net = network();
        net.subnets[1].ipv6_address_mode = Some("slaac".into());
        net.subnets[1].ipv6_ra_mode = Some("slaac".into());
        let f = files(&net, &DnsmasqOptions::default(), &BTreeMap::new());
        assert_eq!(f.host, "fa:16:3e:00:00:05,host-10-0-0-5.openstacklocal,10.0.0.5\n");
        assert!(!f.opts.contains("subnet-s6"), "{}", f.opts);
        assert!(!command_line(&net, &DnsmasqOptions::default(), Path::new("/d"))
            .iter()
            .any(|a| a.contains("subnet-s6")));
        assert!(f.addn_hosts.contains("2001:db8::5"), "SLAAC addresses still resolve");
        assert_eq!(option(4, "t", "tag:ipxe,bootfile-name", &["x"]), "tag:t,tag:ipxe,option:bootfile-name,x");
    }
}
