//! The L3 service plugin's floating IPs: an address on an external network,
//! held by a port of no project, mapped onto a port's fixed address through
//! the router that joins the two networks.

use std::net::IpAddr;

use api::Auth;
use db::AnyConnection;
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::ports::{self, NewPort};
use super::quotas::check_quota;
use super::routers::{GATEWAY, INTERFACE};
use super::{owns, Change, Txn};
use crate::error::{NetworkError, Result};
use crate::ipam::allocate::FixedIpRequest;
use crate::store::{self, Record, FLOATINGIP, NETWORK, PORT, SUBNET};
use crate::Network;

fn bad(message: String) -> NetworkError {
    NetworkError::invalid("BadRequest", format!("Bad floatingip request: {message}."))
}

/// The router that reaches `subnet_id` and has its gateway on the floating
/// network; one whose interface is the subnet's gateway is preferred.
async fn router_for(
    net: &Network,
    conn: &mut AnyConnection,
    floating_network: &str,
    subnet_id: &str,
    port_id: &str,
) -> Result<String> {
    let subnet = net.store.get_in(conn, &SUBNET, subnet_id).await?;
    let gateway_ip = subnet.str("gateway_ip").map(String::from);
    let mut candidates = Vec::new();
    for p in net.store.list_in(conn, &PORT, Some(("network_id", subnet.str("network_id").unwrap_or_default()))).await? {
        if p.str("device_owner") != Some(INTERFACE) {
            continue;
        }
        let on_subnet: Vec<(String, String)> =
            ports::fixed_ips(&p).into_iter().filter(|(s, _)| s == subnet_id).collect();
        if on_subnet.is_empty() {
            continue;
        }
        let router_id = p.str("device_id").unwrap_or_default().to_string();
        let has_gateway = net
            .store
            .list_in(conn, &PORT, Some(("device_id", &router_id)))
            .await?
            .iter()
            .any(|g| g.str("device_owner") == Some(GATEWAY) && g.str("network_id") == Some(floating_network));
        if has_gateway {
            let preferred = on_subnet.iter().any(|(_, ip)| Some(ip) == gateway_ip.as_ref());
            candidates.push((preferred, router_id));
        }
    }
    candidates.sort_by_key(|(pref, _)| !*pref);
    candidates.into_iter().next().map(|(_, r)| r).ok_or_else(|| {
        NetworkError::not_found(
            "ExternalGatewayForFloatingIPNotFound",
            format!("External network {floating_network} is not reachable from subnet {subnet_id}. Therefore, cannot associate Port {port_id} with a Floating IP."),
        )
    })
}

fn port_details(p: &Record) -> Value {
    json!({
        "name": p.str("name"),
        "network_id": p.str("network_id"),
        "mac_address": p.str("mac_address"),
        "admin_state_up": p.attrs.get("admin_state_up"),
        "status": p.str("status"),
        "device_id": p.str("device_id"),
        "device_owner": p.str("device_owner"),
    })
}

/// Maps the floating IP onto `port_id` (at `fixed_ip`, or its only IPv4
/// address), or unmaps it when `port_id` is null.
async fn associate(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    fip: &mut Record,
    port_id: Option<&str>,
    fixed_ip: Option<IpAddr>,
) -> Result<()> {
    let Some(port_id) = port_id else {
        if fixed_ip.is_some() {
            return Err(bad("fixed_ip_address cannot be specified without a port_id".into()));
        }
        for k in ["port_id", "fixed_ip_address", "router_id", "port_details"] {
            fip.attrs.insert(k.into(), Value::Null);
        }
        fip.attrs.insert("status".into(), json!("DOWN"));
        return Ok(());
    };
    let port = match net.store.find_in(conn, &PORT, port_id).await? {
        Some(p) if owns(auth, &p.project_id) => p,
        _ => return Err(store::not_found(&PORT, port_id)),
    };
    if !auth.is_admin() && port.project_id != fip.project_id {
        return Err(bad(format!(
            "Cannot process floating IP association with port {port_id}: it belongs to another project"
        )));
    }
    let v4: Vec<(String, String)> =
        ports::fixed_ips(&port).into_iter().filter(|(_, ip)| ip.parse::<IpAddr>().is_ok_and(|a| a.is_ipv4())).collect();
    let (subnet_id, ip) = match fixed_ip {
        Some(want) => {
            if !want.is_ipv4() {
                return Err(bad(format!("Cannot process floating IP association with {want}, since that is not an IPv4 address")));
            }
            v4.into_iter().find(|(_, ip)| ip.parse::<IpAddr>().ok() == Some(want)).ok_or_else(|| {
                bad(format!("Port {port_id} does not have fixed ip {want}"))
            })?
        }
        None => match v4.as_slice() {
            [] => return Err(bad(format!("Port {port_id} does not have any IPv4 address"))),
            [one] => one.clone(),
            _ => {
                return Err(bad(format!(
                    "Port {port_id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address when assigning a floating IP"
                )))
            }
        },
    };
    let floating_network = fip.str("floating_network_id").unwrap_or_default().to_string();
    let router_id = router_for(net, conn, &floating_network, &subnet_id, port_id).await?;
    let taken = net.store.list_in(conn, &FLOATINGIP, Some(("port_id", port_id))).await?.into_iter().any(|f| {
        f.id != fip.id
            && f.str("fixed_ip_address") == Some(ip.as_str())
            && f.str("floating_network_id") == Some(floating_network.as_str())
    });
    if taken {
        return Err(NetworkError::conflict(
            "FloatingIPPortAlreadyAssociated",
            format!("Cannot associate floating IP {} with port {port_id} using fixed IP {ip}, as that fixed IP already has a floating IP on external network {floating_network}.", fip.str("floating_ip_address").unwrap_or_default()),
        ));
    }
    fip.attrs.insert("port_id".into(), json!(port_id));
    fip.attrs.insert("fixed_ip_address".into(), json!(ip));
    fip.attrs.insert("router_id".into(), json!(router_id));
    fip.attrs.insert("port_details".into(), port_details(&port));
    fip.attrs.insert("status".into(), json!("ACTIVE"));
    Ok(())
}

/// The floating IP, if the caller may see it.
pub async fn visible(net: &Network, conn: &mut AnyConnection, auth: &Auth, id: &str) -> Result<Record> {
    match net.store.find_in(conn, &FLOATINGIP, id).await? {
        Some(f) if owns(auth, &f.project_id) => Ok(f),
        _ => Err(store::not_found(&FLOATINGIP, id)),
    }
}

/// Allocates a floating IP of `project` on its external network (at the
/// requested address or subnet), associated at once if a port is given.
pub async fn create(net: &Network, auth: &Auth, project: String, mut a: Map<String, Value>) -> Result<Record> {
    let network_id = a.get("floating_network_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut w = Txn::begin(net).await?;
    let network = net
        .store
        .find_in(w.conn(), &NETWORK, &network_id)
        .await?
        .ok_or_else(|| store::not_found(&NETWORK, &network_id))?;
    if !network.flag("router:external") {
        return Err(bad(format!("Network {network_id} is not a valid external network")));
    }
    let subnets = net.store.list_in(w.conn(), &SUBNET, Some(("network_id", &network_id))).await?;
    let v4: Vec<&Record> =
        subnets.iter().filter(|s| s.attrs.get("ip_version").and_then(Value::as_i64) == Some(4)).collect();
    if v4.is_empty() {
        return Err(bad(format!("Network {network_id} does not contain any IPv4 subnet")));
    }
    check_quota(net, w.conn(), &FLOATINGIP, &project, 1).await?;
    let requested_ip: Option<IpAddr> =
        a.remove("floating_ip_address").and_then(|v| v.as_str().and_then(|s| s.parse().ok()));
    let requested_subnet = a.remove("subnet_id").and_then(|v| v.as_str().map(String::from));
    let request = match (requested_ip, &requested_subnet) {
        (Some(ip), _) => {
            let s = v4
                .iter()
                .find(|s| s.str("cidr").and_then(|c| c.parse::<IpNet>().ok()).is_some_and(|c| c.contains(&ip)))
                .ok_or_else(|| {
                    NetworkError::invalid(
                        "InvalidIpForNetwork",
                        format!("IP address {ip} is not a valid IP for any of the subnets on the specified network."),
                    )
                })?;
            FixedIpRequest { subnet_id: Some(s.id.clone()), ip_address: Some(ip) }
        }
        (None, Some(sid)) => FixedIpRequest { subnet_id: Some(sid.clone()), ip_address: None },
        (None, None) => FixedIpRequest { subnet_id: Some(v4[0].id.clone()), ip_address: None },
    };
    let id = super::new_id();
    let mut pa = Map::new();
    for (k, v) in [
        ("network_id", json!(network_id)),
        ("name", json!("")),
        ("admin_state_up", json!(true)),
        ("device_id", json!(id)),
        ("device_owner", json!("network:floatingip")),
        ("description", json!("")),
    ] {
        pa.insert(k.into(), v);
    }
    // The address is held by a port of no project, so no other port takes it.
    let fport = ports::create_in(
        net,
        w.conn(),
        auth,
        NewPort { attrs: pa, project: String::new(), fixed_ips: Some(vec![request]) },
    )
    .await?;
    let address = ports::fixed_ips(&fport).first().map(|(_, ip)| ip.clone()).unwrap_or_default();
    let port_id = a.remove("port_id").and_then(|v| v.as_str().map(String::from));
    let fixed_ip: Option<IpAddr> = a.remove("fixed_ip_address").and_then(|v| v.as_str().and_then(|s| s.parse().ok()));
    a.insert("floating_ip_address".into(), json!(address));
    a.insert("_floating_port_id".into(), json!(fport.id));
    let mut fip = Record::new(id, project, a);
    associate(net, w.conn(), auth, &mut fip, port_id.as_deref(), fixed_ip).await?;
    net.store.insert(w.conn(), &FLOATINGIP, &fip).await?;
    w.record(Change::Routers(routers_of(&[&fip])));
    w.commit().await?;
    Ok(fip)
}

/// Re-associates (or dissociates) a floating IP, or changes its description.
pub async fn update(net: &Network, auth: &Auth, id: &str, mut changes: Map<String, Value>) -> Result<Record> {
    let mut w = Txn::begin(net).await?;
    let mut f = visible(net, w.conn(), auth, id).await?;
    let before = f.clone();
    if changes.contains_key("port_id") || changes.contains_key("fixed_ip_address") {
        let port_id = match changes.remove("port_id") {
            Some(v) => v.as_str().map(String::from),
            None => f.str("port_id").map(String::from),
        };
        let fixed: Option<IpAddr> =
            changes.remove("fixed_ip_address").and_then(|v| v.as_str().and_then(|s| s.parse().ok()));
        associate(net, w.conn(), auth, &mut f, port_id.as_deref(), fixed).await?;
    }
    for (k, v) in changes {
        f.attrs.insert(k, v);
    }
    f.touch();
    net.store.update(w.conn(), &FLOATINGIP, &f).await?;
    // The router it left and the router it joined.
    w.record(Change::Routers(routers_of(&[&before, &f])));
    w.commit().await?;
    Ok(f)
}

/// The routers that carry these floating IPs (their NAT changes with them).
fn routers_of(fips: &[&Record]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in fips.iter().filter_map(|f| f.str("router_id")) {
        if !out.iter().any(|x| x == r) {
            out.push(r.to_string());
        }
    }
    out
}

/// Deletes a floating IP and the port that held its address.
pub async fn delete_in(net: &Network, conn: &mut AnyConnection, f: &Record) -> Result<()> {
    if let Some(pid) = f.str("_floating_port_id") {
        if let Some(p) = net.store.find_in(conn, &PORT, pid).await? {
            ports::delete_in(net, conn, &p).await?;
        }
    }
    net.store.set_tags(conn, &f.id, &[]).await?;
    net.store.delete(conn, &FLOATINGIP, &f.id).await?;
    Ok(())
}

pub async fn delete(net: &Network, auth: &Auth, id: &str) -> Result<()> {
    let mut w = Txn::begin(net).await?;
    let f = visible(net, w.conn(), auth, id).await?;
    delete_in(net, w.conn(), &f).await?;
    w.record(Change::Routers(routers_of(&[&f])));
    w.commit().await
}

/// Before an external network is deleted: its unassociated floating IPs go.
pub async fn delete_unassociated(net: &Network, network_id: &str) -> Result<()> {
    let mut w = Txn::begin(net).await?;
    for f in net.store.list_in(w.conn(), &FLOATINGIP, Some(("floating_network_id", network_id))).await? {
        if f.str("port_id").is_none() {
            delete_in(net, w.conn(), &f).await?;
        }
    }
    w.commit().await?;
    Ok(())
}
