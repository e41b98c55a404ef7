//! `/os-keypairs`: a user's public keys, imported or (before 2.92) made here.

use std::collections::HashMap;

use api::{Auth, BaseUrl, Microversion};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{admin_only, bad, body_object, json_body, State};
use crate::error::{ComputeError, Result};
use crate::keygen;
use crate::store::keypairs::Keypair;

fn view(k: &Keypair, v: Microversion, full: bool) -> Value {
    let mut out = json!({"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint});
    if v.at_least(2, 2) {
        out["type"] = json!(k.key_type);
    }
    if full {
        out["user_id"] = json!(k.user_id);
        out["created_at"] = json!(common::time::naive_micros(k.created_at));
        out["updated_at"] = Value::Null;
        out["deleted_at"] = Value::Null;
        out["deleted"] = json!(false);
        out["id"] = json!((k.created_at / 1000) % 1_000_000_000);
    }
    out
}

/// Whose key pairs: the caller's, or (2.10+, admin) the named user's.
fn owner(auth: &Auth, v: Microversion, asked: Option<&str>) -> Result<String> {
    match asked {
        Some(u) if v.at_least(2, 10) => {
            if u != auth.user_id {
                admin_only(auth, "os_compute_api:os-keypairs:index")?;
            }
            Ok(u.to_string())
        }
        _ => Ok(auth.user_id.clone()),
    }
}

fn valid_name(name: &str, v: Microversion) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_ ".contains(c) || (v.at_least(2, 92) && "@".contains(c));
    !name.is_empty()
        && name.chars().count() <= 255
        && !name.starts_with(' ')
        && !name.ends_with(' ')
        && name.chars().all(allowed)
}

pub async fn create(
    svc: State,
    auth: Auth,
    v: Microversion,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let body = json_body(&body)?;
    let m = body_object(&body, "keypair")?;
    let name = match m.get("name") {
        Some(Value::String(s)) if valid_name(s, v) => s.clone(),
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute name. Value: {other}. Keypair name contains unsafe characters or is too long"
            )))
        }
        None => return Err(bad("Invalid input for field/attribute keypair. 'name' is a required property")),
    };
    let key_type = match m.get("type") {
        None => "ssh".to_string(),
        Some(Value::String(t)) if v.at_least(2, 2) && (t == "ssh" || t == "x509") => t.clone(),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute type. Value: {other}."))),
    };
    let user_id = owner(&auth, v, m.get("user_id").and_then(Value::as_str))?;
    let public = match m.get("public_key") {
        None | Some(Value::Null) if v.at_least(2, 92) => {
            return Err(bad("Invalid input for field/attribute keypair. 'public_key' is a required property"))
        }
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 65535 => Some(s.trim().to_string()),
        Some(other) => return Err(bad(format!("Keypair data is invalid: {other} is not a public key"))),
    };
    let (public_key, private_key, fingerprint) = match (public, key_type.as_str()) {
        (Some(p), "x509") => {
            let fp = keygen::x509_fingerprint(&p).map_err(|e| bad(e.to_string()))?;
            (p, None, fp)
        }
        (Some(p), _) => {
            let fp = keygen::ssh_fingerprint(&p).map_err(|e| bad(e.to_string()))?;
            (p, None, fp)
        }
        (None, kind) => {
            let made =
                if kind == "x509" { keygen::generate_x509(&name) } else { keygen::generate_ssh("Generated-by-Nova") };
            let (public, private, fp) = made.map_err(|e| ComputeError::Internal(e.to_string()))?;
            (public, Some(private), fp)
        }
    };
    let k = Keypair { user_id, name, key_type, public_key, fingerprint, created_at: common::time::now_micros() };
    let limit = svc.config.quotas.iter().find(|(n, _)| *n == "key_pairs").map(|(_, l)| *l).unwrap_or(100);
    svc.store.create_keypair(&k, limit).await?;
    let mut out = view(&k, v, false);
    out["user_id"] = json!(k.user_id);
    if let Some(p) = private_key {
        out["private_key"] = json!(p);
    }
    let status = if v.at_least(2, 2) { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({"keypair": out}))))
}

pub async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let user = owner(&auth, v, q.get("user_id").map(String::as_str))?;
    let mut keys = svc.store.keypairs(&user).await?;
    let mut out = json!({});
    if v.at_least(2, 35) {
        if let Some(marker) = q.get("marker") {
            let pos = keys
                .iter()
                .position(|k| k.name == *marker)
                .ok_or_else(|| bad(format!("marker [{marker}] not found")))?;
            keys.drain(..=pos);
        }
        if let Some(limit) = q.get("limit") {
            let n: usize = limit.parse().map_err(|_| bad(format!("Invalid limit {limit}")))?;
            if keys.len() > n {
                keys.truncate(n);
                if let Some(last) = keys.last() {
                    out["keypairs_links"] = json!([{"rel": "next", "href": format!("{}/v2.1/os-keypairs?limit={n}&marker={}", base.0, last.name)}]);
                }
            }
        }
    }
    out["keypairs"] = json!(keys.iter().map(|k| json!({"keypair": view(k, v, false)})).collect::<Vec<_>>());
    Ok(Json(out))
}

pub async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let user = owner(&auth, v, q.get("user_id").map(String::as_str))?;
    let k = svc.store.keypair(&user, &name).await?;
    Ok(Json(json!({"keypair": view(&k, v, true)})))
}

pub async fn delete(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode> {
    let user = owner(&auth, v, q.get("user_id").map(String::as_str))?;
    svc.store.delete_keypair(&user, &name).await?;
    Ok(if v.at_least(2, 2) { StatusCode::NO_CONTENT } else { StatusCode::ACCEPTED })
}
