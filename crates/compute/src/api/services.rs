//! `/os-services`: the compute side's processes, their heartbeats, and an
//! operator's switch to take a host out of scheduling.

use std::collections::HashMap;

use api::{Auth, Microversion};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::{admin_only, bad, json_body, ComputeApi, State};
use crate::error::{ComputeError, Result};
use crate::store::services::Service;

pub async fn zone_of(svc: &ComputeApi, s: &Service) -> Result<String> {
    if s.binary != compute_rpc::host::BINARY {
        return Ok("internal".into());
    }
    Ok(svc
        .store
        .aggregates()
        .await?
        .into_iter()
        .find(|a| a.hosts.contains(&s.host) && a.availability_zone().is_some())
        .and_then(|a| a.availability_zone().map(String::from))
        .unwrap_or_else(|| svc.config.scheduler.default_availability_zone.clone()))
}

async fn view(svc: &ComputeApi, s: &Service, v: Microversion) -> Result<Value> {
    let mut out = json!({
        "id": if v.at_least(2, 53) { json!(s.uuid) } else { json!(s.id) },
        "binary": s.binary,
        "host": s.host,
        "zone": zone_of(svc, s).await?,
        "status": if s.disabled { "disabled" } else { "enabled" },
        "state": if s.is_up(svc.config.service_down_time) { "up" } else { "down" },
        "updated_at": s.last_seen_up.or(s.updated_at).map(common::time::naive_micros),
        "disabled_reason": s.disabled_reason,
    });
    if v.at_least(2, 11) {
        out["forced_down"] = json!(s.forced_down);
    }
    Ok(out)
}

pub async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-services:list")?;
    let mut out = Vec::new();
    for s in svc.store.services().await? {
        if q.get("host").is_some_and(|h| *h != s.host) || q.get("binary").is_some_and(|b| *b != s.binary) {
            continue;
        }
        out.push(view(&svc, &s, v).await?);
    }
    Ok(Json(json!({"services": out})))
}

/// The compute service named by host and binary (the pre-2.53 forms).
async fn by_host(svc: &ComputeApi, body: &Value) -> Result<Service> {
    let host = body
        .get("host")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("Invalid input for field/attribute host. 'host' is a required property"))?;
    let binary = body
        .get("binary")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("Invalid input for field/attribute binary. 'binary' is a required property"))?;
    svc.store
        .services()
        .await?
        .into_iter()
        .find(|s| s.host == host && s.binary == binary)
        .ok_or_else(|| ComputeError::NotFound(format!("Service {binary} on host {host} could not be found.")))
}

fn only_before_253(v: Microversion) -> Result<()> {
    if v.at_least(2, 53) {
        return Err(ComputeError::NotFound("The resource could not be found.".into()));
    }
    Ok(())
}

pub async fn enable(svc: State, auth: Auth, v: Microversion, body: axum::body::Bytes) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-services:update")?;
    only_before_253(v)?;
    let body = json_body(&body)?;
    let s = by_host(&svc, &body).await?;
    svc.store.update_service(s.id, Some(false), Some(None), None).await?;
    Ok(Json(json!({"service": {"host": s.host, "binary": s.binary, "status": "enabled"}})))
}

pub async fn disable(svc: State, auth: Auth, v: Microversion, body: axum::body::Bytes) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-services:update")?;
    only_before_253(v)?;
    let body = json_body(&body)?;
    let s = by_host(&svc, &body).await?;
    svc.store.update_service(s.id, Some(true), None, None).await?;
    Ok(Json(json!({"service": {"host": s.host, "binary": s.binary, "status": "disabled"}})))
}

pub async fn disable_log_reason(
    svc: State,
    auth: Auth,
    v: Microversion,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-services:update")?;
    only_before_253(v)?;
    let body = json_body(&body)?;
    let reason = body
        .get("disabled_reason")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty() && r.len() <= 255)
        .ok_or_else(|| bad("Missing disabled reason field"))?;
    let s = by_host(&svc, &body).await?;
    svc.store.update_service(s.id, Some(true), Some(Some(reason.to_string())), None).await?;
    Ok(Json(json!({"service": {"host": s.host, "binary": s.binary, "status": "disabled", "disabled_reason": reason}})))
}

pub async fn force_down(svc: State, auth: Auth, v: Microversion, body: axum::body::Bytes) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-services:update")?;
    only_before_253(v)?;
    if !v.at_least(2, 11) {
        return Err(ComputeError::NotFound("The resource could not be found.".into()));
    }
    let body = json_body(&body)?;
    let forced = body
        .get("forced_down")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("Invalid input for field/attribute forced_down."))?;
    let s = by_host(&svc, &body).await?;
    svc.store.update_service(s.id, None, None, Some(forced)).await?;
    Ok(Json(json!({"service": {"host": s.host, "binary": s.binary, "forced_down": forced}})))
}

/// `PUT /os-services/{uuid}` (2.53+).
pub async fn update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-services:update")?;
    if !v.at_least(2, 53) {
        return Err(ComputeError::NotFound("The resource could not be found.".into()));
    }
    let body = json_body(&body)?;
    let s = svc
        .store
        .services()
        .await?
        .into_iter()
        .find(|s| s.uuid == id)
        .ok_or_else(|| crate::store::services::service_not_found(&id))?;
    let disabled = match body.get("status").and_then(Value::as_str) {
        Some("enabled") => Some(false),
        Some("disabled") => Some(true),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute status. Value: {other}."))),
        None => None,
    };
    let reason = match body.get("disabled_reason") {
        Some(Value::String(r)) => {
            if disabled != Some(true) {
                return Err(bad("Specifying 'disabled_reason' with status 'enabled' is invalid."));
            }
            Some(Some(r.clone()))
        }
        Some(_) => return Err(bad("Invalid input for field/attribute disabled_reason.")),
        None if disabled == Some(false) => Some(None),
        None => None,
    };
    let forced = match body.get("forced_down") {
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad("Invalid input for field/attribute forced_down.")),
        None => None,
    };
    if disabled.is_none() && forced.is_none() {
        return Err(bad("At least one of 'status' or 'forced_down' must be specified in the request body."));
    }
    if s.binary != compute_rpc::host::BINARY {
        return Err(bad(format!(
            "Updating a {} service is not supported. Only nova-compute services can be updated.",
            s.binary
        )));
    }
    svc.store.update_service(s.id, disabled, reason, forced).await?;
    let s = svc
        .store
        .services()
        .await?
        .into_iter()
        .find(|x| x.id == s.id)
        .ok_or_else(|| crate::store::services::service_not_found(&id))?;
    Ok(Json(json!({"service": view(&svc, &s, v).await?})))
}

pub async fn delete(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<StatusCode> {
    admin_only(&auth, "os_compute_api:os-services:delete")?;
    let s = svc
        .store
        .services()
        .await?
        .into_iter()
        .find(|s| if v.at_least(2, 53) { s.uuid == id } else { s.id.to_string() == id })
        .ok_or_else(|| crate::store::services::service_not_found(&id))?;
    if s.binary == compute_rpc::host::BINARY && !svc.store.instances_on_host(&s.host).await?.is_empty() {
        return Err(ComputeError::Conflict(format!("Unable to delete compute service that is hosting instances. Migrate or delete the instances first on host {}.", s.host)));
    }
    svc.store.delete_service(&s).await?;
    Ok(StatusCode::NO_CONTENT)
}
