//! Quotas: how many of each resource a project may have (`/v2.0/quotas`), and
//! the check every create makes, inside its write transaction so concurrent
//! creates cannot both squeeze under the limit.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiResult, Auth, JsonBody};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::error::{NetworkError, Result};
use crate::plugin::quotas::limits;
use crate::Network;

fn quota_body(project_id: &str, limits: &[(&'static str, i64)]) -> Map<String, Value> {
    let mut m: Map<String, Value> = limits.iter().map(|(r, l)| (r.to_string(), json!(l))).collect();
    m.insert("project_id".into(), json!(project_id));
    m.insert("tenant_id".into(), json!(project_id));
    m
}

fn may_read(auth: &Auth, project_id: &str) -> Result<()> {
    if auth.is_admin() || auth.project_id.as_deref() == Some(project_id) {
        Ok(())
    } else {
        Err(NetworkError::forbidden("(get_quota) is disallowed by policy"))
    }
}

fn admin(auth: &Auth, action: &str) -> Result<()> {
    if auth.is_admin() {
        Ok(())
    } else {
        Err(NetworkError::forbidden(format!("({action}) is disallowed by policy")))
    }
}

/// `GET /v2.0/quotas`: the projects with limits of their own.
pub async fn list(State(net): State<Arc<Network>>, auth: Auth) -> ApiResult<Json<Value>> {
    admin(&auth, "get_quota")?;
    let mut projects: Vec<String> = net.store.quota_overrides(None).await?.into_iter().map(|(p, _, _)| p).collect();
    projects.sort();
    projects.dedup();
    let mut out = Vec::new();
    for p in projects {
        let mut body = quota_body(&p, &limits(&net, &p).await?);
        body.remove("tenant_id");
        out.push(Value::Object(body));
    }
    Ok(Json(json!({"quotas": out})))
}

pub async fn show(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(project_id): Path<String>,
) -> ApiResult<Json<Value>> {
    may_read(&auth, &project_id)?;
    let l = limits(&net, &project_id).await?;
    let mut body = quota_body(&project_id, &l);
    body.remove("project_id");
    body.remove("tenant_id");
    Ok(Json(json!({"quota": body})))
}

pub async fn defaults(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(project_id): Path<String>,
) -> ApiResult<Json<Value>> {
    may_read(&auth, &project_id)?;
    let body: Map<String, Value> = net.config.quotas.iter().map(|(r, l)| (r.to_string(), json!(l))).collect();
    Ok(Json(json!({"quota": body})))
}

/// `GET /v2.0/quotas/{project}/details`: limit, use and reservations.
pub async fn details(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(project_id): Path<String>,
) -> ApiResult<Json<Value>> {
    may_read(&auth, &project_id)?;
    let mut conn = net.store.reader().await?;
    let mut body = Map::new();
    for (res, limit) in limits(&net, &project_id).await? {
        let used = match crate::store::kind_by_table(res) {
            Some(k) => net.store.count_owned(&mut conn, k, &project_id).await?,
            None => 0,
        };
        body.insert(res.into(), json!({"limit": limit, "used": used, "reserved": 0}));
    }
    Ok(Json(json!({"quota": body})))
}

pub async fn update(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(project_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    admin(&auth, "update_quota")?;
    let Some(Value::Object(changes)) = body.get("quota").cloned() else {
        return Err(NetworkError::invalid("HTTPBadRequest", "Resource body required: quota.").into());
    };
    let mut parsed: HashMap<String, i64> = HashMap::new();
    for (k, v) in changes {
        if !net.config.quotas.iter().any(|(r, _)| *r == k) {
            return Err(NetworkError::invalid("HTTPBadRequest", format!("Unrecognized attribute(s) '{k}'")).into());
        }
        let n =
            v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).filter(|n| *n >= -1).ok_or_else(|| {
                NetworkError::invalid(
                    "HTTPBadRequest",
                    format!("Invalid input for {k}. Reason: '{v}' is not an integer -1 or greater."),
                )
            })?;
        parsed.insert(k, n);
    }
    for (k, n) in parsed {
        net.store.set_quota(&project_id, &k, n).await?;
    }
    let mut body = quota_body(&project_id, &limits(&net, &project_id).await?);
    body.remove("project_id");
    body.remove("tenant_id");
    Ok(Json(json!({"quota": body})))
}

pub async fn reset(
    State(net): State<Arc<Network>>,
    auth: Auth,
    Path(project_id): Path<String>,
) -> ApiResult<StatusCode> {
    admin(&auth, "delete_quota")?;
    net.store.clear_quotas(&project_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
