//! `/v3/regions`, `/v3/services`, `/v3/endpoints`.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, Fields, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::render;
use crate::policy;
use crate::store::{Endpoint, Region, Service, Store};
use crate::Identity;

const INTERFACES: &[&str] = &["public", "internal", "admin"];

async fn create_region_with(
    id: &Identity,
    base: &BaseUrl,
    region_id: Option<String>,
    body: Value,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut f = Fields::from_body(body, "region")?;
    let body_id = f.string("id")?;
    let region_id = match (region_id, body_id) {
        (Some(path), Some(b)) if path != b => {
            return Err(ApiError::bad_request("Conflicting region IDs specified: the path and the body differ."))
        }
        (Some(path), _) => path,
        (None, Some(b)) => b,
        (None, None) => common::id::new_hex_id(),
    };
    if region_id.is_empty() || region_id.len() > 255 {
        return Err(ApiError::bad_request("Invalid input for field 'region.id': 1 to 255 characters"));
    }
    let r = Region {
        id: region_id,
        description: f.nullable_string("description")?.flatten().unwrap_or_default(),
        parent_region_id: f.nullable_string("parent_region_id")?.flatten(),
        extra: f.rest(),
    };
    if let Some(parent) = &r.parent_region_id {
        id.store.get_region(parent).await?;
    }
    id.store.create_region(&r).await?;
    Ok((StatusCode::CREATED, Json(json!({"region": render::region(base, &r)}))))
}

pub async fn create_region(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_region")?;
    create_region_with(&id, &base, None, body).await
}

/// `PUT /v3/regions/{id}`: create with a chosen id.
pub async fn put_region(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(region_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_region")?;
    create_region_with(&id, &base, Some(region_id), body).await
}

pub async fn list_regions(
    State(id): State<Arc<Identity>>,
    _auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let regions: Vec<Region> = id
        .store
        .list_regions()
        .await?
        .into_iter()
        .filter(|r| q.get("parent_region_id").is_none_or(|p| r.parent_region_id.as_ref() == Some(p)))
        .collect();
    let items = regions.iter().map(|r| render::region(&base, r)).collect();
    Ok(Json(render::paged(&base, "regions", "/v3/regions", items, &q)?))
}

pub async fn get_region(
    State(id): State<Arc<Identity>>,
    _auth: Auth,
    base: BaseUrl,
    Path(region_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let r = id.store.get_region(&region_id).await?;
    Ok(Json(json!({"region": render::region(&base, &r)})))
}

pub async fn update_region(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(region_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_region")?;
    let mut r = id.store.get_region(&region_id).await?;
    let mut f = Fields::from_body(body, "region")?;
    if let Some(given) = f.string("id")? {
        if given != r.id {
            return Err(ApiError::bad_request("Invalid input for field 'region.id': the id cannot be changed"));
        }
    }
    if let Some(d) = f.nullable_string("description")? {
        r.description = d.unwrap_or_default();
    }
    if let Some(parent) = f.nullable_string("parent_region_id")? {
        if let Some(p) = &parent {
            id.store.get_region(p).await?;
            if creates_cycle(&id.store, &r.id, p).await? {
                return Err(ApiError::bad_request(format!(
                    "Circular reference or a repeated entry found in region tree - {p}."
                )));
            }
        }
        r.parent_region_id = parent;
    }
    r.extra.extend(f.rest());
    id.store.update_region(&r).await?;
    Ok(Json(json!({"region": render::region(&base, &r)})))
}

async fn creates_cycle(store: &Store, region_id: &str, new_parent: &str) -> ApiResult<bool> {
    let regions = store.list_regions().await?;
    let mut cur = Some(new_parent.to_string());
    let mut steps = 0;
    while let Some(c) = cur {
        if c == region_id || steps > regions.len() {
            return Ok(true);
        }
        cur = regions.iter().find(|r| r.id == c).and_then(|r| r.parent_region_id.clone());
        steps += 1;
    }
    Ok(false)
}

/// Deletes a region and the regions below it.
pub async fn delete_region(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(region_id): Path<String>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_region")?;
    id.store.get_region(&region_id).await?;
    let regions = id.store.list_regions().await?;
    let mut doomed = vec![region_id.clone()];
    let mut i = 0;
    while i < doomed.len() {
        let parent = doomed[i].clone();
        doomed.extend(regions.iter().filter(|r| r.parent_region_id.as_deref() == Some(&parent)).map(|r| r.id.clone()));
        i += 1;
    }
    for r in doomed.iter().rev() {
        id.store.delete_region(r).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_service(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_service")?;
    let mut f = Fields::from_body(body, "service")?;
    f.forbid(&["id"])?;
    let service_type = f.name("type", 255)?;
    let enabled = f.boolean("enabled")?.unwrap_or(true);
    if let Some(n) = f.nullable_string("name")? {
        if n.as_ref().is_some_and(|n| n.chars().count() > 255) {
            return Err(ApiError::bad_request("Invalid input for field 'service.name': longer than 255 characters"));
        }
        f = with_field(f, "name", json!(n.unwrap_or_default()));
    } else {
        f = with_field(f, "name", json!(""));
    }
    let s = Service { id: common::id::new_hex_id(), service_type, enabled, extra: f.rest() };
    id.store.create_service(&s).await?;
    Ok((StatusCode::CREATED, Json(json!({"service": render::service(&base, &s)}))))
}

fn with_field(f: Fields, key: &str, v: Value) -> Fields {
    let mut m = f.rest();
    m.insert(key.into(), v);
    Fields::new("service", m)
}

pub async fn list_services(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_services")?;
    let services: Vec<Service> = id
        .store
        .list_services()
        .await?
        .into_iter()
        .filter(|s| q.get("type").is_none_or(|t| &s.service_type == t))
        .filter(|s| q.get("name").is_none_or(|n| s.extra.get("name").and_then(Value::as_str) == Some(n)))
        .collect();
    let items = services.iter().map(|s| render::service(&base, s)).collect();
    Ok(Json(render::paged(&base, "services", "/v3/services", items, &q)?))
}

pub async fn get_service(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(service_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_service")?;
    let s = id.store.get_service(&service_id).await?;
    Ok(Json(json!({"service": render::service(&base, &s)})))
}

pub async fn update_service(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(service_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_service")?;
    let mut s = id.store.get_service(&service_id).await?;
    let mut f = Fields::from_body(body, "service")?;
    f.raw("id");
    if let Some(t) = f.optional_name("type", 255)? {
        s.service_type = t;
    }
    if let Some(e) = f.boolean("enabled")? {
        s.enabled = e;
    }
    s.extra.extend(f.rest());
    id.store.update_service(&s).await?;
    Ok(Json(json!({"service": render::service(&base, &s)})))
}

pub async fn delete_service(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(service_id): Path<String>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_service")?;
    id.store.get_service(&service_id).await?;
    id.store.delete_service(&service_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn check_interface(i: &str) -> ApiResult<()> {
    if INTERFACES.contains(&i) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid input for field 'endpoint.interface': {i:?} is not one of public, internal, admin"
        )))
    }
}

fn check_url(u: &str) -> ApiResult<()> {
    let ok = u.chars().count() <= 225 && (u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8;
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("Invalid input for field 'endpoint.url': {u:?} is not a valid URL")))
    }
}

/// The endpoint's region: `region_id` must exist; the legacy `region` attribute
/// creates the region when it does not, as Keystone still does.
async fn endpoint_region(store: &Store, f: &mut Fields) -> ApiResult<Option<Option<String>>> {
    let legacy = f.nullable_string("region")?;
    match f.nullable_string("region_id")? {
        Some(Some(r)) => {
            if store.get_region(&r).await.is_err() {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field 'endpoint.region_id': region {r} does not exist"
                )));
            }
            Ok(Some(Some(r)))
        }
        Some(None) => Ok(Some(None)),
        None => match legacy {
            Some(Some(r)) => {
                if store.get_region(&r).await.is_err() {
                    store
                        .create_region(&Region {
                            id: r.clone(),
                            description: String::new(),
                            parent_region_id: None,
                            extra: Default::default(),
                        })
                        .await?;
                }
                Ok(Some(Some(r)))
            }
            other => Ok(other),
        },
    }
}

pub async fn create_endpoint(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_endpoint")?;
    let mut f = Fields::from_body(body, "endpoint")?;
    f.forbid(&["id"])?;
    let service_id = f
        .string("service_id")?
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'endpoint.service_id': required"))?;
    let interface = f
        .string("interface")?
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'endpoint.interface': required"))?;
    check_interface(&interface)?;
    let url =
        f.string("url")?.ok_or_else(|| ApiError::bad_request("Invalid input for field 'endpoint.url': required"))?;
    check_url(&url)?;
    let enabled = f.boolean("enabled")?.unwrap_or(true);
    let region_id = endpoint_region(&id.store, &mut f).await?.flatten();
    if id.store.get_service(&service_id).await.is_err() {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field 'endpoint.service_id': service {service_id} does not exist"
        )));
    }
    let e = Endpoint { id: common::id::new_hex_id(), service_id, interface, url, region_id, enabled, extra: f.rest() };
    id.store.create_endpoint(&e).await?;
    Ok((StatusCode::CREATED, Json(json!({"endpoint": render::endpoint(&base, &e)}))))
}

pub async fn list_endpoints(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_endpoints")?;
    let endpoints: Vec<Endpoint> = id
        .store
        .list_endpoints()
        .await?
        .into_iter()
        .filter(|e| q.get("interface").is_none_or(|i| &e.interface == i))
        .filter(|e| q.get("service_id").is_none_or(|s| &e.service_id == s))
        .filter(|e| q.get("region_id").is_none_or(|r| e.region_id.as_ref() == Some(r)))
        .collect();
    let items = endpoints.iter().map(|e| render::endpoint(&base, e)).collect();
    Ok(Json(render::paged(&base, "endpoints", "/v3/endpoints", items, &q)?))
}

pub async fn get_endpoint(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(endpoint_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_endpoint")?;
    let e = id.store.get_endpoint(&endpoint_id).await?;
    Ok(Json(json!({"endpoint": render::endpoint(&base, &e)})))
}

pub async fn update_endpoint(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(endpoint_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_endpoint")?;
    let mut e = id.store.get_endpoint(&endpoint_id).await?;
    let mut f = Fields::from_body(body, "endpoint")?;
    f.raw("id");
    if let Some(s) = f.string("service_id")? {
        if id.store.get_service(&s).await.is_err() {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field 'endpoint.service_id': service {s} does not exist"
            )));
        }
        e.service_id = s;
    }
    if let Some(i) = f.string("interface")? {
        check_interface(&i)?;
        e.interface = i;
    }
    if let Some(u) = f.string("url")? {
        check_url(&u)?;
        e.url = u;
    }
    if let Some(en) = f.boolean("enabled")? {
        e.enabled = en;
    }
    if let Some(r) = endpoint_region(&id.store, &mut f).await? {
        e.region_id = r;
    }
    e.extra.extend(f.rest());
    id.store.update_endpoint(&e).await?;
    Ok(Json(json!({"endpoint": render::endpoint(&base, &e)})))
}

pub async fn delete_endpoint(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(endpoint_id): Path<String>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_endpoint")?;
    id.store.get_endpoint(&endpoint_id).await?;
    id.store.delete_endpoint(&endpoint_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
