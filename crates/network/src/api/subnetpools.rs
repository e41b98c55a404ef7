//! `/v2.0/subnetpools` and `/v2.0/address-scopes`: prefixes subnets may be
//! carved from (subnet_allocation), and the scopes that group them.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::attrs::{self, create_only, read_only, writable, Access, Attr, Check, Default, Resource};
use super::common::{self, is_admin, owner};
use super::query::ListQuery;
use crate::error::{NetworkError, Result};
use crate::plugin::quotas::check_quota;
use crate::store::{self, Record, ADDRESS_SCOPE, SUBNET, SUBNETPOOL};
use crate::Network;

const fn admin_flag(name: &'static str) -> Attr {
    Attr {
        name,
        post: true,
        put: true,
        default: Default::Bool(false),
        check: Check::Bool,
        filter: true,
        sort: true,
        access: Access::AdminSets,
    }
}

pub const POOL: Resource = Resource {
    singular: "subnetpool",
    plural: "subnetpools",
    attrs: &[
        writable("name", Default::Required, Check::Str(255)),
        writable("prefixes", Default::Required, Check::StrList),
        writable("default_quota", Default::Null, Check::Int(0, i64::MAX, true)),
        read_only("ip_version", true),
        writable("default_prefixlen", Default::Computed, Check::Int(0, 128, false)),
        writable("min_prefixlen", Default::Computed, Check::Int(0, 128, false)),
        writable("max_prefixlen", Default::Computed, Check::Int(0, 128, false)),
        admin_flag("is_default"),
        Attr {
            name: "shared",
            post: true,
            put: false,
            default: Default::Bool(false),
            check: Check::Bool,
            filter: true,
            sort: true,
            access: Access::AdminSets,
        },
        writable("address_scope_id", Default::Null, Check::NullableUuid),
    ],
};

pub const SCOPE: Resource = Resource {
    singular: "address_scope",
    plural: "address_scopes",
    attrs: &[
        writable("name", Default::Required, Check::Str(255)),
        admin_flag("shared"),
        create_only("ip_version", Default::Required, Check::Int(4, 6, false)),
    ],
};

fn invalid(message: String) -> NetworkError {
    NetworkError::invalid("InvalidInput", format!("Invalid input for operation: {message}."))
}

/// Canonical prefixes, all of one IP version; returns it.
fn check_prefixes(v: &Value) -> Result<(Vec<String>, i64)> {
    let items = v.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Err(invalid("a subnet pool needs prefixes".into()));
    }
    let mut nets: Vec<IpNet> = Vec::new();
    for p in &items {
        let n: IpNet = p
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("'{p}' is not a valid IP subnet")))?;
        nets.push(n.trunc());
    }
    let v6 = nets[0].addr().is_ipv6();
    if nets.iter().any(|n| n.addr().is_ipv6() != v6) {
        return Err(invalid("Illegal subnetpool prefixes: Prefixes may not mix IP versions".into()));
    }
    let merged = IpNet::aggregate(&nets);
    Ok((merged.iter().map(|n| n.to_string()).collect(), if v6 { 6 } else { 4 }))
}

fn num(a: &Map<String, Value>, k: &str) -> Option<i64> {
    a.get(k).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
}

/// Prefix lengths, stored as the strings Neutron returns, checked to be in
/// order and within the IP version's bounds.
fn set_prefixlens(a: &mut Map<String, Value>, version: i64) -> Result<()> {
    let top = if version == 6 { 128 } else { 32 };
    let min = num(a, "min_prefixlen").unwrap_or(if version == 6 { 64 } else { 8 });
    let max = num(a, "max_prefixlen").unwrap_or(top);
    let default = num(a, "default_prefixlen").unwrap_or(min);
    if !(0..=top).contains(&min) || !(0..=top).contains(&max) || min > max || default < min || default > max {
        return Err(invalid(format!(
            "Illegal prefix bounds: min_prefixlen {min}, default_prefixlen {default}, max_prefixlen {max}"
        )));
    }
    a.insert("min_prefixlen".into(), json!(min.to_string()));
    a.insert("max_prefixlen".into(), json!(max.to_string()));
    a.insert("default_prefixlen".into(), json!(default.to_string()));
    Ok(())
}

fn pool_visible(auth: &Auth, p: &Record) -> bool {
    common::owns(auth, &p.project_id) || p.flag("shared")
}

pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut a = attrs::for_create(&POOL, attrs::body_object(body, &POOL)?, is_admin(&auth))?;
    let project = owner(&auth, &mut a)?;
    let (prefixes, version) = check_prefixes(a.get("prefixes").unwrap_or(&Value::Null))?;
    a.insert("prefixes".into(), json!(prefixes));
    a.insert("ip_version".into(), json!(version));
    set_prefixlens(&mut a, version)?;
    if let Some(scope) = a.get("address_scope_id").and_then(Value::as_str) {
        net.store.get(&ADDRESS_SCOPE, scope).await?;
    }
    let mut w = net.store.begin().await?;
    check_quota(&net, w.conn(), &SUBNETPOOL, &project, 1).await?;
    let r = Record::new(common::new_id(), project, a);
    net.store.insert(w.conn(), &SUBNETPOOL, &r).await?;
    w.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({"subnetpool": common::render(&r, &HashMap::new())}))))
}

pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &POOL, &[])?;
    let tags = super::tags::all(&net).await?;
    let items = net
        .store
        .list(&SUBNETPOOL, None)
        .await?
        .iter()
        .filter(|p| pool_visible(&auth, p))
        .map(|p| common::render(p, &tags))
        .collect();
    common::many(&POOL, &base, items, &q)
}

async fn visible(net: &Network, auth: &Auth, id: &str) -> Result<Record> {
    match net.store.find(&SUBNETPOOL, id).await? {
        Some(p) if pool_visible(auth, &p) => Ok(p),
        _ => Err(store::not_found(&SUBNETPOOL, id)),
    }
}

pub async fn show(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &POOL, &[])?;
    let p = visible(&net, &auth, &id).await?;
    let tags = super::tags::all(&net).await?;
    Ok(common::one(&POOL, common::render(&p, &tags), &q))
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let changes = attrs::for_update(&POOL, attrs::body_object(body, &POOL)?, is_admin(&auth))?;
    let mut p = visible(&net, &auth, &id).await?;
    if !common::owns(&auth, &p.project_id) {
        return Err(NetworkError::forbidden("(update_subnetpool) is disallowed by policy").into());
    }
    let version = p.attrs.get("ip_version").and_then(Value::as_i64).unwrap_or(4);
    for (k, v) in changes {
        if k == "prefixes" {
            let (new, v2) = check_prefixes(&v)?;
            let old: Vec<IpNet> = p
                .attrs
                .get("prefixes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().and_then(|s| s.parse().ok())).collect())
                .unwrap_or_default();
            let new_nets: Vec<IpNet> = new.iter().filter_map(|s| s.parse().ok()).collect();
            if v2 != version
                || old
                    .iter()
                    .any(|o| !new_nets.iter().any(|n| n.contains(&o.network()) && n.prefix_len() <= o.prefix_len()))
            {
                return Err(invalid("Illegal update to prefixes: prefixes may only grow".into()).into());
            }
            p.attrs.insert(k, json!(new));
        } else {
            p.attrs.insert(k, v);
        }
    }
    set_prefixlens(&mut p.attrs, version)?;
    p.touch();
    let mut w = net.store.begin().await?;
    net.store.update(w.conn(), &SUBNETPOOL, &p).await?;
    w.commit().await?;
    let tags = super::tags::all(&net).await?;
    Ok(Json(json!({"subnetpool": common::render(&p, &tags)})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let p = visible(&net, &auth, &id).await?;
    if !common::owns(&auth, &p.project_id) {
        return Err(NetworkError::forbidden("(delete_subnetpool) is disallowed by policy").into());
    }
    let mut w = net.store.begin().await?;
    if !net.store.list_in(w.conn(), &SUBNET, Some(("subnetpool_id", &id))).await?.is_empty() {
        return Err(NetworkError::conflict(
            "SubnetPoolInUse",
            format!("Subnet pool {id} cannot be deleted because it is in use by one or more subnets."),
        )
        .into());
    }
    net.store.set_tags(w.conn(), &id, &[]).await?;
    net.store.delete(w.conn(), &SUBNETPOOL, &id).await?;
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Address scopes have no standard attributes: no description, revision or
/// timestamps.
fn render_scope(r: &Record) -> Map<String, Value> {
    let mut m = r.attrs.clone();
    m.insert("id".into(), json!(r.id));
    m.insert("tenant_id".into(), json!(r.project_id));
    m.insert("project_id".into(), json!(r.project_id));
    m.remove("description");
    m
}

fn scope_visible(auth: &Auth, s: &Record) -> bool {
    common::owns(auth, &s.project_id) || s.flag("shared")
}

pub async fn create_scope(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut a = attrs::for_create(&SCOPE, attrs::body_object(body, &SCOPE)?, is_admin(&auth))?;
    let project = owner(&auth, &mut a)?;
    a.remove("description");
    let mut w = net.store.begin().await?;
    let r = Record::new(common::new_id(), project, a);
    net.store.insert(w.conn(), &ADDRESS_SCOPE, &r).await?;
    w.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({"address_scope": render_scope(&r)}))))
}

pub async fn list_scopes(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &SCOPE, &[])?;
    let items = net
        .store
        .list(&ADDRESS_SCOPE, None)
        .await?
        .iter()
        .filter(|s| scope_visible(&auth, s))
        .map(render_scope)
        .collect();
    common::many(&SCOPE, &base, items, &q)
}

async fn visible_scope(net: &Network, auth: &Auth, id: &str) -> Result<Record> {
    match net.store.find(&ADDRESS_SCOPE, id).await? {
        Some(s) if scope_visible(auth, &s) => Ok(s),
        _ => Err(store::not_found(&ADDRESS_SCOPE, id)),
    }
}

pub async fn show_scope(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"address_scope": render_scope(&visible_scope(&net, &auth, &id).await?)})))
}

pub async fn update_scope(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let mut changes = attrs::for_update(&SCOPE, attrs::body_object(body, &SCOPE)?, is_admin(&auth))?;
    changes.remove("description");
    let mut s = visible_scope(&net, &auth, &id).await?;
    if !common::owns(&auth, &s.project_id) {
        return Err(NetworkError::forbidden("(update_address_scope) is disallowed by policy").into());
    }
    for (k, v) in changes {
        s.attrs.insert(k, v);
    }
    s.touch();
    let mut w = net.store.begin().await?;
    net.store.update(w.conn(), &ADDRESS_SCOPE, &s).await?;
    w.commit().await?;
    Ok(Json(json!({"address_scope": render_scope(&s)})))
}

pub async fn delete_scope(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let s = visible_scope(&net, &auth, &id).await?;
    if !common::owns(&auth, &s.project_id) {
        return Err(NetworkError::forbidden("(delete_address_scope) is disallowed by policy").into());
    }
    let in_use =
        net.store.list(&SUBNETPOOL, None).await?.iter().any(|p| p.str("address_scope_id") == Some(id.as_str()));
    if in_use {
        return Err(NetworkError::conflict("AddressScopeInUse", format!("Unable to complete operation on address scope {id}. There are one or more subnet pools in use on the address scope.")).into());
    }
    let mut w = net.store.begin().await?;
    net.store.delete(w.conn(), &ADDRESS_SCOPE, &id).await?;
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
