//! What the DHCP agents ask of the server (Neutron's `DhcpRpcCallback`):
//! the networks scheduled to the agent on a host — giving it those with a
//! DHCP-enabled subnet that no agent serves, as Neutron's auto-scheduling
//! does when an agent starts — each as its dnsmasq is given it, and the
//! agent's DHCP port on a network, which the server makes (an address on
//! every DHCP-enabled subnet, bound to the agent's host, so the host's L2
//! agent wires it) and removes when the agent lets the network go.

use api::{Auth, AuthContext};
use network_rpc::{dhcp_device_id, DhcpNetwork, DhcpPort, DhcpSubnet, FixedIp};
use serde_json::{json, Map, Value};

use super::agents::{is_alive, DHCP_AGENT};
use super::ports::NewPort;
use super::{Change, Txn};
use crate::error::Result;
use crate::ipam::allocate::FixedIpRequest;
use crate::store::{Record, AGENT, NETWORK, PORT, SUBNET};
use crate::Network;

/// The context the agents' requests run in: the cloud's admin, as
/// Neutron's RPC callbacks use an admin context.
fn agent_context() -> Auth {
    let context = AuthContext {
        user_id: "neutron-dhcp-agent".into(),
        user_name: "neutron-dhcp-agent".into(),
        roles: vec!["admin".into()],
        ..AuthContext::default()
    };
    Auth { context, token: String::new() }
}

/// The DHCP agent reporting from `host`, if any.
async fn agent_on(net: &Network, host: &str) -> Result<Option<Record>> {
    Ok(net
        .store
        .list(&AGENT, Some(("host", host)))
        .await?
        .into_iter()
        .find(|a| a.str("agent_type") == Some(DHCP_AGENT)))
}

/// The networks the agent on `host` serves, after giving it every network
/// with a DHCP-enabled subnet that no DHCP agent serves (one agent a
/// network, `dhcp_agents_per_network`'s default).
pub async fn active_networks(net: &Network, host: &str) -> Result<Vec<DhcpNetwork>> {
    let Some(agent) = agent_on(net, host).await? else { return Ok(Vec::new()) };
    if is_alive(net, &agent) && agent.flag("admin_state_up") {
        // Read under the write lock, so two agents starting together (or a
        // subnet being made) never both take a network.
        let mut w = Txn::begin(net).await?;
        let served: std::collections::BTreeSet<String> =
            net.store.agent_bindings().await?.into_iter().map(|(_, resource)| resource).collect();
        let unserved: std::collections::BTreeSet<String> = net
            .store
            .list_in(w.conn(), &SUBNET, None)
            .await?
            .into_iter()
            .filter(|s| s.flag("enable_dhcp"))
            .filter_map(|s| s.str("network_id").map(String::from))
            .filter(|n| !served.contains(n))
            .collect();
        for network_id in &unserved {
            net.store.bind_agent(w.conn(), &agent.id, network_id).await?;
        }
        w.commit().await?;
        if !unserved.is_empty() {
            tracing::info!(host, networks = unserved.len(), "gave the DHCP agent the networks no agent served");
        }
    }
    let mut out = Vec::new();
    for (agent_id, network_id) in net.store.agent_bindings().await? {
        if agent_id != agent.id {
            continue;
        }
        if let Some(n) = describe(net, &network_id).await? {
            out.push(n);
        }
    }
    Ok(out)
}

/// The network as the agent on `host` serves it; `None` when it is gone or
/// that agent does not serve it. A network with a DHCP-enabled subnet that
/// no agent serves (none was alive when the subnet came) is scheduled now,
/// as Neutron's notifier does when it hears of such a network: every DHCP
/// agent asks when it changes, and the first to ask schedules it.
pub async fn network_info(net: &Network, network_id: &str, host: &str) -> Result<Option<DhcpNetwork>> {
    let Some(agent) = agent_on(net, host).await? else { return Ok(None) };
    let bindings = net.store.agent_bindings().await?;
    let mut served = bindings.iter().any(|(a, n)| *a == agent.id && n == network_id);
    if !served && !bindings.iter().any(|(_, n)| n == network_id) {
        let dhcp =
            net.store.list(&SUBNET, Some(("network_id", network_id))).await?.iter().any(|s| s.flag("enable_dhcp"));
        if dhcp {
            let mut w = Txn::begin(net).await?;
            let chosen = super::agents::schedule(net, w.conn(), DHCP_AGENT, network_id).await?;
            w.commit().await?;
            served = chosen.is_some_and(|a| a.id == agent.id);
        }
    }
    if !served {
        return Ok(None);
    }
    describe(net, network_id).await
}

/// A network, its subnets and its ports, in the agents' terms.
async fn describe(net: &Network, network_id: &str) -> Result<Option<DhcpNetwork>> {
    let Some(network) = net.store.find(&NETWORK, network_id).await? else { return Ok(None) };
    let subnets = net.store.list(&SUBNET, Some(("network_id", network_id))).await?;
    let ports = net.store.list(&PORT, Some(("network_id", network_id))).await?;
    Ok(Some(DhcpNetwork {
        id: network.id.clone(),
        mtu: network.attrs.get("mtu").and_then(Value::as_u64).and_then(|m| u32::try_from(m).ok()).unwrap_or(0),
        subnets: subnets.iter().filter_map(subnet_of).collect(),
        ports: ports.iter().map(port_of).collect(),
    }))
}

fn subnet_of(r: &Record) -> Option<DhcpSubnet> {
    let mut attrs = r.attrs.clone();
    attrs.insert("id".into(), json!(r.id));
    match serde_json::from_value(Value::Object(attrs)) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(subnet = %r.id, error = %e, "subnet left out of its network's DHCP");
            None
        }
    }
}

fn port_of(r: &Record) -> DhcpPort {
    let list = |k: &str| r.attrs.get(k).cloned().unwrap_or_else(|| json!([]));
    DhcpPort {
        id: r.id.clone(),
        mac_address: r.str("mac_address").unwrap_or_default().to_string(),
        device_owner: r.str("device_owner").unwrap_or_default().to_string(),
        device_id: r.str("device_id").unwrap_or_default().to_string(),
        fixed_ips: serde_json::from_value::<Vec<FixedIp>>(list("fixed_ips")).unwrap_or_default(),
        extra_dhcp_opts: serde_json::from_value(list("extra_dhcp_opts")).unwrap_or_default(),
    }
}

/// The DHCP port of the agent on `host` for `network_id`: the one it has
/// (with an address added on any DHCP-enabled subnet it lacks one on), or a
/// new one.
pub async fn dhcp_port(net: &Network, network_id: &str, host: &str) -> Result<DhcpPort> {
    let auth = agent_context();
    let device_id = dhcp_device_id(host, network_id);
    let mut w = Txn::begin(net).await?;
    let network = net.store.get_in(w.conn(), &NETWORK, network_id).await?;
    let dhcp_subnets: Vec<String> = net
        .store
        .list_in(w.conn(), &SUBNET, Some(("network_id", network_id)))
        .await?
        .into_iter()
        .filter(|s| s.flag("enable_dhcp"))
        .map(|s| s.id)
        .collect();
    let existing = net
        .store
        .list_in(w.conn(), &PORT, Some(("device_id", device_id.as_str())))
        .await?
        .into_iter()
        .find(|p| p.str("network_id") == Some(network_id));
    let port = match existing {
        Some(mut port) => {
            let has: Vec<String> = super::ports::fixed_ips(&port).into_iter().map(|(subnet, _)| subnet).collect();
            let missing: Vec<&String> = dhcp_subnets.iter().filter(|s| !has.contains(s)).collect();
            if missing.is_empty() && port.str("binding:host_id") == Some(host) {
                return Ok(port_of(&port));
            }
            let before = port.clone();
            let mut fixed: Vec<Value> =
                port.attrs.get("fixed_ips").and_then(Value::as_array).cloned().unwrap_or_default();
            fixed.extend(missing.iter().map(|s| json!({"subnet_id": s})));
            let mut changes = Map::new();
            changes.insert("fixed_ips".into(), Value::Array(fixed));
            changes.insert("binding:host_id".into(), json!(host));
            super::ports::update_in(net, w.conn(), &auth, &mut port, changes).await?;
            w.record(Change::Port { before: Some(before), after: port.clone() });
            port
        }
        None => {
            let mut attrs = Map::new();
            attrs.insert("network_id".into(), json!(network_id));
            attrs.insert("name".into(), json!(""));
            attrs.insert("admin_state_up".into(), json!(true));
            attrs.insert("device_owner".into(), json!("network:dhcp"));
            attrs.insert("device_id".into(), json!(device_id));
            attrs.insert("binding:host_id".into(), json!(host));
            let fixed_ips =
                dhcp_subnets.iter().map(|s| FixedIpRequest { subnet_id: Some(s.clone()), ip_address: None }).collect();
            let new = NewPort { attrs, project: network.project_id.clone(), fixed_ips: Some(fixed_ips) };
            let port = super::ports::create_in(net, w.conn(), &auth, new).await?;
            w.record(Change::Port { before: None, after: port.clone() });
            port
        }
    };
    w.commit().await?;
    Ok(port_of(&port))
}

/// The agent on `host` no longer serves `network_id`: its DHCP port goes.
pub async fn release_dhcp_port(net: &Network, network_id: &str, host: &str) -> Result<()> {
    let device_id = dhcp_device_id(host, network_id);
    for port in net.store.list(&PORT, Some(("device_id", device_id.as_str()))).await? {
        if port.str("network_id") == Some(network_id) {
            super::ports::delete(net, &port).await?;
        }
    }
    Ok(())
}
