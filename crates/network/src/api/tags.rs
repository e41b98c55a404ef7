//! Tags on standard resources: `/v2.0/{resources}/{id}/tags[/{tag}]`.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiResult, Auth, JsonBody};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::{NetworkError, Result};
use crate::store::{self, Kind, Record};
use crate::Network;

/// Every resource's tags, for rendering lists.
pub async fn all(net: &Network) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (id, tag) in net.store.all_tags().await? {
        out.entry(id).or_default().push(tag);
    }
    Ok(out)
}

/// The kind behind a collection name in a tags path.
fn kind_of(collection: &str) -> Result<&'static Kind> {
    let table = match collection {
        "networks" => "network",
        "subnets" => "subnet",
        "ports" => "port",
        "routers" => "router",
        "floatingips" => "floatingip",
        "security-groups" => "security_group",
        "subnetpools" => "subnetpool",
        "address-scopes" => "address_scope",
        _ => return Err(NetworkError::not_found("NotFound", "The resource could not be found.")),
    };
    store::kind_by_table(table).ok_or_else(|| NetworkError::not_found("NotFound", "The resource could not be found."))
}

/// The tagged resource, if the caller may see (`write = false`) or change it.
async fn target(
    net: &Network,
    auth: &Auth,
    collection: &str,
    id: &str,
    write: bool,
) -> Result<(&'static Kind, Record)> {
    let kind = kind_of(collection)?;
    let r = net.store.get(kind, id).await?;
    let visible = auth.is_admin()
        || auth.project_id.as_deref() == Some(r.project_id.as_str())
        || (!write && (r.flag("shared") || r.flag("router:external")));
    if !visible {
        return Err(store::not_found(kind, id));
    }
    Ok((kind, r))
}

fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty() || tag.chars().count() > 255 || tag.contains(',') || tag.contains('/') {
        return Err(NetworkError::invalid(
            "HTTPBadRequest",
            format!("Invalid input for tags. Reason: '{tag}' is not a valid tag."),
        ));
    }
    Ok(())
}

async fn save(net: &Network, kind: &Kind, mut r: Record, tags: &[String]) -> Result<()> {
    let mut w = net.store.begin().await?;
    net.store.set_tags(w.conn(), &r.id, tags).await?;
    r.touch();
    net.store.update(w.conn(), kind, &r).await?;
    w.commit().await?;
    Ok(())
}

pub async fn list(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path((c, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    target(&net, &auth, &c, &id, false).await?;
    Ok(Json(json!({"tags": net.store.tags_of(&id).await?})))
}

pub async fn replace(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path((c, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let (kind, r) = target(&net, &auth, &c, &id, true).await?;
    let tags: Vec<String> = match body.get("tags") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(String::from)
                    .ok_or_else(|| NetworkError::invalid("HTTPBadRequest", "Invalid input for tags."))
            })
            .collect::<Result<_>>()?,
        _ => {
            return Err(
                NetworkError::invalid("HTTPBadRequest", "Invalid input for tags. Reason: a list is required.").into()
            )
        }
    };
    for t in &tags {
        check_tag(t)?;
    }
    let mut unique = tags.clone();
    unique.sort();
    unique.dedup();
    save(&net, kind, r, &unique).await?;
    Ok(Json(json!({"tags": unique})))
}

pub async fn clear(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path((c, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (kind, r) = target(&net, &auth, &c, &id, true).await?;
    save(&net, kind, r, &[]).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path((c, id, tag)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    target(&net, &auth, &c, &id, false).await?;
    if net.store.tags_of(&id).await?.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NetworkError::not_found("TagNotFound", format!("Tag {tag} could not be found for {c} {id}.")).into())
    }
}

pub async fn add(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path((c, id, tag)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    check_tag(&tag)?;
    let (kind, r) = target(&net, &auth, &c, &id, true).await?;
    let mut tags = net.store.tags_of(&id).await?;
    if !tags.contains(&tag) {
        tags.push(tag);
        save(&net, kind, r, &tags).await?;
    }
    Ok(StatusCode::CREATED)
}

pub async fn remove(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path((c, id, tag)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (kind, r) = target(&net, &auth, &c, &id, true).await?;
    let mut tags = net.store.tags_of(&id).await?;
    let before = tags.len();
    tags.retain(|t| *t != tag);
    if tags.len() == before {
        return Err(
            NetworkError::not_found("TagNotFound", format!("Tag {tag} could not be found for {c} {id}.")).into()
        );
    }
    save(&net, kind, r, &tags).await?;
    Ok(StatusCode::NO_CONTENT)
}
