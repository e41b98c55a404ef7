//! `/v3/groups` and group membership.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, Fields, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::render;
use crate::bootstrap::DEFAULT_DOMAIN_ID;
use crate::policy;
use crate::store::{Group, UserFilter};
use crate::Identity;

pub async fn create(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_group")?;
    let mut f = Fields::from_body(body, "group")?;
    f.forbid(&["id"])?;
    let g = Group {
        id: common::id::new_hex_id(),
        name: f.name("name", 64)?,
        domain_id: f
            .string("domain_id")?
            .or_else(|| auth.domain_id.clone())
            .unwrap_or_else(|| DEFAULT_DOMAIN_ID.into()),
        description: f.nullable_string("description")?.flatten().unwrap_or_default(),
        extra: f.rest(),
    };
    id.store.get_domain(&g.domain_id).await?;
    id.store.create_group(&g).await?;
    Ok((StatusCode::CREATED, Json(json!({"group": render::group(&base, &g)}))))
}

pub async fn list(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_groups")?;
    let groups =
        id.store.list_groups(q.get("domain_id").map(String::as_str), q.get("name").map(String::as_str)).await?;
    let items = groups.iter().map(|g| render::group(&base, g)).collect();
    Ok(Json(render::paged(&base, "groups", "/v3/groups", items, &q)?))
}

pub async fn get(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(group_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let g = id.store.get_group(&group_id).await?;
    let member = id.store.is_member(&auth.user_id, &g.id).await?;
    policy::enforce_any(&auth, "identity:get_group", member)?;
    Ok(Json(json!({"group": render::group(&base, &g)})))
}

pub async fn update(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(group_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_group")?;
    let mut g = id.store.get_group(&group_id).await?;
    let mut f = Fields::from_body(body, "group")?;
    if let Some(d) = f.string("domain_id")? {
        if d != g.domain_id {
            return Err(ApiError::bad_request("Cannot change Domain ID"));
        }
    }
    if let Some(name) = f.optional_name("name", 64)? {
        g.name = name;
    }
    if let Some(d) = f.nullable_string("description")? {
        g.description = d.unwrap_or_default();
    }
    f.raw("id");
    g.extra.extend(f.rest());
    id.store.update_group(&g).await?;
    Ok(Json(json!({"group": render::group(&base, &g)})))
}

pub async fn delete(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(group_id): Path<String>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_group")?;
    id.store.get_group(&group_id).await?;
    for user_id in id.store.user_ids_in_group(&group_id).await? {
        id.tokens.revoke_user(&user_id).await?;
    }
    id.store.delete_group(&group_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/groups/{id}/users`
pub async fn users(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(group_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_users_in_group")?;
    id.store.get_group(&group_id).await?;
    let ids = id.store.user_ids_in_group(&group_id).await?;
    let users = id.store.list_users(&UserFilter { ids: Some(ids), ..Default::default() }).await?;
    let items = users.iter().map(|u| render::user(&base, u)).collect();
    Ok(Json(render::collection(&base, "users", &format!("/v3/groups/{group_id}/users"), items)))
}

pub async fn add_user(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:add_user_to_group")?;
    id.store.get_group(&group_id).await?;
    id.store.get_user(&user_id).await?;
    id.store.add_user_to_group(&user_id, &group_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_user(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin_or_self(&auth, "identity:check_user_in_group", &user_id)?;
    id.store.get_group(&group_id).await?;
    id.store.get_user(&user_id).await?;
    if id.store.is_member(&user_id, &group_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("User {user_id} is not a member of group {group_id}.")))
    }
}

pub async fn remove_user(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:remove_user_from_group")?;
    id.store.get_group(&group_id).await?;
    id.store.get_user(&user_id).await?;
    if !id.store.remove_user_from_group(&user_id, &group_id).await? {
        return Err(ApiError::not_found(format!("User {user_id} is not a member of group {group_id}.")));
    }
    id.tokens.revoke_user(&user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
