//! OS-EP-FILTER: endpoint groups, and which endpoints a project's catalog holds.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, Fields, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::render;
use crate::catalog::group_matches;
use crate::policy;
use crate::store::EndpointGroup;
use crate::Identity;

const FILTER_KEYS: &[&str] = &["service_id", "region_id", "interface"];

fn check_filters(filters: &Map<String, Value>) -> ApiResult<()> {
    if filters.is_empty() {
        return Err(ApiError::bad_request("Invalid input for field 'endpoint_group.filters': must not be empty"));
    }
    if let Some(bad) = filters.keys().find(|k| !FILTER_KEYS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field 'endpoint_group.filters': {bad} is not one of service_id, region_id, interface"
        )));
    }
    Ok(())
}

pub async fn create_group(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_endpoint_group")?;
    let mut f = Fields::from_body(body, "endpoint_group")?;
    let filters = f
        .object("filters")?
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'endpoint_group.filters': required"))?;
    check_filters(&filters)?;
    let g = EndpointGroup {
        id: common::id::new_hex_id(),
        name: f.name("name", 255)?,
        description: f.nullable_string("description")?.flatten(),
        filters,
    };
    id.store.create_endpoint_group(&g).await?;
    Ok((StatusCode::CREATED, Json(json!({"endpoint_group": render::endpoint_group(&base, &g)}))))
}

pub async fn list_groups(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_endpoint_groups")?;
    let groups: Vec<Value> = id
        .store
        .list_endpoint_groups()
        .await?
        .iter()
        .filter(|g| q.get("name").is_none_or(|n| &g.name == n))
        .map(|g| render::endpoint_group(&base, g))
        .collect();
    Ok(Json(render::collection(&base, "endpoint_groups", "/v3/OS-EP-FILTER/endpoint_groups", groups)))
}

pub async fn get_group(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(group_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_endpoint_group")?;
    let g = id.store.get_endpoint_group(&group_id).await?;
    Ok(Json(json!({"endpoint_group": render::endpoint_group(&base, &g)})))
}

/// `HEAD`: Keystone answers 200 here, not 204.
pub async fn check_group(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(group_id): Path<String>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:get_endpoint_group")?;
    id.store.get_endpoint_group(&group_id).await?;
    Ok(StatusCode::OK)
}

pub async fn update_group(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(group_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_endpoint_group")?;
    let mut g = id.store.get_endpoint_group(&group_id).await?;
    let mut f = Fields::from_body(body, "endpoint_group")?;
    if let Some(n) = f.optional_name("name", 255)? {
        g.name = n;
    }
    if let Some(d) = f.nullable_string("description")? {
        g.description = d;
    }
    if let Some(filters) = f.object("filters")? {
        check_filters(&filters)?;
        g.filters = filters;
    }
    id.store.update_endpoint_group(&g).await?;
    Ok(Json(json!({"endpoint_group": render::endpoint_group(&base, &g)})))
}

pub async fn delete_group(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(group_id): Path<String>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_endpoint_group")?;
    id.store.get_endpoint_group(&group_id).await?;
    id.store.delete_endpoint_group(&group_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/OS-EP-FILTER/endpoint_groups/{id}/endpoints`
pub async fn group_endpoints(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(group_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_endpoints_associated_with_endpoint_group")?;
    let g = id.store.get_endpoint_group(&group_id).await?;
    let items = id
        .store
        .list_endpoints()
        .await?
        .iter()
        .filter(|e| group_matches(&g, e))
        .map(|e| render::endpoint(&base, e))
        .collect();
    Ok(Json(render::collection(
        &base,
        "endpoints",
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{group_id}/endpoints"),
        items,
    )))
}

/// `PUT /v3/OS-EP-FILTER/projects/{p}/endpoints/{e}` and
/// `PUT /v3/OS-EP-FILTER/endpoint_groups/{g}/projects/{p}`
async fn associate(id: &Identity, auth: &Auth, project_id: &str, target: &str, group: bool) -> ApiResult<StatusCode> {
    policy::admin(auth, "identity:add_endpoint_to_project")?;
    id.store.get_project(project_id).await?;
    if group {
        id.store.get_endpoint_group(target).await?;
    } else {
        id.store.get_endpoint(target).await?;
    }
    id.store.add_project_endpoint(project_id, target, group).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn check_association(
    id: &Identity,
    auth: &Auth,
    project_id: &str,
    target: &str,
    group: bool,
) -> ApiResult<StatusCode> {
    policy::admin(auth, "identity:check_endpoint_in_project")?;
    let pairs = id.store.list_project_endpoints(group).await?;
    if pairs.iter().any(|(p, t)| p == project_id && t == target) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("Could not find association of {target} with project {project_id}.")))
    }
}

async fn dissociate(id: &Identity, auth: &Auth, project_id: &str, target: &str, group: bool) -> ApiResult<StatusCode> {
    policy::admin(auth, "identity:remove_endpoint_from_project")?;
    if !id.store.remove_project_endpoint(project_id, target, group).await? {
        return Err(ApiError::not_found(format!("Could not find association of {target} with project {project_id}.")));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn put_project_endpoint(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((p, e)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    associate(&id, &auth, &p, &e, false).await
}
pub async fn check_project_endpoint(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((p, e)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    check_association(&id, &auth, &p, &e, false).await
}
pub async fn delete_project_endpoint(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((p, e)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    dissociate(&id, &auth, &p, &e, false).await
}
pub async fn put_group_project(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((g, p)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    associate(&id, &auth, &p, &g, true).await
}
pub async fn check_group_project(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((g, p)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    check_association(&id, &auth, &p, &g, true).await
}
pub async fn delete_group_project(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path((g, p)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    dissociate(&id, &auth, &p, &g, true).await
}

/// `GET /v3/OS-EP-FILTER/projects/{p}/endpoints`: what the project's catalog holds.
pub async fn project_endpoints(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(project_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_endpoints_for_project")?;
    id.store.get_project(&project_id).await?;
    let only = id.store.project_endpoint_ids(&project_id).await?;
    let items = id
        .store
        .list_endpoints()
        .await?
        .iter()
        .filter(|e| only.as_ref().is_some_and(|ids| ids.contains(&e.id)))
        .map(|e| render::endpoint(&base, e))
        .collect();
    Ok(Json(render::collection(
        &base,
        "endpoints",
        &format!("/v3/OS-EP-FILTER/projects/{project_id}/endpoints"),
        items,
    )))
}

/// `GET /v3/OS-EP-FILTER/endpoints/{e}/projects`
pub async fn endpoint_projects(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(endpoint_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_projects_for_endpoint")?;
    id.store.get_endpoint(&endpoint_id).await?;
    let mut items = Vec::new();
    for (p, _) in id.store.list_project_endpoints(false).await?.into_iter().filter(|(_, e)| *e == endpoint_id) {
        if let Ok(project) = id.store.get_project(&p).await {
            items.push(render::project(&base, &project));
        }
    }
    Ok(Json(render::collection(
        &base,
        "projects",
        &format!("/v3/OS-EP-FILTER/endpoints/{endpoint_id}/projects"),
        items,
    )))
}

/// `GET /v3/OS-EP-FILTER/endpoint_groups/{g}/projects`
pub async fn group_projects(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(group_id): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_projects_associated_with_endpoint_group")?;
    id.store.get_endpoint_group(&group_id).await?;
    let mut items = Vec::new();
    for (p, _) in id.store.list_project_endpoints(true).await?.into_iter().filter(|(_, g)| *g == group_id) {
        if let Ok(project) = id.store.get_project(&p).await {
            items.push(render::project(&base, &project));
        }
    }
    Ok(Json(render::collection(
        &base,
        "projects",
        &format!("/v3/OS-EP-FILTER/endpoint_groups/{group_id}/projects"),
        items,
    )))
}
