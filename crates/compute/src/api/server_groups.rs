//! `/os-server-groups`: servers kept together or apart.

use std::collections::HashMap;

use api::{Auth, Microversion};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::servers::project_quota;
use super::{bad, body_object, json_body, State};
use crate::error::{ComputeError, Result};
use crate::store::groups::ServerGroup;

const POLICIES: &[&str] = &["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"];

fn view(g: &ServerGroup, v: Microversion) -> Value {
    let mut out = json!({"id": g.id, "name": g.name, "members": g.members});
    if v.at_least(2, 64) {
        out["policy"] = json!(g.policy);
        out["rules"] = json!(g.rules);
    } else {
        out["policies"] = json!([g.policy]);
        out["metadata"] = json!({});
    }
    if v.at_least(2, 13) {
        out["project_id"] = json!(g.project_id);
        out["user_id"] = json!(g.user_id);
    }
    out
}

async fn visible(svc: &super::ComputeApi, auth: &Auth, id: &str) -> Result<ServerGroup> {
    let g = svc.store.group(id).await?;
    if auth.is_admin() || auth.project_id.as_deref() == Some(g.project_id.as_str()) {
        Ok(g)
    } else {
        Err(crate::store::groups::not_found(id))
    }
}

pub async fn create(svc: State, auth: Auth, v: Microversion, body: axum::body::Bytes) -> Result<Json<Value>> {
    let body = json_body(&body)?;
    let m = body_object(&body, "server_group")?;
    let name = match m.get("name") {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 255 && s.trim() == s => s.clone(),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute name. Value: {other}."))),
        None => return Err(bad("Invalid input for field/attribute server_group. 'name' is a required property")),
    };
    let allowed: &[&str] = if v.at_least(2, 64) { &["name", "policy", "rules"] } else { &["name", "policies"] };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!("Invalid input for field/attribute server_group. Additional properties are not allowed ('{k}' was unexpected)")));
    }
    let (policy, rules) = if v.at_least(2, 64) {
        let policy = m.get("policy").and_then(Value::as_str).filter(|p| POLICIES.contains(p)).ok_or_else(|| {
            bad(format!(
                "Invalid input for field/attribute policy. Value: {}.",
                m.get("policy").cloned().unwrap_or(Value::Null)
            ))
        })?;
        let rules = match m.get("rules") {
            None => Map::new(),
            Some(Value::Object(r)) => r.clone(),
            Some(other) => return Err(bad(format!("Invalid input for field/attribute rules. Value: {other}."))),
        };
        for (k, val) in &rules {
            if k != "max_server_per_host" || val.as_i64().is_none_or(|n| n < 1) {
                return Err(bad(format!(
                    "Invalid input for field/attribute rules. Value: {}.",
                    Value::Object(rules.clone())
                )));
            }
            if policy != "anti-affinity" {
                return Err(bad("Only anti-affinity policy supports rules."));
            }
        }
        (policy.to_string(), rules)
    } else {
        let policies =
            m.get("policies").and_then(Value::as_array).cloned().ok_or_else(|| {
                bad("Invalid input for field/attribute server_group. 'policies' is a required property")
            })?;
        if policies.len() != 1 {
            return Err(bad(format!("Invalid input for field/attribute policies. Value: {}.", Value::Array(policies))));
        }
        let p = policies[0]
            .as_str()
            .filter(|p| POLICIES.contains(p) && (v.at_least(2, 15) || !p.starts_with("soft")))
            .ok_or_else(|| bad(format!("Invalid input for field/attribute policies. Value: {}.", policies[0])))?;
        (p.to_string(), Map::new())
    };
    let project = auth.project_id.clone().unwrap_or_default();
    let g = ServerGroup {
        id: common::id::new_uuid(),
        name,
        project_id: project.clone(),
        user_id: auth.user_id.clone(),
        policy,
        rules,
        members: Vec::new(),
        created_at: common::time::now_micros(),
    };
    let limit = project_quota(&svc, &project, "server_groups").await?;
    svc.store.create_group(&g, limit).await?;
    Ok(Json(json!({"server_group": view(&g, v)})))
}

pub async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let all = auth.is_admin()
        && q.get("all_projects").is_some_and(|a| !matches!(a.to_ascii_lowercase().as_str(), "false" | "0" | "no"));
    let project = if all { None } else { auth.project_id.clone() };
    let mut groups = svc.store.groups(project.as_deref()).await?;
    let offset: usize =
        q.get("offset").map(|o| o.parse().map_err(|_| bad(format!("Invalid offset {o}")))).transpose()?.unwrap_or(0);
    groups.drain(..offset.min(groups.len()));
    if let Some(l) = q.get("limit") {
        groups.truncate(l.parse().map_err(|_| bad(format!("Invalid limit {l}")))?);
    }
    Ok(Json(json!({"server_groups": groups.iter().map(|g| view(g, v)).collect::<Vec<_>>()})))
}

pub async fn show(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<Json<Value>> {
    let g = visible(&svc, &auth, &id).await?;
    let mut g = g;
    // Deleted servers leave their group.
    let mut live = Vec::new();
    for m in &g.members {
        if svc.store.instance(m).await.is_ok() {
            live.push(m.clone());
        }
    }
    g.members = live;
    Ok(Json(json!({"server_group": view(&g, v)})))
}

pub async fn delete(svc: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    visible(&svc, &auth, &id)
        .await
        .map_err(|_| ComputeError::NotFound(format!("Instance group {id} could not be found.")))?;
    svc.store.delete_group(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
