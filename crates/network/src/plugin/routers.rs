//! The L3 service plugin's routers: project subnets joined through
//! interface ports, an external network reached through a gateway port (with
//! SNAT), extra static routes. A router is scheduled to an L3 agent, whose
//! host its ports are bound on.

use std::net::IpAddr;

use api::Auth;
use db::AnyConnection;
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::agents::{self, L3_AGENT};
use super::ports::{self, NewPort};
use super::quotas::check_quota;
use super::{owns, Change, Txn};
use crate::error::{NetworkError, Result};
use crate::ipam::allocate::{FixedIpRequest, SubnetView};
use crate::store::{self, Record, FLOATINGIP, NETWORK, PORT, ROUTER, SUBNET};
use crate::Network;

const MAX_ROUTES: usize = 30;
pub const INTERFACE: &str = "network:router_interface";
pub const GATEWAY: &str = "network:router_gateway";

/// `external_gateway_info` as the API parsed it.
#[derive(Debug, Clone, Default)]
pub struct GatewayRequest {
    pub network_id: String,
    pub enable_snat: Option<bool>,
    /// `external_fixed_ips` as given, or `None` for one address per subnet.
    pub external_fixed_ips: Option<Value>,
}

/// What an interface call names: a subnet (a new port at its gateway) or a
/// port of the caller's.
#[derive(Debug, Clone)]
pub enum InterfaceTarget {
    Subnet(String),
    Port(String),
}

/// A router's ports of one kind.
pub async fn router_ports(
    net: &Network,
    conn: &mut AnyConnection,
    router_id: &str,
    owner: &str,
) -> Result<Vec<Record>> {
    Ok(net
        .store
        .list_in(conn, &PORT, Some(("device_id", router_id)))
        .await?
        .into_iter()
        .filter(|p| p.str("device_owner") == Some(owner))
        .collect())
}

/// The router, if the caller may see it.
pub async fn visible(net: &Network, conn: &mut AnyConnection, auth: &Auth, id: &str) -> Result<Record> {
    match net.store.find_in(conn, &ROUTER, id).await? {
        Some(r) if owns(auth, &r.project_id) => Ok(r),
        _ => Err(store::not_found(&ROUTER, id)),
    }
}

/// The host of the L3 agent hosting the router (scheduling it if need be), on
/// which its ports are bound; empty when no L3 agent is alive.
async fn router_host(net: &Network, conn: &mut AnyConnection, router_id: &str) -> Result<String> {
    Ok(agents::schedule(net, conn, L3_AGENT, router_id)
        .await?
        .and_then(|a| a.str("host").map(String::from))
        .unwrap_or_default())
}

/// Moves the router's ports to `host` (a new L3 agent), binding them there.
/// Returns each port before and after.
pub async fn rehost(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    router_id: &str,
    host: &str,
) -> Result<Vec<(Record, Record)>> {
    let mut moved = Vec::new();
    for mut p in net.store.list_in(conn, &PORT, Some(("device_id", router_id))).await? {
        if !matches!(p.str("device_owner"), Some(INTERFACE) | Some(GATEWAY)) {
            continue;
        }
        let before = p.clone();
        let mut changes = Map::new();
        changes.insert("binding:host_id".into(), json!(host));
        ports::update_in(net, conn, auth, &mut p, changes).await?;
        moved.push((before, p));
    }
    Ok(moved)
}

/// Gives the router a gateway port on the request's network (replacing any
/// old one); `None` when the old port serves.
async fn set_gateway(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    router: &mut Record,
    request: &GatewayRequest,
) -> Result<Option<Record>> {
    let network_id = request.network_id.as_str();
    let network =
        net.store.find_in(conn, &NETWORK, network_id).await?.ok_or_else(|| store::not_found(&NETWORK, network_id))?;
    if !network.flag("router:external") {
        return Err(NetworkError::invalid(
            "BadRequest",
            format!("Bad router request: Network {network_id} is not an external network."),
        ));
    }
    let enable_snat = request.enable_snat.unwrap_or(true);
    let subnets: Vec<SubnetView> = net
        .store
        .list_in(conn, &SUBNET, Some(("network_id", network_id)))
        .await?
        .iter()
        .filter_map(SubnetView::from_record)
        .collect();
    let requests: Vec<FixedIpRequest> = match &request.external_fixed_ips {
        Some(v) if !v.is_null() => {
            let reqs = crate::ipam::allocate::parse_requests(v)?;
            for r in &reqs {
                if let Some(ip) = r.ip_address {
                    if subnets.iter().any(|s| s.gateway == Some(ip)) {
                        return Err(NetworkError::invalid(
                            "BadRequest",
                            format!("Bad router request: Cannot use the gateway IP {ip} of the external subnet."),
                        ));
                    }
                }
            }
            reqs
        }
        _ => subnets
            .iter()
            .filter(|s| !s.auto_address)
            .map(|s| FixedIpRequest { subnet_id: Some(s.id.clone()), ip_address: None })
            .collect(),
    };
    // Same network, nothing to redo but SNAT.
    if let Some(old) = router.str("_gw_port_id").map(String::from) {
        if let Some(p) = net.store.find_in(conn, &PORT, &old).await? {
            if p.str("network_id") == Some(network_id) && request.external_fixed_ips.is_none() {
                router.attrs.insert("_enable_snat".into(), json!(enable_snat));
                return Ok(None);
            }
        }
        clear_gateway(net, conn, router).await?;
    }
    let host = router_host(net, conn, &router.id).await?;
    let mut a = Map::new();
    a.insert("network_id".into(), json!(network_id));
    a.insert("name".into(), json!(""));
    a.insert("admin_state_up".into(), json!(true));
    a.insert("device_id".into(), json!(router.id));
    a.insert("device_owner".into(), json!(GATEWAY));
    a.insert("binding:host_id".into(), json!(host));
    a.insert("description".into(), json!(""));
    // Gateway ports belong to no project: tenants never see them.
    let port =
        ports::create_in(net, conn, auth, NewPort { attrs: a, project: String::new(), fixed_ips: Some(requests) })
            .await?;
    router.attrs.insert("_gw_port_id".into(), json!(port.id));
    router.attrs.insert("_enable_snat".into(), json!(enable_snat));
    Ok(Some(port))
}

async fn clear_gateway(net: &Network, conn: &mut AnyConnection, router: &mut Record) -> Result<()> {
    let Some(pid) = router.str("_gw_port_id").map(String::from) else { return Ok(()) };
    let in_use = net
        .store
        .list_in(conn, &FLOATINGIP, None)
        .await?
        .iter()
        .any(|f| f.str("router_id") == Some(router.id.as_str()));
    if in_use {
        return Err(NetworkError::conflict(
            "RouterExternalGatewayInUseByFloatingIp",
            format!("Gateway cannot be updated for router {}, since a gateway to external network is required by one or more floating IPs.", router.id),
        ));
    }
    if let Some(p) = net.store.find_in(conn, &PORT, &pid).await? {
        ports::delete_in(net, conn, &p).await?;
    }
    router.attrs.remove("_gw_port_id");
    router.attrs.remove("_enable_snat");
    Ok(())
}

/// Creates a router of `project` with validated `attrs`, scheduled to an L3
/// agent, with a gateway if one is asked for.
pub async fn create(
    net: &Network,
    auth: &Auth,
    project: String,
    mut attrs: Map<String, Value>,
    gateway: Option<GatewayRequest>,
) -> Result<Record> {
    let mut w = Txn::begin(net).await?;
    check_quota(net, w.conn(), &ROUTER, &project, 1).await?;
    attrs.insert("status".into(), json!("ACTIVE"));
    attrs.insert("routes".into(), json!([]));
    attrs.insert("availability_zones".into(), json!([]));
    let mut r = Record::new(super::new_id(), project, attrs);
    net.store.insert(w.conn(), &ROUTER, &r).await?;
    router_host(net, w.conn(), &r.id).await?;
    let gw_port = match &gateway {
        Some(g) => set_gateway(net, w.conn(), auth, &mut r, g).await?,
        None => None,
    };
    net.store.update(w.conn(), &ROUTER, &r).await?;
    if let Some(p) = gw_port {
        w.record(Change::Port { before: None, after: p });
    }
    w.record(Change::Routers(vec![r.id.clone()]));
    w.commit().await?;
    Ok(r)
}

/// What a router update changes beyond plain attributes.
#[derive(Debug, Default)]
pub struct RouterUpdate {
    pub attrs: Map<String, Value>,
    /// `Some(None)` clears the gateway.
    pub gateway: Option<Option<GatewayRequest>>,
    pub routes: Option<Value>,
}

pub async fn update(net: &Network, auth: &Auth, id: &str, u: RouterUpdate) -> Result<Record> {
    let mut w = Txn::begin(net).await?;
    let mut r = visible(net, w.conn(), auth, id).await?;
    let mut gw_port = None;
    match &u.gateway {
        None => {}
        Some(None) => clear_gateway(net, w.conn(), &mut r).await?,
        Some(Some(g)) => gw_port = set_gateway(net, w.conn(), auth, &mut r, g).await?,
    }
    if let Some(routes) = &u.routes {
        let routes = check_routes(net, w.conn(), id, routes).await?;
        r.attrs.insert("routes".into(), routes);
    }
    for (k, v) in u.attrs {
        r.attrs.insert(k, v);
    }
    r.touch();
    net.store.update(w.conn(), &ROUTER, &r).await?;
    if let Some(p) = gw_port {
        w.record(Change::Port { before: None, after: p });
    }
    w.record(Change::Routers(vec![id.to_string()]));
    w.commit().await?;
    Ok(r)
}

pub async fn delete(net: &Network, auth: &Auth, id: &str) -> Result<()> {
    let mut w = Txn::begin(net).await?;
    let mut r = visible(net, w.conn(), auth, id).await?;
    if !router_ports(net, w.conn(), id, INTERFACE).await?.is_empty() {
        return Err(NetworkError::conflict("RouterInUse", format!("Router {id} still has ports")));
    }
    clear_gateway(net, w.conn(), &mut r).await?;
    net.store.unbind_resource(w.conn(), id).await?;
    net.store.set_tags(w.conn(), id, &[]).await?;
    net.store.delete(w.conn(), &ROUTER, id).await?;
    w.record(Change::RouterDeleted(id.to_string()));
    w.commit().await
}

/// The CIDRs a router reaches directly: its interfaces' and gateway's subnets,
/// and its own addresses on them.
async fn connected(net: &Network, conn: &mut AnyConnection, router_id: &str) -> Result<(Vec<IpNet>, Vec<IpAddr>)> {
    let mut cidrs = Vec::new();
    let mut own = Vec::new();
    for p in net.store.list_in(conn, &PORT, Some(("device_id", router_id))).await? {
        if p.str("device_owner") != Some(INTERFACE) && p.str("device_owner") != Some(GATEWAY) {
            continue;
        }
        for (sid, ip) in ports::fixed_ips(&p) {
            if let Some(s) = net.store.find_in(conn, &SUBNET, &sid).await? {
                if let Some(c) = s.str("cidr").and_then(|c| c.parse().ok()) {
                    cidrs.push(c);
                }
            }
            if let Ok(ip) = ip.parse() {
                own.push(ip);
            }
        }
    }
    Ok((cidrs, own))
}

/// The routes, checked: each next hop reachable through one of the router's
/// subnets and not the router's own address; duplicates dropped.
async fn check_routes(net: &Network, conn: &mut AnyConnection, router_id: &str, v: &Value) -> Result<Value> {
    if v.is_null() {
        return Ok(json!([]));
    }
    let items = v.as_array().ok_or_else(|| {
        NetworkError::invalid("HTTPBadRequest", format!("Invalid input for routes. Reason: '{v}' is not a list."))
    })?;
    if items.len() > MAX_ROUTES {
        return Err(NetworkError::invalid(
            "RoutesExhausted",
            format!(
                "Unable to complete operation for {router_id}. The number of routes exceeds the maximum {MAX_ROUTES}."
            ),
        ));
    }
    let (cidrs, own) = connected(net, conn, router_id).await?;
    let mut out = Vec::new();
    for r in items {
        let invalid =
            |why: &str| NetworkError::invalid("InvalidRoutes", format!("Invalid format for routes: {r}, {why}"));
        let dest: IpNet = r
            .get("destination")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("the destination is not a CIDR"))?;
        let hop: IpAddr = r
            .get("nexthop")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("the nexthop is not an IP address"))?;
        if dest.addr().is_ipv6() != hop.is_ipv6() {
            return Err(invalid("the nexthop and the destination are of different IP versions"));
        }
        if own.contains(&hop) {
            return Err(invalid("the nexthop is used by router"));
        }
        if !cidrs.iter().any(|c| c.contains(&hop)) {
            return Err(invalid("the nexthop is not connected with router"));
        }
        let route = json!({"destination": dest.trunc().to_string(), "nexthop": hop.to_string()});
        if !out.contains(&route) {
            out.push(route);
        }
    }
    Ok(Value::Array(out))
}

/// Refuses a subnet whose CIDR overlaps one the router already reaches.
async fn check_overlap(net: &Network, conn: &mut AnyConnection, router_id: &str, subnet: &Record) -> Result<()> {
    let cidr: IpNet = subnet
        .str("cidr")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| NetworkError::bad_request("subnet has no CIDR"))?;
    for p in router_ports(net, conn, router_id, INTERFACE).await? {
        for (sid, _) in ports::fixed_ips(&p) {
            if sid == subnet.id {
                return Err(NetworkError::invalid(
                    "BadRequest",
                    format!("Bad router request: Router already has a port on subnet {sid}."),
                ));
            }
            if let Some(other) = net.store.find_in(conn, &SUBNET, &sid).await? {
                if let Some(oc) = other.str("cidr").and_then(|c| c.parse::<IpNet>().ok()) {
                    if crate::ipam::overlaps(&oc, &cidr) {
                        return Err(NetworkError::invalid(
                            "BadRequest",
                            format!(
                                "Bad router request: Cidr {cidr} of subnet {} overlaps with cidr {oc} of subnet {sid}.",
                                subnet.id
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// A new interface port at the subnet's gateway address.
async fn interface_on_subnet(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    r: &Record,
    host: &str,
    sid: &str,
) -> Result<Record> {
    let subnet = net.store.find_in(conn, &SUBNET, sid).await?.ok_or_else(|| store::not_found(&SUBNET, sid))?;
    let network = net.store.get_in(conn, &NETWORK, subnet.str("network_id").unwrap_or_default()).await?;
    if !auth.is_admin() && subnet.project_id != r.project_id && !network.flag("shared") {
        return Err(NetworkError::invalid(
            "BadRequest",
            format!("Bad router request: Cannot add interface on subnet {sid} of another project."),
        ));
    }
    let gateway: IpAddr = subnet.str("gateway_ip").and_then(|g| g.parse().ok()).ok_or_else(|| {
        NetworkError::invalid("BadRequest", "Bad router request: Subnet for router interface must have a gateway IP.")
    })?;
    check_overlap(net, conn, &r.id, &subnet).await?;
    let mut a = Map::new();
    for (k, v) in [
        ("network_id", json!(network.id)),
        ("name", json!("")),
        ("admin_state_up", json!(true)),
        ("device_id", json!(r.id)),
        ("device_owner", json!(INTERFACE)),
        ("binding:host_id", json!(host)),
        ("description", json!("")),
    ] {
        a.insert(k.into(), v);
    }
    let fixed = vec![FixedIpRequest { subnet_id: Some(sid.to_string()), ip_address: Some(gateway) }];
    ports::create_in(net, conn, auth, NewPort { attrs: a, project: r.project_id.clone(), fixed_ips: Some(fixed) }).await
}

/// The caller's unused port becomes an interface of the router.
async fn interface_from_port(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    r: &Record,
    host: &str,
    pid: &str,
) -> Result<Record> {
    let mut port = match net.store.find_in(conn, &PORT, pid).await? {
        Some(p) if owns(auth, &p.project_id) => p,
        _ => return Err(store::not_found(&PORT, pid)),
    };
    if !port.str("device_id").unwrap_or_default().is_empty() || !port.str("device_owner").unwrap_or_default().is_empty()
    {
        return Err(NetworkError::conflict(
            "PortInUse",
            format!(
                "Unable to complete operation on port {pid} for network {}. Port already has an attached device {}.",
                port.str("network_id").unwrap_or_default(),
                port.str("device_id").unwrap_or_default()
            ),
        ));
    }
    let fixed = ports::fixed_ips(&port);
    if fixed.is_empty() {
        return Err(NetworkError::invalid(
            "BadRequest",
            "Bad router request: Router port must have at least one fixed IP.",
        ));
    }
    for (sid, _) in &fixed {
        let subnet = net.store.get_in(conn, &SUBNET, sid).await?;
        check_overlap(net, conn, &r.id, &subnet).await?;
    }
    let mut changes = Map::new();
    changes.insert("device_id".into(), json!(r.id));
    changes.insert("device_owner".into(), json!(INTERFACE));
    changes.insert("binding:host_id".into(), json!(host));
    changes.insert("security_groups".into(), json!([]));
    ports::update_in(net, conn, auth, &mut port, changes).await?;
    Ok(port)
}

/// Adds an interface; returns the router and the interface port.
pub async fn add_interface(net: &Network, auth: &Auth, id: &str, target: InterfaceTarget) -> Result<(Record, Record)> {
    let mut w = Txn::begin(net).await?;
    let mut r = visible(net, w.conn(), auth, id).await?;
    let host = router_host(net, w.conn(), id).await?;
    let port = match &target {
        InterfaceTarget::Subnet(sid) => interface_on_subnet(net, w.conn(), auth, &r, &host, sid).await?,
        InterfaceTarget::Port(pid) => interface_from_port(net, w.conn(), auth, &r, &host, pid).await?,
    };
    r.touch();
    net.store.update(w.conn(), &ROUTER, &r).await?;
    w.record(Change::Port { before: None, after: port.clone() });
    w.record(Change::Routers(vec![r.id.clone()]));
    w.commit().await?;
    Ok((r, port))
}

/// Refuses removing an interface on `subnets` that floating IPs or routes
/// of the router still need.
async fn check_interface_unused(net: &Network, conn: &mut AnyConnection, r: &Record, subnets: &[String]) -> Result<()> {
    let id = &r.id;
    let mut cidrs = Vec::new();
    for sid in subnets {
        if let Some(s) = net.store.find_in(conn, &SUBNET, sid).await? {
            if let Some(c) = s.str("cidr").and_then(|c| c.parse::<IpNet>().ok()) {
                cidrs.push((sid, c));
            }
        }
    }
    // Floating IPs reaching ports on these subnets through this router hold it.
    for f in net.store.list_in(conn, &FLOATINGIP, None).await? {
        if f.str("router_id") != Some(id.as_str()) {
            continue;
        }
        let Some(fixed) = f.str("fixed_ip_address").and_then(|x| x.parse::<IpAddr>().ok()) else { continue };
        if let Some((sid, _)) = cidrs.iter().find(|(_, c)| c.contains(&fixed)) {
            return Err(NetworkError::conflict(
                "RouterInterfaceInUseByFloatingIP",
                format!("Router interface for subnet {sid} on router {id} cannot be deleted, as it is required by one or more floating IPs."),
            ));
        }
    }
    // So do routes whose next hop only this interface reaches.
    let routes = r.attrs.get("routes").and_then(Value::as_array).cloned().unwrap_or_default();
    for (sid, c) in &cidrs {
        let needed = routes.iter().any(|rt| {
            rt.get("nexthop")
                .and_then(Value::as_str)
                .and_then(|h| h.parse::<IpAddr>().ok())
                .is_some_and(|h| c.contains(&h))
        });
        if needed {
            return Err(NetworkError::conflict(
                "RouterInterfaceInUseByRoute",
                format!("Router interface for subnet {sid} on router {id} cannot be deleted, as it is required by one or more routes."),
            ));
        }
    }
    Ok(())
}

/// Removes an interface (its port goes); returns the router and the port.
pub async fn remove_interface(
    net: &Network,
    auth: &Auth,
    id: &str,
    target: InterfaceTarget,
) -> Result<(Record, Record)> {
    let mut w = Txn::begin(net).await?;
    let mut r = visible(net, w.conn(), auth, id).await?;
    let interfaces = router_ports(net, w.conn(), id, INTERFACE).await?;
    let port = match &target {
        InterfaceTarget::Subnet(sid) => {
            interfaces.into_iter().find(|p| ports::fixed_ips(p).iter().any(|(s, _)| s == sid)).ok_or_else(|| {
                NetworkError::not_found(
                    "RouterInterfaceNotFoundForSubnet",
                    format!("Router {id} has no interface on subnet {sid}"),
                )
            })?
        }
        InterfaceTarget::Port(pid) => interfaces.into_iter().find(|p| &p.id == pid).ok_or_else(|| {
            NetworkError::not_found(
                "RouterInterfaceNotFound",
                format!("Router {id} does not have an interface with id {pid}"),
            )
        })?,
    };
    let subnets: Vec<String> = ports::fixed_ips(&port).into_iter().map(|(s, _)| s).collect();
    check_interface_unused(net, w.conn(), &r, &subnets).await?;
    ports::delete_in(net, w.conn(), &port).await?;
    r.touch();
    net.store.update(w.conn(), &ROUTER, &r).await?;
    w.record(Change::PortDeleted(port.clone()));
    w.commit().await?;
    Ok((r, port))
}
