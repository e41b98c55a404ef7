//! `/v2.0/ports`: a device's attachment to a network — its MAC, its addresses
//! (from IPAM), its security groups, and its binding to a host (by ML2).

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use db::AnyConnection;
use rand::Rng;
use serde_json::{json, Map, Value};

use super::attrs::{self, create_only, read_only, writable, Access, Attr, Check, Default, Resource};
use super::common::{self, is_admin, owner};
use super::query::ListQuery;
use super::quotas::check_quota;
use crate::error::{NetworkError, Result};
use crate::ipam::allocate::{self, FixedIpRequest, SubnetView};
use crate::ipam::eui64;
use crate::store::{self, Record, FLOATINGIP, NETWORK, PORT};
use crate::Network;

const VNIC_TYPES: &[&str] = &[
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "remote-managed",
    "vdpa",
];

const fn binding(name: &'static str, post: bool, default: Default, check: Check) -> Attr {
    Attr { name, post, put: post, default, check, filter: true, sort: false, access: Access::AdminOnly }
}

pub const RESOURCE: Resource = Resource {
    singular: "port",
    plural: "ports",
    attrs: &[
        writable("name", Default::Str(""), Check::Str(255)),
        create_only("network_id", Default::Required, Check::Uuid),
        writable("admin_state_up", Default::Bool(true), Check::Bool),
        writable("mac_address", Default::Computed, Check::Mac),
        writable("fixed_ips", Default::Computed, Check::List),
        writable("device_id", Default::Str(""), Check::Str(255)),
        writable("device_owner", Default::Str(""), Check::Str(255)),
        read_only("status", true),
        writable("security_groups", Default::Computed, Check::List),
        writable("port_security_enabled", Default::Computed, Check::Bool),
        writable("allowed_address_pairs", Default::EmptyList, Check::List),
        writable("extra_dhcp_opts", Default::EmptyList, Check::List),
        binding("binding:host_id", true, Default::Str(""), Check::Str(255)),
        binding("binding:profile", true, Default::EmptyObject, Check::Object),
        binding("binding:vif_type", false, Default::Computed, Check::Any),
        binding("binding:vif_details", false, Default::Computed, Check::Any),
        writable("binding:vnic_type", Default::Str("normal"), Check::OneOf(VNIC_TYPES, false)),
    ],
};

/// Device owners whose ports the L3 service manages; users may not delete them.
const ROUTER_OWNERS: &[&str] = &[
    "network:router_interface",
    "network:router_gateway",
    "network:floatingip",
    "network:router_interface_distributed",
];

/// Whether the caller may see the port: its owner, the network's owner, admins.
pub fn port_visible(auth: &Auth, port: &Record, networks: &HashMap<String, Record>) -> bool {
    common::owns(auth, &port.project_id)
        || networks
            .get(port.str("network_id").unwrap_or_default())
            .is_some_and(|n| !n.project_id.is_empty() && common::owns(auth, &n.project_id))
}

pub fn render(port: &Record, tags: &HashMap<String, Vec<String>>, admin: bool) -> Map<String, Value> {
    common::shown(&RESOURCE, port, tags, admin)
}

/// A MAC with the configured prefix and random remaining octets.
fn random_mac(base: &str) -> String {
    let base: Vec<u8> = base.split(':').filter_map(|o| u8::from_str_radix(o, 16).ok()).collect();
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|i| match base.get(i) {
            Some(b) if *b != 0 || i < 3 => format!("{b:02x}"),
            _ => format!("{:02x}", rng.gen::<u8>()),
        })
        .collect::<Vec<_>>()
        .join(":")
}

async fn mac_taken(net: &Network, conn: &mut AnyConnection, network_id: &str, mac: &str) -> Result<bool> {
    // By the indexed MAC column: a handful of rows, not the whole network.
    Ok(net
        .store
        .list_in(conn, &PORT, Some(("mac_address", mac)))
        .await?
        .iter()
        .any(|p| p.str("network_id") == Some(network_id)))
}

/// Validates allowed address pairs: an address or CIDR each, the MAC defaulting
/// to the port's, no duplicates.
fn address_pairs(v: &Value, mac: &str) -> Result<Value> {
    let bad = |m: String| {
        NetworkError::invalid("HTTPBadRequest", format!("Invalid input for allowed_address_pairs. Reason: {m}."))
    };
    let items = v.as_array().ok_or_else(|| bad(format!("'{v}' is not a list")))?;
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        let o = item.as_object().ok_or_else(|| bad(format!("'{item}' is not a dictionary")))?;
        if let Some(k) = o.keys().find(|k| *k != "ip_address" && *k != "mac_address") {
            return Err(bad(format!("Unrecognized attribute(s) '{k}'")));
        }
        let ip = o.get("ip_address").and_then(Value::as_str).ok_or_else(|| {
            NetworkError::invalid("AllowedAddressPairsMissingIP", "AllowedAddressPair must contain ip_address")
        })?;
        if ip.parse::<std::net::IpAddr>().is_err() && ip.parse::<ipnet::IpNet>().is_err() {
            return Err(bad(format!("'{ip}' is not a valid IP address")));
        }
        let pair_mac = match o.get("mac_address") {
            None | Some(Value::Null) => mac.to_string(),
            Some(Value::String(m)) if attrs::is_mac(m) => m.to_ascii_lowercase(),
            Some(other) => return Err(bad(format!("'{other}' is not a valid MAC address"))),
        };
        let pair = json!({"ip_address": ip, "mac_address": pair_mac});
        if out.contains(&pair) {
            return Err(NetworkError::invalid(
                "DuplicateAddressPairInRequest",
                format!("Request contains duplicate address pair: mac_address {pair_mac} ip_address {ip}."),
            ));
        }
        out.push(pair);
    }
    Ok(Value::Array(out))
}

fn dhcp_opts(v: &Value) -> Result<Value> {
    let bad =
        |m: String| NetworkError::invalid("HTTPBadRequest", format!("Invalid input for extra_dhcp_opts. Reason: {m}."));
    let items = v.as_array().ok_or_else(|| bad(format!("'{v}' is not a list")))?;
    let mut out = Vec::new();
    for item in items {
        let name = item
            .get("opt_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(format!("'{item}' has no opt_name")))?;
        let value = item.get("opt_value").cloned().unwrap_or(Value::Null);
        let version = item
            .get("ip_version")
            .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(4);
        if version != 4 && version != 6 {
            return Err(bad(format!("ip_version '{version}' is not 4 or 6")));
        }
        out.push(json!({"opt_name": name, "opt_value": value, "ip_version": version}));
    }
    Ok(Value::Array(out))
}

/// The security groups a port asks for (each must exist and be the project's,
/// unless the caller is an admin), or the project's default group.
async fn security_groups(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    project: &str,
    requested: Option<&Value>,
    device_owner: &str,
) -> Result<Vec<String>> {
    match requested {
        Some(Value::Array(ids)) => {
            let mut out = Vec::new();
            for id in ids {
                let id = id.as_str().ok_or_else(|| {
                    NetworkError::invalid(
                        "HTTPBadRequest",
                        format!("Invalid input for security_groups. Reason: '{id}' is not a valid UUID."),
                    )
                })?;
                let sg = super::security_groups::visible_group(net, conn, auth, id).await?;
                if !out.contains(&sg.id) {
                    out.push(sg.id);
                }
            }
            Ok(out)
        }
        Some(Value::Null) | None if device_owner.starts_with("network:") => Ok(Vec::new()),
        Some(Value::Null) | None => Ok(vec![super::security_groups::default_group(net, conn, project).await?]),
        Some(other) => Err(NetworkError::invalid(
            "HTTPBadRequest",
            format!("Invalid input for security_groups. Reason: '{other}' is not a list."),
        )),
    }
}

/// Binds the port on its `binding:host_id` through ML2: the first mechanism
/// driver with an alive agent there that can wire one of the network's
/// segments. Without a host the port is `unbound`; with no suitable agent,
/// `binding_failed`.
pub async fn bind(net: &Network, conn: &mut AnyConnection, port: &mut Record) -> Result<()> {
    let host = port.str("binding:host_id").unwrap_or_default().to_string();
    let (vif_type, vif_details, segment) = if host.is_empty() {
        ("unbound".to_string(), json!({}), None)
    } else {
        let segments = net.store.segments_in(conn, port.str("network_id").unwrap_or_default()).await?;
        let agents = super::agents::alive_on(net, conn, &host).await?;
        match net.ml2.bind(&segments, &agents) {
            Some(b) => (b.vif_type.to_string(), b.vif_details, Some(b.segment_id)),
            None => {
                let reason = crate::ml2::binding_failure(&segments, &agents);
                tracing::warn!(port = %port.id, host, reason, "no mechanism driver could bind the port");
                ("binding_failed".to_string(), json!({}), None)
            }
        }
    };
    port.attrs.insert("binding:vif_type".into(), json!(vif_type));
    port.attrs.insert("binding:vif_details".into(), vif_details);
    match segment {
        Some(s) => port.attrs.insert("_segment_id".into(), json!(s)),
        None => port.attrs.remove("_segment_id"),
    };
    if is_bound(Some(&vif_type)) {
        // Down until the host's agent has wired it and says so.
        port.attrs.insert("status".into(), json!("DOWN"));
    }
    Ok(())
}

pub use network_rpc::is_bound;

/// Tells the agents a port changed (they wire the ports bound on their host).
pub async fn notify_port(net: &Network, port: &Record) {
    let segment = match port.str("_segment_id") {
        Some(sid) => net
            .store
            .segments(port.str("network_id").unwrap_or_default())
            .await
            .ok()
            .and_then(|s| s.into_iter().find(|x| x.id == sid)),
        None => None,
    };
    let shown = Value::Object(render(port, &HashMap::new(), true));
    net.notifier.port_update(&shown, segment.as_ref()).await;
}

/// What a port create needs beyond its validated attributes.
pub struct NewPort {
    pub attrs: Map<String, Value>,
    pub project: String,
    /// `fixed_ips` as requested, or `None` for Neutron's defaults.
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
}

/// Creates a port inside the caller's transaction: MAC, addresses, security
/// groups, binding. Used by the ports API and by the L3 service for its own
/// ports.
pub async fn create_in(net: &Network, conn: &mut AnyConnection, auth: &Auth, p: NewPort) -> Result<Record> {
    let NewPort { mut attrs, project, fixed_ips } = p;
    let network_id = attrs.get("network_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let network = net.store.get_in(conn, &NETWORK, &network_id).await?;
    let id = common::new_id();
    let mac = match attrs.get("mac_address").and_then(Value::as_str) {
        Some(m) => {
            if mac_taken(net, conn, &network_id, m).await? {
                return Err(NetworkError::conflict(
                    "MacAddressInUse",
                    format!("Unable to complete operation for network {network_id}. The mac address {m} is in use."),
                ));
            }
            m.to_string()
        }
        None => loop {
            let m = random_mac(&net.config.base_mac);
            if !mac_taken(net, conn, &network_id, &m).await? {
                break m;
            }
        },
    };
    let device_owner = attrs.get("device_owner").and_then(Value::as_str).unwrap_or_default().to_string();
    let port_security = attrs
        .get("port_security_enabled")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| network.attrs.get("port_security_enabled").and_then(Value::as_bool).unwrap_or(true));
    let groups = if port_security {
        security_groups(net, conn, auth, &project, attrs.get("security_groups"), &device_owner).await?
    } else {
        if attrs.get("security_groups").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
            return Err(NetworkError::conflict(
                "PortSecurityAndIPRequiredForSecurityGroups",
                "Port security must be enabled and port must have an IP address in order to use security groups.",
            ));
        }
        Vec::new()
    };
    let pairs = address_pairs(attrs.get("allowed_address_pairs").unwrap_or(&json!([])), &mac)?;
    if !port_security && pairs.as_array().is_some_and(|a| !a.is_empty()) {
        return Err(NetworkError::conflict(
            "AddressPairAndPortSecurityRequired",
            "Port Security must be enabled in order to have allowed address pairs on a port.",
        ));
    }
    let opts = dhcp_opts(attrs.get("extra_dhcp_opts").unwrap_or(&json!([])))?;
    let fixed =
        allocate::allocate(&net.store, conn, &network_id, &id, &mac, &device_owner, fixed_ips.as_deref(), &[]).await?;
    attrs.insert("mac_address".into(), json!(mac));
    attrs.insert("fixed_ips".into(), Value::Array(fixed));
    attrs.insert("security_groups".into(), json!(groups));
    attrs.insert("port_security_enabled".into(), json!(port_security));
    attrs.insert("allowed_address_pairs".into(), pairs);
    attrs.insert("extra_dhcp_opts".into(), opts);
    attrs.insert("status".into(), json!("DOWN"));
    attrs.entry("binding:host_id").or_insert(json!(""));
    attrs.entry("binding:profile").or_insert(json!({}));
    attrs.entry("binding:vnic_type").or_insert(json!("normal"));
    let mut rec = Record::new(id, project, attrs);
    bind(net, conn, &mut rec).await?;
    net.store.insert(conn, &PORT, &rec).await?;
    Ok(rec)
}

/// Creates one port from a request body inside the caller's transaction.
async fn create_one(net: &Network, conn: &mut AnyConnection, auth: &Auth, body: Map<String, Value>) -> Result<Record> {
    let admin = is_admin(auth);
    let mut a = attrs::for_create(&RESOURCE, body, admin)?;
    let project = owner(auth, &mut a)?;
    let network_id = a.get("network_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let fixed_ips = match a.remove("fixed_ips") {
        None | Some(Value::Null) => None,
        Some(v) => Some(allocate::parse_requests(&v)?),
    };
    let network = match net.store.find_in(conn, &NETWORK, &network_id).await? {
        Some(n) if super::networks::visible_to(auth, &n) => n,
        _ => return Err(store::not_found(&NETWORK, &network_id)),
    };
    if !admin && network.project_id != project && !network.flag("shared") {
        return Err(NetworkError::forbidden(format!("(create_port) is disallowed by policy on network {network_id}")));
    }
    check_quota(net, conn, &PORT, &project, 1).await?;
    create_in(net, conn, auth, NewPort { attrs: a, project, fixed_ips }).await
}

/// `POST /v2.0/ports`, one port or a bulk list (in one transaction).
pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (bodies, bulk) = common::bodies(body, &RESOURCE)?;
    let mut w = net.store.begin().await?;
    let mut created = Vec::new();
    for b in bodies {
        created.push(create_one(&net, w.conn(), &auth, b).await?);
    }
    w.commit().await?;
    for p in created.iter().filter(|p| p.str("_segment_id").is_some()) {
        notify_port(&net, p).await;
    }
    for p in &created {
        notify_members(&net, None, Some(p)).await;
    }
    let admin = is_admin(&auth);
    let items = created.iter().map(|r| render(r, &HashMap::new(), admin)).collect();
    Ok((StatusCode::CREATED, Json(common::created(&RESOURCE, items, bulk))))
}

pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let admin = is_admin(&auth);
    let networks: HashMap<String, Record> =
        net.store.list(&NETWORK, None).await?.into_iter().map(|n| (n.id.clone(), n)).collect();
    let tags = super::tags::all(&net).await?;
    // The common filters narrow the database read; the rest filter in memory.
    let by = q
        .filter("device_id")
        .and_then(|v| (v.len() == 1).then(|| ("device_id", v[0].as_str())))
        .or_else(|| q.filter("network_id").and_then(|v| (v.len() == 1).then(|| ("network_id", v[0].as_str()))));
    let items = net
        .store
        .list(&PORT, by)
        .await?
        .iter()
        .filter(|p| port_visible(&auth, p, &networks))
        .map(|p| render(p, &tags, admin))
        .collect();
    common::many(&RESOURCE, &base, items, &q)
}

pub async fn visible_port(net: &Network, auth: &Auth, id: &str) -> Result<Record> {
    let p = net.store.find(&PORT, id).await?.ok_or_else(|| store::not_found(&PORT, id))?;
    let network = net.store.find(&NETWORK, p.str("network_id").unwrap_or_default()).await?;
    let networks: HashMap<String, Record> = network.into_iter().map(|n| (n.id.clone(), n)).collect();
    if port_visible(auth, &p, &networks) {
        Ok(p)
    } else {
        Err(store::not_found(&PORT, id))
    }
}

pub async fn show(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let p = visible_port(&net, &auth, &id).await?;
    let tags = super::tags::all(&net).await?;
    Ok(common::one(&RESOURCE, render(&p, &tags, is_admin(&auth)), &q))
}

/// Applies a validated update to a port inside the caller's transaction.
pub async fn update_in(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    port: &mut Record,
    mut changes: Map<String, Value>,
) -> Result<()> {
    let admin = is_admin(auth);
    let network_id = port.str("network_id").unwrap_or_default().to_string();
    let mac = port.str("mac_address").unwrap_or_default().to_string();
    if let Some(m) = changes.remove("mac_address") {
        let m = m.as_str().unwrap_or_default().to_string();
        if m != mac {
            if !admin {
                return Err(attrs::policy_refused("update", &RESOURCE, "mac_address"));
            }
            if is_bound(port.str("binding:vif_type")) {
                return Err(NetworkError::conflict(
                    "PortBound",
                    format!("Unable to complete operation on port {}, port is already bound.", port.id),
                ));
            }
            if mac_taken(net, conn, &network_id, &m).await? {
                return Err(NetworkError::conflict(
                    "MacAddressInUse",
                    format!("Unable to complete operation for network {network_id}. The mac address {m} is in use."),
                ));
            }
            port.attrs.insert("mac_address".into(), json!(m));
        }
    }
    if let Some(v) = changes.remove("fixed_ips") {
        let requests = allocate::parse_requests(&v)?;
        let current: Vec<(String, String)> = fixed_ips(port);
        let owner = port.str("device_owner").unwrap_or_default().to_string();
        let mac = port.str("mac_address").unwrap_or_default().to_string();
        let new = allocate::allocate(&net.store, conn, &network_id, &port.id, &mac, &owner, Some(&requests), &current)
            .await?;
        let kept: Vec<(String, String)> = new
            .iter()
            .map(|f| {
                (
                    f["subnet_id"].as_str().unwrap_or_default().to_string(),
                    f["ip_address"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        for (sid, ip) in &current {
            if !kept.contains(&(sid.clone(), ip.clone())) {
                net.store.release_ip(conn, sid, ip).await?;
            }
        }
        port.attrs.insert("fixed_ips".into(), Value::Array(new));
    }
    let project = port.project_id.clone();
    let owner = port.str("device_owner").unwrap_or_default().to_string();
    let port_security = changes
        .get("port_security_enabled")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| port.flag("port_security_enabled"));
    if let Some(v) = changes.remove("security_groups") {
        let groups = security_groups(net, conn, auth, &project, Some(&v), &owner).await?;
        port.attrs.insert("security_groups".into(), json!(groups));
    }
    if let Some(v) = changes.remove("allowed_address_pairs") {
        let mac = port.str("mac_address").unwrap_or_default().to_string();
        let pairs = if v.is_null() { json!([]) } else { address_pairs(&v, &mac)? };
        port.attrs.insert("allowed_address_pairs".into(), pairs);
    }
    if let Some(v) = changes.remove("extra_dhcp_opts") {
        let opts = if v.is_null() { json!([]) } else { dhcp_opts(&v)? };
        port.attrs.insert("extra_dhcp_opts".into(), opts);
    }
    if !port_security {
        if port.attrs.get("security_groups").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
            return Err(NetworkError::conflict("PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or ip address until security group is removed."));
        }
        if port.attrs.get("allowed_address_pairs").and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
            return Err(NetworkError::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            ));
        }
    }
    let rebind = changes.contains_key("binding:host_id");
    for (k, v) in changes {
        port.attrs.insert(k, v);
    }
    if rebind {
        bind(net, conn, port).await?;
    }
    port.touch();
    net.store.update(conn, &PORT, port).await?;
    Ok(())
}

pub fn fixed_ips(port: &Record) -> Vec<(String, String)> {
    port.attrs
        .get("fixed_ips")
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .map(|f| {
                    (
                        f["subnet_id"].as_str().unwrap_or_default().to_string(),
                        f["ip_address"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let admin = is_admin(&auth);
    let changes = attrs::for_update(&RESOURCE, attrs::body_object(body, &RESOURCE)?, admin)?;
    visible_port(&net, &auth, &id).await?;
    let mut w = net.store.begin().await?;
    let mut port = net.store.get_in(w.conn(), &PORT, &id).await?;
    let before = port.clone();
    update_in(&net, w.conn(), &auth, &mut port, changes).await?;
    w.commit().await?;
    notify_port_moved(&net, &before, &port).await;
    notify_members(&net, Some(&before), Some(&port)).await;
    notify_port(&net, &port).await;
    let tags = super::tags::all(&net).await?;
    Ok(Json(json!({"port": render(&port, &tags, admin)})))
}

/// Deletes a port: its addresses are released, floating IPs on it let go.
pub async fn delete_port(net: &Network, port: &Record) -> Result<()> {
    let mut w = net.store.begin().await?;
    delete_in(net, w.conn(), port).await?;
    w.commit().await?;
    notify_port_gone(net, port).await;
    Ok(())
}

/// Tells the agents a port is gone: its host unwires it, and where it was up
/// the other hosts forget it (l2population).
pub async fn notify_port_gone(net: &Network, port: &Record) {
    net.notifier.port_delete(&port.id, port.str("network_id").unwrap_or_default()).await;
    forget_where_it_was(net, port).await;
    notify_members(net, Some(port), None).await;
}

/// A port joined or left groups, or its addresses changed: the agents
/// refresh the rules that name those groups as remote.
pub async fn notify_members(net: &Network, before: Option<&Record>, after: Option<&Record>) {
    fn membership(p: Option<&Record>) -> (Vec<String>, Vec<(String, String)>, Option<&Value>) {
        let groups = p
            .and_then(|p| p.attrs.get("security_groups"))
            .and_then(Value::as_array)
            .map(|g| g.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        (groups, p.map(fixed_ips).unwrap_or_default(), p.and_then(|p| p.attrs.get("allowed_address_pairs")))
    }
    let (was, is) = (membership(before), membership(after));
    if was == is {
        return;
    }
    let mut groups = was.0;
    groups.extend(is.0.into_iter().filter(|g| !groups.contains(g)).collect::<Vec<_>>());
    if !groups.is_empty() {
        net.notifier.security_groups_member_updated(&groups).await;
    }
}

/// A port that was up and is no longer up where it was (unbound, moved to
/// another host, or down): the other hosts forget where it was.
pub async fn notify_port_moved(net: &Network, before: &Record, after: &Record) {
    let same_place = before.str("binding:host_id") == after.str("binding:host_id")
        && after.str("status") == Some("ACTIVE")
        && before.str("mac_address") == after.str("mac_address")
        && fixed_ips(before) == fixed_ips(after);
    if !same_place {
        forget_where_it_was(net, before).await;
    }
}

async fn forget_where_it_was(net: &Network, port: &Record) {
    if port.str("status") != Some("ACTIVE") {
        return;
    }
    match crate::agents::rpc::fdb_entry(net, port, &mut HashMap::new()).await {
        Ok(Some(entry)) => net.notifier.remove_fdb_entries(vec![entry]).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(port = %port.id, error = %e, "cannot tell the agents the port went"),
    }
}

pub async fn delete_in(net: &Network, conn: &mut AnyConnection, port: &Record) -> Result<()> {
    for mut fip in net.store.list_in(conn, &FLOATINGIP, Some(("port_id", &port.id))).await? {
        for key in ["port_id", "fixed_ip_address", "router_id", "port_details"] {
            fip.attrs.insert(key.into(), Value::Null);
        }
        fip.attrs.insert("status".into(), json!("DOWN"));
        fip.touch();
        net.store.update(conn, &FLOATINGIP, &fip).await?;
    }
    net.store.release_port_ips(conn, &port.id).await?;
    net.store.set_tags(conn, &port.id, &[]).await?;
    net.store.delete(conn, &PORT, &port.id).await?;
    Ok(())
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let port = visible_port(&net, &auth, &id).await?;
    let owner = port.str("device_owner").unwrap_or_default();
    if ROUTER_OWNERS.contains(&owner) && !port.str("device_id").unwrap_or_default().is_empty() {
        return Err(NetworkError::conflict(
            "ServicePortInUse",
            format!("Port {id} cannot be deleted directly via the port API: has device owner {owner}."),
        )
        .into());
    }
    delete_port(&net, &port).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Before a network is deleted: the ports the network itself owns (DHCP) go.
pub async fn delete_network_owned_ports(net: &Network, network_id: &str) -> Result<()> {
    for p in net.store.list(&PORT, Some(("network_id", network_id))).await? {
        if p.str("device_owner") == Some("network:dhcp") {
            delete_port(net, &p).await?;
        }
    }
    Ok(())
}

/// A new SLAAC subnet gives every port already on the network (but router
/// ports) its EUI-64 address there. Returns the ports changed.
pub async fn add_auto_addresses(net: &Network, conn: &mut AnyConnection, subnet: &Record) -> Result<Vec<Record>> {
    let Some(view) = SubnetView::from_record(subnet) else { return Ok(Vec::new()) };
    let mut changed = Vec::new();
    for mut port in net.store.list_in(conn, &PORT, Some(("network_id", &view.network_id))).await? {
        let owner = port.str("device_owner").unwrap_or_default();
        if owner.starts_with("network:router_interface") || owner == "network:router_gateway" {
            continue;
        }
        let Some(ip) = eui64(&view.cidr, port.str("mac_address").unwrap_or_default()) else { continue };
        net.store.claim_ip(conn, &view.network_id, &view.id, &ip.to_string(), &port.id).await?;
        if let Some(Value::Array(fixed)) = port.attrs.get_mut("fixed_ips") {
            fixed.push(json!({"subnet_id": view.id, "ip_address": ip.to_string()}));
        }
        port.touch();
        net.store.update(conn, &PORT, &port).await?;
        changed.push(port);
    }
    Ok(changed)
}
