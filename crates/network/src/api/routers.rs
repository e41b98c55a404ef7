//! `/v2.0/routers`: routers joining project subnets (interfaces) to an
//! external network (the gateway, with SNAT), with extra static routes. Each
//! router is scheduled to an L3 agent, whose host its ports are bound on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use db::AnyConnection;
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::agents::{self, L3_AGENT};
use super::attrs::{self, create_only, read_only, writable, Access, Attr, Check, Default, Resource};
use super::common::{self, is_admin, owner};
use super::query::ListQuery;
use super::quotas::check_quota;
use crate::error::{NetworkError, Result};
use crate::ipam::allocate::{FixedIpRequest, SubnetView};
use crate::plugin::ports::{self, NewPort};
use crate::plugin::{Change, Txn};
use crate::store::{self, Record, FLOATINGIP, NETWORK, PORT, ROUTER, SUBNET};
use crate::Network;

const MAX_ROUTES: usize = 30;
pub const INTERFACE: &str = "network:router_interface";
pub const GATEWAY: &str = "network:router_gateway";

pub const RESOURCE: Resource = Resource {
    singular: "router",
    plural: "routers",
    attrs: &[
        writable("name", Default::Str(""), Check::Str(255)),
        writable("admin_state_up", Default::Bool(true), Check::Bool),
        read_only("status", true),
        writable("external_gateway_info", Default::Null, Check::Any),
        Attr {
            name: "routes",
            post: false,
            put: true,
            default: Default::EmptyList,
            check: Check::Any,
            filter: false,
            sort: false,
            access: Access::Everyone,
        },
        create_only("availability_zone_hints", Default::EmptyList, Check::StrList),
        read_only("availability_zones", false),
    ],
};

/// A router's ports of one kind.
async fn router_ports(net: &Network, conn: &mut AnyConnection, router_id: &str, owner: &str) -> Result<Vec<Record>> {
    Ok(net
        .store
        .list_in(conn, &PORT, Some(("device_id", router_id)))
        .await?
        .into_iter()
        .filter(|p| p.str("device_owner") == Some(owner))
        .collect())
}

pub async fn render(net: &Network, r: &Record, tags: &HashMap<String, Vec<String>>) -> Result<Map<String, Value>> {
    let mut m = common::render(r, tags);
    let gw = match r.str("_gw_port_id") {
        Some(pid) => net.store.find(&PORT, pid).await?,
        None => None,
    };
    let info = match gw {
        None => Value::Null,
        Some(p) => json!({
            "network_id": p.str("network_id"),
            "enable_snat": r.attrs.get("_enable_snat").cloned().unwrap_or(json!(true)),
            "external_fixed_ips": p.attrs.get("fixed_ips").cloned().unwrap_or(json!([])),
        }),
    };
    m.insert("external_gateway_info".into(), info);
    m.entry("routes").or_insert(json!([]));
    let hosting: Vec<String> =
        net.store.agent_bindings().await?.into_iter().filter(|(_, res)| *res == r.id).map(|(a, _)| a).collect();
    let mut zones = Vec::new();
    for a in hosting {
        if let Some(z) =
            net.store.find(&crate::store::AGENT, &a).await?.and_then(|a| a.str("availability_zone").map(String::from))
        {
            if !zones.contains(&z) {
                zones.push(z);
            }
        }
    }
    m.insert("availability_zones".into(), json!(zones));
    Ok(m)
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
pub async fn rehost(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    router_id: &str,
    host: &str,
) -> Result<Vec<Record>> {
    let mut moved = Vec::new();
    for mut p in net.store.list_in(conn, &PORT, Some(("device_id", router_id))).await? {
        if !matches!(p.str("device_owner"), Some(INTERFACE) | Some(GATEWAY)) {
            continue;
        }
        let mut changes = Map::new();
        changes.insert("binding:host_id".into(), json!(host));
        ports::update_in(net, conn, auth, &mut p, changes).await?;
        moved.push(p);
    }
    Ok(moved)
}

/// Gives the router a gateway port on `info.network_id` (replacing any old one).
async fn set_gateway(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    router: &mut Record,
    info: &Value,
) -> Result<Option<Record>> {
    let obj = info.as_object().cloned().unwrap_or_default();
    if let Some(k) = obj.keys().find(|k| !["network_id", "enable_snat", "external_fixed_ips"].contains(&k.as_str())) {
        return Err(NetworkError::invalid(
            "HTTPBadRequest",
            format!("Invalid input for external_gateway_info. Reason: Unrecognized key '{k}'."),
        ));
    }
    if !auth.is_admin() && (obj.contains_key("enable_snat") || obj.contains_key("external_fixed_ips")) {
        return Err(attrs::policy_refused("update", &RESOURCE, "external_gateway_info"));
    }
    let network_id = obj.get("network_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let network =
        net.store.find_in(conn, &NETWORK, &network_id).await?.ok_or_else(|| store::not_found(&NETWORK, &network_id))?;
    if !network.flag("router:external") {
        return Err(NetworkError::invalid(
            "BadRequest",
            format!("Bad router request: Network {network_id} is not an external network."),
        ));
    }
    let enable_snat = match obj.get("enable_snat") {
        None | Some(Value::Null) => true,
        Some(v) => attrs::parse_bool(v)
            .ok_or_else(|| NetworkError::invalid("HTTPBadRequest", "Invalid input for enable_snat."))?,
    };
    let subnets: Vec<SubnetView> = net
        .store
        .list_in(conn, &SUBNET, Some(("network_id", &network_id)))
        .await?
        .iter()
        .filter_map(SubnetView::from_record)
        .collect();
    let requests: Vec<FixedIpRequest> = match obj.get("external_fixed_ips") {
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
            if p.str("network_id") == Some(network_id.as_str()) && obj.get("external_fixed_ips").is_none() {
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

/// Whether a gateway request means "no gateway" (`{}` or null).
fn no_gateway(v: &Value) -> bool {
    v.is_null() || v.as_object().is_some_and(|o| o.get("network_id").is_none_or(Value::is_null))
}

pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut a = attrs::for_create(&RESOURCE, attrs::body_object(body, &RESOURCE)?, is_admin(&auth))?;
    let project = owner(&auth, &mut a)?;
    super::discovery::check_zone_hints(&net, "router", &a).await?;
    let gateway = a.remove("external_gateway_info").unwrap_or(Value::Null);
    let mut w = Txn::begin(&net).await?;
    check_quota(&net, w.conn(), &ROUTER, &project, 1).await?;
    a.insert("status".into(), json!("ACTIVE"));
    a.insert("routes".into(), json!([]));
    a.insert("availability_zones".into(), json!([]));
    let mut r = Record::new(common::new_id(), project, a);
    net.store.insert(w.conn(), &ROUTER, &r).await?;
    router_host(&net, w.conn(), &r.id).await?;
    let gw_port =
        if no_gateway(&gateway) { None } else { set_gateway(&net, w.conn(), &auth, &mut r, &gateway).await? };
    net.store.update(w.conn(), &ROUTER, &r).await?;
    if let Some(p) = gw_port {
        w.record(Change::Port { before: None, after: p });
    }
    w.record(Change::Routers(vec![r.id.clone()]));
    w.commit().await?;
    let tags = super::tags::all(&net).await?;
    Ok((StatusCode::CREATED, Json(json!({"router": render(&net, &r, &tags).await?}))))
}

pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let tags = super::tags::all(&net).await?;
    let mut items = Vec::new();
    for r in net.store.list(&ROUTER, None).await?.iter().filter(|r| common::owns(&auth, &r.project_id)) {
        items.push(render(&net, r, &tags).await?);
    }
    common::many(&RESOURCE, &base, items, &q)
}

pub async fn visible_router(net: &Network, conn: &mut AnyConnection, auth: &Auth, id: &str) -> Result<Record> {
    match net.store.find_in(conn, &ROUTER, id).await? {
        Some(r) if common::owns(auth, &r.project_id) => Ok(r),
        _ => Err(store::not_found(&ROUTER, id)),
    }
}

pub async fn show(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let mut conn = net.store.reader().await?;
    let r = visible_router(&net, &mut conn, &auth, &id).await?;
    let tags = super::tags::all(&net).await?;
    Ok(common::one(&RESOURCE, render(&net, &r, &tags).await?, &q))
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

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let mut changes = attrs::for_update(&RESOURCE, attrs::body_object(body, &RESOURCE)?, is_admin(&auth))?;
    let mut w = Txn::begin(&net).await?;
    let mut r = visible_router(&net, w.conn(), &auth, &id).await?;
    let mut gw_port = None;
    if let Some(info) = changes.remove("external_gateway_info") {
        if no_gateway(&info) {
            clear_gateway(&net, w.conn(), &mut r).await?;
        } else {
            gw_port = set_gateway(&net, w.conn(), &auth, &mut r, &info).await?;
        }
    }
    if let Some(routes) = changes.remove("routes") {
        let routes = check_routes(&net, w.conn(), &id, &routes).await?;
        r.attrs.insert("routes".into(), routes);
    }
    for (k, v) in changes {
        r.attrs.insert(k, v);
    }
    r.touch();
    net.store.update(w.conn(), &ROUTER, &r).await?;
    if let Some(p) = gw_port {
        w.record(Change::Port { before: None, after: p });
    }
    w.record(Change::Routers(vec![id.clone()]));
    w.commit().await?;
    let tags = super::tags::all(&net).await?;
    Ok(Json(json!({"router": render(&net, &r, &tags).await?})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let mut w = Txn::begin(&net).await?;
    let mut r = visible_router(&net, w.conn(), &auth, &id).await?;
    if !router_ports(&net, w.conn(), &id, INTERFACE).await?.is_empty() {
        return Err(NetworkError::conflict("RouterInUse", format!("Router {id} still has ports")).into());
    }
    clear_gateway(&net, w.conn(), &mut r).await?;
    net.store.unbind_resource(w.conn(), &id).await?;
    net.store.set_tags(w.conn(), &id, &[]).await?;
    net.store.delete(w.conn(), &ROUTER, &id).await?;
    w.record(Change::RouterDeleted(id.clone()));
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `add_router_interface` / `remove_router_interface`: exactly one
/// of a subnet or a port.
fn interface_target(body: &Value) -> Result<(Option<String>, Option<String>)> {
    let get = |k: &str| body.get(k).and_then(Value::as_str).map(String::from);
    let (subnet, port) = (get("subnet_id"), get("port_id"));
    match (&subnet, &port) {
        (None, None) => Err(NetworkError::invalid(
            "BadRequest",
            "Bad router request: Either subnet_id or port_id must be specified.",
        )),
        (Some(_), Some(_)) => {
            Err(NetworkError::invalid("BadRequest", "Bad router request: Cannot specify both subnet-id and port-id."))
        }
        _ => {
            for id in subnet.iter().chain(port.iter()) {
                if uuid::Uuid::parse_str(id).is_err() {
                    return Err(NetworkError::invalid(
                        "HTTPBadRequest",
                        format!("Invalid input for operation: '{id}' is not a valid UUID."),
                    ));
                }
            }
            Ok((subnet, port))
        }
    }
}

fn interface_info(r: &Record, port: &Record) -> Value {
    let subnets: Vec<String> = ports::fixed_ips(port).into_iter().map(|(s, _)| s).collect();
    json!({
        "id": r.id,
        "project_id": r.project_id,
        "port_id": port.id,
        "network_id": port.str("network_id"),
        "subnet_id": subnets.first(),
        "subnet_ids": subnets,
    })
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

/// `PUT /v2.0/routers/{id}/add_router_interface`
pub async fn add_interface(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let (subnet_id, port_id) = interface_target(&body)?;
    let mut w = Txn::begin(&net).await?;
    let r = visible_router(&net, w.conn(), &auth, &id).await?;
    let host = router_host(&net, w.conn(), &id).await?;
    let port = match (subnet_id, port_id) {
        (Some(sid), _) => {
            let subnet = match net.store.find_in(w.conn(), &SUBNET, &sid).await? {
                Some(s) => s,
                None => return Err(store::not_found(&SUBNET, &sid).into()),
            };
            let network = net.store.get_in(w.conn(), &NETWORK, subnet.str("network_id").unwrap_or_default()).await?;
            if !auth.is_admin() && subnet.project_id != r.project_id && !network.flag("shared") {
                return Err(NetworkError::invalid(
                    "BadRequest",
                    format!("Bad router request: Cannot add interface on subnet {sid} of another project."),
                )
                .into());
            }
            let gateway: IpAddr = subnet.str("gateway_ip").and_then(|g| g.parse().ok()).ok_or_else(|| {
                NetworkError::invalid(
                    "BadRequest",
                    "Bad router request: Subnet for router interface must have a gateway IP.",
                )
            })?;
            check_overlap(&net, w.conn(), &id, &subnet).await?;
            let mut a = Map::new();
            for (k, v) in [
                ("network_id", json!(network.id)),
                ("name", json!("")),
                ("admin_state_up", json!(true)),
                ("device_id", json!(id)),
                ("device_owner", json!(INTERFACE)),
                ("binding:host_id", json!(host)),
                ("description", json!("")),
            ] {
                a.insert(k.into(), v);
            }
            let fixed = vec![FixedIpRequest { subnet_id: Some(sid.clone()), ip_address: Some(gateway) }];
            ports::create_in(
                &net,
                w.conn(),
                &auth,
                NewPort { attrs: a, project: r.project_id.clone(), fixed_ips: Some(fixed) },
            )
            .await?
        }
        (None, Some(pid)) => {
            let mut port = match net.store.find_in(w.conn(), &PORT, &pid).await? {
                Some(p) if common::owns(&auth, &p.project_id) => p,
                _ => return Err(store::not_found(&PORT, &pid).into()),
            };
            if !port.str("device_id").unwrap_or_default().is_empty()
                || !port.str("device_owner").unwrap_or_default().is_empty()
            {
                return Err(NetworkError::conflict("PortInUse", format!("Unable to complete operation on port {pid} for network {}. Port already has an attached device {}.", port.str("network_id").unwrap_or_default(), port.str("device_id").unwrap_or_default())).into());
            }
            let fixed = ports::fixed_ips(&port);
            if fixed.is_empty() {
                return Err(NetworkError::invalid(
                    "BadRequest",
                    "Bad router request: Router port must have at least one fixed IP.",
                )
                .into());
            }
            for (sid, _) in &fixed {
                let subnet = net.store.get_in(w.conn(), &SUBNET, sid).await?;
                check_overlap(&net, w.conn(), &id, &subnet).await?;
            }
            let mut changes = Map::new();
            changes.insert("device_id".into(), json!(id));
            changes.insert("device_owner".into(), json!(INTERFACE));
            changes.insert("binding:host_id".into(), json!(host));
            changes.insert("security_groups".into(), json!([]));
            ports::update_in(&net, w.conn(), &auth, &mut port, changes).await?;
            port
        }
        (None, None) => unreachable!("interface_target requires one"),
    };
    let mut r = r;
    r.touch();
    net.store.update(w.conn(), &ROUTER, &r).await?;
    w.record(Change::Port { before: None, after: port.clone() });
    w.record(Change::Routers(vec![r.id.clone()]));
    w.commit().await?;
    Ok(Json(interface_info(&r, &port)))
}

/// `PUT /v2.0/routers/{id}/remove_router_interface`: the interface port goes.
pub async fn remove_interface(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let (subnet_id, port_id) = interface_target(&body)?;
    let mut w = Txn::begin(&net).await?;
    let mut r = visible_router(&net, w.conn(), &auth, &id).await?;
    let interfaces = router_ports(&net, w.conn(), &id, INTERFACE).await?;
    let port = match (&subnet_id, &port_id) {
        (Some(sid), _) => {
            interfaces.into_iter().find(|p| ports::fixed_ips(p).iter().any(|(s, _)| s == sid)).ok_or_else(|| {
                NetworkError::not_found(
                    "RouterInterfaceNotFoundForSubnet",
                    format!("Router {id} has no interface on subnet {sid}"),
                )
            })?
        }
        (None, Some(pid)) => interfaces.into_iter().find(|p| &p.id == pid).ok_or_else(|| {
            NetworkError::not_found(
                "RouterInterfaceNotFound",
                format!("Router {id} does not have an interface with id {pid}"),
            )
        })?,
        (None, None) => unreachable!("interface_target requires one"),
    };
    let subnets: Vec<String> = ports::fixed_ips(&port).into_iter().map(|(s, _)| s).collect();
    // Floating IPs reaching ports on these subnets through this router hold it.
    for f in net.store.list_in(w.conn(), &FLOATINGIP, None).await? {
        if f.str("router_id") != Some(id.as_str()) {
            continue;
        }
        if let Some(fixed) = f.str("fixed_ip_address").and_then(|x| x.parse::<IpAddr>().ok()) {
            for sid in &subnets {
                if let Some(s) = net.store.find_in(w.conn(), &SUBNET, sid).await? {
                    if s.str("cidr").and_then(|c| c.parse::<IpNet>().ok()).is_some_and(|c| c.contains(&fixed)) {
                        return Err(NetworkError::conflict(
                            "RouterInterfaceInUseByFloatingIP",
                            format!("Router interface for subnet {sid} on router {id} cannot be deleted, as it is required by one or more floating IPs."),
                        )
                        .into());
                    }
                }
            }
        }
    }
    // So do routes whose next hop only this interface reaches.
    let routes = r.attrs.get("routes").and_then(Value::as_array).cloned().unwrap_or_default();
    for sid in &subnets {
        if let Some(s) = net.store.find_in(w.conn(), &SUBNET, sid).await? {
            if let Some(c) = s.str("cidr").and_then(|c| c.parse::<IpNet>().ok()) {
                if routes.iter().any(|rt| {
                    rt.get("nexthop")
                        .and_then(Value::as_str)
                        .and_then(|h| h.parse::<IpAddr>().ok())
                        .is_some_and(|h| c.contains(&h))
                }) {
                    return Err(NetworkError::conflict(
                        "RouterInterfaceInUseByRoute",
                        format!("Router interface for subnet {sid} on router {id} cannot be deleted, as it is required by one or more routes."),
                    )
                    .into());
                }
            }
        }
    }
    let info = interface_info(&r, &port);
    ports::delete_in(&net, w.conn(), &port).await?;
    r.touch();
    net.store.update(w.conn(), &ROUTER, &r).await?;
    w.record(Change::PortDeleted(port.clone()));
    w.commit().await?;
    Ok(Json(info))
}
