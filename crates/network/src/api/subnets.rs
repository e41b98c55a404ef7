//! `/v2.0/subnets`: address ranges of a network. The core plugin
//! (`plugin::subnets`) checks and makes them.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::attrs::{self, create_only, writable, Access, Attr, Check, Default, Resource};
use super::common::{self, is_admin, owner};
use super::query::ListQuery;
use crate::error::NetworkError;
use crate::plugin::subnets::{self, MODES};
use crate::store::{Record, NETWORK, SUBNET};
use crate::Network;

const fn hidden(name: &'static str, check: Check) -> Attr {
    Attr {
        name,
        post: true,
        put: false,
        default: Default::Computed,
        check,
        filter: false,
        sort: false,
        access: Access::Everyone,
    }
}

pub const RESOURCE: Resource = Resource {
    singular: "subnet",
    plural: "subnets",
    attrs: &[
        writable("name", Default::Str(""), Check::Str(255)),
        create_only("network_id", Default::Required, Check::Uuid),
        create_only("ip_version", Default::Required, Check::Int(4, 6, false)),
        create_only("cidr", Default::Computed, Check::Cidr),
        create_only("subnetpool_id", Default::Computed, Check::NullableUuid),
        hidden("prefixlen", Check::Int(0, 128, true)),
        hidden("use_default_subnetpool", Check::Bool),
        writable("gateway_ip", Default::Computed, Check::NullableIp),
        writable("allocation_pools", Default::Computed, Check::List),
        writable("dns_nameservers", Default::EmptyList, Check::StrList),
        writable("host_routes", Default::EmptyList, Check::List),
        writable("enable_dhcp", Default::Bool(true), Check::Bool),
        create_only("ipv6_ra_mode", Default::Null, Check::OneOf(MODES, true)),
        create_only("ipv6_address_mode", Default::Null, Check::OneOf(MODES, true)),
        writable("service_types", Default::EmptyList, Check::StrList),
    ],
};

/// `POST /v2.0/subnets`, one or a bulk list.
pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (bodies, bulk) = common::bodies(body, &RESOURCE)?;
    let admin = is_admin(&auth);
    let mut requests = Vec::new();
    for b in bodies {
        let mut a = attrs::for_create(&RESOURCE, b, admin)?;
        let project = owner(&auth, &mut a)?;
        requests.push((project, a));
    }
    let created = subnets::create(&net, &auth, requests).await?;
    let tags = super::tags::all(&net).await?;
    let items = created.iter().map(|r| common::shown(&RESOURCE, r, &tags, admin)).collect();
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
    let networks: HashMap<String, Record> =
        net.store.list(&NETWORK, None).await?.into_iter().map(|n| (n.id.clone(), n)).collect();
    let tags = super::tags::all(&net).await?;
    let items = net
        .store
        .list(&SUBNET, None)
        .await?
        .iter()
        .filter(|s| subnets::subnet_visible(&auth, s, networks.get(s.str("network_id").unwrap_or_default())))
        .map(|s| common::shown(&RESOURCE, s, &tags, admin))
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
    let s = subnets::visible(&net, &auth, &id).await?;
    let tags = super::tags::all(&net).await?;
    Ok(common::one(&RESOURCE, common::shown(&RESOURCE, &s, &tags, is_admin(&auth)), &q))
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let admin = is_admin(&auth);
    let changes = attrs::for_update(&RESOURCE, attrs::body_object(body, &RESOURCE)?, admin)?;
    let s = subnets::update(&net, &auth, &id, changes).await?;
    let tags = super::tags::all(&net).await?;
    Ok(Json(json!({"subnet": common::shown(&RESOURCE, &s, &tags, admin)})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let s = subnets::visible(&net, &auth, &id).await?;
    if !common::owns(&auth, &s.project_id) {
        return Err(NetworkError::forbidden(format!("(delete_subnet) is disallowed by policy for subnet {id}")).into());
    }
    subnets::delete(&net, &s).await?;
    Ok(StatusCode::NO_CONTENT)
}
