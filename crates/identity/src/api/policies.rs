//! `/v3/policies`: stored policy blobs (kept, never interpreted), and OS-OAUTH1
//! consumers.

use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, Fields, JsonBody};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};

use super::render;
use crate::policy;
use crate::store::{Consumer, Policy};
use crate::Identity;

fn render_policy(base: &BaseUrl, p: &Policy) -> Value {
    let mut v = json!({
        "id": p.id,
        "type": p.policy_type,
        "blob": p.blob,
        "links": render::links(base, &format!("/v3/policies/{}", p.id)),
    });
    if let Value::Object(o) = &mut v {
        for (k, x) in &p.extra {
            o.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    v
}

pub async fn create(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_policy")?;
    let mut f = Fields::from_body(body, "policy")?;
    f.forbid(&["id"])?;
    let p = Policy {
        id: common::id::new_hex_id(),
        policy_type: f.name("type", 255)?,
        blob: f
            .string("blob")?
            .ok_or_else(|| ApiError::bad_request("Invalid input for field 'policy.blob': required"))?,
        extra: f.rest(),
    };
    id.store.create_policy(&p).await?;
    Ok((StatusCode::CREATED, Json(json!({"policy": render_policy(&base, &p)}))))
}

pub async fn list(State(id): State<Arc<Identity>>, auth: Auth, base: BaseUrl) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_policies")?;
    let items = id.store.list_policies().await?.iter().map(|p| render_policy(&base, p)).collect();
    Ok(Json(render::collection(&base, "policies", "/v3/policies", items)))
}

pub async fn get(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(pid): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_policy")?;
    let p = id.store.get_policy(&pid).await?;
    Ok(Json(json!({"policy": render_policy(&base, &p)})))
}

pub async fn update(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(pid): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_policy")?;
    let mut p = id.store.get_policy(&pid).await?;
    let mut f = Fields::from_body(body, "policy")?;
    f.raw("id");
    if let Some(t) = f.optional_name("type", 255)? {
        p.policy_type = t;
    }
    if let Some(b) = f.string("blob")? {
        p.blob = b;
    }
    p.extra.extend(f.rest());
    id.store.update_policy(&p).await?;
    Ok(Json(json!({"policy": render_policy(&base, &p)})))
}

pub async fn delete(State(id): State<Arc<Identity>>, auth: Auth, Path(pid): Path<String>) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_policy")?;
    id.store.get_policy(&pid).await?;
    id.store.delete_policy(&pid).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn render_consumer(base: &BaseUrl, c: &Consumer) -> Value {
    let mut v = json!({
        "id": c.id,
        "description": c.description,
        "links": render::links(base, &format!("/v3/OS-OAUTH1/consumers/{}", c.id)),
    });
    if let Value::Object(o) = &mut v {
        for (k, x) in &c.extra {
            o.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    v
}

pub async fn create_consumer(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    policy::admin(&auth, "identity:create_consumer")?;
    let mut f = Fields::from_body(body, "consumer")?;
    f.forbid(&["id", "secret"])?;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let c = Consumer {
        id: common::id::new_hex_id(),
        description: f.nullable_string("description")?.flatten(),
        secret_hash: id.hasher.hash_async(secret.clone()).await,
        extra: f.rest(),
    };
    id.store.create_consumer(&c).await?;
    let mut v = render_consumer(&base, &c);
    v["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(json!({"consumer": v}))))
}

pub async fn list_consumers(State(id): State<Arc<Identity>>, auth: Auth, base: BaseUrl) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:list_consumers")?;
    let items = id.store.list_consumers().await?.iter().map(|c| render_consumer(&base, c)).collect();
    Ok(Json(render::collection(&base, "consumers", "/v3/OS-OAUTH1/consumers", items)))
}

pub async fn get_consumer(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(cid): Path<String>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:get_consumer")?;
    let c = id.store.get_consumer(&cid).await?;
    Ok(Json(json!({"consumer": render_consumer(&base, &c)})))
}

pub async fn update_consumer(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(cid): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    policy::admin(&auth, "identity:update_consumer")?;
    let mut c = id.store.get_consumer(&cid).await?;
    let mut f = Fields::from_body(body, "consumer")?;
    f.forbid(&["secret"])?;
    f.raw("id");
    if let Some(d) = f.nullable_string("description")? {
        c.description = d;
    }
    c.extra.extend(f.rest());
    id.store.update_consumer(&c).await?;
    Ok(Json(json!({"consumer": render_consumer(&base, &c)})))
}

pub async fn delete_consumer(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    Path(cid): Path<String>,
) -> ApiResult<StatusCode> {
    policy::admin(&auth, "identity:delete_consumer")?;
    id.store.get_consumer(&cid).await?;
    id.store.delete_consumer(&cid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/OS-REVOKE/events`: the revocation events other services (or a
/// caching middleware) need to reject revoked tokens.
pub async fn revoke_events(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    policy::enforce_any(&auth, "identity:list_revoke_events", auth.has_role("service"))?;
    let since = match q.get("since") {
        None => None,
        Some(s) => {
            Some(common::time::parse_iso(s).ok_or_else(|| ApiError::bad_request("Invalid input for field 'since'"))?)
        }
    };
    let events: Vec<Value> = id
        .store
        .list_revocations(since)
        .await?
        .iter()
        .map(|e| {
            let mut v = json!({
                "issued_before": common::time::iso_seconds(e.issued_before),
                "revoked_at": common::time::iso_seconds(e.revoked_at),
            });
            for (k, x) in [
                ("user_id", &e.user_id),
                ("project_id", &e.project_id),
                ("domain_id", &e.domain_id),
                ("audit_id", &e.audit_id),
            ] {
                if let Some(x) = x {
                    v[k] = json!(x);
                }
            }
            v
        })
        .collect();
    Ok(Json(
        json!({"events": events, "links": {"self": base.join("/v3/OS-REVOKE/events"), "previous": null, "next": null}}),
    ))
}
