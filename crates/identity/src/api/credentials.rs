//! `/v3/credentials`: blobs users keep in Keystone (EC2 keys and the like),
//! encrypted at rest. An EC2 credential's id is the SHA-256 of its access key, as
//! Keystone makes it, so the key finds its credential.

use std::collections::HashMap;
use std::sync::Arc;

use api::{ApiError, ApiResult, Auth, BaseUrl, Fields, JsonBody};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::render;
use crate::credentials::{decrypt_blob, encrypt_blob};
use crate::policy;
use crate::store::Credential;
use crate::Identity;

fn render_cred(id: &Identity, base: &BaseUrl, c: &Credential) -> ApiResult<Value> {
    let blob = decrypt_blob(&id.credential_keys, &c.encrypted_blob)?;
    let mut v = json!({
        "id": c.id,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "type": c.credential_type,
        "blob": blob,
        "links": render::links(base, &format!("/v3/credentials/{}", c.id)),
    });
    if let Value::Object(o) = &mut v {
        for (k, x) in &c.extra {
            o.entry(k.clone()).or_insert_with(|| x.clone());
        }
    }
    Ok(v)
}

/// For `ec2` credentials: the access key inside the blob, which must be JSON.
fn ec2_access(blob: &str) -> ApiResult<String> {
    let parsed: Value = serde_json::from_str(blob)
        .map_err(|_| ApiError::bad_request("Invalid input for field 'credential.blob': an ec2 blob must be JSON"))?;
    parsed
        .get("access")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'credential.blob': an ec2 blob needs 'access'"))
}

fn ec2_id(access: &str) -> String {
    Sha256::digest(access.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn create(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut f = Fields::from_body(body, "credential")?;
    let user_id = f
        .string("user_id")?
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'credential.user_id': required"))?;
    policy::admin_or_self(&auth, "identity:create_credential", &user_id)?;
    let credential_type = f.name("type", 255)?;
    let blob = f
        .string("blob")?
        .ok_or_else(|| ApiError::bad_request("Invalid input for field 'credential.blob': required"))?;
    let project_id = f.nullable_string("project_id")?.flatten();
    f.forbid(&["id"])?;
    id.store.get_user(&user_id).await?;
    let cred_id = if credential_type == "ec2" {
        if project_id.is_none() {
            return Err(ApiError::bad_request("Invalid input for field 'credential.project_id': required for ec2"));
        }
        ec2_id(&ec2_access(&blob)?)
    } else {
        common::id::new_hex_id()
    };
    let c = Credential {
        id: cred_id,
        user_id,
        project_id,
        credential_type,
        encrypted_blob: encrypt_blob(&id.credential_keys, &blob)?,
        extra: f.rest(),
    };
    id.store.create_credential(&c).await?;
    Ok((StatusCode::CREATED, Json(json!({"credential": render_cred(&id, &base, &c)?}))))
}

pub async fn list(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let mut items = Vec::new();
    for c in id.store.list_credentials().await? {
        let visible = auth.is_admin() || c.user_id == auth.user_id;
        let wanted =
            q.get("user_id").is_none_or(|u| &c.user_id == u) && q.get("type").is_none_or(|t| &c.credential_type == t);
        if visible && wanted {
            items.push(render_cred(&id, &base, &c)?);
        }
    }
    Ok(Json(render::collection(&base, "credentials", "/v3/credentials", items)))
}

async fn owned(id: &Identity, auth: &Auth, cred_id: &str, action: &str) -> ApiResult<Credential> {
    let c = id.store.find_credential(cred_id).await?;
    match c {
        Some(c) if auth.is_admin() || c.user_id == auth.user_id => {
            policy::admin_or_self(auth, action, &c.user_id)?;
            Ok(c)
        }
        _ => Err(ApiError::not_found(format!("Could not find credential: {cred_id}."))),
    }
}

pub async fn get(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(cred_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let c = owned(&id, &auth, &cred_id, "identity:get_credential").await?;
    Ok(Json(json!({"credential": render_cred(&id, &base, &c)?})))
}

pub async fn update(
    State(id): State<Arc<Identity>>,
    auth: Auth,
    base: BaseUrl,
    Path(cred_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<Json<Value>> {
    let mut c = owned(&id, &auth, &cred_id, "identity:update_credential").await?;
    let mut f = Fields::from_body(body, "credential")?;
    if let Some(u) = f.string("user_id")? {
        policy::admin_or_self(&auth, "identity:update_credential", &u)?;
        c.user_id = u;
    }
    if let Some(p) = f.nullable_string("project_id")? {
        c.project_id = p;
    }
    if let Some(t) = f.optional_name("type", 255)? {
        c.credential_type = t;
    }
    if let Some(blob) = f.string("blob")? {
        if c.credential_type == "ec2" {
            // The id is derived from the access key, which therefore stays.
            ec2_access(&blob)?;
        }
        c.encrypted_blob = encrypt_blob(&id.credential_keys, &blob)?;
    }
    f.raw("id");
    c.extra.extend(f.rest());
    id.store.update_credential(&c).await?;
    Ok(Json(json!({"credential": render_cred(&id, &base, &c)?})))
}

pub async fn delete(State(id): State<Arc<Identity>>, auth: Auth, Path(cred_id): Path<String>) -> ApiResult<StatusCode> {
    owned(&id, &auth, &cred_id, "identity:delete_credential").await?;
    id.store.delete_credential(&cred_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
