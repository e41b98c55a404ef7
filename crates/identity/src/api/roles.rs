//! `/v3/roles`, implied roles and `/v3/role_inferences`.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, Fields, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::render;
use crate::policy;
use crate::store::Role;
use crate::Identity;

/// Roles that may never be implied (Keystone's `prohibited_implied_role`).
const PROHIBITED_IMPLIED: &[&str] = &["admin"];

pub async fn create(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_role")?;
    let mut f = Fields::from_body(body, "role")?;
    f.forbid(&["id"])?;
    let r = Role {
        id: common::id::new_hex_id(),
        name: f.name("name", 255)?,
        domain_id: f.nullable_string("domain_id")?.flatten(),
        description: f.nullable_string("description")?.flatten(),
        options: f.object("options")?.unwrap_or_default(),
        extra: f.rest(),
    };
    if let Some(d) = &r.domain_id {
        id.store.get_domain(d).await?;
    }
    // Role names are unique case-insensitively within their domain.
    let clash = id
        .store
        .list_roles()
        .await?
        .into_iter()
        .any(|x| x.domain_id == r.domain_id && x.name.eq_ignore_ascii_case(&r.name));
    if clash {
        return Err(ApiError::conflict(format!(
            "Conflict occurred attempting to store role - Duplicate entry found with name {}.",
            r.name
        )));
    }
    id.store.create_role(&r).await?;
    Ok((StatusCode::CREATED, Json(json!({"role": render::role(&base, &r)}))))
}

pub async fn list(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_roles")?;
    let domain = q.get("domain_id");
    let roles: Vec<Role> = id
        .store
        .list_roles()
        .await?
        .into_iter()
        .filter(|r| r.domain_id.as_ref() == domain)
        .filter(|r| q.get("name").is_none_or(|n| &r.name == n))
        .collect();
    let items = roles.iter().map(|r| render::role(&base, r)).collect();
    Ok(Json(render::paged(&base, "roles", "/v3/roles", items, &q)?))
}

pub async fn get(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(role_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_role")?;
    let r = id.store.get_role(&role_id).await?;
    Ok(Json(json!({"role": render::role(&base, &r)})))
}

pub async fn update(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(role_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_role")?;
    let mut r = id.store.get_role(&role_id).await?;
    let mut f = Fields::from_body(body, "role")?;
    if let Some(d) = f.nullable_string("domain_id")? {
        if d != r.domain_id {
            return Err(ApiError::bad_request("Update of `domain_id` is not allowed."));
        }
    }
    if let Some(name) = f.optional_name("name", 255)? {
        r.name = name;
    }
    if let Some(d) = f.nullable_string("description")? {
        r.description = d;
    }
    if let Some(o) = f.object("options")? {
        r.options.extend(o);
    }
    f.raw("id");
    r.extra.extend(f.rest());
    id.store.update_role(&r).await?;
    Ok(Json(json!({"role": render::role(&base, &r)})))
}

pub async fn delete(State(id): State<Arc<Identity>>, auth: Auth, Path(role_id): Path<String>) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_role")?;
    id.store.get_role(&role_id).await?;
    id.store.delete_role(&role_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn inference(base: &BaseUrl, prior: &Role, implied: &Role) -> Value {
    json!({
        "role_inference": {"prior_role": render::role_ref(base, prior), "implies": render::role_ref(base, implied)},
        "links": render::links(base, &format!("/v3/roles/{}/implies/{}", prior.id, implied.id)),
    })
}

/// `PUT /v3/roles/{prior}/implies/{implied}`
pub async fn create_implied(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_implied_role")?;
    let prior = id.store.get_role(&prior_id).await?;
    let implied = id.store.get_role(&implied_id).await?;
    if PROHIBITED_IMPLIED.contains(&implied.name.as_str()) {
        return Err(ApiError::forbidden(format!("{} cannot be an implied roles.", implied.id)));
    }
    if prior.domain_id.is_none() && implied.domain_id.is_some() {
        return Err(ApiError::forbidden("Global role cannot imply a domain-specific role"));
    }
    id.store.create_implied_role(&prior.id, &implied.id).await?;
    Ok((StatusCode::CREATED, Json(inference(&base, &prior, &implied))))
}

async fn existing_inference(id: &Identity, prior_id: &str, implied_id: &str) -> ApiResult<(Role, Role)> {
    let prior = id.store.get_role(prior_id).await?;
    let implied = id.store.get_role(implied_id).await?;
    let exists = id.store.list_implied_roles().await?.iter().any(|(p, i)| p == prior_id && i == implied_id);
    if !exists {
        return Err(ApiError::not_found(format!("{prior_id} does not imply {implied_id}.")));
    }
    Ok((prior, implied))
}

/// `GET /v3/roles/{prior}/implies/{implied}`
pub async fn get_implied(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_implied_role")?;
    let (prior, implied) = existing_inference(&id, &prior_id, &implied_id).await?;
    Ok(Json(inference(&base, &prior, &implied)))
}

/// `HEAD /v3/roles/{prior}/implies/{implied}`
pub async fn check_implied(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:check_implied_role")?;
    existing_inference(&id, &prior_id, &implied_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v3/roles/{prior}/implies/{implied}`
pub async fn delete_implied(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_implied_role")?;
    existing_inference(&id, &prior_id, &implied_id).await?;
    id.store.delete_implied_role(&prior_id, &implied_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/roles/{prior}/implies`
pub async fn list_implied(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(prior_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_implied_roles")?;
    let prior = id.store.get_role(&prior_id).await?;
    let roles = id.store.list_roles().await?;
    let implies: Vec<Value> = id
        .store
        .list_implied_roles()
        .await?
        .iter()
        .filter(|(p, _)| *p == prior.id)
        .filter_map(|(_, i)| roles.iter().find(|r| &r.id == i))
        .map(|r| render::role_ref(&base, r))
        .collect();
    Ok(Json(json!({
        "role_inference": {"prior_role": render::role_ref(&base, &prior), "implies": implies},
        "links": render::links(&base, &format!("/v3/roles/{}/implies", prior.id)),
    })))
}

/// `GET /v3/role_inferences`
pub async fn list_inferences(State(id): State<Arc<Identity>>, auth: Auth, base: BaseUrl) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_role_inference_rules")?;
    let roles = id.store.list_roles().await?;
    let pairs = id.store.list_implied_roles().await?;
    let mut out: Vec<Value> = Vec::new();
    let mut priors: Vec<&String> = pairs.iter().map(|(p, _)| p).collect();
    priors.dedup();
    for prior_id in priors {
        let Some(prior) = roles.iter().find(|r| &r.id == prior_id) else {
            continue;
        };
        let implies: Vec<Value> = pairs
            .iter()
            .filter(|(p, _)| p == prior_id)
            .filter_map(|(_, i)| roles.iter().find(|r| &r.id == i))
            .map(|r| render::role_ref(&base, r))
            .collect();
        out.push(json!({"prior_role": render::role_ref(&base, prior), "implies": implies}));
    }
    Ok(Json(json!({"role_inferences": out, "links": render::links(&base, "/v3/role_inferences")})))
}
