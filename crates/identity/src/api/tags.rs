//! Project and domain tags: validated on create/update, and the
//! `/v3/projects/{id}/tags` resource.

use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, Fields, JsonBody};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::policy;
use crate::Identity;

/// Tags a project may carry, as Keystone caps them.
const MAX_TAGS: usize = 80;

pub fn validate(tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::bad_request(format!("Invalid input for field 'tags': more than {MAX_TAGS} tags")));
    }
    for t in tags {
        validate_one(t)?;
    }
    Ok(())
}

fn validate_one(tag: &str) -> Result<(), ApiError> {
    if tag.is_empty() || tag.chars().count() > 255 || tag.contains('/') || tag.contains(',') {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field 'tags': {tag:?} must be 1 to 255 characters without '/' or ','"
        )));
    }
    Ok(())
}

/// The `tags` field of a project body, validated and without duplicates.
pub fn take(f: &mut Fields) -> Result<Option<Vec<String>>, ApiError> {
    match f.strings("tags")? {
        None => Ok(None),
        Some(mut t) => {
            validate(&t)?;
            let mut seen = std::collections::HashSet::new();
            t.retain(|x| seen.insert(x.clone()));
            Ok(Some(t))
        }
    }
}

pub async fn list(State(id): State<Arc<Identity>>, auth: Auth, Path(pid): Path<String>) -> ApiResult<Json<Value>> {
    policy::admin_or_project_scope(&auth, "identity:list_project_tags", &pid)?;
    let p = id.store.get_project(&pid).await?;
    Ok(Json(json!({"tags": p.tags})))
}

pub async fn replace(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(pid): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_project_tags")?;
    let mut p = id.store.get_project(&pid).await?;
    let mut f = Fields::new("body", body.as_object().cloned().unwrap_or_default());
    let tags = take(&mut f)?.ok_or_else(|| ApiError::bad_request("Expecting to find tags in request body."))?;
    p.tags = tags;
    id.store.update_project(&p).await?;
    Ok(Json(json!({"tags": p.tags})))
}

pub async fn clear(State(id): State<Arc<Identity>>, auth: Auth, Path(pid): Path<String>) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_project_tags")?;
    let mut p = id.store.get_project(&pid).await?;
    p.tags.clear();
    id.store.update_project(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((pid, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin_or_project_scope(&auth, "identity:get_project_tag", &pid)?;
    let p = id.store.get_project(&pid).await?;
    if p.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("Tag {tag} was not found on project {pid}.")))
    }
}

pub async fn add(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((pid, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:create_project_tag")?;
    validate_one(&tag)?;
    let mut p = id.store.get_project(&pid).await?;
    if !p.tags.contains(&tag) {
        p.tags.push(tag);
        validate(&p.tags)?;
        id.store.update_project(&p).await?;
    }
    Ok(StatusCode::CREATED)
}

pub async fn remove(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((pid, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_project_tag")?;
    let mut p = id.store.get_project(&pid).await?;
    let before = p.tags.len();
    p.tags.retain(|t| *t != tag);
    if p.tags.len() == before {
        return Err(ApiError::not_found(format!("Tag {tag} was not found on project {pid}.")));
    }
    id.store.update_project(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}
