//! `/v3/users`, password changes, and `/v3/users/{id}/groups`.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, Fields, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::{parse_bool_filter, render};
use crate::bootstrap::DEFAULT_DOMAIN_ID;
use crate::policy;
use crate::store::{User, UserFilter};
use crate::Identity;

/// The user options Keystone knows; any other is a 400.
const USER_OPTIONS: &[&str] = &[
    "ignore_change_password_upon_first_use",
    "ignore_password_expiry",
    "ignore_lockout_failure_attempts",
    "lock_password",
    "multi_factor_auth_enabled",
    "multi_factor_auth_rules",
    "ignore_user_inactivity",
];

fn take_options(f: &mut Fields) -> ApiResult<Option<Map<String, Value>>> {
    let Some(opts) = f.object("options")? else {
        return Ok(None);
    };
    if let Some(bad) = opts.keys().find(|k| !USER_OPTIONS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!("Invalid input for field 'user.options': unknown option {bad}")));
    }
    Ok(Some(opts))
}

fn take_password(id: &Identity, f: &mut Fields) -> ApiResult<Option<Option<String>>> {
    let p = f.nullable_string("password")?;
    if let Some(Some(pw)) = &p {
        if pw.chars().count() > id.config.max_password_length {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field 'user.password': longer than {} characters",
                id.config.max_password_length
            )));
        }
    }
    Ok(p)
}

/// A default project must be a project, not a domain.
async fn check_default_project(id: &Identity, project_id: &Option<String>) -> ApiResult<()> {
    if let Some(pid) = project_id {
        if let Some(p) = id.store.get_project_any(pid).await? {
            if p.is_domain {
                return Err(ApiError::bad_request("User's default project ID cannot be a domain ID."));
            }
        }
    }
    Ok(())
}

pub async fn create(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_user")?;
    let mut f = Fields::from_body(body, "user")?;
    let name = f.name("name", 255)?;
    let domain_id =
        f.string("domain_id")?.or_else(|| auth.domain_id.clone()).unwrap_or_else(|| DEFAULT_DOMAIN_ID.into());
    let enabled = f.boolean("enabled")?.unwrap_or(true);
    let default_project_id = f.nullable_string("default_project_id")?.flatten();
    let password = take_password(&id, &mut f)?.flatten();
    let options = take_options(&mut f)?.unwrap_or_default();
    f.forbid(&["id"])?;
    id.store.get_domain(&domain_id).await?;
    check_default_project(&id, &default_project_id).await?;
    let now = common::time::now_micros();
    let password_hash = match password {
        Some(pw) => Some(id.hasher.hash_async(pw).await),
        None => None,
    };
    let u = User {
        id: common::id::new_hex_id(),
        domain_id,
        name,
        enabled,
        default_project_id,
        password_created_at: password_hash.as_ref().map(|_| now),
        password_hash,
        extra: f.rest(),
        options,
        created_at: now,
    };
    id.store.create_user(&u).await?;
    Ok((StatusCode::CREATED, Json(json!({"user": render::user(&base, &u)}))))
}

pub async fn list(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let domain_reader = auth.domain_id.is_some() && auth.has_role("reader");
    policy::enforce_any(&auth, "identity:list_users", domain_reader)?;
    let filter = UserFilter {
        domain_id: q.get("domain_id").cloned().or_else(|| (!auth.is_admin()).then(|| auth.domain_id.clone()).flatten()),
        name: q.get("name").cloned(),
        enabled: parse_bool_filter(&q, "enabled")?,
        ids: None,
    };
    let users = id.store.list_users(&filter).await?;
    let items = users.iter().map(|u| render::user(&base, u)).collect();
    Ok(Json(render::paged(&base, "users", "/v3/users", items, &q)?))
}

pub async fn get(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin_or_self(&auth, "identity:get_user", &user_id)?;
    let u = id.store.get_user(&user_id).await?;
    Ok(Json(json!({"user": render::user(&base, &u)})))
}

pub async fn update(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_user")?;
    let mut u = id.store.get_user(&user_id).await?;
    let mut f = Fields::from_body(body, "user")?;
    if let Some(d) = f.string("domain_id")? {
        if d != u.domain_id {
            return Err(ApiError::bad_request("Cannot change Domain ID"));
        }
    }
    if let Some(given) = f.string("id")? {
        if given != u.id {
            return Err(ApiError::bad_request("Invalid input for field 'user.id': the id cannot be changed"));
        }
    }
    if let Some(name) = f.optional_name("name", 255)? {
        u.name = name;
    }
    let was_enabled = u.enabled;
    if let Some(e) = f.boolean("enabled")? {
        u.enabled = e;
    }
    if let Some(p) = f.nullable_string("default_project_id")? {
        check_default_project(&id, &p).await?;
        u.default_project_id = p;
    }
    let mut password_changed = false;
    if let Some(pw) = take_password(&id, &mut f)? {
        u.password_hash = match pw {
            Some(pw) => Some(id.hasher.hash_async(pw).await),
            None => None,
        };
        u.password_created_at = Some(common::time::now_micros());
        password_changed = true;
    }
    if let Some(o) = take_options(&mut f)? {
        for (k, v) in o {
            if v.is_null() {
                u.options.remove(&k);
            } else {
                u.options.insert(k, v);
            }
        }
    }
    u.extra.extend(f.rest());
    id.store.update_user(&u).await?;
    if password_changed || (was_enabled && !u.enabled) {
        id.tokens.revoke_user(&u.id).await?;
    }
    Ok(Json(json!({"user": render::user(&base, &u)})))
}

pub async fn delete(State(id): State<Arc<Identity>>, auth: Auth, Path(user_id): Path<String>) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_user")?;
    id.store.get_user(&user_id).await?;
    id.store.delete_user(&user_id).await?;
    id.tokens.revoke_user(&user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v3/users/{id}/password`: a user changes their own password, proving
/// the old one. Needs no token, so a user whose password expired can still do it.
pub async fn change_password(
    State(id): State<Arc<Identity>>,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<StatusCode> {
    let mut f = Fields::from_body(body, "user")?;
    let original = f
        .string("original_password")?
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'user.original_password': required"))?;
    let new = take_password(&id, &mut f)?
        .flatten()
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'user.password': required"))?;
    let mut u = match id.store.find_user(&user_id).await? {
        Some(u) => u,
        None => return Err(ApiError::unauthorized("The request you have made requires authentication.")),
    };
    let ok = match &u.password_hash {
        Some(h) => id.hasher.verify_async(original, h.clone()).await,
        None => false,
    };
    if !ok || !u.enabled {
        return Err(ApiError::unauthorized("The request you have made requires authentication."));
    }
    if u.options.get("lock_password") == Some(&Value::Bool(true)) {
        return Err(ApiError::bad_request("You cannot change your password at this time."));
    }
    u.password_hash = Some(id.hasher.hash_async(new).await);
    u.password_created_at = Some(common::time::now_micros());
    id.store.update_user(&u).await?;
    id.tokens.revoke_user(&u.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/users/{id}/groups`
pub async fn groups(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin_or_self(&auth, "identity:list_groups_for_user", &user_id)?;
    id.store.get_user(&user_id).await?;
    let ids = id.store.group_ids_of_user(&user_id).await?;
    let mut items = Vec::new();
    for g in id.store.list_groups(None, None).await? {
        if ids.contains(&g.id) {
            items.push(render::group(&base, &g));
        }
    }
    Ok(Json(render::collection(&base, "groups", &format!("/v3/users/{user_id}/groups"), items)))
}
