//! The core plugin's ports (ML2's part of Neutron's `Ml2Plugin`): a port's
//! MAC, its addresses from IPAM, its security groups and allowed address
//! pairs, and its binding to a host by the mechanism drivers. `create`,
//! `update` and `delete` own their transaction and tell the agents after it
//! commits; the `_in` functions work inside a caller's transaction (the L3
//! service's own ports, subnets adding addresses) and leave telling to it.

use api::Auth;
use db::AnyConnection;
use rand::Rng;
use serde_json::{json, Map, Value};

use super::quotas::check_quota;
use super::{Change, Txn};
use crate::error::{NetworkError, Result};
use crate::ipam::allocate::{self, FixedIpRequest, SubnetView};
use crate::ipam::eui64;
use crate::store::{self, Record, FLOATINGIP, NETWORK, PORT};
use crate::Network;

/// Creates ports (a request's bulk, in one transaction): each on a network
/// the caller may use, within the project's quota.
pub async fn create(net: &Network, auth: &Auth, ports: Vec<NewPort>) -> Result<Vec<Record>> {
    let mut txn = Txn::begin(net).await?;
    let mut created = Vec::new();
    for p in ports {
        let network_id = p.attrs.get("network_id").and_then(Value::as_str).unwrap_or_default().to_string();
        let network = match net.store.find_in(txn.conn(), &NETWORK, &network_id).await? {
            Some(n) if super::networks::visible_to(auth, &n) => n,
            _ => return Err(store::not_found(&NETWORK, &network_id)),
        };
        if !auth.is_admin() && network.project_id != p.project && !network.flag("shared") {
            return Err(NetworkError::forbidden(format!(
                "(create_port) is disallowed by policy on network {network_id}"
            )));
        }
        check_quota(net, txn.conn(), &PORT, &p.project, 1).await?;
        let port = create_in(net, txn.conn(), auth, p).await?;
        txn.record(Change::Port { before: None, after: port.clone() });
        created.push(port);
    }
    txn.commit().await?;
    Ok(created)
}

/// Applies validated changes to a port (addresses, groups, binding, …).
pub async fn update(net: &Network, auth: &Auth, id: &str, changes: Map<String, Value>) -> Result<Record> {
    let mut txn = Txn::begin(net).await?;
    let mut port = net.store.get_in(txn.conn(), &PORT, id).await?;
    let before = port.clone();
    update_in(net, txn.conn(), auth, &mut port, changes).await?;
    txn.record(Change::Port { before: Some(before), after: port.clone() });
    txn.commit().await?;
    Ok(port)
}

/// Deletes a port: its addresses are released, floating IPs on it let go.
pub async fn delete(net: &Network, port: &Record) -> Result<()> {
    let mut txn = Txn::begin(net).await?;
    delete_in(net, txn.conn(), port).await?;
    txn.record(Change::PortDeleted(port.clone()));
    txn.commit().await
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
            Some(Value::String(m)) if is_mac(m) => m.to_ascii_lowercase(),
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

/// Six colon-separated octets, and not one of the two addresses no port may
/// have: all zeros and the broadcast address (neutron-lib refuses both).
pub fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    let octets: Vec<u8> =
        parts.iter().filter(|p| p.len() == 2).filter_map(|p| u8::from_str_radix(p, 16).ok()).collect();
    parts.len() == 6 && octets.len() == 6 && octets.iter().any(|o| *o != 0) && octets.iter().any(|o| *o != 0xff)
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
    let id = super::new_id();
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

/// Applies a validated update to a port inside the caller's transaction.
pub async fn update_in(
    net: &Network,
    conn: &mut AnyConnection,
    auth: &Auth,
    port: &mut Record,
    mut changes: Map<String, Value>,
) -> Result<()> {
    let network_id = port.str("network_id").unwrap_or_default().to_string();
    let mac = port.str("mac_address").unwrap_or_default().to_string();
    if let Some(m) = changes.remove("mac_address") {
        let m = m.as_str().unwrap_or_default().to_string();
        if m != mac {
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

/// Before a network is deleted: the ports the network itself owns (DHCP) go.
pub async fn delete_network_owned_ports(net: &Network, network_id: &str) -> Result<()> {
    for p in net.store.list(&PORT, Some(("network_id", network_id))).await? {
        if p.str("device_owner") == Some("network:dhcp") {
            delete(net, &p).await?;
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
