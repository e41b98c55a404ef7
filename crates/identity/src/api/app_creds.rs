//! `/v3/users/{id}/application_credentials`: secrets a user mints so a program can
//! act as them on one project with a subset of their roles.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, Fields, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};

use super::render;
use crate::policy;
use crate::store::{AppCred, Role};
use crate::Identity;

/// `expires_at` as Keystone echoes it: naive UTC with microseconds, no zone.
fn expiry(micros: Option<i64>) -> Value {
    match micros {
        None => Value::Null,
        Some(m) => {
            let t = common::time::keystone_time(m);
            json!(t.trim_end_matches('Z'))
        }
    }
}

fn render_cred(base: &BaseUrl, c: &AppCred, roles: &[Role]) -> Value {
    let roles: Vec<Value> = c
        .role_ids
        .iter()
        .filter_map(|rid| roles.iter().find(|r| &r.id == rid))
        .map(|r| json!({"id": r.id, "name": r.name, "domain_id": r.domain_id}))
        .collect();
    json!({
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "system": c.system,
        "expires_at": expiry(c.expires_at),
        "unrestricted": c.unrestricted,
        "roles": roles,
        "access_rules": [],
        "links": render::links(base, &format!("/v3/users/{}/application_credentials/{}", c.user_id, c.id)),
    })
}

fn new_secret() -> String {
    let mut b = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub async fn create(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::api_owner(&auth, "identity:create_application_credential", &user_id)?;
    if auth.application_credential_id.is_some() {
        if let Some(c) = id.store.find_app_cred(auth.application_credential_id.as_deref().unwrap_or_default()).await? {
            if !c.unrestricted {
                return Err(ApiError::forbidden(
                    "Using a restricted application credential to create another application credential is not allowed.",
                ));
            }
        }
    }
    let project_id = auth
        .project_id
        .clone()
        .ok_or_else(|| ApiError::forbidden("Application credentials are created with a project-scoped token."))?;
    let mut f = Fields::from_body(body, "application_credential")?;
    let name = f.name("name", 255)?;
    let description = f.nullable_string("description")?.flatten();
    let secret = f.nullable_string("secret")?.flatten().unwrap_or_else(new_secret);
    let expires_at = match f.nullable_string("expires_at")?.flatten() {
        None => None,
        Some(s) => Some(common::time::parse_iso(&s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for field 'application_credential.expires_at': {s:?} is not a timestamp"
            ))
        })?),
    };
    if expires_at.is_some_and(|t| t <= common::time::now_micros()) {
        return Err(ApiError::bad_request("Invalid input for field 'application_credential.expires_at': already past"));
    }
    let unrestricted = f.boolean("unrestricted")?.unwrap_or(false);
    let all_roles = id.store.list_roles().await?;
    let role_ids: Vec<String> = match f.raw("roles") {
        // No roles, or an empty list (what the CLI sends), means the token's roles.
        None | Some(Value::Null) => auth.role_ids.clone(),
        Some(Value::Array(items)) if items.is_empty() => auth.role_ids.clone(),
        Some(Value::Array(items)) => {
            let mut ids = Vec::new();
            for item in items {
                let found = match (item.get("id").and_then(Value::as_str), item.get("name").and_then(Value::as_str)) {
                    (Some(rid), _) => all_roles.iter().find(|r| r.id == rid),
                    (None, Some(n)) => all_roles.iter().find(|r| r.name == n && r.domain_id.is_none()),
                    _ => None,
                };
                let role = found.ok_or_else(|| {
                    ApiError::not_found(format!(
                        "Could not find role: {}.",
                        item.get("id").or(item.get("name")).unwrap_or(&item)
                    ))
                })?;
                if !auth.role_ids.contains(&role.id) {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input for field 'application_credential.roles': the token does not hold role {}",
                        role.name
                    )));
                }
                ids.push(role.id.clone());
            }
            ids
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field 'application_credential.roles': expected a list",
            ))
        }
    };
    if f.raw("access_rules").is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty())) {
        return Err(ApiError::bad_request("Access rules are not supported by this cloud."));
    }
    let cred = AppCred {
        id: common::id::new_hex_id(),
        name,
        secret_hash: id.hasher.hash_async(secret.clone()).await,
        description,
        user_id,
        project_id: Some(project_id),
        system: None,
        expires_at,
        unrestricted,
        role_ids,
    };
    id.store.create_app_cred(&cred).await?;
    let mut v = render_cred(&base, &cred, &all_roles);
    v["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(json!({"application_credential": v}))))
}

pub async fn list(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    policy::admin_or_self(&auth, "identity:list_application_credentials", &user_id)?;
    id.store.get_user(&user_id).await?;
    let roles = id.store.list_roles().await?;
    let items = id
        .store
        .list_app_creds(&user_id)
        .await?
        .iter()
        .filter(|c| q.get("name").is_none_or(|n| &c.name == n))
        .map(|c| render_cred(&base, c, &roles))
        .collect();
    Ok(Json(render::collection(
        &base,
        "application_credentials",
        &format!("/v3/users/{user_id}/application_credentials"),
        items,
    )))
}

async fn owned(id: &Identity, user_id: &str, cred_id: &str) -> ApiResult<AppCred> {
    match id.store.find_app_cred(cred_id).await? {
        Some(c) if c.user_id == user_id => Ok(c),
        _ => Err(ApiError::not_found(format!("Could not find Application Credential: {cred_id}."))),
    }
}

pub async fn get(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path((user_id, cred_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    policy::admin_or_self(&auth, "identity:get_application_credential", &user_id)?;
    let c = owned(&id, &user_id, &cred_id).await?;
    let roles = id.store.list_roles().await?;
    Ok(Json(json!({"application_credential": render_cred(&base, &c, &roles)})))
}

pub async fn delete(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((user_id, cred_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin_or_self(&auth, "identity:delete_application_credential", &user_id)?;
    owned(&id, &user_id, &cred_id).await?;
    id.store.delete_app_cred(&cred_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
