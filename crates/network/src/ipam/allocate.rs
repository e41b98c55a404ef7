//! Addresses for ports, inside the port's write transaction: what a port asks
//! for (or Neutron's defaults when it asks for nothing) checked against the
//! network's subnets, and each address claimed in the allocation table, whose
//! key refuses an address already held.

use std::collections::HashSet;
use std::net::IpAddr;

use db::AnyConnection;
use ipnet::IpNet;
use serde_json::{json, Value};

use super::{eui64, first_free, in_pools, to_u128, Pool};
use crate::error::{NetworkError, Result};
use crate::store::{Record, Store, SUBNET};

/// What allocation needs to know of a subnet.
#[derive(Debug, Clone)]
pub struct SubnetView {
    pub id: String,
    pub network_id: String,
    pub cidr: IpNet,
    pub gateway: Option<IpAddr>,
    pub pools: Vec<Pool>,
    pub v6: bool,
    /// SLAAC or DHCPv6-stateless: addresses come from the MAC, not the pools.
    pub auto_address: bool,
    pub service_types: Vec<String>,
}

pub fn is_auto_address(ra: Option<&str>, addr: Option<&str>) -> bool {
    [ra, addr].iter().any(|m| matches!(m, Some("slaac") | Some("dhcpv6-stateless")))
}

impl SubnetView {
    pub fn from_record(r: &Record) -> Option<SubnetView> {
        let cidr: IpNet = r.str("cidr")?.parse().ok()?;
        let pools = r
            .attrs
            .get("allocation_pools")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        Some(Pool {
                            start: p.get("start")?.as_str()?.parse().ok()?,
                            end: p.get("end")?.as_str()?.parse().ok()?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(SubnetView {
            id: r.id.clone(),
            network_id: r.str("network_id").unwrap_or_default().to_string(),
            v6: cidr.addr().is_ipv6(),
            cidr,
            gateway: r.str("gateway_ip").and_then(|g| g.parse().ok()),
            pools,
            auto_address: is_auto_address(r.str("ipv6_ra_mode"), r.str("ipv6_address_mode")),
            service_types: r
                .attrs
                .get("service_types")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default(),
        })
    }

    /// Whether a port with this owner may take an address here without
    /// asking (subnet-service-types).
    fn serves(&self, device_owner: &str) -> bool {
        self.service_types.is_empty() || self.service_types.iter().any(|t| t == device_owner)
    }
}

/// One entry of a port's `fixed_ips` request.
#[derive(Debug, Clone, Default)]
pub struct FixedIpRequest {
    pub subnet_id: Option<String>,
    pub ip_address: Option<IpAddr>,
}

/// Reads a `fixed_ips` request list.
pub fn parse_requests(v: &Value) -> Result<Vec<FixedIpRequest>> {
    let bad = |m: String| NetworkError::invalid("HTTPBadRequest", format!("Invalid input for fixed_ips. Reason: {m}."));
    let Some(items) = v.as_array() else { return Err(bad(format!("'{v}' is not a list"))) };
    let mut out = Vec::new();
    for item in items {
        let Some(o) = item.as_object() else { return Err(bad(format!("'{item}' is not a dictionary"))) };
        if let Some(k) = o.keys().find(|k| *k != "subnet_id" && *k != "ip_address") {
            return Err(bad(format!("Unrecognized key '{k}'")));
        }
        let subnet_id = match o.get("subnet_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => Some(s.clone()),
            Some(other) => return Err(bad(format!("'{other}' is not a valid UUID"))),
        };
        let ip_address = match o.get("ip_address") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse().map_err(|_| bad(format!("'{s}' is not a valid IP address")))?),
            Some(other) => return Err(bad(format!("'{other}' is not a valid IP address"))),
        };
        if subnet_id.is_none() && ip_address.is_none() {
            return Err(bad("a fixed IP needs a subnet_id or an ip_address".into()));
        }
        out.push(FixedIpRequest { subnet_id, ip_address });
    }
    Ok(out)
}

pub async fn network_subnets(store: &Store, conn: &mut AnyConnection, network_id: &str) -> Result<Vec<SubnetView>> {
    let records = store.list_in(conn, &SUBNET, Some(("network_id", network_id))).await?;
    Ok(records.iter().filter_map(SubnetView::from_record).collect())
}

async fn used(store: &Store, conn: &mut AnyConnection, subnet_id: &str) -> Result<HashSet<u128>> {
    let rows = store.ips_of_subnet(conn, subnet_id).await?;
    Ok(rows.iter().filter_map(|(_, ip, _)| ip.parse::<IpAddr>().ok()).map(to_u128).collect())
}

fn exhausted(s: &SubnetView) -> NetworkError {
    NetworkError::conflict("IpAddressGenerationFailure", format!("No more IP addresses available for subnet {}.", s.id))
}

/// The addresses a port should hold: `requests` as given, or Neutron's defaults
/// (one IPv4 address, one stateful IPv6 address, and the EUI-64 address on each
/// SLAAC subnet; router ports take none of the automatic ones). Claims them and
/// returns the `fixed_ips` list.
#[allow(clippy::too_many_arguments)]
pub async fn allocate(
    store: &Store,
    conn: &mut AnyConnection,
    network_id: &str,
    port_id: &str,
    mac: &str,
    device_owner: &str,
    requests: Option<&[FixedIpRequest]>,
    keep: &[(String, String)],
) -> Result<Vec<Value>> {
    let subnets = network_subnets(store, conn, network_id).await?;
    let router_port = device_owner.starts_with("network:router_interface") || device_owner == "network:router_gateway";
    let mut chosen: Vec<(SubnetView, IpAddr)> = Vec::new();
    match requests {
        Some(reqs) => {
            for req in reqs {
                let subnet = match (&req.subnet_id, req.ip_address) {
                    (Some(sid), _) => subnets.iter().find(|s| &s.id == sid).cloned().ok_or_else(|| {
                        NetworkError::invalid(
                            "InvalidInput",
                            format!("Invalid input for operation: Failed to create port on network {network_id}, because fixed_ips included invalid subnet {sid}."),
                        )
                    })?,
                    (None, Some(ip)) => subnets.iter().find(|s| s.cidr.contains(&ip)).cloned().ok_or_else(|| {
                        NetworkError::invalid("InvalidIpForNetwork", format!("IP address {ip} is not a valid IP for any of the subnets on the specified network."))
                    })?,
                    (None, None) => continue,
                };
                let ip = match req.ip_address {
                    Some(ip) => {
                        check_requested(&subnet, ip, mac, router_port)?;
                        ip
                    }
                    // An address this port already holds on the subnet is kept.
                    None => match keep.iter().find(|(sid, _)| *sid == subnet.id).and_then(|(_, ip)| ip.parse().ok()) {
                        Some(ip) => ip,
                        None => next_address(store, conn, &subnet, mac).await?,
                    },
                };
                chosen.push((subnet, ip));
            }
        }
        None => {
            let mut have_v4 = false;
            let mut have_v6_stateful = false;
            for s in &subnets {
                if !s.serves(device_owner) && !router_port {
                    continue;
                }
                if s.auto_address {
                    if router_port {
                        continue;
                    }
                } else if s.v6 {
                    if have_v6_stateful {
                        continue;
                    }
                } else if have_v4 {
                    continue;
                }
                let ip = match keep.iter().find(|(sid, _)| *sid == s.id).and_then(|(_, ip)| ip.parse().ok()) {
                    Some(ip) => ip,
                    None => next_address(store, conn, s, mac).await?,
                };
                if !s.auto_address {
                    if s.v6 {
                        have_v6_stateful = true;
                    } else {
                        have_v4 = true;
                    }
                }
                chosen.push((s.clone(), ip));
            }
        }
    }
    let mut out = Vec::new();
    for (s, ip) in chosen {
        let text = ip.to_string();
        let already = keep.iter().any(|(sid, kept)| *sid == s.id && *kept == text);
        if !already {
            store.claim_ip(conn, network_id, &s.id, &text, port_id).await?;
        }
        out.push(json!({"subnet_id": s.id, "ip_address": text}));
    }
    Ok(out)
}

fn check_requested(s: &SubnetView, ip: IpAddr, mac: &str, router_port: bool) -> Result<()> {
    if !s.cidr.contains(&ip) {
        return Err(NetworkError::invalid(
            "InvalidIpForSubnet",
            format!("IP address {ip} is not a valid IP for the specified subnet."),
        ));
    }
    let n = to_u128(ip);
    let (first, last) = super::bounds(&s.cidr);
    let prefix = s.cidr.prefix_len();
    let edge = if s.v6 { n == first && prefix < 127 } else { (n == first || n == last) && prefix < 31 };
    if edge {
        return Err(NetworkError::invalid(
            "InvalidIpForSubnet",
            format!("IP address {ip} is not a valid IP for the specified subnet."),
        ));
    }
    if s.auto_address && !router_port && eui64(&s.cidr, mac) != Some(ip) {
        return Err(NetworkError::invalid(
            "InvalidInput",
            format!("Invalid input for operation: IPv6 address {ip} cannot be directly assigned to a port on subnet {} with slaac address mode.", s.id),
        ));
    }
    Ok(())
}

/// The next address for a port on `s`: its EUI-64 address on an automatic
/// subnet, else the lowest free address of the pools.
async fn next_address(store: &Store, conn: &mut AnyConnection, s: &SubnetView, mac: &str) -> Result<IpAddr> {
    if s.auto_address {
        return eui64(&s.cidr, mac).ok_or_else(|| exhausted(s));
    }
    let mut taken = used(store, conn, &s.id).await?;
    if let Some(g) = s.gateway {
        taken.insert(to_u128(g));
    }
    first_free(&s.pools, &taken, s.v6).ok_or_else(|| exhausted(s))
}

/// Whether an address lies in the subnet's pools (router interfaces take the
/// gateway, which never does).
pub fn in_subnet_pools(s: &SubnetView, ip: IpAddr) -> bool {
    in_pools(&s.pools, ip)
}
