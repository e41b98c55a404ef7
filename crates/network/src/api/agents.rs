//! `/v2.0/agents`: the agents that have reported in, alive or not, and which
//! networks (DHCP) and routers (L3) each hosts.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::attrs::{self, read_only, writable, Check, Default, Resource};
use super::common;
use super::query::ListQuery;
use crate::error::{NetworkError, Result};
use crate::plugin::agents::{self, DHCP_AGENT, L3_AGENT};
use crate::store::{Record, AGENT, NETWORK, ROUTER};
use crate::Network;

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

pub fn render(net: &Network, r: &Record) -> Map<String, Value> {
    let mut m: Map<String, Value> =
        r.attrs.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect();
    m.insert("id".into(), json!(r.id));
    m.insert("created_at".into(), json!(agent_time(r.created_at)));
    m.insert("heartbeat_timestamp".into(), json!(agent_time(agents::heartbeat(r))));
    m.insert("alive".into(), json!(agents::is_alive(net, r)));
    if let Some(s) = r.attrs.get("_started").and_then(Value::as_i64) {
        m.insert("started_at".into(), json!(agent_time(s)));
    }
    m
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
    let a = agents::update(&net, &id, changes).await?;
    Ok(Json(json!({"agent": render(&net, &a)})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    admin(&auth, "delete_agent")?;
    agents::delete(&net, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2.0/agents/{id}/dhcp-networks` and `/l3-routers`.
async fn hosted(net: &Network, auth: &Auth, id: &str, agent_type: &str) -> Result<Vec<Record>> {
    admin(auth, "get_agent")?;
    agents::of_type(net, id, agent_type).await?;
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
    agents::of_type(&net, &id, DHCP_AGENT).await?;
    let network_id = body.get("network_id").and_then(Value::as_str).unwrap_or_default().to_string();
    net.store.get(&NETWORK, &network_id).await?;
    agents::host_network(&net, &id, &network_id).await?;
    Ok((StatusCode::CREATED, Json(Value::Null)))
}

pub async fn remove_dhcp_network(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path((id, network_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    admin(&auth, "delete_dhcp-network")?;
    agents::of_type(&net, &id, DHCP_AGENT).await?;
    agents::unhost_network(&net, &id, &network_id).await?;
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
    let agent = agents::of_type(&net, &id, L3_AGENT).await?;
    let router_id = body.get("router_id").and_then(Value::as_str).unwrap_or_default().to_string();
    net.store.get(&ROUTER, &router_id).await?;
    agents::host_router(&net, &auth, &agent, &router_id).await?;
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
    agents::of_type(&net, &id, L3_AGENT).await?;
    agents::unhost_router(&net, &auth, &id, &router_id).await?;
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
