//! The core plugin's subnets: address ranges of a network, checked as IPAM
//! needs them (no overlap within a network, pools inside the CIDR and clear
//! of the gateway, IPv6 modes that agree), carved from subnet pools, and
//! their DHCP scheduled.

use std::net::IpAddr;

use api::Auth;
use db::AnyConnection;
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::quotas::check_quota;
use super::{owns, Change, Txn};
use crate::error::{NetworkError, Result};
use crate::ipam::allocate::{is_auto_address, SubnetView};
use crate::ipam::{self, Pool};
use crate::store::{self, Record, NETWORK, PORT, SUBNET, SUBNETPOOL};
use crate::Network;

pub const MODES: &[&str] = &["slaac", "dhcpv6-stateful", "dhcpv6-stateless"];
const MAX_DNS: usize = 5;
const MAX_ROUTES: usize = 20;

fn invalid_input(message: impl Into<String>) -> NetworkError {
    NetworkError::invalid("InvalidInput", format!("Invalid input for operation: {}.", message.into()))
}

/// Whether the caller may see subnets of this network.
pub fn network_visible(auth: &Auth, network: &Record) -> bool {
    owns(auth, &network.project_id) || network.flag("shared")
}

fn parse_pools(v: &Value) -> Result<Vec<Pool>> {
    let bad = |x: &Value| {
        NetworkError::invalid(
            "HTTPBadRequest",
            format!("Invalid input for allocation_pools. Reason: '{x}' is not a valid IP range."),
        )
    };
    let items = v.as_array().ok_or_else(|| bad(v))?;
    items
        .iter()
        .map(|p| {
            let start = p.get("start").and_then(Value::as_str).and_then(|s| s.parse().ok()).ok_or_else(|| bad(p))?;
            let end = p.get("end").and_then(Value::as_str).and_then(|s| s.parse().ok()).ok_or_else(|| bad(p))?;
            Ok(Pool { start, end })
        })
        .collect()
}

fn pools_json(pools: &[Pool]) -> Value {
    Value::Array(pools.iter().map(|p| json!({"start": p.start.to_string(), "end": p.end.to_string()})).collect())
}

/// Checks pools against the CIDR, each other and the gateway, with Neutron's
/// error names.
fn check_pools(cidr: &IpNet, pools: &[Pool], gateway: Option<IpAddr>) -> Result<()> {
    // Neutron's bounds: never the network's own address, and on IPv4 never
    // the broadcast address either (point-to-point /31s and single-address
    // subnets have neither).
    let (first, last) = ipam::bounds(cidr);
    let max_prefix = if cidr.addr().is_ipv4() { 30 } else { 127 };
    let (lo, hi) = if cidr.prefix_len() <= max_prefix {
        (first + 1, last - u128::from(cidr.addr().is_ipv4()))
    } else {
        (first, last)
    };
    for p in pools {
        if p.start.is_ipv6() != cidr.addr().is_ipv6() || p.end.is_ipv6() != cidr.addr().is_ipv6() {
            return Err(NetworkError::invalid(
                "InvalidAllocationPool",
                format!("The allocation pool {}-{} is not valid.", p.start, p.end),
            ));
        }
        let (a, b) = (ipam::to_u128(p.start), ipam::to_u128(p.end));
        if a > b {
            return Err(NetworkError::invalid(
                "InvalidAllocationPool",
                format!("The allocation pool {}-{} is not valid.", p.start, p.end),
            ));
        }
        if a < lo || b > hi {
            return Err(NetworkError::invalid(
                "OutOfBoundsAllocationPool",
                format!("The allocation pool {}-{} spans beyond the subnet cidr {cidr}.", p.start, p.end),
            ));
        }
    }
    if let Err(m) = ipam::check_pools(cidr, pools) {
        return Err(NetworkError::conflict("OverlappingAllocationPools", m));
    }
    if let Some(g) = gateway {
        if ipam::in_pools(pools, g) {
            return Err(NetworkError::conflict(
                "GatewayConflictWithAllocationPools",
                format!("Gateway ip {g} conflicts with allocation pool {}", pools_json(pools)),
            ));
        }
    }
    Ok(())
}

fn check_gateway(cidr: &IpNet, gateway: IpAddr) -> Result<()> {
    if gateway.is_ipv6() != cidr.addr().is_ipv6() {
        return Err(invalid_input(format!("gateway_ip {gateway} does not match the ip_version")));
    }
    if cidr.contains(&gateway) {
        let n = ipam::to_u128(gateway);
        let (first, last) = ipam::bounds(cidr);
        let edge = match cidr {
            IpNet::V4(c) => c.prefix_len() < 31 && (n == first || n == last),
            IpNet::V6(c) => c.prefix_len() < 127 && n == first,
        };
        if edge {
            return Err(NetworkError::invalid(
                "InvalidInput",
                format!("Invalid input for operation: Gateway is not valid on subnet {cidr}."),
            ));
        }
    }
    Ok(())
}

fn check_dns(list: &Value, v6: bool) -> Result<()> {
    let items = list.as_array().cloned().unwrap_or_default();
    if items.len() > MAX_DNS {
        return Err(NetworkError::invalid("DNSNameServersExhausted", format!("Unable to complete operation for the subnet. The number of DNS nameservers exceeds the limit {MAX_DNS}.")));
    }
    let mut seen = Vec::new();
    for d in &items {
        let ip: IpAddr = d.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
            NetworkError::invalid(
                "HTTPBadRequest",
                format!("Invalid input for dns_nameservers. Reason: '{d}' is not a valid nameserver."),
            )
        })?;
        if ip.is_ipv6() != v6 {
            return Err(invalid_input(format!(
                "dns_nameserver '{ip}' does not match the ip_version '{}'",
                if v6 { 6 } else { 4 }
            )));
        }
        if seen.contains(&ip) {
            return Err(NetworkError::invalid(
                "HTTPBadRequest",
                format!("Invalid input for dns_nameservers. Reason: Duplicate nameserver '{ip}'."),
            ));
        }
        seen.push(ip);
    }
    Ok(())
}

/// Host routes, canonicalised (`{destination, nexthop}`).
fn check_routes(list: &Value, v6: bool) -> Result<Value> {
    let items = list.as_array().cloned().unwrap_or_default();
    if items.len() > MAX_ROUTES {
        return Err(NetworkError::invalid("HostRoutesExhausted", format!("Unable to complete operation for the subnet. The number of host routes exceeds the limit {MAX_ROUTES}.")));
    }
    let mut out = Vec::new();
    for r in &items {
        let bad = || {
            NetworkError::invalid(
                "HTTPBadRequest",
                format!("Invalid input for host_routes. Reason: '{r}' is not a valid host route."),
            )
        };
        let dest: IpNet = r.get("destination").and_then(Value::as_str).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let hop: IpAddr = r.get("nexthop").and_then(Value::as_str).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        if dest.addr().is_ipv6() != v6 || hop.is_ipv6() != v6 {
            return Err(invalid_input(format!(
                "host_route '{r}' does not match the ip_version '{}'",
                if v6 { 6 } else { 4 }
            )));
        }
        out.push(json!({"destination": dest.to_string(), "nexthop": hop.to_string()}));
    }
    Ok(Value::Array(out))
}

/// The IPv6 mode rules: only on IPv6 with DHCP on, both equal when both set,
/// /64 for SLAAC.
fn check_modes(a: &Map<String, Value>, cidr: &IpNet, enable_dhcp: bool) -> Result<()> {
    let ra = a.get("ipv6_ra_mode").and_then(Value::as_str);
    let addr = a.get("ipv6_address_mode").and_then(Value::as_str);
    if ra.is_none() && addr.is_none() {
        return Ok(());
    }
    if cidr.addr().is_ipv4() {
        return Err(invalid_input(
            "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or the subnet is IPv4",
        ));
    }
    if !enable_dhcp {
        return Err(invalid_input("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False"));
    }
    if let (Some(r), Some(m)) = (ra, addr) {
        if r != m {
            return Err(invalid_input(format!(
                "ipv6_ra_mode set to '{r}' with ipv6_address_mode set to '{m}' is not valid. If both attributes are set, they must be the same value"
            )));
        }
    }
    if is_auto_address(ra, addr) && cidr.prefix_len() != 64 {
        return Err(invalid_input(format!("Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64")));
    }
    Ok(())
}

/// Carves a CIDR for a subnet out of a subnet pool: the requested one (which
/// must lie in the pool) or the first free prefix of the requested length.
async fn cidr_from_pool(
    net: &Network,
    conn: &mut AnyConnection,
    pool_id: &str,
    a: &Map<String, Value>,
) -> Result<IpNet> {
    let pool = net.store.get_in(conn, &SUBNETPOOL, pool_id).await?;
    let prefixes: Vec<IpNet> = pool
        .attrs
        .get("prefixes")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(|p| p.as_str().and_then(|s| s.parse().ok())).collect())
        .unwrap_or_default();
    let num = |k: &str| pool.attrs.get(k).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
    let (min, max, default) = (
        num("min_prefixlen").unwrap_or(0),
        num("max_prefixlen").unwrap_or(128),
        num("default_prefixlen").unwrap_or(24),
    );
    let used: Vec<IpNet> = net
        .store
        .list_in(conn, &SUBNET, Some(("subnetpool_id", pool_id)))
        .await?
        .iter()
        .filter_map(|s| s.str("cidr").and_then(|c| c.parse().ok()))
        .collect();
    if let Some(c) = a.get("cidr").and_then(Value::as_str) {
        let cidr: IpNet = c.parse().map_err(|_| invalid_input(format!("'{c}' is not a valid IP subnet")))?;
        let cidr = cidr.trunc();
        if !prefixes.iter().any(|p| p.contains(&cidr.network()) && p.prefix_len() <= cidr.prefix_len()) {
            return Err(NetworkError::invalid(
                "SubnetAllocationError",
                format!("Failed to allocate subnet: Cidr {cidr} not in subnet pool."),
            ));
        }
        if used.iter().any(|u| ipam::overlaps(u, &cidr)) {
            return Err(NetworkError::invalid(
                "SubnetAllocationError",
                format!("Failed to allocate subnet: Cidr {cidr} overlaps a subnet of the pool."),
            ));
        }
        return Ok(cidr);
    }
    let len = a.get("prefixlen").and_then(Value::as_i64).unwrap_or(default);
    if len < min || len > max {
        return Err(NetworkError::invalid(
            "SubnetAllocationError",
            format!("Failed to allocate subnet: Prefix length {len} is outside the pool's {min}..{max}."),
        ));
    }
    for p in &prefixes {
        if let Ok(subnets) = p.subnets(len as u8) {
            for candidate in subnets.take(1 << 16) {
                if !used.iter().any(|u| ipam::overlaps(u, &candidate)) {
                    return Ok(candidate);
                }
            }
        }
    }
    Err(NetworkError::conflict(
        "SubnetAllocationError",
        "Failed to allocate subnet: Insufficient prefix space to allocate subnet size".to_string(),
    ))
}

/// Creates one subnet inside the caller's transaction; returns it and the ports
/// whose addresses changed (a new SLAAC subnet gives them one each).
async fn create_in(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    project: String,
    mut a: Map<String, Value>,
) -> Result<(Record, Vec<Record>)> {
    let admin = auth.is_admin();
    let network_id = a.get("network_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let network = match net.store.find_in(conn, &NETWORK, &network_id).await? {
        Some(n) if network_visible(auth, &n) || n.flag("router:external") && admin => n,
        _ => return Err(store::not_found(&NETWORK, &network_id)),
    };
    if !admin && network.project_id != project {
        return Err(NetworkError::forbidden(format!(
            "(create_subnet) is disallowed by policy on network {network_id}"
        )));
    }
    let ip_version = a.get("ip_version").and_then(Value::as_i64).unwrap_or(4);
    if ip_version != 4 && ip_version != 6 {
        return Err(NetworkError::invalid(
            "HTTPBadRequest",
            format!("Invalid input for ip_version. Reason: '{ip_version}' is not in [4, 6]."),
        ));
    }

    // The CIDR: given, or carved from a subnet pool.
    let mut pool_id = a.get("subnetpool_id").and_then(Value::as_str).map(String::from);
    // default-subnetpools: no CIDR and no pool, but the default pool asked for.
    if pool_id.is_none()
        && a.get("cidr").is_none()
        && a.get("use_default_subnetpool").and_then(Value::as_bool) == Some(true)
    {
        let pools = net.store.list_in(conn, &SUBNETPOOL, None).await?;
        let default = pools
            .iter()
            .find(|p| p.flag("is_default") && p.attrs.get("ip_version").and_then(Value::as_i64) == Some(ip_version));
        pool_id = Some(
            default
                .ok_or_else(|| {
                    NetworkError::invalid(
                        "BadRequest",
                        format!("Bad subnets request: No default subnetpool found for IPv{ip_version}."),
                    )
                })?
                .id
                .clone(),
        );
    }
    let cidr: IpNet = match (&pool_id, a.get("cidr").and_then(Value::as_str)) {
        (Some(pid), _) => cidr_from_pool(net, conn, pid, &a).await?,
        (None, Some(c)) => {
            c.parse::<IpNet>().map_err(|_| invalid_input(format!("'{c}' is not a valid IP subnet")))?.trunc()
        }
        (None, None) => {
            return Err(NetworkError::invalid(
                "BadRequest",
                "Bad subnets request: a cidr must be specified in the absence of a subnet pool.",
            ))
        }
    };
    if cidr.prefix_len() == 0 {
        return Err(invalid_input(format!("{cidr} is not a valid subnet: a /0 prefix is not allowed")));
    }
    if (ip_version == 6) != cidr.addr().is_ipv6() {
        return Err(invalid_input(format!("Cidr {cidr} does not match the ip_version {ip_version}")));
    }
    let enable_dhcp = a.get("enable_dhcp").and_then(Value::as_bool).unwrap_or(true);
    if enable_dhcp && ((ip_version == 4 && cidr.prefix_len() > 30) || (ip_version == 6 && cidr.prefix_len() > 126)) {
        return Err(invalid_input(format!(
            "Invalid CIDR {cidr} for a subnet with DHCP enabled: the prefix is too long"
        )));
    }
    check_modes(&a, &cidr, enable_dhcp)?;

    let siblings = net.store.list_in(conn, &SUBNET, Some(("network_id", &network_id))).await?;
    for s in &siblings {
        if let Some(other) = s.str("cidr").and_then(|c| c.parse::<IpNet>().ok()) {
            if ipam::overlaps(&other, &cidr) {
                return Err(invalid_input(format!(
                    "Requested subnet with cidr: {cidr} for network: {network_id} overlaps with another subnet"
                )));
            }
        }
    }

    let gateway: Option<IpAddr> = match a.get("gateway_ip") {
        None => ipam::default_gateway(&cidr),
        Some(Value::Null) => None,
        Some(v) => {
            let g: IpAddr = v.as_str().and_then(|s| s.parse().ok()).unwrap_or(cidr.addr());
            check_gateway(&cidr, g)?;
            Some(g)
        }
    };
    let pools = match a.get("allocation_pools") {
        None | Some(Value::Null) => ipam::default_pools(&cidr, gateway),
        Some(v) => parse_pools(v)?,
    };
    check_pools(&cidr, &pools, gateway)?;
    check_dns(a.get("dns_nameservers").unwrap_or(&json!([])), cidr.addr().is_ipv6())?;
    let routes = check_routes(a.get("host_routes").unwrap_or(&json!([])), cidr.addr().is_ipv6())?;
    check_quota(net, conn, &SUBNET, &project, 1).await?;

    a.remove("prefixlen");
    a.remove("use_default_subnetpool");
    a.insert("cidr".into(), json!(cidr.to_string()));
    a.insert("ip_version".into(), json!(ip_version));
    a.insert("gateway_ip".into(), json!(gateway.map(|g| g.to_string())));
    a.insert("allocation_pools".into(), pools_json(&pools));
    a.insert("host_routes".into(), routes);
    a.insert("subnetpool_id".into(), json!(pool_id));
    let rec = Record::new(super::new_id(), project, a);
    net.store.insert(conn, &SUBNET, &rec).await?;
    let changed_ports = if is_auto_address(rec.str("ipv6_ra_mode"), rec.str("ipv6_address_mode")) {
        super::ports::add_auto_addresses(net, conn, &rec).await?
    } else {
        Vec::new()
    };
    if rec.flag("enable_dhcp") {
        super::agents::schedule(net, conn, super::agents::DHCP_AGENT, &network_id).await?;
    }
    Ok((rec, changed_ports))
}

/// Creates subnets (a request's bulk, each of its project with validated
/// attributes) in one transaction.
pub async fn create(net: &Network, auth: &Auth, subnets: Vec<(String, Map<String, Value>)>) -> Result<Vec<Record>> {
    let mut w = Txn::begin(net).await?;
    let mut created = Vec::new();
    for (project, a) in subnets {
        let (rec, ports) = create_in(net, w.conn(), auth, project, a).await?;
        w.record(Change::Subnet { created: true, subnet: rec.clone() });
        for p in ports {
            w.record(Change::PortAddresses(p));
        }
        created.push(rec);
    }
    w.commit().await?;
    Ok(created)
}

/// Whether the caller may see the subnet: its own, or on a network whose
/// subnets it may see.
pub fn subnet_visible(auth: &Auth, s: &Record, network: Option<&Record>) -> bool {
    owns(auth, &s.project_id) || network.is_some_and(|n| network_visible(auth, n))
}

/// The subnet, if the caller may see it (its own, or on a network it may see).
pub async fn visible(net: &Network, auth: &Auth, id: &str) -> Result<Record> {
    let s = net.store.find(&SUBNET, id).await?.ok_or_else(|| store::not_found(&SUBNET, id))?;
    let network = net.store.find(&NETWORK, s.str("network_id").unwrap_or_default()).await?;
    if subnet_visible(auth, &s, network.as_ref()) {
        Ok(s)
    } else {
        Err(store::not_found(&SUBNET, id))
    }
}

/// Applies validated changes to a subnet the caller owns: the gateway (not
/// while a port holds the old one), pools, DNS servers and host routes.
pub async fn update(net: &Network, auth: &Auth, id: &str, changes: Map<String, Value>) -> Result<Record> {
    let mut w = Txn::begin(net).await?;
    let mut s = net.store.find_in(w.conn(), &SUBNET, id).await?.ok_or_else(|| store::not_found(&SUBNET, id))?;
    let network = net.store.find_in(w.conn(), &NETWORK, s.str("network_id").unwrap_or_default()).await?;
    if !subnet_visible(auth, &s, network.as_ref()) {
        return Err(store::not_found(&SUBNET, id));
    }
    if !owns(auth, &s.project_id) {
        return Err(NetworkError::forbidden(format!("(update_subnet) is disallowed by policy for subnet {id}")));
    }
    let view = SubnetView::from_record(&s).ok_or_else(|| NetworkError::bad_request("stored subnet is unreadable"))?;
    let cidr = view.cidr;
    let mut gateway = view.gateway;
    let mut pools = view.pools.clone();
    if let Some(g) = changes.get("gateway_ip") {
        let new: Option<IpAddr> = g.as_str().and_then(|x| x.parse().ok());
        if let Some(ng) = new {
            check_gateway(&cidr, ng)?;
        }
        if new != gateway {
            if let Some(old) = gateway {
                let router_holds = net
                    .store
                    .ips_of_subnet(w.conn(), id)
                    .await?
                    .iter()
                    .any(|(_, ip, _)| ip.parse::<IpAddr>().ok() == Some(old));
                if router_holds {
                    return Err(NetworkError::conflict(
                        "GatewayIpInUse",
                        format!("Gateway ip {old} conflicts with an IP in use on subnet {id}"),
                    ));
                }
            }
        }
        gateway = new;
    }
    if let Some(p) = changes.get("allocation_pools") {
        pools = parse_pools(p)?;
    }
    check_pools(&cidr, &pools, gateway)?;
    if let Some(d) = changes.get("dns_nameservers") {
        check_dns(d, cidr.addr().is_ipv6())?;
    }
    for (k, v) in changes {
        let v = match k.as_str() {
            "host_routes" => check_routes(&v, cidr.addr().is_ipv6())?,
            "gateway_ip" => json!(gateway.map(|g| g.to_string())),
            "allocation_pools" => pools_json(&pools),
            _ => v,
        };
        s.attrs.insert(k, v);
    }
    s.touch();
    net.store.update(w.conn(), &SUBNET, &s).await?;
    w.record(Change::Subnet { created: false, subnet: s.clone() });
    w.commit().await?;
    Ok(s)
}

/// Owners whose addresses a subnet delete removes rather than refuses.
const AUTO_DELETED_OWNERS: &[&str] = &["network:dhcp", "network:distributed", "network:floatingip_agent_gateway"];

/// Deletes a subnet, releasing the addresses of ports that may lose them
/// (DHCP's, and any on an automatic-address subnet); refused while other
/// ports hold addresses on it.
pub async fn delete(net: &Network, s: &Record) -> Result<()> {
    let id = s.id.as_str();
    let auto = is_auto_address(s.str("ipv6_ra_mode"), s.str("ipv6_address_mode"));
    let mut w = Txn::begin(net).await?;
    let holders = net.store.ips_of_subnet(w.conn(), id).await?;
    for (_, ip, port_id) in &holders {
        let Some(mut port) = net.store.find_in(w.conn(), &PORT, port_id).await? else { continue };
        let owner = port.str("device_owner").unwrap_or_default().to_string();
        let releasable =
            AUTO_DELETED_OWNERS.contains(&owner.as_str()) || (auto && !owner.starts_with("network:router_interface"));
        if !releasable {
            return Err(NetworkError::conflict(
                "SubnetInUse",
                format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."),
            ));
        }
        net.store.release_ip(w.conn(), id, ip).await?;
        if let Some(Value::Array(fixed)) = port.attrs.get_mut("fixed_ips") {
            fixed.retain(|f| f.get("subnet_id").and_then(Value::as_str) != Some(id));
        }
        port.touch();
        net.store.update(w.conn(), &PORT, &port).await?;
        w.record(Change::PortAddresses(port));
    }
    net.store.set_tags(w.conn(), id, &[]).await?;
    net.store.delete(w.conn(), &SUBNET, id).await?;
    w.record(Change::SubnetDeleted(s.clone()));
    w.commit().await
}
