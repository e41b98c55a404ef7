//! `/servers/{id}/metadata` and `/servers/{id}/tags`.

use std::collections::BTreeMap;

use api::{Auth, Microversion};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::servers::{check_lock, quota, visible};
use super::{bad, json_body, State};
use crate::error::{ComputeError, Result};

const MAX_TAGS: usize = 50;

/// Tags: 1 to 60 characters, no `/` or `,`.
pub fn valid_tag(t: &str) -> bool {
    !t.is_empty() && t.chars().count() <= 60 && !t.contains('/') && !t.contains(',')
}

/// Nova's metadata: string keys of 1–255 characters, string values of at
/// most 255.
pub(super) fn parse_metadata(body: &Value, key: &str) -> Result<BTreeMap<String, String>> {
    let m = body
        .get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| bad(format!("Malformed request body: '{key}' must be an object")))?;
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let v = v
            .as_str()
            .ok_or_else(|| bad(format!("Invalid input for field/attribute {key}. Value of {k} is not a string")))?;
        if k.is_empty() || k.chars().count() > 255 || v.chars().count() > 255 {
            return Err(bad(format!(
                "Invalid input for field/attribute {key}. Key or value of {k} is empty or too long"
            )));
        }
        out.insert(k.clone(), v.to_string());
    }
    Ok(out)
}

fn check_count(svc: &super::ComputeApi, m: &BTreeMap<String, String>) -> Result<()> {
    let limit = quota(svc, "metadata_items");
    if limit >= 0 && m.len() as i64 > limit {
        return Err(ComputeError::OverQuota(format!(
            "Quota exceeded for metadata_items: Requested {}, but the limit is {limit}",
            m.len()
        )));
    }
    Ok(())
}

/// Tags change on any server its owner may change.
async fn changeable(svc: &super::ComputeApi, auth: &Auth, id: &str) -> Result<crate::model::Instance> {
    let i = visible(svc, auth, id).await?;
    check_lock(auth, &i)?;
    Ok(i)
}

/// Metadata changes only on a server at rest (Nova's allowed states).
async fn at_rest(svc: &super::ComputeApi, auth: &Auth, id: &str) -> Result<crate::model::Instance> {
    use crate::model::vm_state::*;
    let i = changeable(svc, auth, id).await?;
    if ![ACTIVE, PAUSED, SUSPENDED, STOPPED].contains(&i.vm_state.as_str()) {
        return Err(ComputeError::Conflict(format!(
            "Cannot 'update_metadata' instance {id} while it is in vm_state {}",
            i.vm_state
        )));
    }
    if let Some(t) = &i.task_state {
        return Err(ComputeError::Conflict(format!(
            "Cannot 'update_metadata' instance {id} while it is in task_state {t}"
        )));
    }
    Ok(i)
}

pub async fn list(svc: State, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>> {
    let i = visible(&svc, &auth, &id).await?;
    Ok(Json(json!({"metadata": i.metadata})))
}

pub async fn show(svc: State, auth: Auth, Path((id, key)): Path<(String, String)>) -> Result<Json<Value>> {
    let i = visible(&svc, &auth, &id).await?;
    let v = i.metadata.get(&key).ok_or_else(|| ComputeError::NotFound("Metadata item was not found".into()))?;
    Ok(Json(json!({"meta": {key: v}})))
}

/// `POST`: adds to and overwrites the existing metadata.
pub async fn update_all(
    svc: State,
    auth: Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body = json_body(&body)?;
    let new = parse_metadata(&body, "metadata")?;
    at_rest(&svc, &auth, &id).await?;
    let i = svc
        .store
        .update_instance(&id, |i| {
            let mut m = i.metadata.clone();
            m.extend(new.clone());
            check_count(&svc, &m)?;
            i.metadata = m;
            Ok(())
        })
        .await?;
    Ok(Json(json!({"metadata": i.metadata})))
}

/// `PUT`: replaces all metadata.
pub async fn replace_all(
    svc: State,
    auth: Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body = json_body(&body)?;
    let new = parse_metadata(&body, "metadata")?;
    check_count(&svc, &new)?;
    at_rest(&svc, &auth, &id).await?;
    let i = svc
        .store
        .update_instance(&id, |i| {
            i.metadata = new.clone();
            Ok(())
        })
        .await?;
    Ok(Json(json!({"metadata": i.metadata})))
}

pub async fn set(
    svc: State,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body = json_body(&body)?;
    let meta = parse_metadata(&body, "meta")?;
    if meta.len() != 1 {
        return Err(bad("Request body contains too many items"));
    }
    let value = meta.get(&key).ok_or_else(|| bad("Request body and URI mismatch"))?.clone();
    at_rest(&svc, &auth, &id).await?;
    svc.store
        .update_instance(&id, |i| {
            let mut m = i.metadata.clone();
            m.insert(key.clone(), value.clone());
            check_count(&svc, &m)?;
            i.metadata = m;
            Ok(())
        })
        .await?;
    Ok(Json(json!({"meta": {key: value}})))
}

pub async fn delete(svc: State, auth: Auth, Path((id, key)): Path<(String, String)>) -> Result<StatusCode> {
    at_rest(&svc, &auth, &id).await?;
    svc.store
        .update_instance(&id, |i| match i.metadata.remove(&key) {
            Some(_) => Ok(()),
            None => Err(ComputeError::NotFound("Metadata item was not found".into())),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn need_tags(v: Microversion) -> Result<()> {
    if v.at_least(2, 26) {
        Ok(())
    } else {
        Err(ComputeError::NotFound("The resource could not be found.".into()))
    }
}

pub async fn tags(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<Json<Value>> {
    need_tags(v)?;
    let i = visible(&svc, &auth, &id).await?;
    Ok(Json(json!({"tags": i.tags})))
}

pub async fn replace_tags(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    need_tags(v)?;
    let body = json_body(&body)?;
    let tags =
        body.get("tags").and_then(Value::as_array).ok_or_else(|| bad("Invalid input for field/attribute tags."))?;
    let tags: Vec<String> = tags.iter().filter_map(|t| t.as_str().map(String::from)).collect();
    if tags.len() > MAX_TAGS || tags.iter().any(|t| !valid_tag(t)) {
        return Err(bad("Invalid input for field/attribute tags."));
    }
    let mut unique: Vec<String> = Vec::new();
    for t in tags {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    changeable(&svc, &auth, &id).await?;
    let i = svc
        .store
        .update_instance(&id, |i| {
            i.tags = unique.clone();
            Ok(())
        })
        .await?;
    Ok(Json(json!({"tags": i.tags})))
}

pub async fn clear_tags(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<StatusCode> {
    need_tags(v)?;
    changeable(&svc, &auth, &id).await?;
    svc.store
        .update_instance(&id, |i| {
            i.tags.clear();
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn has_tag(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    need_tags(v)?;
    let i = visible(&svc, &auth, &id).await?;
    if i.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ComputeError::NotFound(format!("Tag {tag} could not be found.")))
    }
}

pub async fn add_tag(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<(StatusCode, [(axum::http::HeaderName, String); 1])> {
    need_tags(v)?;
    if !valid_tag(&tag) {
        return Err(bad(format!("Tag '{tag}' is invalid.")));
    }
    changeable(&svc, &auth, &id).await?;
    let mut created = false;
    svc.store
        .update_instance(&id, |i| {
            if !i.tags.contains(&tag) {
                if i.tags.len() >= MAX_TAGS {
                    return Err(bad(format!("The number of tags exceeded the per-server limit {MAX_TAGS}")));
                }
                i.tags.push(tag.clone());
                created = true;
            }
            Ok(())
        })
        .await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::NO_CONTENT };
    Ok((status, [(axum::http::header::LOCATION, format!("/v2.1/servers/{id}/tags/{tag}"))]))
}

pub async fn remove_tag(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    need_tags(v)?;
    changeable(&svc, &auth, &id).await?;
    svc.store
        .update_instance(&id, |i| {
            let before = i.tags.len();
            i.tags.retain(|t| *t != tag);
            if i.tags.len() == before {
                return Err(ComputeError::NotFound(format!("Tag {tag} could not be found.")));
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
