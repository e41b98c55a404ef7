//! `/os-aggregates` and `/os-availability-zone`: host aggregates, and the
//! zones their `availability_zone` metadata makes.

use std::collections::{BTreeMap, BTreeSet};

use api::{Auth, Microversion};
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Map, Value};

use super::{admin_only, bad, body_object, json_body, State};
use crate::error::{ComputeError, Result};
use crate::store::aggregates::Aggregate;

fn view(a: &Aggregate, v: Microversion, full: bool) -> Value {
    let mut out = json!({
        "id": a.id, "name": a.name, "availability_zone": a.availability_zone(),
        "created_at": common::time::naive_micros(a.created_at),
        "updated_at": a.updated_at.map(common::time::naive_micros),
        "deleted": false, "deleted_at": null,
    });
    if full {
        out["hosts"] = json!(a.hosts);
        out["metadata"] = json!(a.metadata);
    }
    if v.at_least(2, 41) {
        out["uuid"] = json!(a.uuid);
    }
    out
}

fn parse_id(id: &str) -> Result<i64> {
    id.parse().map_err(|_| ComputeError::NotFound(format!("Aggregate {id} could not be found.")))
}

fn check_zone(z: &str) -> Result<()> {
    if z.is_empty() || z.chars().count() > 255 || z.contains(':') {
        return Err(bad(format!("Invalid input for field/attribute availability_zone. Value: {z}.")));
    }
    Ok(())
}

/// A host may be in one zone only: refuse a change that would put one of
/// `hosts` in `zone` while another aggregate keeps it in a different zone.
async fn check_zone_conflict(svc: &super::ComputeApi, id: i64, hosts: &[String], zone: Option<&str>) -> Result<()> {
    let Some(zone) = zone else { return Ok(()) };
    for other in svc.store.aggregates().await? {
        if other.id == id {
            continue;
        }
        if let Some(z) = other.availability_zone().filter(|z| *z != zone) {
            if let Some(h) = hosts.iter().find(|h| other.hosts.contains(h)) {
                return Err(ComputeError::Conflict(format!(
                    "Cannot add host {h} to aggregate {id}: host is already in availability zone {z} by aggregate {}.",
                    other.id
                )));
            }
        }
    }
    Ok(())
}

pub async fn list(svc: State, auth: Auth, v: Microversion) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-aggregates:index")?;
    let aggs = svc.store.aggregates().await?;
    Ok(Json(json!({"aggregates": aggs.iter().map(|a| view(a, v, true)).collect::<Vec<_>>()})))
}

pub async fn create(svc: State, auth: Auth, v: Microversion, body: axum::body::Bytes) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-aggregates:create")?;
    let body = json_body(&body)?;
    let m = body_object(&body, "aggregate")?;
    let name = match m.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 255 => s.clone(),
        other => {
            return Err(bad(format!(
                "Invalid input for field/attribute name. Value: {}.",
                other.cloned().unwrap_or(Value::Null)
            )))
        }
    };
    let zone = match m.get("availability_zone") {
        None | Some(Value::Null) => None,
        Some(Value::String(z)) => {
            check_zone(z)?;
            Some(z.clone())
        }
        Some(other) => {
            return Err(bad(format!("Invalid input for field/attribute availability_zone. Value: {other}.")))
        }
    };
    if let Some(k) = m.keys().find(|k| !["name", "availability_zone"].contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid input for field/attribute aggregate. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let a = svc.store.create_aggregate(&name, zone.as_deref()).await?;
    Ok(Json(json!({"aggregate": view(&a, v, false)})))
}

pub async fn show(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-aggregates:show")?;
    let a = svc.store.aggregate(parse_id(&id)?).await?;
    Ok(Json(json!({"aggregate": view(&a, v, true)})))
}

pub async fn update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-aggregates:update")?;
    let body = json_body(&body)?;
    let m = body_object(&body, "aggregate")?;
    if m.is_empty() {
        return Err(bad("Invalid input for field/attribute aggregate: nothing to update"));
    }
    let id = parse_id(&id)?;
    let a = svc.store.aggregate(id).await?;
    if let Some(name) = m.get("name") {
        let name = name
            .as_str()
            .filter(|n| !n.trim().is_empty() && n.chars().count() <= 255)
            .ok_or_else(|| bad(format!("Invalid input for field/attribute name. Value: {name}.")))?;
        svc.store.rename_aggregate(id, name).await?;
    }
    if let Some(z) = m.get("availability_zone") {
        let zone = match z {
            Value::Null => None,
            Value::String(z) => {
                check_zone(z)?;
                Some(z.clone())
            }
            other => return Err(bad(format!("Invalid input for field/attribute availability_zone. Value: {other}."))),
        };
        check_zone_conflict(&svc, id, &a.hosts, zone.as_deref()).await?;
        svc.store.set_aggregate_metadata(id, &BTreeMap::from([("availability_zone".to_string(), zone)])).await?;
    }
    let a = svc.store.aggregate(id).await?;
    Ok(Json(json!({"aggregate": view(&a, v, true)})))
}

pub async fn delete(svc: State, auth: Auth, Path(id): Path<String>) -> Result<axum::http::StatusCode> {
    admin_only(&auth, "os_compute_api:os-aggregates:delete")?;
    let id = parse_id(&id)?;
    let a = svc.store.aggregate(id).await?;
    if !a.hosts.is_empty() {
        return Err(bad(format!("Cannot remove aggregate {id}. Reason: Host aggregate is not empty.")));
    }
    svc.store.delete_aggregate(id).await?;
    Ok(axum::http::StatusCode::OK)
}

/// `add_host`, `remove_host`, `set_metadata`.
pub async fn action(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body = json_body(&body)?;
    let obj = body.as_object().cloned().unwrap_or_default();
    let (name, args) = match obj.iter().next() {
        Some((k, v)) if obj.len() == 1 => (k.clone(), v.clone()),
        _ => return Err(bad("Invalid request body: exactly one action expected")),
    };
    admin_only(&auth, &format!("os_compute_api:os-aggregates:{name}"))?;
    let id = parse_id(&id)?;
    let a = svc.store.aggregate(id).await?;
    match name.as_str() {
        "add_host" | "remove_host" => {
            let host =
                args.get("host").and_then(Value::as_str).filter(|h| !h.is_empty() && h.len() <= 255).ok_or_else(
                    || bad(format!("Invalid input for field/attribute {name}. 'host' is a required property")),
                )?;
            let add = name == "add_host";
            if add {
                let known =
                    svc.store.services().await?.iter().any(|s| s.host == host && s.binary == compute_rpc::host::BINARY);
                if !known {
                    return Err(ComputeError::NotFound(format!("Compute host {host} could not be found.")));
                }
                check_zone_conflict(&svc, id, &[host.to_string()], a.availability_zone()).await?;
            }
            if !svc.store.change_aggregate_host(id, host, add).await? {
                return Err(if add {
                    ComputeError::Conflict(format!("Aggregate {id} already has host {host}."))
                } else {
                    ComputeError::NotFound(format!("Cannot remove host {host} in aggregate {id}: not found"))
                });
            }
        }
        "set_metadata" => {
            let meta = args.get("metadata").and_then(Value::as_object).cloned().ok_or_else(|| {
                bad("Invalid input for field/attribute set_metadata. 'metadata' is a required property")
            })?;
            let mut changes = BTreeMap::new();
            for (k, val) in meta {
                if k.is_empty() || k.chars().count() > 255 {
                    return Err(bad(format!("Invalid input for field/attribute metadata. Key '{k}' is not allowed")));
                }
                let val = match val {
                    Value::Null => None,
                    Value::String(s) if s.chars().count() <= 255 => Some(s),
                    other => return Err(bad(format!("Invalid input for field/attribute metadata. Value: {other}."))),
                };
                if k == "availability_zone" {
                    if let Some(z) = &val {
                        check_zone(z)?;
                    }
                    check_zone_conflict(&svc, id, &a.hosts, val.as_deref()).await?;
                }
                changes.insert(k, val);
            }
            svc.store.set_aggregate_metadata(id, &changes).await?;
        }
        other => return Err(bad(format!("Invalid request: there is no aggregate action {other}"))),
    }
    let a = svc.store.aggregate(id).await?;
    Ok(Json(json!({"aggregate": view(&a, v, true)})))
}

/// Zone name → the compute hosts in it.
async fn zones_with_hosts(svc: &super::ComputeApi) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let aggs = svc.store.aggregates().await?;
    let default = svc.config.scheduler.default_availability_zone.clone();
    let mut zones: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in svc.store.services().await? {
        if s.binary != compute_rpc::host::BINARY {
            continue;
        }
        let zone = aggs
            .iter()
            .find(|a| a.hosts.contains(&s.host) && a.availability_zone().is_some())
            .and_then(|a| a.availability_zone().map(String::from))
            .unwrap_or_else(|| default.clone());
        zones.entry(zone).or_default().insert(s.host);
    }
    Ok(zones)
}

pub async fn zones(svc: State, _auth: Auth) -> Result<Json<Value>> {
    let zones = zones_with_hosts(&svc).await?;
    let info: Vec<Value> =
        zones.keys().map(|z| json!({"zoneName": z, "zoneState": {"available": true}, "hosts": null})).collect();
    Ok(Json(json!({"availabilityZoneInfo": info})))
}

pub async fn zones_detail(svc: State, auth: Auth) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-availability-zone:detail")?;
    let zones = zones_with_hosts(&svc).await?;
    let services = svc.store.services().await?;
    let down = svc.config.service_down_time;
    let entry = |s: &crate::store::services::Service| {
        json!({"available": !s.disabled, "active": s.is_up(down),
            "updated_at": s.last_seen_up.map(common::time::naive_micros)})
    };
    let mut info = Vec::new();
    let mut internal: Map<String, Value> = Map::new();
    for s in services.iter().filter(|s| s.binary != compute_rpc::host::BINARY) {
        let host = internal.entry(s.host.clone()).or_insert_with(|| json!({}));
        host[s.binary.clone()] = entry(s);
    }
    if !internal.is_empty() {
        info.push(json!({"zoneName": "internal", "zoneState": {"available": true}, "hosts": internal}));
    }
    for (zone, hosts) in zones {
        let mut hs = Map::new();
        for h in hosts {
            if let Some(s) = services.iter().find(|s| s.host == h && s.binary == compute_rpc::host::BINARY) {
                hs.insert(h.clone(), json!({ compute_rpc::host::BINARY: entry(s) }));
            }
        }
        info.push(json!({"zoneName": zone, "zoneState": {"available": true}, "hosts": hs}));
    }
    Ok(Json(json!({"availabilityZoneInfo": info})))
}
