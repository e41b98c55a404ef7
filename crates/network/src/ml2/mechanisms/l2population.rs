//! l2population (Neutron's mechanism driver of that name): binds nothing;
//! after a port change commits it tells every L2 agent where ports on
//! overlay networks are up — forwarding entries and ARP answers instead of
//! multicast flooding. A port that comes up is added; one that goes down,
//! moves, changes its addresses or is deleted is removed from where it was.

use std::collections::HashMap;

use async_trait::async_trait;
use network_rpc::FdbEntry;
use serde_json::Value;

use super::{MechanismDriver, PortContext};
use crate::error::Result;
use crate::plugin::ports::fixed_ips;
use crate::store::{Record, AGENT, PORT};
use crate::Network;

pub struct L2population;

#[async_trait]
impl MechanismDriver for L2population {
    fn name(&self) -> &'static str {
        "l2population"
    }

    async fn ports_postcommit(&self, net: &Network, changes: &[PortContext<'_>]) {
        let up = |p: Option<&Record>| p.filter(|p| p.str("status") == Some("ACTIVE")).cloned();
        let (mut gone, mut came) = (Vec::new(), Vec::new());
        for c in changes {
            match (up(c.original), up(c.current)) {
                (Some(was), Some(is)) if same_place(&was, &is) => {}
                (was, is) => {
                    gone.extend(was);
                    came.extend(is);
                }
            }
        }
        let mut cache = HashMap::new();
        let removed = entries(net, &gone, &mut cache).await;
        let added = entries(net, &came, &mut cache).await;
        if !removed.is_empty() {
            net.notifier.remove_fdb_entries(removed).await;
        }
        if !added.is_empty() {
            net.notifier.add_fdb_entries(added).await;
        }
    }
}

/// Whether the port is where it was: same host, MAC and addresses.
fn same_place(was: &Record, is: &Record) -> bool {
    was.str("binding:host_id") == is.str("binding:host_id")
        && was.str("mac_address") == is.str("mac_address")
        && fixed_ips(was) == fixed_ips(is)
}

/// The entries of the ports that have one; a port whose entry cannot be read
/// is logged and left out (agents catch up on resync).
async fn entries(net: &Network, ports: &[Record], cache: &mut HashMap<String, Option<String>>) -> Vec<FdbEntry> {
    let mut out = Vec::new();
    for p in ports {
        match fdb_entry(net, p, cache).await {
            Ok(Some(e)) => out.push(e),
            Ok(None) => {}
            Err(e) => tracing::warn!(port = %p.id, error = %e, "cannot tell the agents where the port is"),
        }
    }
    out
}

/// The tunnel address of `host`'s L2 agent, if it has one (cached per call).
async fn tunnel_ip(net: &Network, host: &str, cache: &mut HashMap<String, Option<String>>) -> Result<Option<String>> {
    if let Some(ip) = cache.get(host) {
        return Ok(ip.clone());
    }
    let agents = net.store.list(&AGENT, Some(("host", host))).await?;
    let ip = agents
        .iter()
        .filter_map(|a| a.attrs.get("configurations").and_then(|c| c.get("tunneling_ip")).and_then(Value::as_str))
        .find(|ip| !ip.is_empty())
        .map(String::from);
    cache.insert(host.to_string(), ip.clone());
    Ok(ip)
}

/// l2population's entry for a bound port on an overlay segment whose host's
/// agent has a tunnel address; `None` for anything else.
pub async fn fdb_entry(
    net: &Network,
    port: &Record,
    cache: &mut HashMap<String, Option<String>>,
) -> Result<Option<FdbEntry>> {
    let host = port.str("binding:host_id").unwrap_or_default();
    if host.is_empty() || !network_rpc::is_bound(port.str("binding:vif_type")) {
        return Ok(None);
    }
    let Some(segment) = crate::agents::rpc::bound_segment(net, port).await? else { return Ok(None) };
    let (Some(vni), true) = (segment.segmentation_id, matches!(segment.network_type.as_str(), "vxlan" | "gre")) else {
        return Ok(None);
    };
    let Some(tunnel_ip) = tunnel_ip(net, host, cache).await? else { return Ok(None) };
    Ok(Some(FdbEntry {
        network_id: segment.network_id.clone(),
        network_type: segment.network_type.clone(),
        segmentation_id: vni,
        port_id: port.id.clone(),
        host: host.to_string(),
        tunnel_ip,
        mac_address: port.str("mac_address").unwrap_or_default().to_string(),
        ip_addresses: fixed_ips(port).into_iter().map(|(_, ip)| ip).collect(),
    }))
}

/// Every port up on `network_id` on a host other than `host`, as l2population
/// entries.
pub async fn network_fdb(net: &Network, network_id: &str, host: &str) -> Result<Vec<FdbEntry>> {
    let mut cache = HashMap::new();
    let mut out = Vec::new();
    for p in net.store.list(&PORT, Some(("network_id", network_id))).await? {
        if p.str("status") != Some("ACTIVE") || p.str("binding:host_id") == Some(host) {
            continue;
        }
        if let Some(e) = fdb_entry(net, &p, &mut cache).await? {
            out.push(e);
        }
    }
    Ok(out)
}
