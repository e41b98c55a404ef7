//! `/os-hypervisors` (what each compute host offers and uses),
//! `/os-migrations` and `/servers/{id}/migrations`.

use std::collections::HashMap;

use api::{Auth, BaseUrl, Microversion};
use axum::extract::{Path, Query};
use axum::Json;
use serde_json::{json, Value};

use super::servers::visible;
use super::{admin_only, bad, State};
use crate::error::{ComputeError, Result};
use crate::model::Usage;
use crate::store::services::{ComputeNode, Service};

struct Hypervisor {
    node: ComputeNode,
    service: Option<Service>,
    used: Usage,
    running: usize,
    up: bool,
}

async fn hypervisors(svc: &super::ComputeApi) -> Result<Vec<Hypervisor>> {
    let services = svc.store.services().await?;
    let allocations = svc.store.allocations().await?;
    let instances = svc.store.instances(None).await?;
    let mut out = Vec::new();
    for node in svc.store.compute_nodes().await? {
        let service = services.iter().find(|s| s.host == node.host && s.binary == compute_rpc::host::BINARY).cloned();
        let used = allocations.get(&node.host).into_iter().flatten().fold(Usage::default(), |mut u, (_, c)| {
            u.vcpus += c.vcpus;
            u.memory_mb += c.memory_mb;
            u.disk_gb += c.disk_gb;
            u
        });
        let running = instances.iter().filter(|i| !i.deleted && i.host.as_deref() == Some(node.host.as_str())).count();
        let up = service.as_ref().is_some_and(|s| s.is_up(svc.config.service_down_time));
        out.push(Hypervisor { node, service, used, running, up });
    }
    Ok(out)
}

fn id_of(h: &Hypervisor, v: Microversion) -> Value {
    if v.at_least(2, 53) {
        json!(h.node.uuid)
    } else {
        json!(h.node.id)
    }
}

fn brief(h: &Hypervisor, v: Microversion) -> Value {
    json!({
        "id": id_of(h, v),
        "hypervisor_hostname": h.node.hypervisor_hostname,
        "state": if h.up { "up" } else { "down" },
        "status": if h.service.as_ref().is_some_and(|s| s.disabled) { "disabled" } else { "enabled" },
    })
}

fn detail_view(h: &Hypervisor, v: Microversion) -> Value {
    let n = &h.node;
    let mut out = brief(h, v);
    out["hypervisor_type"] = json!(n.hypervisor_type);
    out["hypervisor_version"] = json!(n.hypervisor_version);
    out["host_ip"] = json!(n.host_ip);
    out["service"] = json!({
        "host": n.host,
        "id": match (&h.service, v.at_least(2, 53)) {
            (Some(s), true) => json!(s.uuid),
            (Some(s), false) => json!(s.id),
            (None, _) => Value::Null,
        },
        "disabled_reason": h.service.as_ref().and_then(|s| s.disabled_reason.clone()),
    });
    if !v.at_least(2, 88) {
        let memory_used = h.used.memory_mb + n.reserved_host_memory_mb;
        let disk_used = h.used.disk_gb + (n.reserved_host_disk_mb + 1023) / 1024;
        out["vcpus"] = json!(n.vcpus);
        out["vcpus_used"] = json!(h.used.vcpus);
        out["memory_mb"] = json!(n.memory_mb);
        out["memory_mb_used"] = json!(memory_used);
        out["free_ram_mb"] = json!(n.memory_mb - memory_used);
        out["local_gb"] = json!(n.local_gb);
        out["local_gb_used"] = json!(disk_used);
        out["free_disk_gb"] = json!(n.local_gb - disk_used);
        out["current_workload"] = json!(n.stats.get("num_io_ops").and_then(Value::as_i64).unwrap_or(0));
        out["running_vms"] = json!(h.running);
        out["disk_available_least"] = json!(n.local_gb - disk_used);
        out["cpu_info"] = if v.at_least(2, 28) { n.cpu_info.clone() } else { json!(n.cpu_info.to_string()) };
    } else {
        out["uptime"] = json!(uptime_text());
    }
    out
}

fn uptime_text() -> String {
    let secs = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse::<f64>().ok()))
        .unwrap_or(0.0) as u64;
    format!(" {:02}:{:02}:{:02} up {} days", (secs / 3600) % 24, (secs / 60) % 60, secs % 60, secs / 86400)
}

/// Listing, with the pattern and paging filters.
async fn selected(svc: &super::ComputeApi, v: Microversion, q: &HashMap<String, String>) -> Result<Vec<Hypervisor>> {
    let mut hs = hypervisors(svc).await?;
    if v.at_least(2, 53) {
        if let Some(p) = q.get("hypervisor_hostname_pattern") {
            hs.retain(|h| h.node.hypervisor_hostname.contains(p.as_str()));
            if hs.is_empty() {
                return Err(ComputeError::NotFound(format!("No hypervisor matching '{p}' could be found.")));
            }
        }
    }
    if v.at_least(2, 33) {
        if let Some(marker) = q.get("marker") {
            let pos = hs
                .iter()
                .position(|h| id_of(h, v).to_string().trim_matches('"') == marker)
                .ok_or_else(|| bad(format!("marker [{marker}] not found")))?;
            hs.drain(..=pos);
        }
        if let Some(l) = q.get("limit") {
            hs.truncate(l.parse().map_err(|_| bad(format!("Invalid limit {l}")))?);
        }
    }
    Ok(hs)
}

async fn servers_of(svc: &super::ComputeApi, host: &str) -> Result<Vec<Value>> {
    Ok(svc
        .store
        .instances_on_host(host)
        .await?
        .iter()
        .map(|i| json!({"uuid": i.uuid, "name": super::views::instance_name(i)}))
        .collect())
}

pub async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-hypervisors:list")?;
    let hs = selected(&svc, v, &q).await?;
    let with_servers = v.at_least(2, 53) && q.get("with_servers").is_some_and(|w| w == "true" || w == "1");
    let mut out = Vec::new();
    for h in &hs {
        let mut b = brief(h, v);
        if with_servers {
            b["servers"] = json!(servers_of(&svc, &h.node.host).await?);
        }
        out.push(b);
    }
    Ok(Json(json!({"hypervisors": out})))
}

pub async fn detail(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-hypervisors:list-detail")?;
    let hs = selected(&svc, v, &q).await?;
    let with_servers = v.at_least(2, 53) && q.get("with_servers").is_some_and(|w| w == "true" || w == "1");
    let mut out = Vec::new();
    for h in &hs {
        let mut d = detail_view(h, v);
        if with_servers {
            d["servers"] = json!(servers_of(&svc, &h.node.host).await?);
        }
        out.push(d);
    }
    Ok(Json(json!({"hypervisors": out})))
}

async fn one(svc: &super::ComputeApi, v: Microversion, id: &str) -> Result<Hypervisor> {
    hypervisors(svc)
        .await?
        .into_iter()
        .find(|h| if v.at_least(2, 53) { h.node.uuid == id } else { h.node.id.to_string() == id })
        .ok_or_else(|| ComputeError::NotFound(format!("Hypervisor with ID {id} could not be found.")))
}

pub async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-hypervisors:show")?;
    if v.at_least(2, 53) && uuid::Uuid::parse_str(&id).is_err() {
        return Err(bad(format!("Invalid uuid {id}")));
    }
    let h = one(&svc, v, &id).await?;
    let mut d = detail_view(&h, v);
    if v.at_least(2, 53) && q.get("with_servers").is_some_and(|w| w == "true" || w == "1") {
        d["servers"] = json!(servers_of(&svc, &h.node.host).await?);
    }
    Ok(Json(json!({"hypervisor": d})))
}

pub async fn uptime_of(svc: &super::ComputeApi, v: Microversion, id: &str) -> Result<Value> {
    let h = one(svc, v, id).await?;
    let mut b = brief(&h, v);
    b["uptime"] = json!(uptime_text());
    Ok(b)
}

pub async fn uptime(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-hypervisors:uptime")?;
    if v.at_least(2, 88) {
        return Err(ComputeError::NotFound("The resource could not be found.".into()));
    }
    Ok(Json(json!({"hypervisor": uptime_of(&svc, v, &id).await?})))
}

pub async fn statistics(svc: State, auth: Auth, v: Microversion) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-hypervisors:statistics")?;
    if v.at_least(2, 88) {
        return Err(ComputeError::NotFound("The resource could not be found.".into()));
    }
    let hs = hypervisors(&svc).await?;
    let mut total = json!({"count": hs.len()});
    for key in [
        "vcpus",
        "vcpus_used",
        "memory_mb",
        "memory_mb_used",
        "free_ram_mb",
        "local_gb",
        "local_gb_used",
        "free_disk_gb",
        "current_workload",
        "running_vms",
        "disk_available_least",
    ] {
        let sum: i64 = hs.iter().map(|h| detail_view(h, Microversion::new(2, 1))[key].as_i64().unwrap_or(0)).sum();
        total[key] = json!(sum);
    }
    Ok(Json(json!({"hypervisor_statistics": total})))
}

/// Hypervisors whose name contains `pattern` (before 2.53).
async fn matching(svc: &super::ComputeApi, pattern: &str) -> Result<Vec<Hypervisor>> {
    let hs: Vec<Hypervisor> =
        hypervisors(svc).await?.into_iter().filter(|h| h.node.hypervisor_hostname.contains(pattern)).collect();
    if hs.is_empty() {
        return Err(ComputeError::NotFound(format!("No hypervisor matching '{pattern}' could be found.")));
    }
    Ok(hs)
}

pub async fn search(svc: State, auth: Auth, v: Microversion, Path(pattern): Path<String>) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-hypervisors:search")?;
    if v.at_least(2, 53) {
        return Err(ComputeError::NotFound("The resource could not be found.".into()));
    }
    let hs = matching(&svc, &pattern).await?;
    Ok(Json(json!({"hypervisors": hs.iter().map(|h| brief(h, v)).collect::<Vec<_>>()})))
}

pub async fn servers(svc: State, auth: Auth, v: Microversion, Path(pattern): Path<String>) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-hypervisors:servers")?;
    if v.at_least(2, 53) {
        return Err(ComputeError::NotFound("The resource could not be found.".into()));
    }
    let hs = matching(&svc, &pattern).await?;
    let mut out = Vec::new();
    for h in &hs {
        let mut b = brief(h, v);
        let servers = servers_of(&svc, &h.node.host).await?;
        if !servers.is_empty() {
            b["servers"] = json!(servers);
        }
        out.push(b);
    }
    Ok(Json(json!({"hypervisors": out})))
}

/// A migration's flavor as Nova shows it: the integer id, or null.
fn type_id(flavor: &Option<String>) -> Option<i64> {
    flavor.as_deref().and_then(|f| f.parse().ok())
}

fn migration_view(m: &crate::store::migrations::Migration, v: Microversion, base: &BaseUrl) -> Value {
    let mut out = json!({
        "id": m.id, "status": m.status, "instance_uuid": m.instance_uuid,
        "source_node": m.source_compute, "dest_node": m.dest_compute,
        "source_compute": m.source_compute, "dest_compute": m.dest_compute, "dest_host": "",
        "old_instance_type_id": type_id(&m.old_flavor), "new_instance_type_id": type_id(&m.new_flavor),
        "created_at": common::time::naive_micros(m.created_at), "updated_at": common::time::naive_micros(m.updated_at),
    });
    if v.at_least(2, 23) {
        out["migration_type"] = json!(m.migration_type);
        if m.migration_type == "live-migration" && m.status == "running" {
            out["links"] = json!([{"rel": "self", "href": format!("{}/v2.1/servers/{}/migrations/{}", base.0, m.instance_uuid, m.id)}]);
        }
    }
    if v.at_least(2, 59) {
        out["uuid"] = json!(m.uuid);
    }
    if v.at_least(2, 80) {
        out["project_id"] = json!(m.project_id);
        out["user_id"] = json!(m.user_id);
    }
    out
}

pub async fn migrations(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-migrations:index")?;
    let mut all = svc.store.migrations(None).await?;
    if let Some(s) = q.get("status") {
        all.retain(|m| m.status == *s);
    }
    if let Some(i) = q.get("instance_uuid") {
        all.retain(|m| m.instance_uuid == *i);
    }
    if let Some(t) = q.get("migration_type").filter(|_| v.at_least(2, 23)) {
        all.retain(|m| m.migration_type == *t);
    }
    all.reverse();
    Ok(Json(json!({"migrations": all.iter().map(|m| migration_view(m, v, &base)).collect::<Vec<_>>()})))
}

/// In-progress live migrations of one server (2.23+).
pub async fn server_migrations(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:servers:migrations:index")?;
    visible(&svc, &auth, &id).await?;
    let running: Vec<Value> = svc
        .store
        .migrations(Some(&id))
        .await?
        .iter()
        .filter(|m| m.migration_type == "live-migration" && matches!(m.status.as_str(), "running" | "queued" | "preparing"))
        .map(|m| {
            json!({"id": m.id, "server_uuid": m.instance_uuid, "status": m.status, "source_compute": m.source_compute,
                "dest_compute": m.dest_compute, "source_node": m.source_compute, "dest_node": m.dest_compute, "dest_host": "",
                "created_at": common::time::naive_micros(m.created_at), "updated_at": common::time::naive_micros(m.updated_at),
                "disk_processed_bytes": 0, "disk_remaining_bytes": 0, "disk_total_bytes": 0,
                "memory_processed_bytes": 0, "memory_remaining_bytes": 0, "memory_total_bytes": 0,
                "uuid": m.uuid, "links": migration_view(m, v, &base)["links"]})
        })
        .collect();
    Ok(Json(json!({"migrations": running})))
}
