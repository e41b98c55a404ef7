//! Quotas (`/os-quota-sets`, `/os-quota-class-sets`), `/limits`, and usage
//! over time (`/os-simple-tenant-usage`).

use std::collections::{BTreeMap, HashMap};

use api::{Auth, Microversion};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::servers::{quota, usage};
use super::{admin_only, bad, json_body, ComputeApi, State};
use crate::error::{ComputeError, Result};

/// Quota keys a microversion shows, with the network proxies' defaults
/// before 2.36.
fn keys(v: Microversion) -> Vec<&'static str> {
    let mut k =
        vec!["instances", "cores", "ram", "metadata_items", "key_pairs", "server_groups", "server_group_members"];
    if !v.at_least(2, 57) {
        k.extend(["injected_files", "injected_file_content_bytes", "injected_file_path_bytes"]);
    }
    if !v.at_least(2, 36) {
        k.extend(["floating_ips", "fixed_ips", "security_groups", "security_group_rules"]);
    }
    k
}

fn default_of(svc: &ComputeApi, key: &str) -> i64 {
    match key {
        "floating_ips" => 10,
        "fixed_ips" => -1,
        "security_groups" => 10,
        "security_group_rules" => 20,
        k => quota(svc, k),
    }
}

async fn limits_of(svc: &ComputeApi, project: &str, v: Microversion) -> Result<BTreeMap<&'static str, i64>> {
    let overrides = svc.store.quota_overrides(project).await?;
    let class = svc.store.quota_overrides("__class__default").await?;
    Ok(keys(v)
        .into_iter()
        .map(|k| (k, overrides.get(k).or(class.get(k)).copied().unwrap_or_else(|| default_of(svc, k))))
        .collect())
}

fn can_see(auth: &Auth, project: &str) -> Result<()> {
    if auth.is_admin() || auth.project_id.as_deref() == Some(project) {
        Ok(())
    } else {
        Err(ComputeError::Forbidden("Policy doesn't allow os_compute_api:os-quota-sets:show to be performed.".into()))
    }
}

async fn in_use(svc: &ComputeApi, project: &str, user: &str) -> Result<HashMap<&'static str, i64>> {
    let (instances, cores, ram) = usage(svc, project).await?;
    let groups = svc.store.groups(Some(project)).await?.len() as i64;
    let keypairs = svc.store.keypairs(user).await?.len() as i64;
    Ok(HashMap::from([
        ("instances", instances),
        ("cores", cores),
        ("ram", ram),
        ("server_groups", groups),
        ("key_pairs", keypairs),
    ]))
}

pub async fn quota_show(svc: State, auth: Auth, v: Microversion, Path(project): Path<String>) -> Result<Json<Value>> {
    can_see(&auth, &project)?;
    let mut set: Map<String, Value> =
        limits_of(&svc, &project, v).await?.into_iter().map(|(k, l)| (k.to_string(), json!(l))).collect();
    set.insert("id".into(), json!(project));
    Ok(Json(json!({"quota_set": set})))
}

pub async fn quota_defaults(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    let _ = auth;
    let mut set: Map<String, Value> =
        keys(v).into_iter().map(|k| (k.to_string(), json!(default_of(&svc, k)))).collect();
    set.insert("id".into(), json!(project));
    Ok(Json(json!({"quota_set": set})))
}

pub async fn quota_detail(svc: State, auth: Auth, v: Microversion, Path(project): Path<String>) -> Result<Json<Value>> {
    can_see(&auth, &project)?;
    let used = in_use(&svc, &project, &auth.user_id).await?;
    let mut set: Map<String, Value> = limits_of(&svc, &project, v)
        .await?
        .into_iter()
        .map(|(k, l)| (k.to_string(), json!({"limit": l, "in_use": used.get(k).copied().unwrap_or(0), "reserved": 0})))
        .collect();
    set.insert("id".into(), json!(project));
    Ok(Json(json!({"quota_set": set})))
}

fn parse_limits(body: &Value, key: &str, v: Microversion) -> Result<BTreeMap<String, i64>> {
    let m = body
        .get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| bad(format!("Invalid input for field/attribute {key}.")))?;
    let allowed = keys(v);
    let mut out = BTreeMap::new();
    for (k, val) in m {
        if k == "force" || k == "id" {
            continue;
        }
        if !allowed.contains(&k.as_str()) {
            return Err(bad(format!(
                "Invalid input for field/attribute {key}. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        let n = val
            .as_i64()
            .or_else(|| val.as_str().and_then(|s| s.parse().ok()))
            .filter(|n| *n >= -1)
            .ok_or_else(|| bad(format!("Invalid input for field/attribute {k}. Value: {val}.")))?;
        out.insert(k.clone(), n);
    }
    Ok(out)
}

pub async fn quota_update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-quota-sets:update")?;
    let body = json_body(&body)?;
    let limits = parse_limits(&body, "quota_set", v)?;
    let force = body["quota_set"].get("force").is_some_and(|f| f == true || f == "True" || f == "true");
    if !force {
        let used = in_use(&svc, &project, &auth.user_id).await?;
        for (k, l) in &limits {
            let u = used.get(k.as_str()).copied().unwrap_or(0);
            if *l >= 0 && *l < u {
                return Err(bad(format!(
                    "Quota limit {l} for {k} must be greater than or equal to already used and reserved {u}."
                )));
            }
        }
    }
    svc.store.set_quotas(&project, &limits).await?;
    let set: Map<String, Value> =
        limits_of(&svc, &project, v).await?.into_iter().map(|(k, l)| (k.to_string(), json!(l))).collect();
    Ok(Json(json!({"quota_set": set})))
}

pub async fn quota_delete(svc: State, auth: Auth, Path(project): Path<String>) -> Result<StatusCode> {
    admin_only(&auth, "os_compute_api:os-quota-sets:delete")?;
    svc.store.reset_quotas(&project).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn quota_class_show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(class): Path<String>,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-quota-class-sets:show")?;
    let overrides = svc.store.quota_overrides(&format!("__class__{class}")).await?;
    let mut set: Map<String, Value> = keys(v)
        .into_iter()
        .map(|k| (k.to_string(), json!(overrides.get(k).copied().unwrap_or_else(|| default_of(&svc, k)))))
        .collect();
    set.insert("id".into(), json!(class));
    Ok(Json(json!({"quota_class_set": set})))
}

pub async fn quota_class_update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(class): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-quota-class-sets:update")?;
    let body = json_body(&body)?;
    let limits = parse_limits(&body, "quota_class_set", v)?;
    svc.store.set_quotas(&format!("__class__{class}"), &limits).await?;
    let overrides = svc.store.quota_overrides(&format!("__class__{class}")).await?;
    let set: Map<String, Value> = keys(v)
        .into_iter()
        .map(|k| (k.to_string(), json!(overrides.get(k).copied().unwrap_or_else(|| default_of(&svc, k)))))
        .collect();
    Ok(Json(json!({"quota_class_set": set})))
}

pub async fn limits(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let project = match q.get("tenant_id") {
        Some(p) if auth.is_admin() => p.clone(),
        _ => auth.project_id.clone().unwrap_or_default(),
    };
    let l = limits_of(&svc, &project, Microversion::new(2, 1)).await?;
    let used = in_use(&svc, &project, &auth.user_id).await?;
    let get = |k: &str| l.get(k).copied().unwrap_or(-1);
    let mut absolute = json!({
        "maxServerMeta": get("metadata_items"),
        "maxTotalKeypairs": get("key_pairs"),
        "maxServerGroups": get("server_groups"),
        "maxServerGroupMembers": get("server_group_members"),
        "maxTotalCores": get("cores"),
        "maxTotalInstances": get("instances"),
        "maxTotalRAMSize": get("ram"),
        "totalCoresUsed": used["cores"],
        "totalInstancesUsed": used["instances"],
        "totalRAMUsed": used["ram"],
        "totalServerGroupsUsed": used["server_groups"],
    });
    if !v.at_least(2, 57) {
        absolute["maxPersonality"] = json!(get("injected_files"));
        absolute["maxPersonalitySize"] = json!(get("injected_file_content_bytes"));
    }
    if !v.at_least(2, 39) {
        absolute["maxImageMeta"] = json!(get("metadata_items"));
    }
    if !v.at_least(2, 36) {
        absolute["maxSecurityGroups"] = json!(get("security_groups"));
        absolute["maxSecurityGroupRules"] = json!(get("security_group_rules"));
        absolute["maxTotalFloatingIps"] = json!(get("floating_ips"));
        absolute["totalFloatingIpsUsed"] = json!(0);
        absolute["totalSecurityGroupsUsed"] = json!(0);
    }
    Ok(Json(json!({"limits": {"rate": [], "absolute": absolute}})))
}

fn window(q: &HashMap<String, String>) -> Result<(i64, i64)> {
    let now = common::time::now_micros();
    let parse = |k: &str, default: i64| -> Result<i64> {
        match q.get(k) {
            Some(s) => common::time::parse_iso(s).ok_or_else(|| bad(format!("Invalid {k} time {s}"))),
            None => Ok(default),
        }
    };
    let start = parse("start", now - 24 * 3600 * 1_000_000)?;
    let end = parse("end", now)?;
    if start > end {
        return Err(bad("Invalid start time. The start time cannot occur after the end time."));
    }
    Ok((start, end))
}

async fn usage_of(svc: &ComputeApi, project: Option<&str>, start: i64, end: i64, detailed: bool) -> Result<Vec<Value>> {
    let mut by_project: BTreeMap<String, (f64, f64, f64, f64, Vec<Value>)> = BTreeMap::new();
    for i in svc.store.instances(project).await? {
        let from = i.launched_at.unwrap_or(i.created_at).max(start);
        let to = i.terminated_at.unwrap_or(end).min(end);
        if to <= from {
            continue;
        }
        let hours = (to - from) as f64 / 3.6e9;
        let e = by_project.entry(i.project_id.clone()).or_default();
        e.0 += hours;
        e.1 += hours * i.flavor.vcpus as f64;
        e.2 += hours * i.flavor.memory_mb as f64;
        e.3 += hours * (i.flavor.root_gb + i.flavor.ephemeral_gb) as f64;
        if detailed {
            e.4.push(json!({"instance_id": i.uuid, "name": i.display_name, "hours": hours, "memory_mb": i.flavor.memory_mb,
                "local_gb": i.flavor.root_gb + i.flavor.ephemeral_gb, "vcpus": i.flavor.vcpus, "tenant_id": i.project_id,
                "flavor": i.flavor.name, "started_at": common::time::naive_micros(i.launched_at.unwrap_or(i.created_at)),
                "ended_at": i.terminated_at.map(common::time::naive_micros), "state": if i.deleted { "terminated" } else { i.vm_state.as_str() },
                "uptime": ((to - from) / 1_000_000)}));
        }
    }
    Ok(by_project
        .into_iter()
        .map(|(p, (h, c, m, d, servers))| {
            let mut u = json!({"tenant_id": p, "total_hours": h, "total_vcpus_usage": c, "total_memory_mb_usage": m,
                "total_local_gb_usage": d, "start": common::time::naive_micros(start), "stop": common::time::naive_micros(end)});
            if detailed {
                u["server_usages"] = json!(servers);
            }
            u
        })
        .collect())
}

pub async fn usage_list(svc: State, auth: Auth, Query(q): Query<HashMap<String, String>>) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-simple-tenant-usage:list")?;
    let (start, end) = window(&q)?;
    let detailed = q.get("detailed").is_some_and(|d| d == "1" || d.eq_ignore_ascii_case("true"));
    Ok(Json(json!({"tenant_usages": usage_of(&svc, None, start, end, detailed).await?})))
}

pub async fn usage_show(
    svc: State,
    auth: Auth,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    can_see(&auth, &project)?;
    let (start, end) = window(&q)?;
    let usage = usage_of(&svc, Some(&project), start, end, true).await?.into_iter().next().unwrap_or(json!({}));
    Ok(Json(json!({"tenant_usage": usage})))
}
