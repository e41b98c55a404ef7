//! The core plugin's networks: ML2 makes their segments (the type drivers
//! allocate VLAN ids and VNIs) and decides their MTU; a network goes with its
//! subnets and segments, once no port but the network's own remains.

use api::Auth;
use db::AnyConnection;
use serde_json::{json, Map, Value};

use super::quotas::check_quota;
use super::{owns, Change, Txn};
use crate::error::{NetworkError, Result};
use crate::ml2::types::SegmentRequest;
use crate::store::{self, Record, NETWORK, PORT, SUBNET};
use crate::Network;

/// Whether the caller may see the network: its owner, an admin, or anyone when
/// it is shared or external.
pub fn visible_to(auth: &Auth, r: &Record) -> bool {
    owns(auth, &r.project_id) || r.flag("shared") || r.flag("router:external")
}

/// The network, if the caller may see it; 404 otherwise, as Neutron hides what
/// a project may not see.
pub async fn visible(net: &Network, auth: &Auth, id: &str) -> Result<Record> {
    match net.store.find(&NETWORK, id).await? {
        Some(r) if visible_to(auth, &r) => Ok(r),
        _ => Err(store::not_found(&NETWORK, id)),
    }
}

/// A network to create: its project, validated attributes and the segments
/// asked for (none: ML2 picks a tenant network type).
pub struct NewNetwork {
    pub project: String,
    pub attrs: Map<String, Value>,
    pub segments: Vec<SegmentRequest>,
}

/// Creates networks (a request's bulk) in one transaction.
pub async fn create(net: &Network, networks: Vec<NewNetwork>) -> Result<Vec<Record>> {
    let mut w = Txn::begin(net).await?;
    let mut created = Vec::new();
    for n in networks {
        let network = create_in(net, w.conn(), n).await?;
        w.record(Change::Network { created: true, network: network.clone() });
        created.push(network);
    }
    w.commit().await?;
    Ok(created)
}

async fn create_in(net: &Network, conn: &mut AnyConnection, n: NewNetwork) -> Result<Record> {
    let NewNetwork { project, mut attrs, segments: requests } = n;
    net.ml2.validate(&requests)?;
    let id = super::new_id();
    check_quota(net, conn, &NETWORK, &project, 1).await?;
    let segments = net.ml2.create_segments(&net.store, conn, &id, &requests).await?;
    attrs.insert("status".into(), json!("ACTIVE"));
    attrs.insert("mtu".into(), json!(net.ml2.mtu(&segments)));
    attrs.insert("availability_zones".into(), json!([]));
    attrs.insert("ipv4_address_scope".into(), Value::Null);
    attrs.insert("ipv6_address_scope".into(), Value::Null);
    let rec = Record::new(id, project, attrs);
    net.store.insert(conn, &NETWORK, &rec).await?;
    Ok(rec)
}

/// Applies validated changes to a network the caller owns. Unsharing is
/// refused while other projects have ports on it.
pub async fn update(net: &Network, auth: &Auth, id: &str, changes: Map<String, Value>) -> Result<Record> {
    let mut w = Txn::begin(net).await?;
    let mut r = match net.store.find_in(w.conn(), &NETWORK, id).await? {
        Some(r) if visible_to(auth, &r) => r,
        _ => return Err(store::not_found(&NETWORK, id)),
    };
    if !owns(auth, &r.project_id) {
        return Err(NetworkError::forbidden(format!("(update_network) is disallowed by policy for network {id}")));
    }
    if changes.get("shared") == Some(&Value::Bool(false)) && r.flag("shared") {
        let others = net.store.list_in(w.conn(), &PORT, Some(("network_id", id))).await?;
        if others.iter().any(|p| p.project_id != r.project_id && p.str("device_owner") != Some("network:dhcp")) {
            return Err(NetworkError::conflict(
                "InvalidSharedSetting",
                format!("Unable to reconfigure sharing settings for network {id}. Multiple tenants are using it."),
            ));
        }
    }
    for (k, v) in changes {
        r.attrs.insert(k, v);
    }
    r.touch();
    net.store.update(w.conn(), &NETWORK, &r).await?;
    w.record(Change::Network { created: false, network: r.clone() });
    w.commit().await?;
    Ok(r)
}

/// Deletes a network: first its own ports (DHCP) and, if external, its
/// unassociated floating IPs; refused while other ports remain.
pub async fn delete(net: &Network, network: &Record) -> Result<()> {
    let id = network.id.as_str();
    super::ports::delete_network_owned_ports(net, id).await?;
    if network.flag("router:external") {
        super::floatingips::delete_unassociated(net, id).await?;
    }
    let mut w = Txn::begin(net).await?;
    let mut ports = net.store.list_in(w.conn(), &PORT, Some(("network_id", id))).await?;
    // A DHCP agent may have made its port again since (it heard of the
    // first one going): it goes in this transaction.
    for p in ports.iter().filter(|p| p.str("device_owner") == Some("network:dhcp")) {
        super::ports::delete_in(net, w.conn(), p).await?;
        w.record(Change::PortDeleted(p.clone()));
    }
    ports.retain(|p| p.str("device_owner") != Some("network:dhcp"));
    if !ports.is_empty() {
        return Err(NetworkError::conflict(
            "NetworkInUse",
            format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network."),
        ));
    }
    for s in net.store.list_in(w.conn(), &SUBNET, Some(("network_id", id))).await? {
        net.store.set_tags(w.conn(), &s.id, &[]).await?;
        net.store.delete(w.conn(), &SUBNET, &s.id).await?;
    }
    net.store.release_segments(w.conn(), id).await?;
    net.store.unbind_resource(w.conn(), id).await?;
    net.store.set_tags(w.conn(), id, &[]).await?;
    net.store.delete(w.conn(), &NETWORK, id).await?;
    w.record(Change::NetworkDeleted(id.to_string()));
    w.commit().await
}
