//! `/v2.0/networks`: networks, their provider attributes (admins only) and
//! segments, realised by ML2.

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
use crate::ml2::types::SegmentRequest;
use crate::plugin::networks::{self, visible_to, NewNetwork};
use crate::store::{Record, Segment, AGENT, NETWORK, SUBNET, SUBNETPOOL};
use crate::Network;

const fn admin_attr(name: &'static str, check: Check) -> Attr {
    Attr {
        name,
        post: true,
        put: true,
        default: Default::Computed,
        check,
        filter: true,
        sort: false,
        access: Access::AdminOnly,
    }
}

pub const RESOURCE: Resource = Resource {
    singular: "network",
    plural: "networks",
    attrs: &[
        writable("name", Default::Str(""), Check::Str(255)),
        read_only("subnets", true),
        writable("admin_state_up", Default::Bool(true), Check::Bool),
        read_only("status", true),
        Attr {
            name: "shared",
            post: true,
            put: true,
            default: Default::Bool(false),
            check: Check::Bool,
            filter: true,
            sort: true,
            access: Access::AdminSets,
        },
        Attr {
            name: "router:external",
            post: true,
            put: true,
            default: Default::Bool(false),
            check: Check::Bool,
            filter: true,
            sort: true,
            access: Access::AdminSets,
        },
        read_only("mtu", true),
        writable("port_security_enabled", Default::Bool(true), Check::Bool),
        create_only("availability_zone_hints", Default::EmptyList, Check::StrList),
        read_only("availability_zones", false),
        read_only("ipv4_address_scope", true),
        read_only("ipv6_address_scope", true),
        admin_attr("provider:network_type", Check::NullableStr(32)),
        admin_attr("provider:physical_network", Check::NullableStr(64)),
        admin_attr("provider:segmentation_id", Check::Int(0, u32::MAX as i64, true)),
        admin_attr("segments", Check::List),
    ],
};

/// The segments a request names, from the provider attributes or the
/// multi-provider `segments` list.
fn requested_segments(attrs: &mut Map<String, Value>) -> Result<Vec<SegmentRequest>> {
    let t = attrs.remove("provider:network_type");
    let p = attrs.remove("provider:physical_network");
    let s = attrs.remove("provider:segmentation_id");
    let segments = attrs.remove("segments");
    let given = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null());
    let mut out = Vec::new();
    if let Some(Value::Array(list)) = &segments {
        if given(&t) || given(&p) || given(&s) {
            return Err(NetworkError::invalid(
                "InvalidInput",
                "Invalid input for operation: Segments and provider values cannot both be set.",
            ));
        }
        for seg in list {
            out.push(segment_request(
                seg.get("provider:network_type"),
                seg.get("provider:physical_network"),
                seg.get("provider:segmentation_id"),
            )?);
        }
    } else if given(&t) || given(&p) || given(&s) {
        out.push(segment_request(t.as_ref(), p.as_ref(), s.as_ref())?);
    }
    Ok(out)
}

fn segment_request(t: Option<&Value>, p: Option<&Value>, s: Option<&Value>) -> Result<SegmentRequest> {
    let network_type = t
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| NetworkError::invalid("InvalidInput", "Invalid input for operation: network_type required."))?;
    let segmentation_id = match s {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().or_else(|| v.as_str().and_then(|x| x.parse().ok())).ok_or_else(|| {
            NetworkError::invalid(
                "InvalidInput",
                format!("Invalid input for operation: segmentation_id '{v}' is not an integer."),
            )
        })?),
    };
    Ok(SegmentRequest {
        network_type,
        physical_network: p.and_then(Value::as_str).filter(|x| !x.is_empty()).map(String::from),
        segmentation_id,
    })
}

/// The provider view of a network's segments.
fn provider_attrs(m: &mut Map<String, Value>, segments: &[&Segment]) {
    if let [s] = segments {
        m.insert("provider:network_type".into(), json!(s.network_type));
        m.insert("provider:physical_network".into(), json!(s.physical_network));
        m.insert("provider:segmentation_id".into(), json!(s.segmentation_id));
    } else {
        let list: Vec<Value> = segments
            .iter()
            .map(|s| {
                json!({"provider:network_type": s.network_type, "provider:physical_network": s.physical_network,
                    "provider:segmentation_id": s.segmentation_id})
            })
            .collect();
        m.insert("segments".into(), Value::Array(list));
    }
}

/// Everything needed to render networks, loaded once per request.
pub struct NetworkView {
    subnets: HashMap<String, Vec<String>>,
    segments: HashMap<String, Vec<Segment>>,
    tags: HashMap<String, Vec<String>>,
    /// (network, IP version) → address scope, through the subnets' pools.
    scopes: HashMap<(String, i64), String>,
    /// Network → availability zones of the DHCP agents hosting it.
    zones: HashMap<String, Vec<String>>,
}

impl NetworkView {
    pub async fn load(net: &Network) -> Result<NetworkView> {
        let pools: HashMap<String, Record> =
            net.store.list(&SUBNETPOOL, None).await?.into_iter().map(|p| (p.id.clone(), p)).collect();
        let mut subnets: HashMap<String, Vec<String>> = HashMap::new();
        let mut scopes = HashMap::new();
        for s in net.store.list(&SUBNET, None).await? {
            let network_id = s.str("network_id").unwrap_or_default().to_string();
            let scope = s.str("subnetpool_id").and_then(|p| pools.get(p)).and_then(|p| p.str("address_scope_id"));
            if let (Some(scope), Some(v)) = (scope, s.attrs.get("ip_version").and_then(Value::as_i64)) {
                scopes.insert((network_id.clone(), v), scope.to_string());
            }
            subnets.entry(network_id).or_default().push(s.id.clone());
        }
        let mut segments: HashMap<String, Vec<Segment>> = HashMap::new();
        for s in net.store.all_segments().await? {
            segments.entry(s.network_id.clone()).or_default().push(s);
        }
        // A network's zones are its DHCP agents'; the L2 agents (one a host) are not read.
        let agents: HashMap<String, Record> = net
            .store
            .list(&AGENT, Some(("agent_type", network_rpc::DHCP_AGENT)))
            .await?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        let mut zones: HashMap<String, Vec<String>> = HashMap::new();
        for (agent, resource) in net.store.agent_bindings().await? {
            if let Some(z) = agents.get(&agent).and_then(|a| a.str("availability_zone")) {
                let list = zones.entry(resource).or_default();
                if !list.iter().any(|x| x == z) {
                    list.push(z.to_string());
                }
            }
        }
        Ok(NetworkView { subnets, segments, tags: super::tags::all(net).await?, scopes, zones })
    }

    pub fn render(&self, r: &Record, admin: bool) -> Map<String, Value> {
        let mut m = common::render(r, &self.tags);
        m.insert("subnets".into(), json!(self.subnets.get(&r.id).cloned().unwrap_or_default()));
        m.insert("ipv4_address_scope".into(), json!(self.scopes.get(&(r.id.clone(), 4))));
        m.insert("ipv6_address_scope".into(), json!(self.scopes.get(&(r.id.clone(), 6))));
        m.insert("availability_zones".into(), json!(self.zones.get(&r.id).cloned().unwrap_or_default()));
        let segs: Vec<&Segment> = self.segments.get(&r.id).map(|v| v.iter().collect()).unwrap_or_default();
        provider_attrs(&mut m, &segs);
        attrs::visible(&RESOURCE, m, admin)
    }
}

/// A create body parsed: its project, attributes and segments.
async fn new_network(net: &Network, auth: &Auth, body: Map<String, Value>) -> Result<NewNetwork> {
    let mut a = attrs::for_create(&RESOURCE, body, is_admin(auth))?;
    let project = owner(auth, &mut a)?;
    super::discovery::check_zone_hints(net, "network", &a).await?;
    let segments = requested_segments(&mut a)?;
    Ok(NewNetwork { project, attrs: a, segments })
}

/// `POST /v2.0/networks`, one or a bulk list.
pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (bodies, bulk) = common::bodies(body, &RESOURCE)?;
    let mut requests = Vec::new();
    for b in bodies {
        requests.push(new_network(&net, &auth, b).await?);
    }
    let created = networks::create(&net, requests).await?;
    let view = NetworkView::load(&net).await?;
    let admin = is_admin(&auth);
    let items = created.iter().map(|r| view.render(r, admin)).collect();
    Ok((StatusCode::CREATED, Json(common::created(&RESOURCE, items, bulk))))
}

pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let admin = is_admin(&auth);
    let view = NetworkView::load(&net).await?;
    let items = net
        .store
        .list(&NETWORK, None)
        .await?
        .iter()
        .filter(|r| visible_to(&auth, r))
        .map(|r| view.render(r, admin))
        .collect();
    common::many(&RESOURCE, &base, items, &q)
}

pub async fn show(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let r = networks::visible(&net, &auth, &id).await?;
    let view = NetworkView::load(&net).await?;
    Ok(common::one(&RESOURCE, view.render(&r, is_admin(&auth)), &q))
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let admin = is_admin(&auth);
    let changes = attrs::for_update(&RESOURCE, attrs::body_object(body, &RESOURCE)?, admin)?;
    for key in ["provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments"] {
        if changes.contains_key(key) {
            return Err(NetworkError::invalid(
                "InvalidInput",
                "Invalid input for operation: Plugin does not support updating provider attributes.",
            )
            .into());
        }
    }
    let r = networks::update(&net, &auth, &id, changes).await?;
    let view = NetworkView::load(&net).await?;
    Ok(Json(json!({"network": view.render(&r, admin)})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let r = networks::visible(&net, &auth, &id).await?;
    if !common::owns(&auth, &r.project_id) {
        return Err(
            NetworkError::forbidden(format!("(delete_network) is disallowed by policy for network {id}")).into()
        );
    }
    networks::delete(&net, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}
