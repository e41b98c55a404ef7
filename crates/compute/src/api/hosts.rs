//! `/os-hosts` (up to 2.42): the older view of hosts, one row per service,
//! and a host's resources in total, in use, and by project.

use std::collections::{BTreeMap, HashMap};

use api::{Auth, Microversion};
use axum::extract::{Path, Query};
use axum::Json;
use serde_json::{json, Value};

use super::services::zone_of;
use super::{admin_only, bad, json_body, ComputeApi, State};
use crate::error::{ComputeError, Result};

/// Removed in 2.43, in favour of os-hypervisors and os-services.
fn gone_after_242(v: Microversion) -> Result<()> {
    if v.at_least(2, 43) {
        Err(ComputeError::NotFound("The resource could not be found.".into()))
    } else {
        Ok(())
    }
}

fn host_not_found(host: &str) -> ComputeError {
    ComputeError::NotFound(format!("Compute host {host} could not be found."))
}

pub async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    gone_after_242(v)?;
    admin_only(&auth, "os_compute_api:os-hosts:list")?;
    let zone = q.get("zone").filter(|z| !z.is_empty());
    let mut hosts = Vec::new();
    for s in svc.store.services().await?.iter().filter(|s| !s.disabled) {
        let z = zone_of(&svc, s).await?;
        if zone.is_some_and(|want| *want != z) {
            continue;
        }
        hosts.push(json!({"host_name": s.host, "service": s.topic, "zone": z}));
    }
    Ok(Json(json!({"hosts": hosts})))
}

fn resource(host: &str, project: &str, cpu: i64, memory_mb: i64, disk_gb: i64) -> Value {
    json!({"resource": {"host": host, "project": project, "cpu": cpu, "memory_mb": memory_mb, "disk_gb": disk_gb}})
}

pub async fn show(svc: State, auth: Auth, v: Microversion, Path(host): Path<String>) -> Result<Json<Value>> {
    gone_after_242(v)?;
    admin_only(&auth, "os_compute_api:os-hosts:show")?;
    let node =
        svc.store.compute_nodes().await?.into_iter().find(|n| n.host == host).ok_or_else(|| host_not_found(&host))?;
    let claimed = svc.store.allocations().await?.remove(&host).unwrap_or_default();
    let (cpu_now, mem_now, disk_now) =
        claimed.iter().fold((0, 0, 0), |(c, m, d), (_, u)| (c + u.vcpus, m + u.memory_mb, d + u.disk_gb));
    let instances: Vec<_> = svc.store.instances_on_host(&host).await?.into_iter().filter(|i| !i.deleted).collect();
    let mut by_project: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for i in &instances {
        let e = by_project.entry(i.project_id.as_str()).or_default();
        e.0 += i.flavor.vcpus;
        e.1 += i.flavor.memory_mb;
        e.2 += i.flavor.root_gb + i.flavor.ephemeral_gb;
    }
    let max = by_project.values().fold((0, 0, 0), |(c, m, d), (c2, m2, d2)| (c + c2, m + m2, d + d2));
    let mut out = vec![
        resource(&host, "(total)", node.vcpus, node.memory_mb, node.local_gb),
        resource(
            &host,
            "(used_now)",
            cpu_now,
            mem_now + node.reserved_host_memory_mb,
            disk_now + node.reserved_host_disk_mb / 1024,
        ),
        resource(&host, "(used_max)", max.0, max.1, max.2),
    ];
    out.extend(by_project.iter().map(|(p, (c, m, d))| resource(&host, p, *c, *m, *d)));
    Ok(Json(json!({"host": out})))
}

/// `PUT /os-hosts/{host}`: `status` enables or disables the host's compute
/// service; `maintenance_mode` needs a driver that can evacuate, which no
/// driver here can.
pub async fn update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(host): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    gone_after_242(v)?;
    admin_only(&auth, "os_compute_api:os-hosts:update")?;
    let body = json_body(&body)?;
    let m = body.as_object().ok_or_else(|| bad("Invalid input for field/attribute body."))?;
    let read = |k: &str| -> Result<Option<bool>> {
        match m.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if s == "enable" => Ok(Some(true)),
            Some(Value::String(s)) if s == "disable" => Ok(Some(false)),
            Some(other) => Err(bad(format!("Invalid input for field/attribute {k}. Value: {other}."))),
        }
    };
    if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "status" | "maintenance_mode")) {
        return Err(bad(format!("Additional properties are not allowed ('{k}' was unexpected)")));
    }
    let (status, maintenance) = (read("status")?, read("maintenance_mode")?);
    if status.is_none() && maintenance.is_none() {
        return Err(bad("Invalid input for field/attribute body. 'status' or 'maintenance_mode' is required."));
    }
    let service = compute_service(&svc, &host).await?;
    if maintenance.is_some() {
        return Err(ComputeError::NotImplemented("Maintenance mode is not supported by the compute driver.".into()));
    }
    let mut out = json!({"host": host});
    if let Some(enabled) = status {
        svc.store.update_service(service.id, Some(!enabled), None, None).await?;
        out["status"] = json!(if enabled { "enabled" } else { "disabled" });
    }
    Ok(Json(out))
}

async fn compute_service(svc: &ComputeApi, host: &str) -> Result<crate::store::services::Service> {
    svc.store
        .services()
        .await?
        .into_iter()
        .find(|s| s.host == host && s.binary == compute_rpc::host::BINARY)
        .ok_or_else(|| host_not_found(host))
}

/// `GET /os-hosts/{host}/startup|shutdown|reboot`: powering physical hosts
/// is beyond every driver here, as it is beyond libvirt's.
pub async fn power_action(svc: State, auth: Auth, v: Microversion, Path(host): Path<String>) -> Result<Json<Value>> {
    gone_after_242(v)?;
    admin_only(&auth, "os_compute_api:os-hosts:reboot")?;
    compute_service(&svc, &host).await?;
    Err(ComputeError::NotImplemented("Host power actions are not supported by the compute driver.".into()))
}
