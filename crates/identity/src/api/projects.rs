//! `/v3/projects`, and `/v3/users/{id}/projects`.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, Fields, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::{parse_bool_filter, render, tags};
use crate::bootstrap::DEFAULT_DOMAIN_ID;
use crate::error::IdentityError;
use crate::policy;
use crate::schema::ROOT_DOMAIN;
use crate::store::{Project, ProjectFilter, RevocationEvent, Store};
use crate::Identity;

/// Keystone's `max_project_tree_depth` default.
const MAX_DEPTH: usize = 5;

pub async fn create(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_project")?;
    let mut f = Fields::from_body(body, "project")?;
    let name = f.name("name", 64)?.trim().to_string();
    let is_domain = f.boolean("is_domain")?.unwrap_or(false);
    let domain_id = f.nullable_string("domain_id")?.flatten();
    let parent_id = f.nullable_string("parent_id")?.flatten();
    let enabled = f.boolean("enabled")?.unwrap_or(true);
    let description = f.nullable_string("description")?.flatten().unwrap_or_default();
    let options = f.object("options")?.unwrap_or_default();
    let tag_list = tags::take(&mut f)?.unwrap_or_default();
    f.forbid(&["id"])?;
    let extra = f.rest();
    let store = &id.store;

    let p = if is_domain {
        if parent_id.is_some() {
            return Err(ApiError::bad_request("only root projects are allowed to act as domains."));
        }
        Project {
            id: common::id::new_hex_id(),
            name,
            domain_id: ROOT_DOMAIN.into(),
            parent_id: None,
            is_domain: true,
            enabled,
            description,
            extra,
            options,
            tags: tag_list,
        }
    } else {
        let domain_id = match (domain_id, &parent_id) {
            (Some(d), _) => d,
            // A child project lives in its parent's domain.
            (None, Some(pid)) => match store.get_project_any(pid).await? {
                Some(parent) if parent.is_domain => parent.id,
                Some(parent) => parent.domain_id,
                None => return Err(IdentityError::not_found("project", pid.clone()).into()),
            },
            (None, None) => auth.domain_id.clone().unwrap_or_else(|| DEFAULT_DOMAIN_ID.into()),
        };
        let domain = store.get_domain(&domain_id).await?;
        let parent_id = parent_id.unwrap_or_else(|| domain.id.clone());
        if parent_id != domain.id {
            let parent = store
                .get_project_any(&parent_id)
                .await?
                .ok_or_else(|| IdentityError::not_found("project", &parent_id))?;
            if parent.is_domain || parent.domain_id != domain.id {
                return Err(ApiError::bad_request(format!(
                    "Cannot create project, since it specifies its domain_id {}, but specifies a parent in a different domain ({}).",
                    domain.id,
                    if parent.is_domain { &parent.id } else { &parent.domain_id }
                )));
            }
            let mut chain = store.project_ancestors(&parent).await?;
            chain.insert(0, parent);
            if let Some(off) = chain.iter().find(|p| !p.enabled) {
                return Err(ApiError::bad_request(format!(
                    "cannot create a project in a branch containing a disabled project: {}",
                    off.id
                )));
            }
            if chain.len() + 1 > MAX_DEPTH {
                return Err(ApiError::forbidden(format!("Max hierarchy depth reached for {parent_id} branch.")));
            }
        }
        Project {
            id: common::id::new_hex_id(),
            name,
            domain_id: domain.id,
            parent_id: Some(parent_id),
            is_domain: false,
            enabled,
            description,
            extra,
            options,
            tags: tag_list,
        }
    };
    store.create_project(&p).await?;
    Ok((StatusCode::CREATED, Json(json!({"project": render::project(&base, &p)}))))
}

/// Applies Keystone's tag filters: `tags` (all of), `tags-any`, `not-tags`,
/// `not-tags-any`, each a comma-separated list.
fn tag_filter(q: &HashMap<String, String>) -> impl Fn(&Project) -> bool + '_ {
    let list = |k: &str| -> Option<Vec<&str>> { q.get(k).map(|v| v.split(',').filter(|s| !s.is_empty()).collect()) };
    let (all, any, not_all, not_any) = (list("tags"), list("tags-any"), list("not-tags"), list("not-tags-any"));
    move |p: &Project| {
        let has = |t: &&str| p.tags.iter().any(|x| x == t);
        all.as_ref().is_none_or(|ts| ts.iter().all(has))
            && any.as_ref().is_none_or(|ts| ts.iter().any(has))
            && not_all.as_ref().is_none_or(|ts| !ts.iter().all(has))
            && not_any.as_ref().is_none_or(|ts| !ts.iter().any(has))
    }
}

pub async fn list(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let filter = ProjectFilter {
        is_domain: Some(parse_bool_filter(&q, "is_domain")?.unwrap_or(false)),
        name: q.get("name").cloned(),
        domain_id: q.get("domain_id").cloned(),
        parent_id: q.get("parent_id").cloned(),
        enabled: parse_bool_filter(&q, "enabled")?,
        ids: None,
    };
    // Admins list everything; a domain's readers list its projects; others use
    // /v3/users/{id}/projects or /v3/auth/projects.
    let domain_reader = auth.domain_id.is_some() && auth.has_role("reader");
    policy::enforce_any(&auth, "identity:list_projects", domain_reader)?;
    let mut projects = id.store.list_projects(&filter).await?;
    if !auth.is_admin() {
        projects.retain(|p| auth.domain_id.as_deref() == Some(p.domain_id.as_str()));
    }
    let keep = tag_filter(&q);
    projects.retain(|p| keep(p));
    let items = projects.iter().map(|p| render::project(&base, p)).collect();
    Ok(Json(render::paged(&base, "projects", "/v3/projects", items, &q)?))
}

pub async fn get(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(pid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let store = &id.store;
    let p = match store.get_project_any(&pid).await? {
        Some(p) => p,
        None => return Err(IdentityError::not_found("project", pid).into()),
    };
    policy::enforce_project_read(&auth, &p)?;
    let mut v = render::project(&base, &p);
    let flag = |k: &str| q.contains_key(k);
    if flag("parents_as_ids") || flag("parents_as_list") {
        let ancestors = store.project_ancestors(&p).await?;
        if flag("parents_as_ids") {
            let mut nested = Value::Null;
            // The domain is the root of every chain, as Keystone shows it.
            let mut chain: Vec<String> = ancestors.iter().map(|a| a.id.clone()).collect();
            if !p.is_domain {
                chain.push(p.domain_id.clone());
            }
            for a in chain.iter().rev() {
                let mut m = Map::new();
                m.insert(a.clone(), nested);
                nested = Value::Object(m);
            }
            v["parents"] = nested;
        } else {
            v["parents"] =
                Value::Array(ancestors.iter().map(|a| json!({"project": render::project(&base, a)})).collect());
        }
    }
    if flag("subtree_as_ids") || flag("subtree_as_list") {
        let below = store.project_descendants(&p.id).await?;
        if flag("subtree_as_ids") {
            v["subtree"] = subtree_ids(&below, &p.id);
        } else {
            v["subtree"] = Value::Array(below.iter().map(|c| json!({"project": render::project(&base, c)})).collect());
        }
    }
    Ok(Json(json!({"project": v})))
}

fn subtree_ids(all: &[Project], parent: &str) -> Value {
    let children: Vec<&Project> = all.iter().filter(|p| p.parent_id.as_deref() == Some(parent)).collect();
    if children.is_empty() {
        return Value::Null;
    }
    Value::Object(children.iter().map(|c| (c.id.clone(), subtree_ids(all, &c.id))).collect())
}

pub async fn update(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(pid): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_project")?;
    let store = &id.store;
    let mut p = store.get_project_any(&pid).await?.ok_or_else(|| IdentityError::not_found("project", &pid))?;
    let mut f = Fields::from_body(body, "project")?;
    if let Some(given) = f.nullable_string("domain_id")? {
        let current = (p.domain_id != ROOT_DOMAIN).then(|| p.domain_id.clone());
        if given != current {
            return Err(ApiError::bad_request("Cannot change Domain ID"));
        }
    }
    if let Some(given) = f.nullable_string("parent_id")? {
        if given != p.parent_id {
            return Err(ApiError::forbidden("Update of `parent_id` is not allowed."));
        }
    }
    if let Some(given) = f.boolean("is_domain")? {
        if given != p.is_domain {
            return Err(ApiError::bad_request("Update of `is_domain` is not allowed."));
        }
    }
    if let Some(given) = f.string("id")? {
        if given != p.id {
            return Err(ApiError::bad_request("Invalid input for field 'project.id': the id cannot be changed"));
        }
    }
    if let Some(name) = f.optional_name("name", 64)? {
        p.name = name.trim().to_string();
    }
    let was_enabled = p.enabled;
    if let Some(e) = f.boolean("enabled")? {
        if e && !was_enabled && !p.is_domain {
            if let Some(off) = store.project_ancestors(&p).await?.iter().find(|a| !a.enabled) {
                return Err(ApiError::forbidden(format!(
                    "Cannot enable project {} since it has disabled parents ({}).",
                    p.id, off.id
                )));
            }
        }
        if !e && was_enabled && !p.is_domain {
            let below = store.project_descendants(&p.id).await?;
            if below.iter().any(|c| c.enabled) {
                return Err(ApiError::forbidden(format!(
                    "Cannot disable project {} since its subtree contains enabled projects.",
                    p.id
                )));
            }
        }
        p.enabled = e;
    }
    if let Some(desc) = f.nullable_string("description")? {
        p.description = desc.unwrap_or_default();
    }
    if let Some(o) = f.object("options")? {
        p.options.extend(o);
    }
    if let Some(t) = tags::take(&mut f)? {
        p.tags = t;
    }
    p.extra.extend(f.rest());
    store.update_project(&p).await?;
    if was_enabled && !p.enabled {
        revoke_project_tokens(&id, &p.id).await?;
    }
    Ok(Json(json!({"project": render::project(&base, &p)})))
}

async fn revoke_project_tokens(id: &Identity, project_id: &str) -> ApiResult<()> {
    id.tokens.revoke_matching(RevocationEvent { project_id: Some(project_id.into()), ..Default::default() }).await?;
    Ok(())
}

pub async fn delete(State(id): State<Arc<Identity>>, auth: Auth, Path(pid): Path<String>) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_project")?;
    let store = &id.store;
    let p = store.get_project_any(&pid).await?.ok_or_else(|| IdentityError::not_found("project", &pid))?;
    if p.is_domain {
        // A project acting as a domain is deleted as a domain, once disabled.
        if p.enabled {
            return Err(ApiError::bad_request(
                "Cannot delete an enabled project acting as a domain. Please disable the project first.",
            ));
        }
        super::domains::delete_cascade(store, &p).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    if store.has_children(&p.id).await? {
        return Err(ApiError::forbidden(format!(
            "Cannot delete the project {} since it is not a leaf in the hierarchy.",
            p.id
        )));
    }
    delete_leaf(store, &p.id).await?;
    revoke_project_tokens(&id, &p.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_leaf(store: &Store, project_id: &str) -> ApiResult<()> {
    // Application credentials for the project die with it.
    store.delete_app_creds_of_project(project_id).await?;
    store.delete_project(project_id).await?;
    Ok(())
}

/// `GET /v3/users/{user_id}/projects`
pub async fn of_user(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    policy::admin_or_self(&auth, "identity:list_user_projects", &user_id)?;
    id.store.get_user(&user_id).await?;
    let mut projects = super::auth::scopable_targets(&id.store, &user_id, false, false).await?;
    if let Some(e) = parse_bool_filter(&q, "enabled")? {
        projects.retain(|p| p.enabled == e);
    }
    if let Some(n) = q.get("name") {
        projects.retain(|p| &p.name == n);
    }
    if let Some(d) = q.get("domain_id") {
        projects.retain(|p| &p.domain_id == d);
    }
    let items = projects.iter().map(|p| render::project(&base, p)).collect();
    Ok(Json(render::collection(&base, "projects", &format!("/v3/users/{user_id}/projects"), items)))
}
