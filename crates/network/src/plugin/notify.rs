//! What the plugin tells the agents, after its transaction commits: each
//! [`Change`] becomes the notifications Neutron's agents expect — port
//! updates for the port's host, port deletes, l2population's entries where a
//! port was up, security group rule and member updates, the DHCP agents'
//! network, subnet and port events, and the L3 agents' router updates.

use serde_json::{json, Value};

use super::ports::fixed_ips;
use crate::agents::DhcpEvent;
use crate::ml2::mechanisms::PortContext;
use crate::store::Record;
use crate::Network;

/// One change a plugin operation made, told once it has committed.
#[derive(Debug, Clone)]
pub enum Change {
    /// A port made (`before` is `None`) or changed.
    Port {
        before: Option<Record>,
        after: Record,
    },
    PortDeleted(Record),
    /// A port's status changed (its agent wired or unwired it): only the
    /// mechanism drivers hear of it, not the agent that reported it.
    PortStatus {
        before: Record,
        after: Record,
    },
    /// A port's addresses changed with its subnet (one made or deleted).
    PortAddresses(Record),
    Network {
        created: bool,
        network: Record,
    },
    NetworkDeleted(String),
    Subnet {
        created: bool,
        subnet: Record,
    },
    SubnetDeleted(Record),
    /// These groups' rules changed.
    SecurityGroupRules(Vec<String>),
    /// These routers changed (ports, gateway, routes, floating IPs).
    Routers(Vec<String>),
    RouterDeleted(String),
}

/// A record as agents see it: its attributes, id and project.
fn shown(r: &Record) -> Value {
    let mut m = r.attrs.clone();
    m.retain(|k, _| !k.starts_with('_'));
    m.insert("id".into(), json!(r.id));
    m.insert("project_id".into(), json!(r.project_id));
    m.insert("tenant_id".into(), json!(r.project_id));
    Value::Object(m)
}

/// The router a port belongs to, if it is one of a router's.
fn router_of(port: &Record) -> Option<String> {
    let owner = port.str("device_owner").unwrap_or_default();
    let device = port.str("device_id").unwrap_or_default();
    (owner.starts_with("network:router_") && !device.is_empty()).then(|| device.to_string())
}

/// Tells the agents about committed changes, in order, then the mechanism
/// drivers about the port changes among them, together. Notifications are
/// casts: an agent that misses one catches up when it resyncs.
pub async fn publish(net: &Network, changes: Vec<Change>) {
    let contexts: Vec<PortContext> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Port { before, after } => Some(PortContext { original: before.as_ref(), current: Some(after) }),
            Change::PortDeleted(p) => Some(PortContext { original: Some(p), current: None }),
            Change::PortStatus { before, after } => Some(PortContext { original: Some(before), current: Some(after) }),
            _ => None,
        })
        .collect();
    for change in changes.iter().cloned() {
        match change {
            Change::Port { before: None, after } => {
                if after.str("_segment_id").is_some() {
                    port_update(net, &after).await;
                }
                members(net, None, Some(&after)).await;
                net.notifier.dhcp(DhcpEvent::PortCreate, json!({"port": shown(&after)})).await;
            }
            Change::Port { before: Some(before), after } => {
                members(net, Some(&before), Some(&after)).await;
                port_update(net, &after).await;
                net.notifier.dhcp(DhcpEvent::PortUpdate, json!({"port": shown(&after)})).await;
            }
            Change::PortDeleted(port) => {
                let network_id = port.str("network_id").unwrap_or_default();
                net.notifier.port_delete(&port.id, network_id).await;
                members(net, Some(&port), None).await;
                let payload = json!({"port_id": port.id, "network_id": network_id});
                net.notifier.dhcp(DhcpEvent::PortDelete, payload).await;
                if let Some(router) = router_of(&port) {
                    net.notifier.routers_updated(vec![router]).await;
                }
            }
            Change::PortStatus { .. } => {}
            Change::PortAddresses(port) => {
                port_update(net, &port).await;
                let groups = port.attrs.get("security_groups").and_then(Value::as_array).cloned().unwrap_or_default();
                let groups: Vec<String> = groups.iter().filter_map(Value::as_str).map(String::from).collect();
                if !groups.is_empty() {
                    net.notifier.security_groups_member_updated(&groups).await;
                }
                net.notifier.dhcp(DhcpEvent::PortUpdate, json!({"port": shown(&port)})).await;
            }
            Change::Network { created, network } => {
                let payload = json!({"network": shown(&network)});
                if created {
                    net.notifier.dhcp(DhcpEvent::NetworkCreate, payload).await;
                } else {
                    net.notifier.network_update(&shown(&network)).await;
                    net.notifier.dhcp(DhcpEvent::NetworkUpdate, payload).await;
                }
            }
            Change::NetworkDeleted(id) => {
                net.notifier.network_delete(&id).await;
                net.notifier.dhcp(DhcpEvent::NetworkDelete, json!({"network_id": id})).await;
            }
            Change::Subnet { created, subnet } => {
                let event = if created { DhcpEvent::SubnetCreate } else { DhcpEvent::SubnetUpdate };
                net.notifier.dhcp(event, json!({"subnet": shown(&subnet)})).await;
            }
            Change::SubnetDeleted(subnet) => {
                let payload = json!({"subnet_id": subnet.id, "network_id": subnet.str("network_id")});
                net.notifier.dhcp(DhcpEvent::SubnetDelete, payload).await;
            }
            Change::SecurityGroupRules(groups) => net.notifier.security_groups_rule_updated(&groups).await,
            Change::Routers(routers) if routers.is_empty() => {}
            Change::Routers(routers) => net.notifier.routers_updated(routers).await,
            Change::RouterDeleted(id) => net.notifier.router_deleted(&id).await,
        }
    }
    net.ml2.ports_postcommit(net, &contexts).await;
}

/// Tells the agents a port changed (they wire the ports bound on their host).
pub async fn port_update(net: &Network, port: &Record) {
    let segment = match port.str("_segment_id") {
        Some(sid) => net
            .store
            .segments(port.str("network_id").unwrap_or_default())
            .await
            .ok()
            .and_then(|s| s.into_iter().find(|x| x.id == sid)),
        None => None,
    };
    net.notifier.port_update(&shown(port), segment.as_ref()).await;
}

/// A port joined or left groups, or its addresses changed: the agents
/// refresh the rules that name those groups as remote.
async fn members(net: &Network, before: Option<&Record>, after: Option<&Record>) {
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
