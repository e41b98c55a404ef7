//! `/v3/domains`

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, Fields, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{parse_bool_filter, render, tags};
use crate::policy;
use crate::schema::ROOT_DOMAIN;
use crate::store::{Project, ProjectFilter, RevocationEvent, Store, UserFilter};
use crate::Identity;

pub async fn create(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_domain")?;
    let mut f = Fields::from_body(body, "domain")?;
    f.forbid(&["domain_id", "parent_id", "is_domain"])?;
    let explicit_id = f.string("explicit_domain_id")?;
    let d = Project {
        id: explicit_id.unwrap_or_else(common::id::new_hex_id),
        name: f.name("name", 64)?.trim().to_string(),
        domain_id: ROOT_DOMAIN.into(),
        parent_id: None,
        is_domain: true,
        enabled: f.boolean("enabled")?.unwrap_or(true),
        description: f.nullable_string("description")?.flatten().unwrap_or_default(),
        options: f.object("options")?.unwrap_or_default(),
        tags: tags::take(&mut f)?.unwrap_or_default(),
        extra: f.rest(),
    };
    id.store.create_project(&d).await?;
    Ok((StatusCode::CREATED, Json(json!({"domain": render::domain(&base, &d)}))))
}

pub async fn list(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let filter = ProjectFilter {
        is_domain: Some(true),
        name: q.get("name").cloned(),
        enabled: parse_bool_filter(&q, "enabled")?,
        ..Default::default()
    };
    let mut domains = id.store.list_projects(&filter).await?;
    if !auth.is_admin() {
        // Others see the domains they work in.
        domains
            .retain(|d| auth.domain_id.as_deref() == Some(&d.id) || auth.project_domain_id.as_deref() == Some(&d.id));
    }
    let items = domains.iter().map(|d| render::domain(&base, d)).collect();
    Ok(Json(render::paged(&base, "domains", "/v3/domains", items, &q)?))
}

pub async fn get(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(domain_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin_or_in_domain(&auth, "identity:get_domain", &domain_id)?;
    let d = id.store.get_domain(&domain_id).await?;
    Ok(Json(json!({"domain": render::domain(&base, &d)})))
}

pub async fn update(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(domain_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_domain")?;
    let mut d = id.store.get_domain(&domain_id).await?;
    let mut f = Fields::from_body(body, "domain")?;
    f.forbid(&["domain_id", "parent_id", "is_domain"])?;
    if let Some(given) = f.string("id")? {
        if given != d.id {
            return Err(ApiError::bad_request("Invalid input for field 'domain.id': the id cannot be changed"));
        }
    }
    if let Some(name) = f.optional_name("name", 64)? {
        d.name = name.trim().to_string();
    }
    let was_enabled = d.enabled;
    if let Some(e) = f.boolean("enabled")? {
        d.enabled = e;
    }
    if let Some(desc) = f.nullable_string("description")? {
        d.description = desc.unwrap_or_default();
    }
    if let Some(o) = f.object("options")? {
        d.options.extend(o);
    }
    if let Some(t) = tags::take(&mut f)? {
        d.tags = t;
    }
    d.extra.extend(f.rest());
    id.store.update_project(&d).await?;
    if was_enabled && !d.enabled {
        id.tokens.revoke_matching(RevocationEvent { domain_id: Some(d.id.clone()), ..Default::default() }).await?;
    }
    Ok(Json(json!({"domain": render::domain(&base, &d)})))
}

/// Deleting a domain deletes everything in it; it must be disabled first.
pub async fn delete(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(domain_id): Path<String>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_domain")?;
    let d = id.store.get_domain(&domain_id).await?;
    if d.enabled {
        return Err(ApiError::forbidden("Cannot delete a domain that is enabled, please disable it first."));
    }
    delete_cascade(&id.store, &d).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a domain with its projects (leaves first), users, groups, roles and
/// configuration.
pub(crate) async fn delete_cascade(store: &Store, d: &Project) -> ApiResult<()> {
    let projects = store
        .list_projects(&ProjectFilter { domain_id: Some(d.id.clone()), is_domain: Some(false), ..Default::default() })
        .await?;
    let mut by_depth: Vec<(usize, &Project)> = projects.iter().map(|p| (depth(&projects, p), p)).collect();
    by_depth.sort_by_key(|(d, _)| std::cmp::Reverse(*d));
    for (_, p) in by_depth {
        store.delete_app_creds_of_project(&p.id).await?;
        store.delete_project(&p.id).await?;
    }
    store.delete_domain_config(&d.id).await?;
    for u in store.list_users(&UserFilter { domain_id: Some(d.id.clone()), ..Default::default() }).await? {
        store.delete_user(&u.id).await?;
    }
    for g in store.list_groups(Some(&d.id), None).await? {
        store.delete_group(&g.id).await?;
    }
    for r in store.list_roles().await?.into_iter().filter(|r| r.domain_id.as_deref() == Some(d.id.as_str())) {
        store.delete_role(&r.id).await?;
    }
    store.delete_project(&d.id).await?;
    Ok(())
}

fn depth(all: &[Project], p: &Project) -> usize {
    let mut n = 0;
    let mut cur = p.parent_id.clone();
    while let Some(id) = cur {
        match all.iter().find(|x| x.id == id) {
            Some(parent) if n < all.len() => {
                n += 1;
                cur = parent.parent_id.clone();
            }
            _ => break,
        }
    }
    n
}
