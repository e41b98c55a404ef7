//! The agents as the plugins see them: who is alive where, which DHCP or L3
//! agent hosts a network or a router (scheduling one when none does), and
//! the state reports that keep an agent alive.

use db::AnyConnection;
use serde_json::{json, Map, Value};

use super::{routers, Change, Txn};
use crate::error::{NetworkError, Result};
use crate::store::{Record, AGENT};
use crate::Network;
use api::Auth;

pub use network_rpc::{DHCP_AGENT, L3_AGENT};

/// When the agent last reported, in microseconds since the epoch.
pub fn heartbeat(r: &Record) -> i64 {
    r.attrs.get("_heartbeat").and_then(Value::as_i64).unwrap_or(0)
}

pub fn is_alive(net: &Network, r: &Record) -> bool {
    super::time_since(heartbeat(r)) < net.config.agent_down_time
}

/// The alive, enabled agents on `host`: (agent type, configurations).
pub async fn alive_on(net: &Network, conn: &mut AnyConnection, host: &str) -> Result<Vec<(String, Value)>> {
    Ok(net
        .store
        .list_in(conn, &AGENT, Some(("host", host)))
        .await?
        .into_iter()
        .filter(|a| is_alive(net, a) && a.flag("admin_state_up"))
        .map(|a| {
            (
                a.str("agent_type").unwrap_or_default().to_string(),
                a.attrs.get("configurations").cloned().unwrap_or(json!({})),
            )
        })
        .collect())
}

/// The agent of `agent_type` hosting `resource_id`, choosing (and binding) the
/// alive one hosting the fewest when none does yet. `None` when no such agent
/// is alive.
pub async fn schedule(
    net: &Network,
    conn: &mut AnyConnection,
    agent_type: &str,
    resource_id: &str,
) -> Result<Option<Record>> {
    // By the indexed type: a cloud has a few DHCP or L3 agents among
    // thousands of L2 agents.
    let agents: Vec<Record> = net
        .store
        .list_in(conn, &AGENT, Some(("agent_type", agent_type)))
        .await?
        .into_iter()
        .filter(|a| a.flag("admin_state_up"))
        .collect();
    let bindings = net.store.agent_bindings().await?;
    if let Some(a) = agents.iter().find(|a| bindings.iter().any(|(ag, r)| *ag == a.id && r == resource_id)) {
        return Ok(Some(a.clone()));
    }
    let load = |a: &Record| bindings.iter().filter(|(ag, _)| *ag == a.id).count();
    let Some(best) = agents.iter().filter(|a| is_alive(net, a)).min_by_key(|a| load(a)).cloned() else {
        return Ok(None);
    };
    net.store.bind_agent(conn, &best.id, resource_id).await?;
    Ok(Some(best))
}

/// The agent `id`, which must be of `agent_type`.
pub async fn of_type(net: &Network, id: &str, agent_type: &str) -> Result<Record> {
    let a = net.store.get(&AGENT, id).await?;
    if a.str("agent_type") != Some(agent_type) {
        return Err(NetworkError::not_found("AgentNotFound", format!("Agent {id} could not be found.")));
    }
    Ok(a)
}

/// An admin's change to an agent (`admin_state_up`, `description`).
pub async fn update(net: &Network, id: &str, changes: Map<String, Value>) -> Result<Record> {
    let mut w = Txn::begin(net).await?;
    let mut a = net.store.get_in(w.conn(), &AGENT, id).await?;
    for (k, v) in changes {
        a.attrs.insert(k, v);
    }
    a.touch();
    net.store.update(w.conn(), &AGENT, &a).await?;
    w.commit().await?;
    Ok(a)
}

/// Forgets an agent and what it hosted.
pub async fn delete(net: &Network, id: &str) -> Result<()> {
    net.store.get(&AGENT, id).await?;
    let mut w = Txn::begin(net).await?;
    for (agent, resource) in net.store.agent_bindings().await? {
        if agent == id {
            net.store.unbind_agent(w.conn(), id, &resource).await?;
        }
    }
    net.store.delete(w.conn(), &AGENT, id).await?;
    w.commit().await
}

/// The DHCP agent `agent_id` hosts `network_id` from now on.
pub async fn host_network(net: &Network, agent_id: &str, network_id: &str) -> Result<()> {
    let mut w = Txn::begin(net).await?;
    if !net.store.bind_agent(w.conn(), agent_id, network_id).await? {
        return Err(NetworkError::conflict(
            "NetworkHostedByDHCPAgent",
            format!("The network {network_id} has been already hosted by the DHCP Agent {agent_id}."),
        ));
    }
    w.commit().await?;
    tell_dhcp_agents(net, network_id).await;
    Ok(())
}

/// The DHCP agents hear that the network has a new agent, which starts
/// serving it.
async fn tell_dhcp_agents(net: &Network, network_id: &str) {
    let payload = json!({"network": {"id": network_id}});
    net.notifier.dhcp(crate::agents::DhcpEvent::NetworkUpdate, payload).await;
}

pub async fn unhost_network(net: &Network, agent_id: &str, network_id: &str) -> Result<()> {
    let mut w = Txn::begin(net).await?;
    if !net.store.unbind_agent(w.conn(), agent_id, network_id).await? {
        return Err(NetworkError::not_found(
            "NetworkNotHostedByDhcpAgent",
            format!("The network {network_id} is not hosted by the DHCP agent {agent_id}."),
        ));
    }
    w.commit().await
}

/// The L3 agent hosts the router from now on; its ports are bound on the
/// agent's host.
pub async fn host_router(net: &Network, auth: &Auth, agent: &Record, router_id: &str) -> Result<()> {
    let mut w = Txn::begin(net).await?;
    if let Some((other, _)) = net.store.agent_bindings().await?.into_iter().find(|(_, r)| *r == router_id) {
        return Err(NetworkError::conflict(
            "RouterHostedByL3Agent",
            format!("The router {router_id} has been already hosted by the L3 Agent {other}."),
        ));
    }
    net.store.bind_agent(w.conn(), &agent.id, router_id).await?;
    let host = agent.str("host").unwrap_or_default();
    for (before, after) in routers::rehost(net, w.conn(), auth, router_id, host).await? {
        w.record(Change::Port { before: Some(before), after });
    }
    w.record(Change::Routers(vec![router_id.to_string()]));
    w.commit().await
}

/// The router is unhosted and its ports unbound.
pub async fn unhost_router(net: &Network, auth: &Auth, agent_id: &str, router_id: &str) -> Result<()> {
    let mut w = Txn::begin(net).await?;
    if !net.store.unbind_agent(w.conn(), agent_id, router_id).await? {
        return Err(NetworkError::not_found(
            "RouterNotHostedByL3Agent",
            format!("The router {router_id} is not hosted by L3 agent {agent_id}."),
        ));
    }
    for (before, after) in routers::rehost(net, w.conn(), auth, router_id, "").await? {
        w.record(Change::Port { before: Some(before), after });
    }
    w.commit().await
}

/// Records a state report from an agent (the `report_state` RPC): creates the
/// agent on its first report, refreshes its heartbeat after.
pub async fn report_state(net: &Network, state: &Value) -> Result<Record> {
    let field = |k: &str| state.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let (agent_type, host) = (field("agent_type"), field("host"));
    if agent_type.is_empty() || host.is_empty() {
        return Err(NetworkError::bad_request("a state report needs agent_type and host"));
    }
    let now = super::now();
    let mut w = Txn::begin(net).await?;
    let existing = net
        .store
        .list_in(w.conn(), &AGENT, Some(("host", &host)))
        .await?
        .into_iter()
        .find(|a| a.str("agent_type") == Some(agent_type.as_str()));
    let rec = match existing {
        Some(mut a) => {
            for k in ["binary", "topic", "availability_zone"] {
                a.attrs.insert(k.into(), json!(field(k)));
            }
            a.attrs.insert("configurations".into(), state.get("configurations").cloned().unwrap_or(json!({})));
            a.attrs.insert("_heartbeat".into(), json!(now));
            if state.get("start_flag").and_then(Value::as_bool) == Some(true) {
                a.attrs.insert("_started".into(), json!(now));
            }
            a.updated_at = now;
            net.store.update(w.conn(), &AGENT, &a).await?;
            a
        }
        None => {
            let attrs = json!({
                "agent_type": agent_type, "host": host, "binary": field("binary"), "topic": field("topic"),
                "availability_zone": state.get("availability_zone").cloned().unwrap_or(Value::Null),
                "configurations": state.get("configurations").cloned().unwrap_or(json!({})),
                "admin_state_up": true, "description": null, "_heartbeat": now, "_started": now,
            });
            let a = Record::new(super::new_id(), String::new(), attrs.as_object().cloned().unwrap_or_default());
            net.store.insert(w.conn(), &AGENT, &a).await?;
            tracing::info!(agent_type = %a.str("agent_type").unwrap_or_default(), host = %a.str("host").unwrap_or_default(), "agent registered");
            a
        }
    };
    w.commit().await?;
    Ok(rec)
}
