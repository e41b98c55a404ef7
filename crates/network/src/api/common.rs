//! What every Neutron resource handler shares: who is asking, how a stored
//! record becomes the JSON a client sees, and the list/show envelope.

use std::collections::HashMap;

use api::{ApiResult, Auth, BaseUrl};
use axum::Json;
use serde_json::{json, Map, Value};

use super::attrs::{self, Resource};
use super::query::ListQuery;
use crate::error::{NetworkError, Result};
use crate::store::Record;

/// `created_at` / `updated_at` as Neutron writes them.
pub fn timestamp(micros: i64) -> String {
    common::time::iso_seconds(micros)
}

/// A record as the API shows it: its attributes plus the standard ones.
/// Attributes whose names start with `_` are the server's own bookkeeping
/// (a router's gateway port, a port's bound segment) and are never shown.
pub fn render(r: &Record, tags: &HashMap<String, Vec<String>>) -> Map<String, Value> {
    let mut m: Map<String, Value> =
        r.attrs.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect();
    m.insert("id".into(), json!(r.id));
    m.insert("tenant_id".into(), json!(r.project_id));
    m.insert("project_id".into(), json!(r.project_id));
    m.insert("revision_number".into(), json!(r.revision_number));
    m.insert("created_at".into(), json!(timestamp(r.created_at)));
    m.insert("updated_at".into(), json!(timestamp(r.updated_at)));
    m.insert("tags".into(), json!(tags.get(&r.id).cloned().unwrap_or_default()));
    m.entry("description").or_insert_with(|| json!(""));
    m
}

/// Whether the caller administers the cloud (the admin role anywhere).
pub fn is_admin(auth: &Auth) -> bool {
    auth.is_admin()
}

/// The project a new resource belongs to: the caller's, or (for an admin) the
/// one named by `tenant_id` / `project_id`. Removes both from `attrs`.
pub fn owner(auth: &Auth, attrs: &mut Map<String, Value>) -> Result<String> {
    let t = attrs.remove("tenant_id").and_then(|v| v.as_str().map(String::from));
    let p = attrs.remove("project_id").and_then(|v| v.as_str().map(String::from));
    if let (Some(t), Some(p)) = (&t, &p) {
        if t != p {
            return Err(NetworkError::invalid("HTTPBadRequest", "'project_id' and 'tenant_id' do not match"));
        }
    }
    let own = auth.project_id.clone().unwrap_or_default();
    match p.or(t) {
        None => Ok(own),
        Some(x) if x == own || auth.is_admin() => Ok(x),
        Some(_) => Err(NetworkError::invalid(
            "HTTPBadRequest",
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        )),
    }
}

pub use crate::plugin::{new_id, now, owns, time_since};

/// `{"<resource>": {...}}`, with `fields=` applied.
pub fn one(r: &Resource, item: Map<String, Value>, q: &ListQuery) -> Json<Value> {
    Json(json!({ r.singular: q.project(item) }))
}

/// `{"<resources>": [...], "<resources>_links": [...]}` after filtering,
/// sorting and paging.
pub fn many(r: &Resource, base: &BaseUrl, items: Vec<Map<String, Value>>, q: &ListQuery) -> ApiResult<Json<Value>> {
    let url = base.join(&format!("/v2.0/{}", r.plural.replace('_', "-")));
    let (items, links) = q.apply(items, &url)?;
    let mut out = json!({ r.plural: items });
    if let Some(l) = links {
        out[format!("{}_links", r.plural)] = l;
    }
    Ok(Json(out))
}

/// Hides what the caller may not see and renders.
pub fn shown(r: &Resource, rec: &Record, tags: &HashMap<String, Vec<String>>, admin: bool) -> Map<String, Value> {
    attrs::visible(r, render(rec, tags), admin)
}

/// The resource bodies of a create: `{"<resource>": {...}}`, or a bulk
/// `{"<resources>": [{...}, ...]}` (created in one transaction, all or none).
/// Returns them and whether the request was bulk.
pub fn bodies(body: Value, r: &Resource) -> Result<(Vec<Map<String, Value>>, bool)> {
    if let Some(Value::Array(items)) = body.get(r.plural) {
        let objects = items
            .iter()
            .map(|i| {
                i.as_object().cloned().ok_or_else(|| {
                    NetworkError::invalid("HTTPBadRequest", format!("Resource body required: {}.", r.singular))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok((objects, true));
    }
    Ok((vec![attrs::body_object(body, r)?], false))
}

/// The create answer: one resource, or the list for a bulk create.
pub fn created(r: &Resource, items: Vec<Map<String, Value>>, bulk: bool) -> Value {
    if bulk {
        json!({ r.plural: items })
    } else {
        json!({ r.singular: items.into_iter().next().unwrap_or_default() })
    }
}
