//! What the plugin tells the agents, after its transaction commits: each
//! [`Change`] becomes the notifications Neutron's agents expect — port
//! updates for the port's host, port deletes, l2population's entries where a
//! port was up, and security group member updates where a port's groups or
//! addresses changed.

use std::collections::HashMap;

use serde_json::Value;

use super::ports::fixed_ips;
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
}

/// Tells the agents about committed changes, in order. Notifications are
/// casts: an agent that misses one catches up when it resyncs.
pub async fn publish(net: &Network, changes: Vec<Change>) {
    for change in changes {
        match change {
            Change::Port { before: None, after } => {
                if after.str("_segment_id").is_some() {
                    port_update(net, &after).await;
                }
                members(net, None, Some(&after)).await;
            }
            Change::Port { before: Some(before), after } => {
                moved(net, &before, &after).await;
                members(net, Some(&before), Some(&after)).await;
                port_update(net, &after).await;
            }
            Change::PortDeleted(port) => {
                net.notifier.port_delete(&port.id, port.str("network_id").unwrap_or_default()).await;
                forget_where_it_was(net, &port).await;
                members(net, Some(&port), None).await;
            }
        }
    }
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
    let shown = Value::Object(crate::api::ports::render(port, &HashMap::new(), true));
    net.notifier.port_update(&shown, segment.as_ref()).await;
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

/// A port that was up and is no longer up where it was (unbound, moved to
/// another host, or down): the other hosts forget where it was.
async fn moved(net: &Network, before: &Record, after: &Record) {
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
