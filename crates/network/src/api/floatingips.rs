//! `/v2.0/floatingips`: public addresses on an external network, mapped onto a
//! port's fixed address through the router that joins the two networks. The
//! L3 service plugin (`plugin::floatingips`) does the work.

use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::attrs::{self, create_only, read_only, writable, Access, Attr, Check, Default, Resource};
use super::common::{self, is_admin, owner};
use super::query::ListQuery;
use crate::plugin::floatingips;
use crate::store::FLOATINGIP;
use crate::Network;

pub const RESOURCE: Resource = Resource {
    singular: "floatingip",
    plural: "floatingips",
    attrs: &[
        create_only("floating_ip_address", Default::Computed, Check::Ip),
        create_only("floating_network_id", Default::Required, Check::Uuid),
        read_only("router_id", true),
        writable("port_id", Default::Null, Check::NullableUuid),
        writable("fixed_ip_address", Default::Null, Check::NullableIp),
        read_only("status", true),
        read_only("port_details", false),
        Attr {
            name: "subnet_id",
            post: true,
            put: false,
            default: Default::Computed,
            check: Check::NullableUuid,
            filter: false,
            sort: false,
            access: Access::Everyone,
        },
    ],
};

pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let admin = is_admin(&auth);
    let mut a = attrs::for_create(&RESOURCE, attrs::body_object(body, &RESOURCE)?, admin)?;
    let project = owner(&auth, &mut a)?;
    let fip = floatingips::create(&net, &auth, project, a).await?;
    let tags = super::tags::all(&net).await?;
    Ok((StatusCode::CREATED, Json(json!({"floatingip": common::shown(&RESOURCE, &fip, &tags, admin)}))))
}

pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RESOURCE, &[])?;
    let admin = is_admin(&auth);
    let tags = super::tags::all(&net).await?;
    let items = net
        .store
        .list(&FLOATINGIP, None)
        .await?
        .iter()
        .filter(|f| common::owns(&auth, &f.project_id))
        .map(|f| common::shown(&RESOURCE, f, &tags, admin))
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
    let mut conn = net.store.reader().await?;
    let f = floatingips::visible(&net, &mut conn, &auth, &id).await?;
    let tags = super::tags::all(&net).await?;
    Ok(common::one(&RESOURCE, common::shown(&RESOURCE, &f, &tags, is_admin(&auth)), &q))
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let admin = is_admin(&auth);
    let changes = attrs::for_update(&RESOURCE, attrs::body_object(body, &RESOURCE)?, admin)?;
    let f = floatingips::update(&net, &auth, &id, changes).await?;
    let tags = super::tags::all(&net).await?;
    Ok(Json(json!({"floatingip": common::shown(&RESOURCE, &f, &tags, admin)})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    floatingips::delete(&net, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
