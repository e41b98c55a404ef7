//! `/v2.0/security-groups` and `/v2.0/security-group-rules`: stateful
//! per-port firewall rules. The core plugin (`plugin::security_groups`)
//! checks and keeps them; every project gets a `default` group the first
//! time it needs one.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiResult, Auth, BaseUrl, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::attrs::{self, create_only, read_only, writable, Check, Default, Resource};
use super::common::{self, is_admin, owner};
use super::query::ListQuery;
use crate::plugin::security_groups::{self as groups, ensure_default};
use crate::store::{self, Record, SECURITY_GROUP, SECURITY_GROUP_RULE};
use crate::Network;

pub const GROUP: Resource = Resource {
    singular: "security_group",
    plural: "security_groups",
    attrs: &[writable("name", Default::Str(""), Check::Str(255)), read_only("security_group_rules", false)],
};

pub const RULE: Resource = Resource {
    singular: "security_group_rule",
    plural: "security_group_rules",
    attrs: &[
        create_only("security_group_id", Default::Required, Check::Str(36)),
        create_only("remote_group_id", Default::Null, Check::Any),
        create_only("direction", Default::Required, Check::OneOf(&["ingress", "egress"], false)),
        create_only("protocol", Default::Null, Check::Any),
        create_only("port_range_min", Default::Null, Check::Any),
        create_only("port_range_max", Default::Null, Check::Any),
        create_only("ethertype", Default::Str("IPv4"), Check::Any),
        create_only("remote_ip_prefix", Default::Null, Check::Any),
        create_only("remote_address_group_id", Default::Null, Check::NullableUuid),
    ],
};

fn render_rule(r: &Record) -> Map<String, Value> {
    let mut m = common::render(r, &HashMap::new());
    m.remove("tags");
    m
}

fn render_group(g: &Record, rules: &[Record], tags: &HashMap<String, Vec<String>>) -> Map<String, Value> {
    let mut m = common::render(g, tags);
    let mine: Vec<Value> = rules
        .iter()
        .filter(|r| r.str("security_group_id") == Some(g.id.as_str()))
        .map(|r| Value::Object(render_rule(r)))
        .collect();
    m.insert("security_group_rules".into(), Value::Array(mine));
    m
}

pub async fn create(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut a = attrs::for_create(&GROUP, attrs::body_object(body, &GROUP)?, is_admin(&auth))?;
    let project = owner(&auth, &mut a)?;
    let (g, rules) = groups::create(&net, project, a).await?;
    Ok((StatusCode::CREATED, Json(json!({"security_group": render_group(&g, &rules, &HashMap::new())}))))
}

pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &GROUP, &[])?;
    ensure_default(&net, auth.project_id.as_deref().unwrap_or_default()).await?;
    if auth.is_admin() {
        // An admin looking at one project sees its default group, as Neutron
        // creates it on that first look.
        if let Some([p]) = q.filter("project_id").or(q.filter("tenant_id")) {
            ensure_default(&net, p).await?;
        }
    }
    let rules = net.store.list(&SECURITY_GROUP_RULE, None).await?;
    let tags = super::tags::all(&net).await?;
    let items = net
        .store
        .list(&SECURITY_GROUP, None)
        .await?
        .iter()
        .filter(|g| common::owns(&auth, &g.project_id))
        .map(|g| render_group(g, &rules, &tags))
        .collect();
    common::many(&GROUP, &base, items, &q)
}

pub async fn show(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &GROUP, &[])?;
    let mut conn = net.store.reader().await?;
    let g = groups::visible_group(&net, &mut conn, &auth, &id).await?;
    let rules = net.store.list(&SECURITY_GROUP_RULE, Some(("security_group_id", &id))).await?;
    let tags = super::tags::all(&net).await?;
    Ok(common::one(&GROUP, render_group(&g, &rules, &tags), &q))
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let changes = attrs::for_update(&GROUP, attrs::body_object(body, &GROUP)?, is_admin(&auth))?;
    let g = groups::update(&net, &auth, &id, changes).await?;
    let rules = net.store.list(&SECURITY_GROUP_RULE, Some(("security_group_id", &id))).await?;
    let tags = super::tags::all(&net).await?;
    Ok(Json(json!({"security_group": render_group(&g, &rules, &tags)})))
}

pub async fn delete(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    groups::delete(&net, &auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_rule(
    State(net): State<Arc<Network>>,
    auth: Auth,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut a = attrs::for_create(&RULE, attrs::body_object(body, &RULE)?, is_admin(&auth))?;
    let project = owner(&auth, &mut a)?;
    let r = groups::create_rule(&net, &auth, project, a).await?;
    Ok((StatusCode::CREATED, Json(json!({"security_group_rule": render_rule(&r)}))))
}

pub async fn list_rules(
    State(net): State<Arc<Network>>,
    auth: Auth,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RULE, &[])?;
    ensure_default(&net, auth.project_id.as_deref().unwrap_or_default()).await?;
    let groups: HashMap<String, Record> =
        net.store.list(&SECURITY_GROUP, None).await?.into_iter().map(|g| (g.id.clone(), g)).collect();
    let items = net
        .store
        .list(&SECURITY_GROUP_RULE, None)
        .await?
        .iter()
        .filter(|r| {
            common::owns(&auth, &r.project_id)
                || groups
                    .get(r.str("security_group_id").unwrap_or_default())
                    .is_some_and(|g| common::owns(&auth, &g.project_id))
        })
        .map(render_rule)
        .collect();
    common::many(&RULE, &base, items, &q)
}

pub async fn show_rule(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let q = ListQuery::parse(&pairs, &RULE, &[])?;
    let r =
        net.store.find(&SECURITY_GROUP_RULE, &id).await?.ok_or_else(|| store::not_found(&SECURITY_GROUP_RULE, &id))?;
    if !groups::rule_visible(&net, &auth, &r).await? {
        return Err(store::not_found(&SECURITY_GROUP_RULE, &id).into());
    }
    Ok(common::one(&RULE, render_rule(&r), &q))
}

pub async fn delete_rule(State(net): State<Arc<Network>>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let r =
        net.store.find(&SECURITY_GROUP_RULE, &id).await?.ok_or_else(|| store::not_found(&SECURITY_GROUP_RULE, &id))?;
    if !groups::rule_visible(&net, &auth, &r).await? {
        return Err(store::not_found(&SECURITY_GROUP_RULE, &id).into());
    }
    groups::delete_rule(&net, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}
