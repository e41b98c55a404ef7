//! `/v2.0/ports`: a device's attachment to a network — its MAC, its addresses
//! (from IPAM), its security groups, and its binding to a host (by ML2). The
//! handlers parse, authorise and render; `plugin::ports` does the work.

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
use crate::ipam::allocate;
use crate::plugin::{self, ports::NewPort};
use crate::store::{self, Record, NETWORK, PORT};
use crate::Network;

const VNIC_TYPES: &[&str] = &[
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "remote-managed",
    "vdpa",
];

const fn binding(name: &'static str, post: bool, default: Default, check: Check) -> Attr {
    Attr { name, post, put: post, default, check, filter: true, sort: false, access: Access::AdminOnly }
}

pub const RESOURCE: Resource = Resource {
    singular: "port",
    plural: "ports",
    attrs: &[
        writable("name", Default::Str(""), Check::Str(255)),
        create_only("network_id", Default::Required, Check::Uuid),
        writable("admin_state_up", Default::Bool(true), Check::Bool),
        writable("mac_address", Default::Computed, Check::Mac),
        writable("fixed_ips", Default::Computed, Check::List),
        writable("device_id", Default::Str(""), Check::Str(255)),
        writable("device_owner", Default::Str(""), Check::Str(255)),
        read_only("status", true),
        writable("security_groups", Default::Computed, Check::List),
        writable("port_security_enabled", Default::Computed, Check::Bool),
        writable("allowed_address_pairs", Default::EmptyList, Check::List),
        writable("extra_dhcp_opts", Default::EmptyList, Check::List),
        binding("binding:host_id", true, Default::Str(""), Check::Str(255)),
        binding("binding:profile", true, Default::EmptyObject, Check::Object),
        binding("binding:vif_type", false, Default::Computed, Check::Any),
        binding("binding:vif_details", false, Default::Computed, Check::Any),
        writable("binding:vnic_type", Default::Str("normal"), Check::OneOf(VNIC_TYPES, false)),
    ],
};

/// Device owners whose ports the L3 service manages; users may not delete them.
const ROUTER_OWNERS: &[&str] = &[
    "network:router_interface",
    "network:router_gateway",
    "network:floatingip",
    "network:router_interface_distributed",
];

/// Whether the caller may see the port: its owner, the network's owner, admins.
pub fn port_visible(auth: &Auth, port: &Record, networks: &HashMap<String, Record>) -> bool {
    common::owns(auth, &port.project_id)
        || networks
            .get(port.str("network_id").unwrap_or_default())
            .is_some_and(|n| !n.project_id.is_empty() && common::owns(auth, &n.project_id))
}

pub fn render(port: &Record, tags: &HashMap<String, Vec<String>>, admin: bool) -> Map<String, Value> {
    common::shown(&RESOURCE, port, tags, admin)
}

pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let admin = is_admin(&auth);
    let networks: HashMap<String, Record> =
        net.store.list(&NETWORK, None).await?.into_iter().map(|n| (n.id.clone(), n)).collect();
    let tags = super::tags::all(&net).await?;
    // The common filters narrow the database read; the rest filter in memory.
    let by = q
        .filter("device_id")
        .and_then(|v| (v.len() == 1).then(|| ("device_id", v[0].as_str())))
        .or_else(|| q.filter("network_id").and_then(|v| (v.len() == 1).then(|| ("network_id", v[0].as_str()))));
    let items = net
        .store
        .list(&PORT, by)
        .await?
        .iter()
        .filter(|p| port_visible(&auth, p, &networks))
        .map(|p| render(p, &tags, admin))
        .collect();
    common::many(&RESOURCE, &base, items, &q)
}

pub async fn visible_port(net: &Network, auth: &Auth, id: &str) -> Result<Record> {
    let p = net.store.find(&PORT, id).await?.ok_or_else(|| store::not_found(&PORT, id))?;
    let network = net.store.find(&NETWORK, p.str("network_id").unwrap_or_default()).await?;
    let networks: HashMap<String, Record> = network.into_iter().map(|n| (n.id.clone(), n)).collect();
    if port_visible(auth, &p, &networks) {
        Ok(p)
    } else {
        Err(store::not_found(&PORT, id))
    }
}

pub async fn show(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let p = visible_port(&net, &auth, &id).await?;
    let tags = super::tags::all(&net).await?;
    Ok(common::one(&RESOURCE, render(&p, &tags, is_admin(&auth)), &q))
}

/// `POST /v2.0/ports`, one port or a bulk list (in one transaction).
pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (bodies, bulk) = common::bodies(body, &RESOURCE)?;
    let admin = is_admin(&auth);
    let mut ports = Vec::new();
    for b in bodies {
        let mut a = attrs::for_create(&RESOURCE, b, admin)?;
        let project = owner(&auth, &mut a)?;
        let fixed_ips = match a.remove("fixed_ips") {
            None | Some(Value::Null) => None,
            Some(v) => Some(allocate::parse_requests(&v)?),
        };
        ports.push(NewPort { attrs: a, project, fixed_ips });
    }
    let created = plugin::ports::create(&net, &auth, ports).await?;
    let items = created.iter().map(|r| render(r, &HashMap::new(), admin)).collect();
    Ok((StatusCode::CREATED, Json(common::created(&RESOURCE, items, bulk))))
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let admin = is_admin(&auth);
    let changes = attrs::for_update(&RESOURCE, attrs::body_object(body, &RESOURCE)?, admin)?;
    let current = visible_port(&net, &auth, &id).await?;
    let new_mac = changes.get("mac_address").and_then(Value::as_str);
    if !admin && new_mac.is_some_and(|m| Some(m) != current.str("mac_address")) {
        return Err(attrs::policy_refused("update", &RESOURCE, "mac_address").into());
    }
    let port = plugin::ports::update(&net, &auth, &id, changes).await?;
    let tags = super::tags::all(&net).await?;
    Ok(Json(json!({"port": render(&port, &tags, admin)})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let port = visible_port(&net, &auth, &id).await?;
    let owner = port.str("device_owner").unwrap_or_default();
    if ROUTER_OWNERS.contains(&owner) && !port.str("device_id").unwrap_or_default().is_empty() {
        return Err(NetworkError::conflict(
            "ServicePortInUse",
            format!("Port {id} cannot be deleted directly via the port API: has device owner {owner}."),
        )
        .into());
    }
    plugin::ports::delete(&net, &port).await?;
    Ok(StatusCode::NO_CONTENT)
}
