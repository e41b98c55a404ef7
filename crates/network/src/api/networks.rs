//! `/v2.0/networks`: networks, their provider attributes (admins only) and
//! segments, realised by ML2.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use db::AnyConnection;
use serde_json::{json, Map, Value};

use super::attrs::{self, create_only, read_only, writable, Access, Attr, Check, Default, Resource};
use super::common::{self, is_admin, owner};
use super::query::ListQuery;
use super::quotas::check_quota;
use crate::error::{NetworkError, Result};
use crate::ml2::types::SegmentRequest;
use crate::plugin::{Change, Txn};
use crate::store::{self, Record, Segment, AGENT, NETWORK, PORT, SUBNET, SUBNETPOOL};
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

/// Whether the caller may see the network: its owner, an admin, or anyone when
/// it is shared or external.
pub fn visible_to(auth: &Auth, r: &Record) -> bool {
    common::owns(auth, &r.project_id) || r.flag("shared") || r.flag("router:external")
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
            .list(&AGENT, Some(("agent_type", super::agents::DHCP_AGENT)))
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

/// Creates one network inside the caller's transaction.
async fn create_in(net: &Network, conn: &mut AnyConnection, auth: &Auth, body: Map<String, Value>) -> Result<Record> {
    let mut a = attrs::for_create(&RESOURCE, body, is_admin(auth))?;
    let project = owner(auth, &mut a)?;
    super::discovery::check_zone_hints(net, "network", &a).await?;
    let requests = requested_segments(&mut a)?;
    net.ml2.validate(&requests)?;
    let id = common::new_id();
    check_quota(net, conn, &NETWORK, &project, 1).await?;
    let segments = net.ml2.create_segments(&net.store, conn, &id, &requests).await?;
    a.insert("status".into(), json!("ACTIVE"));
    a.insert("mtu".into(), json!(net.ml2.mtu(&segments)));
    a.insert("availability_zones".into(), json!([]));
    a.insert("ipv4_address_scope".into(), Value::Null);
    a.insert("ipv6_address_scope".into(), Value::Null);
    let rec = Record::new(id, project, a);
    net.store.insert(conn, &NETWORK, &rec).await?;
    Ok(rec)
}

/// `POST /v2.0/networks`, one or a bulk list.
pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (bodies, bulk) = common::bodies(body, &RESOURCE)?;
    let mut w = Txn::begin(&net).await?;
    let mut created = Vec::new();
    for b in bodies {
        let network = create_in(&net, w.conn(), &auth, b).await?;
        w.record(Change::Network { created: true, network: network.clone() });
        created.push(network);
    }
    w.commit().await?;
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

/// The network, if the caller may see it; 404 otherwise, as Neutron hides what
/// a project may not see.
pub async fn visible_network(net: &Network, auth: &Auth, id: &str) -> Result<Record> {
    match net.store.find(&NETWORK, id).await? {
        Some(r) if visible_to(auth, &r) => Ok(r),
        _ => Err(store::not_found(&NETWORK, id)),
    }
}

pub async fn show(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let r = visible_network(&net, &auth, &id).await?;
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
    let mut w = Txn::begin(&net).await?;
    let mut r = match net.store.find_in(w.conn(), &NETWORK, &id).await? {
        Some(r) if visible_to(&auth, &r) => r,
        _ => return Err(store::not_found(&NETWORK, &id).into()),
    };
    if !common::owns(&auth, &r.project_id) {
        return Err(
            NetworkError::forbidden(format!("(update_network) is disallowed by policy for network {id}")).into()
        );
    }
    for key in ["provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments"] {
        if changes.contains_key(key) {
            return Err(NetworkError::invalid(
                "InvalidInput",
                "Invalid input for operation: Plugin does not support updating provider attributes.",
            )
            .into());
        }
    }
    if changes.get("shared") == Some(&Value::Bool(false)) && r.flag("shared") {
        // Unsharing is refused while other projects have ports on it.
        let others = net.store.list_in(w.conn(), &PORT, Some(("network_id", &id))).await?;
        if others.iter().any(|p| p.project_id != r.project_id && p.str("device_owner") != Some("network:dhcp")) {
            return Err(NetworkError::conflict(
                "InvalidSharedSetting",
                format!("Unable to reconfigure sharing settings for network {id}. Multiple tenants are using it."),
            )
            .into());
        }
    }
    for (k, v) in changes {
        r.attrs.insert(k, v);
    }
    r.touch();
    net.store.update(w.conn(), &NETWORK, &r).await?;
    w.record(Change::Network { created: false, network: r.clone() });
    w.commit().await?;
    let view = NetworkView::load(&net).await?;
    Ok(Json(json!({"network": view.render(&r, admin)})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let r = visible_network(&net, &auth, &id).await?;
    if !common::owns(&auth, &r.project_id) {
        return Err(
            NetworkError::forbidden(format!("(delete_network) is disallowed by policy for network {id}")).into()
        );
    }
    crate::plugin::ports::delete_network_owned_ports(&net, &id).await?;
    if r.flag("router:external") {
        super::floatingips::delete_unassociated(&net, &id).await?;
    }
    let mut w = Txn::begin(&net).await?;
    let ports = net.store.list_in(w.conn(), &PORT, Some(("network_id", &id))).await?;
    if !ports.is_empty() {
        return Err(NetworkError::conflict(
            "NetworkInUse",
            format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network."),
        )
        .into());
    }
    for s in net.store.list_in(w.conn(), &SUBNET, Some(("network_id", &id))).await? {
        net.store.set_tags(w.conn(), &s.id, &[]).await?;
        net.store.delete(w.conn(), &SUBNET, &s.id).await?;
    }
    net.store.release_segments(w.conn(), &id).await?;
    net.store.unbind_resource(w.conn(), &id).await?;
    net.store.set_tags(w.conn(), &id, &[]).await?;
    net.store.delete(w.conn(), &NETWORK, &id).await?;
    w.record(Change::NetworkDeleted(id.clone()));
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
