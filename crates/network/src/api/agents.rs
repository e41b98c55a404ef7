//! `/v2.0/agents`: the agents that have reported in, alive or not, and which
//! networks (DHCP) and routers (L3) each hosts.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use db::AnyConnection;
use serde_json::{json, Map, Value};

use super::attrs::{self, read_only, writable, Check, Default, Resource};
use super::common;
use super::query::ListQuery;
use crate::error::{NetworkError, Result};
use crate::store::{Record, AGENT, NETWORK, ROUTER};
use crate::Network;

pub use network_rpc::DHCP_AGENT;
pub use network_rpc::L3_AGENT;

pub const RESOURCE: Resource = Resource {
    singular: "agent",
    plural: "agents",
    attrs: &[
        read_only("agent_type", true),
        read_only("binary", true),
        read_only("topic", true),
        read_only("host", true),
        writable("admin_state_up", Default::Bool(true), Check::Bool),
        read_only("started_at", true),
        read_only("heartbeat_timestamp", true),
        read_only("alive", true),
        read_only("configurations", false),
        writable("description", Default::Null, Check::NullableStr(255)),
        read_only("availability_zone", true),
    ],
};

/// Agents' timestamps as Neutron shows them: `2026-01-02 03:04:05`.
fn agent_time(micros: i64) -> String {
    common::timestamp(micros).trim_end_matches('Z').replace('T', " ")
}

fn heartbeat(r: &Record) -> i64 {
    r.attrs.get("_heartbeat").and_then(Value::as_i64).unwrap_or(0)
}

pub fn is_alive(net: &Network, r: &Record) -> bool {
    common::time_since(heartbeat(r)) < net.config.agent_down_time
}

pub fn render(net: &Network, r: &Record) -> Map<String, Value> {
    let mut m: Map<String, Value> =
        r.attrs.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect();
    m.insert("id".into(), json!(r.id));
    m.insert("created_at".into(), json!(agent_time(r.created_at)));
    m.insert("heartbeat_timestamp".into(), json!(agent_time(heartbeat(r))));
    m.insert("alive".into(), json!(is_alive(net, r)));
    if let Some(s) = r.attrs.get("_started").and_then(Value::as_i64) {
        m.insert("started_at".into(), json!(agent_time(s)));
    }
    m
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

fn admin(auth: &Auth, action: &str) -> Result<()> {
    if auth.is_admin() {
        Ok(())
    } else {
        Err(NetworkError::forbidden(format!("({action}) is disallowed by policy")))
    }
}

/// `GET /v2.0/agents`: admins see every agent; others see none (not a 403).
pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    // `agent_type` is matched without regard to case (Tempest asks for "DHCP Agent").
    type Pairs = Vec<(String, String)>;
    let (agent_types, rest): (Pairs, Pairs) = pairs.into_iter().partition(|(k, _)| k == "agent_type");
    let q = ListQuery::parse(&rest, &RESOURCE, &[])?;
    let items: Vec<Map<String, Value>> = if auth.is_admin() {
        net.store
            .list(&AGENT, None)
            .await?
            .iter()
            .filter(|a| {
                agent_types.is_empty()
                    || agent_types.iter().any(|(_, t)| a.str("agent_type").is_some_and(|x| x.eq_ignore_ascii_case(t)))
            })
            .map(|a| render(&net, a))
            .collect()
    } else {
        Vec::new()
    };
    common::many(&RESOURCE, &base, items, &q)
}

pub async fn show(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    admin(&auth, "get_agent")?;
    let a = net.store.get(&AGENT, &id).await?;
    Ok(Json(json!({"agent": render(&net, &a)})))
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    admin(&auth, "update_agent")?;
    let changes = attrs::for_update(&RESOURCE, attrs::body_object(body, &RESOURCE)?, true)?;
    let mut w = net.store.begin().await?;
    let mut a = net.store.get_in(w.conn(), &AGENT, &id).await?;
    for (k, v) in changes {
        a.attrs.insert(k, v);
    }
    a.touch();
    net.store.update(w.conn(), &AGENT, &a).await?;
    w.commit().await?;
    Ok(Json(json!({"agent": render(&net, &a)})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    admin(&auth, "delete_agent")?;
    net.store.get(&AGENT, &id).await?;
    let mut w = net.store.begin().await?;
    for (agent, resource) in net.store.agent_bindings().await? {
        if agent == id {
            net.store.unbind_agent(w.conn(), &id, &resource).await?;
        }
    }
    net.store.delete(w.conn(), &AGENT, &id).await?;
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn agent_of_type(net: &Network, id: &str, agent_type: &str) -> Result<Record> {
    let a = net.store.get(&AGENT, id).await?;
    if a.str("agent_type") != Some(agent_type) {
        return Err(NetworkError::not_found("AgentNotFound", format!("Agent {id} could not be found.")));
    }
    Ok(a)
}

/// `GET /v2.0/agents/{id}/dhcp-networks` and `/l3-routers`.
async fn hosted(net: &Network, auth: &Auth, id: &str, agent_type: &str) -> Result<Vec<Record>> {
    admin(auth, "get_agent")?;
    agent_of_type(net, id, agent_type).await?;
    let ids: Vec<String> =
        net.store.agent_bindings().await?.into_iter().filter(|(a, _)| a == id).map(|(_, r)| r).collect();
    let kind = if agent_type == DHCP_AGENT { &NETWORK } else { &ROUTER };
    Ok(net.store.list(kind, None).await?.into_iter().filter(|r| ids.contains(&r.id)).collect())
}

pub async fn dhcp_networks(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let networks = hosted(&net, &auth, &id, DHCP_AGENT).await?;
    let view = super::networks::NetworkView::load(&net).await?;
    let items: Vec<Value> = networks.iter().map(|n| Value::Object(view.render(n, true))).collect();
    Ok(Json(json!({"networks": items})))
}

pub async fn l3_routers(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let routers = hosted(&net, &auth, &id, L3_AGENT).await?;
    let mut items = Vec::new();
    for r in &routers {
        items.push(Value::Object(super::routers::render(&net, r, &HashMap::new()).await?));
    }
    Ok(Json(json!({"routers": items})))
}

/// `POST /v2.0/agents/{id}/dhcp-networks {"network_id"}`: 201, no body.
pub async fn add_dhcp_network(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin(&auth, "create_dhcp-network")?;
    agent_of_type(&net, &id, DHCP_AGENT).await?;
    let network_id = body.get("network_id").and_then(Value::as_str).unwrap_or_default().to_string();
    net.store.get(&NETWORK, &network_id).await?;
    let mut w = net.store.begin().await?;
    if !net.store.bind_agent(w.conn(), &id, &network_id).await? {
        return Err(NetworkError::conflict(
            "NetworkHostedByDHCPAgent",
            format!("The network {network_id} has been already hosted by the DHCP Agent {id}."),
        )
        .into());
    }
    w.commit().await?;
    Ok((StatusCode::CREATED, Json(Value::Null)))
}

pub async fn remove_dhcp_network(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path((id, network_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    admin(&auth, "delete_dhcp-network")?;
    agent_of_type(&net, &id, DHCP_AGENT).await?;
    let mut w = net.store.begin().await?;
    if !net.store.unbind_agent(w.conn(), &id, &network_id).await? {
        return Err(NetworkError::not_found(
            "NetworkNotHostedByDhcpAgent",
            format!("The network {network_id} is not hosted by the DHCP agent {id}."),
        )
        .into());
    }
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2.0/agents/{id}/l3-routers {"router_id"}`: the agent hosts the
/// router from now on; its ports are bound on the agent's host.
pub async fn add_l3_router(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin(&auth, "create_l3-router")?;
    let agent = agent_of_type(&net, &id, L3_AGENT).await?;
    let router_id = body.get("router_id").and_then(Value::as_str).unwrap_or_default().to_string();
    net.store.get(&ROUTER, &router_id).await?;
    let mut w = net.store.begin().await?;
    if let Some((other, _)) = net.store.agent_bindings().await?.into_iter().find(|(_, r)| *r == router_id) {
        return Err(NetworkError::conflict(
            "RouterHostedByL3Agent",
            format!("The router {router_id} has been already hosted by the L3 Agent {other}."),
        )
        .into());
    }
    net.store.bind_agent(w.conn(), &id, &router_id).await?;
    let moved =
        super::routers::rehost(&net, w.conn(), &auth, &router_id, agent.str("host").unwrap_or_default()).await?;
    w.commit().await?;
    for p in &moved {
        crate::plugin::notify::port_update(&net, p).await;
    }
    Ok((StatusCode::CREATED, Json(Value::Null)))
}

/// `DELETE /v2.0/agents/{id}/l3-routers/{router}`: the router is unhosted and
/// its ports unbound.
pub async fn remove_l3_router(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path((id, router_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    admin(&auth, "delete_l3-router")?;
    agent_of_type(&net, &id, L3_AGENT).await?;
    let mut w = net.store.begin().await?;
    if !net.store.unbind_agent(w.conn(), &id, &router_id).await? {
        return Err(NetworkError::not_found(
            "RouterNotHostedByL3Agent",
            format!("The router {router_id} is not hosted by L3 agent {id}."),
        )
        .into());
    }
    super::routers::rehost(&net, w.conn(), &auth, &router_id, "").await?;
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2.0/networks/{id}/dhcp-agents` and `/routers/{id}/l3-agents`.
async fn hosting(net: &Network, auth: &Auth, resource_id: &str, agent_type: &str) -> Result<Value> {
    admin(auth, "get_agent")?;
    let ids: Vec<String> =
        net.store.agent_bindings().await?.into_iter().filter(|(_, r)| r == resource_id).map(|(a, _)| a).collect();
    let agents: Vec<Value> = net
        .store
        .list(&AGENT, Some(("agent_type", agent_type)))
        .await?
        .iter()
        .filter(|a| ids.contains(&a.id))
        .map(|a| Value::Object(render(net, a)))
        .collect();
    Ok(json!({"agents": agents}))
}

pub async fn network_dhcp_agents(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    net.store.get(&NETWORK, &id).await?;
    Ok(Json(hosting(&net, &auth, &id, DHCP_AGENT).await?))
}

pub async fn router_l3_agents(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    net.store.get(&ROUTER, &id).await?;
    Ok(Json(hosting(&net, &auth, &id, L3_AGENT).await?))
}

/// Records a state report from an agent (the `report_state` RPC): creates the
/// agent on its first report, refreshes its heartbeat after.
pub async fn report_state(net: &Network, state: &Value) -> Result<Record> {
    let field = |k: &str| state.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let (agent_type, host) = (field("agent_type"), field("host"));
    if agent_type.is_empty() || host.is_empty() {
        return Err(NetworkError::bad_request("a state report needs agent_type and host"));
    }
    let now = common::now();
    let mut w = net.store.begin().await?;
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
            let a = Record::new(common::new_id(), String::new(), attrs.as_object().cloned().unwrap_or_default());
            net.store.insert(w.conn(), &AGENT, &a).await?;
            tracing::info!(agent_type = %a.str("agent_type").unwrap_or_default(), host = %a.str("host").unwrap_or_default(), "agent registered");
            a
        }
    };
    w.commit().await?;
    Ok(rec)
}
