//! `/v2.0/routers`: routers joining project subnets (interfaces) to an
//! external network (the gateway, with SNAT), with extra static routes. The
//! L3 service plugin (`plugin::routers`) does the work; these handlers parse,
//! authorise and render.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::attrs::{self, create_only, read_only, writable, Access, Attr, Check, Default, Resource};
use super::common::{self, is_admin, owner};
use super::query::ListQuery;
use crate::error::{NetworkError, Result};
use crate::plugin::ports;
use crate::plugin::routers::{self, GatewayRequest, InterfaceTarget, RouterUpdate};
use crate::store::{Record, PORT, ROUTER};
use crate::Network;

pub const RESOURCE: Resource = Resource {
    singular: "router",
    plural: "routers",
    attrs: &[
        writable("name", Default::Str(""), Check::Str(255)),
        writable("admin_state_up", Default::Bool(true), Check::Bool),
        read_only("status", true),
        writable("external_gateway_info", Default::Null, Check::Any),
        Attr {
            name: "routes",
            post: false,
            put: true,
            default: Default::EmptyList,
            check: Check::Any,
            filter: false,
            sort: false,
            access: Access::Everyone,
        },
        create_only("availability_zone_hints", Default::EmptyList, Check::StrList),
        read_only("availability_zones", false),
    ],
};

pub async fn render(net: &Network, r: &Record, tags: &HashMap<String, Vec<String>>) -> Result<Map<String, Value>> {
    let mut m = common::render(r, tags);
    let gw = match r.str("_gw_port_id") {
        Some(pid) => net.store.find(&PORT, pid).await?,
        None => None,
    };
    let info = match gw {
        None => Value::Null,
        Some(p) => json!({
            "network_id": p.str("network_id"),
            "enable_snat": r.attrs.get("_enable_snat").cloned().unwrap_or(json!(true)),
            "external_fixed_ips": p.attrs.get("fixed_ips").cloned().unwrap_or(json!([])),
        }),
    };
    m.insert("external_gateway_info".into(), info);
    m.entry("routes").or_insert(json!([]));
    let hosting: Vec<String> =
        net.store.agent_bindings().await?.into_iter().filter(|(_, res)| *res == r.id).map(|(a, _)| a).collect();
    let mut zones = Vec::new();
    for a in hosting {
        if let Some(z) =
            net.store.find(&crate::store::AGENT, &a).await?.and_then(|a| a.str("availability_zone").map(String::from))
        {
            if !zones.contains(&z) {
                zones.push(z);
            }
        }
    }
    m.insert("availability_zones".into(), json!(zones));
    Ok(m)
}

/// Whether a gateway request means "no gateway" (`{}` or null).
fn no_gateway(v: &Value) -> bool {
    v.is_null() || v.as_object().is_some_and(|o| o.get("network_id").is_none_or(Value::is_null))
}

/// `external_gateway_info` parsed: `None` for no gateway. Only admins choose
/// SNAT or the gateway's addresses.
fn gateway_request(auth: &Auth, info: &Value) -> Result<Option<GatewayRequest>> {
    if no_gateway(info) {
        return Ok(None);
    }
    let obj = info.as_object().cloned().unwrap_or_default();
    if let Some(k) = obj.keys().find(|k| !["network_id", "enable_snat", "external_fixed_ips"].contains(&k.as_str())) {
        return Err(NetworkError::invalid(
            "HTTPBadRequest",
            format!("Invalid input for external_gateway_info. Reason: Unrecognized key '{k}'."),
        ));
    }
    if !auth.is_admin() && (obj.contains_key("enable_snat") || obj.contains_key("external_fixed_ips")) {
        return Err(attrs::policy_refused("update", &RESOURCE, "external_gateway_info"));
    }
    let enable_snat = match obj.get("enable_snat") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            attrs::parse_bool(v)
                .ok_or_else(|| NetworkError::invalid("HTTPBadRequest", "Invalid input for enable_snat."))?,
        ),
    };
    Ok(Some(GatewayRequest {
        network_id: obj.get("network_id").and_then(Value::as_str).unwrap_or_default().to_string(),
        enable_snat,
        external_fixed_ips: obj.get("external_fixed_ips").cloned(),
    }))
}

pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut a = attrs::for_create(&RESOURCE, attrs::body_object(body, &RESOURCE)?, is_admin(&auth))?;
    let project = owner(&auth, &mut a)?;
    super::discovery::check_zone_hints(&net, "router", &a).await?;
    let gateway = gateway_request(&auth, &a.remove("external_gateway_info").unwrap_or(Value::Null))?;
    let r = routers::create(&net, &auth, project, a, gateway).await?;
    let tags = super::tags::all(&net).await?;
    Ok((StatusCode::CREATED, Json(json!({"router": render(&net, &r, &tags).await?}))))
}

pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let tags = super::tags::all(&net).await?;
    let mut items = Vec::new();
    for r in net.store.list(&ROUTER, None).await?.iter().filter(|r| common::owns(&auth, &r.project_id)) {
        items.push(render(&net, r, &tags).await?);
    }
    common::many(&RESOURCE, &base, items, &q)
}

pub async fn show(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let mut conn = net.store.reader().await?;
    let r = routers::visible(&net, &mut conn, &auth, &id).await?;
    let tags = super::tags::all(&net).await?;
    Ok(common::one(&RESOURCE, render(&net, &r, &tags).await?, &q))
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let mut changes = attrs::for_update(&RESOURCE, attrs::body_object(body, &RESOURCE)?, is_admin(&auth))?;
    let gateway = match changes.remove("external_gateway_info") {
        Some(info) => Some(gateway_request(&auth, &info)?),
        None => None,
    };
    let routes = changes.remove("routes");
    let r = routers::update(&net, &auth, &id, RouterUpdate { attrs: changes, gateway, routes }).await?;
    let tags = super::tags::all(&net).await?;
    Ok(Json(json!({"router": render(&net, &r, &tags).await?})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    routers::delete(&net, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `add_router_interface` / `remove_router_interface`: exactly one
/// of a subnet or a port.
fn interface_target(body: &Value) -> Result<InterfaceTarget> {
    let get = |k: &str| body.get(k).and_then(Value::as_str).map(String::from);
    let (subnet, port) = (get("subnet_id"), get("port_id"));
    match (&subnet, &port) {
        (None, None) => Err(NetworkError::invalid(
            "BadRequest",
            "Bad router request: Either subnet_id or port_id must be specified.",
        )),
        (Some(_), Some(_)) => {
            Err(NetworkError::invalid("BadRequest", "Bad router request: Cannot specify both subnet-id and port-id."))
        }
        _ => {
            for id in subnet.iter().chain(port.iter()) {
                if uuid::Uuid::parse_str(id).is_err() {
                    return Err(NetworkError::invalid(
                        "HTTPBadRequest",
                        format!("Invalid input for operation: '{id}' is not a valid UUID."),
                    ));
                }
            }
            Ok(match (subnet, port) {
                (Some(s), _) => InterfaceTarget::Subnet(s),
                (None, p) => InterfaceTarget::Port(p.unwrap_or_default()),
            })
        }
    }
}

fn interface_info(r: &Record, port: &Record) -> Value {
    let subnets: Vec<String> = ports::fixed_ips(port).into_iter().map(|(s, _)| s).collect();
    json!({
        "id": r.id,
        "project_id": r.project_id,
        "port_id": port.id,
        "network_id": port.str("network_id"),
        "subnet_id": subnets.first(),
        "subnet_ids": subnets,
    })
}

/// `PUT /v2.0/routers/{id}/add_router_interface`
pub async fn add_interface(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let target = interface_target(&body)?;
    let (r, port) = routers::add_interface(&net, &auth, &id, target).await?;
    Ok(Json(interface_info(&r, &port)))
}

/// `PUT /v2.0/routers/{id}/remove_router_interface`: the interface port goes.
pub async fn remove_interface(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let target = interface_target(&body)?;
    let (r, port) = routers::remove_interface(&net, &auth, &id, target).await?;
    Ok(Json(interface_info(&r, &port)))
}
