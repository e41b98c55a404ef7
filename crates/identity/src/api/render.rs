//! Records as Keystone writes them: every entity with its `links.self`, every
//! collection with its `links`, extra attributes merged at the top level.

use api::BaseUrl;
use serde_json::{json, Map, Value};

use crate::schema::ROOT_DOMAIN;
use crate::store::{Endpoint, EndpointGroup, Group, Project, Region, Role, Service, User};

pub fn links(base: &BaseUrl, path: &str) -> Value {
    json!({"self": base.join(path)})
}

/// `{"<key>": [...], "links": {...}}`
pub fn collection(base: &BaseUrl, key: &str, path: &str, items: Vec<Value>) -> Value {
    json!({key: items, "links": {"self": base.join(path), "previous": Value::Null, "next": Value::Null}})
}

fn with_extra(mut v: Value, extra: &Map<String, Value>) -> Value {
    if let Value::Object(o) = &mut v {
        for (k, x) in extra {
            o.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    v
}

pub fn project(base: &BaseUrl, p: &Project) -> Value {
    let domain_id = (p.domain_id != ROOT_DOMAIN).then_some(&p.domain_id);
    with_extra(
        json!({
            "id": p.id,
            "name": p.name,
            "domain_id": domain_id,
            "parent_id": p.parent_id,
            "is_domain": p.is_domain,
            "enabled": p.enabled,
            "description": p.description,
            "tags": p.tags,
            "options": p.options,
            "links": links(base, &format!("/v3/projects/{}", p.id)),
        }),
        &p.extra,
    )
}

pub fn domain(base: &BaseUrl, d: &Project) -> Value {
    with_extra(
        json!({
            "id": d.id,
            "name": d.name,
            "enabled": d.enabled,
            "description": d.description,
            "tags": d.tags,
            "options": d.options,
            "links": links(base, &format!("/v3/domains/{}", d.id)),
        }),
        &d.extra,
    )
}

pub fn user(base: &BaseUrl, u: &User) -> Value {
    let mut v = with_extra(
        json!({
            "id": u.id,
            "name": u.name,
            "domain_id": u.domain_id,
            "enabled": u.enabled,
            "password_expires_at": Value::Null,
            "options": u.options,
            "links": links(base, &format!("/v3/users/{}", u.id)),
        }),
        &u.extra,
    );
    if let Some(p) = &u.default_project_id {
        v["default_project_id"] = json!(p);
    }
    v
}

pub fn group(base: &BaseUrl, g: &Group) -> Value {
    with_extra(
        json!({
            "id": g.id,
            "name": g.name,
            "domain_id": g.domain_id,
            "description": g.description,
            "links": links(base, &format!("/v3/groups/{}", g.id)),
        }),
        &g.extra,
    )
}

pub fn role(base: &BaseUrl, r: &Role) -> Value {
    with_extra(
        json!({
            "id": r.id,
            "name": r.name,
            "domain_id": r.domain_id,
            "description": r.description,
            "options": r.options,
            "links": links(base, &format!("/v3/roles/{}", r.id)),
        }),
        &r.extra,
    )
}

/// The short form of a role inside implied-role documents.
pub fn role_ref(base: &BaseUrl, r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "links": links(base, &format!("/v3/roles/{}", r.id))})
}

pub fn region(base: &BaseUrl, r: &Region) -> Value {
    with_extra(
        json!({
            "id": r.id,
            "description": r.description,
            "parent_region_id": r.parent_region_id,
            "links": links(base, &format!("/v3/regions/{}", r.id)),
        }),
        &r.extra,
    )
}

pub fn service(base: &BaseUrl, s: &Service) -> Value {
    with_extra(
        json!({
            "id": s.id,
            "type": s.service_type,
            "enabled": s.enabled,
            "links": links(base, &format!("/v3/services/{}", s.id)),
        }),
        &s.extra,
    )
}

pub fn endpoint(base: &BaseUrl, e: &Endpoint) -> Value {
    with_extra(
        json!({
            "id": e.id,
            "service_id": e.service_id,
            "interface": e.interface,
            "url": e.url,
            "region": e.region_id,
            "region_id": e.region_id,
            "enabled": e.enabled,
            "links": links(base, &format!("/v3/endpoints/{}", e.id)),
        }),
        &e.extra,
    )
}

pub fn endpoint_group(base: &BaseUrl, g: &EndpointGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "filters": g.filters,
        "links": links(base, &format!("/v3/OS-EP-FILTER/endpoint_groups/{}", g.id)),
    })
}

/// A collection paged by `limit` and `marker` (an id), with a `next` link while
/// more may follow. Keystone itself ignores both, but the SDK's `--limit` pages
/// by marker and gives up on a server that repeats the first page.
pub fn paged(
    base: &BaseUrl,
    key: &str,
    path: &str,
    items: Vec<Value>,
    query: &std::collections::HashMap<String, String>,
) -> api::ApiResult<Value> {
    let page = api::page::Page::from_query(query)?;
    let (items, next) = page.apply(items, |v| v["id"].as_str().unwrap_or_default())?;
    let mut out = collection(base, key, path, items);
    if let Some(marker) = next {
        out["links"]["next"] = json!(api::page::next_link(&base.join(path), query, &marker));
    }
    Ok(out)
}
