//! The proxy APIs Nova kept for old clients (all gone at 2.36): images from
//! the image service, security groups, floating IPs and networks from the
//! network service, reshaped to Nova's old bodies. Calls go with the user's
//! token, so visibility is the other service's.

use std::collections::HashMap;

use api::{Auth, BaseUrl, Microversion};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use reqwest::Method;
use serde_json::{json, Value};

use super::servers::visible;
use super::{bad, json_body, links, ComputeApi, State};
use crate::error::{ComputeError, Result};
use crate::session::remote_error;

fn before_236(v: Microversion) -> Result<()> {
    if v.at_least(2, 36) {
        return Err(ComputeError::NotFound("The resource could not be found.".into()));
    }
    Ok(())
}

async fn call(
    svc: &ComputeApi,
    auth: &Auth,
    service: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value> {
    let (status, value) = svc.session.call(service, method, path, body, Some(&auth.token)).await?;
    if status.is_success() {
        Ok(value)
    } else {
        Err(remote_error(service, status, &value).into())
    }
}

// ---------------------------------------------------------------- images

const IMAGE_BASE: &[&str] = &[
    "id",
    "name",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "min_ram",
    "min_disk",
    "disk_format",
    "container_format",
    "owner",
    "created_at",
    "updated_at",
    "visibility",
    "protected",
    "tags",
    "self",
    "file",
    "schema",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
    "locations",
    "direct_url",
    "stores",
];

fn image_view(base: &BaseUrl, img: &Value, detail: bool) -> Value {
    let id = img["id"].as_str().unwrap_or_default();
    let mut out = json!({"id": id, "name": img["name"], "links": [
        {"rel": "self", "href": format!("{}/v2.1/images/{id}", base.0)},
        {"rel": "bookmark", "href": format!("{}/images/{id}", base.0)},
        {"rel": "alternate", "type": "application/vnd.openstack.image", "href": format!("{}/images/{id}", base.0)},
    ]});
    if detail {
        let status = match img["status"].as_str() {
            Some("active") => "ACTIVE",
            Some("saving") => "SAVING",
            Some("queued") => "SAVING",
            Some("deleted") | Some("pending_delete") => "DELETED",
            Some("killed") => "ERROR",
            _ => "UNKNOWN",
        };
        let metadata = properties(img);
        out["status"] = json!(status);
        out["progress"] = json!(match status {
            "ACTIVE" => 100,
            "SAVING" => 25,
            _ => 0,
        });
        out["minRam"] = json!(img["min_ram"].as_i64().unwrap_or(0));
        out["minDisk"] = json!(img["min_disk"].as_i64().unwrap_or(0));
        out["created"] = img["created_at"].clone();
        out["updated"] = img["updated_at"].clone();
        out["OS-EXT-IMG-SIZE:size"] = json!(img["size"].as_i64().unwrap_or(0));
        if let Some(server) = metadata.get("instance_uuid").and_then(Value::as_str) {
            out["server"] = json!({"id": server, "links": links(base, "servers", server)});
        }
        out["metadata"] = Value::Object(metadata);
    }
    out
}

async fn image_list(svc: &ComputeApi, auth: &Auth, q: &HashMap<String, String>) -> Result<Vec<Value>> {
    let mut url = reqwest::Url::parse("http://image/v2/images").map_err(|e| ComputeError::Internal(e.to_string()))?;
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in q {
            match k.as_str() {
                "name" | "limit" | "marker" => query.append_pair(k, v),
                "status" => query.append_pair(k, &v.to_ascii_lowercase()),
                "minRam" => query.append_pair("min_ram", &format!("gte:{v}")),
                "minDisk" => query.append_pair("min_disk", &format!("gte:{v}")),
                "server" => query.append_pair("instance_uuid", v.rsplit('/').next().unwrap_or(v)),
                "type" => query.append_pair("image_type", v),
                _ => &mut query,
            };
        }
    }
    let path = match url.query() {
        Some(q) if !q.is_empty() => format!("/v2/images?{q}"),
        _ => "/v2/images".to_string(),
    };
    Ok(call(svc, auth, "image", Method::GET, &path, None).await?["images"].as_array().cloned().unwrap_or_default())
}

pub async fn images(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    before_236(v)?;
    let list = image_list(&svc, &auth, &q).await?;
    Ok(Json(json!({"images": list.iter().map(|i| image_view(&base, i, false)).collect::<Vec<_>>()})))
}

pub async fn images_detail(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    before_236(v)?;
    let list = image_list(&svc, &auth, &q).await?;
    Ok(Json(json!({"images": list.iter().map(|i| image_view(&base, i, true)).collect::<Vec<_>>()})))
}

async fn image_get(svc: &ComputeApi, auth: &Auth, id: &str) -> Result<Value> {
    call(svc, auth, "image", Method::GET, &format!("/v2/images/{id}"), None).await.map_err(|e| match e {
        ComputeError::NotFound(_) | ComputeError::BadRequest(_) => ComputeError::NotFound("Image not found.".into()),
        other => other,
    })
}

pub async fn image(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    before_236(v)?;
    let img = image_get(&svc, &auth, &id).await?;
    Ok(Json(json!({"image": image_view(&base, &img, true)})))
}

pub async fn image_metadata(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    before_236(v)?;
    let img = image_get(&svc, &auth, &id).await?;
    Ok(Json(json!({"metadata": image_view(&base, &img, true)["metadata"]})))
}

/// An image's properties: what Nova calls its metadata.
fn properties(img: &Value) -> serde_json::Map<String, Value> {
    img.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !IMAGE_BASE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Makes the image's properties `want`, by a JSON patch to the image service.
async fn set_properties(
    svc: &ComputeApi,
    auth: &Auth,
    id: &str,
    img: &Value,
    want: &serde_json::Map<String, Value>,
) -> Result<()> {
    let limit =
        super::servers::project_quota(svc, auth.project_id.as_deref().unwrap_or_default(), "metadata_items").await?;
    if limit >= 0 && want.len() as i64 > limit {
        return Err(ComputeError::OverQuota("Image metadata limit exceeded".into()));
    }
    let have = properties(img);
    let pointer = |k: &str| format!("/{}", k.replace('~', "~0").replace('/', "~1"));
    let mut ops: Vec<Value> =
        have.keys().filter(|k| !want.contains_key(*k)).map(|k| json!({"op": "remove", "path": pointer(k)})).collect();
    for (k, v) in want {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let op = if have.contains_key(k) { "replace" } else { "add" };
        ops.push(json!({"op": op, "path": pointer(k), "value": text}));
    }
    let body = Value::Array(ops);
    let (status, value) = svc
        .session
        .call_typed(
            "image",
            Method::PATCH,
            &format!("/v2/images/{id}"),
            Some((&body, "application/openstack-images-v2.1-json-patch")),
            Some(&auth.token),
        )
        .await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(remote_error("image", status, &value).into())
    }
}

fn metadata_arg(body: &[u8], key: &str) -> Result<serde_json::Map<String, Value>> {
    let parsed = super::metadata::parse_metadata(&json_body(body)?, key)?;
    Ok(parsed.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

/// `POST /images/{id}/metadata` merges; `PUT` replaces all.
async fn write_image_metadata(svc: &ComputeApi, auth: &Auth, id: &str, body: &[u8], replace: bool) -> Result<Value> {
    let given = metadata_arg(body, "metadata")?;
    let img = image_get(svc, auth, id).await?;
    let want = if replace {
        given
    } else {
        let mut all = properties(&img);
        all.extend(given);
        all
    };
    set_properties(svc, auth, id, &img, &want).await?;
    Ok(json!({"metadata": want}))
}

pub async fn image_metadata_merge(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    before_236(v)?;
    Ok(Json(write_image_metadata(&svc, &auth, &id, &body, false).await?))
}

pub async fn image_metadata_replace(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    before_236(v)?;
    Ok(Json(write_image_metadata(&svc, &auth, &id, &body, true).await?))
}

pub async fn image_metadata_item(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>> {
    before_236(v)?;
    let img = image_get(&svc, &auth, &id).await?;
    let value = properties(&img).remove(&key).ok_or_else(|| ComputeError::NotFound("Invalid metadata key".into()))?;
    Ok(Json(json!({"meta": {key: value}})))
}

pub async fn image_metadata_item_set(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, key)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    before_236(v)?;
    let meta = metadata_arg(&body, "meta")?;
    if meta.len() != 1 || !meta.contains_key(&key) {
        return Err(bad("Request body and URI mismatch"));
    }
    let img = image_get(&svc, &auth, &id).await?;
    let mut want = properties(&img);
    want.extend(meta.clone());
    set_properties(&svc, &auth, &id, &img, &want).await?;
    Ok(Json(json!({"meta": meta})))
}

pub async fn image_metadata_item_delete(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode> {
    before_236(v)?;
    let img = image_get(&svc, &auth, &id).await?;
    let mut want = properties(&img);
    if want.remove(&key).is_none() {
        return Err(ComputeError::NotFound("Invalid metadata key".into()));
    }
    set_properties(&svc, &auth, &id, &img, &want).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn image_delete(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<StatusCode> {
    before_236(v)?;
    image_get(&svc, &auth, &id).await?;
    call(&svc, &auth, "image", Method::DELETE, &format!("/v2/images/{id}"), None).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- security groups

fn rule_view(r: &Value, group_names: &HashMap<String, String>) -> Value {
    let remote = r["remote_group_id"].as_str();
    json!({
        "id": r["id"], "parent_group_id": r["security_group_id"], "ip_protocol": r["protocol"],
        "from_port": r["port_range_min"].as_i64().unwrap_or(-1), "to_port": r["port_range_max"].as_i64().unwrap_or(-1),
        "ip_range": if remote.is_some() { json!({}) } else { json!({"cidr": r["remote_ip_prefix"].as_str().unwrap_or("0.0.0.0/0")}) },
        "group": match remote { Some(g) => json!({"name": group_names.get(g), "tenant_id": r["project_id"]}), None => json!({}) },
    })
}

fn group_view(g: &Value, names: &HashMap<String, String>) -> Value {
    let rules: Vec<Value> = g["security_group_rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["direction"] == "ingress" && r["ethertype"] == "IPv4")
        .map(|r| rule_view(r, names))
        .collect();
    json!({"id": g["id"], "name": g["name"], "description": g["description"], "tenant_id": g["project_id"], "rules": rules})
}

async fn group_names(svc: &ComputeApi, auth: &Auth) -> Result<HashMap<String, String>> {
    let all = call(svc, auth, "network", Method::GET, "/v2.0/security-groups", None).await?;
    Ok(all["security_groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| (g["id"].as_str().unwrap_or_default().to_string(), g["name"].as_str().unwrap_or_default().to_string()))
        .collect())
}

pub async fn security_groups(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    before_236(v)?;
    let all_tenants =
        auth.is_admin() && q.get("all_tenants").is_some_and(|a| !matches!(a.as_str(), "0" | "false" | "False"));
    let path = if all_tenants {
        "/v2.0/security-groups".to_string()
    } else {
        format!("/v2.0/security-groups?project_id={}", auth.project_id.clone().unwrap_or_default())
    };
    let all = call(&svc, &auth, "network", Method::GET, &path, None).await?;
    let names = group_names(&svc, &auth).await?;
    Ok(Json(
        json!({"security_groups": all["security_groups"].as_array().into_iter().flatten().map(|g| group_view(g, &names)).collect::<Vec<_>>()}),
    ))
}

pub async fn security_group(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<Json<Value>> {
    before_236(v)?;
    let g = call(&svc, &auth, "network", Method::GET, &format!("/v2.0/security-groups/{id}"), None).await?;
    let names = group_names(&svc, &auth).await?;
    Ok(Json(json!({"security_group": group_view(&g["security_group"], &names)})))
}

fn name_field(m: &Value, key: &str) -> Result<String> {
    match m.get(key) {
        Some(Value::String(s)) if s.chars().count() <= 255 && (key != "name" || !s.trim().is_empty()) => Ok(s.clone()),
        Some(other) => Err(bad(format!("Security group {key} is not a string or unicode: {other}"))),
        None => Err(bad(format!("Security group {key} is required"))),
    }
}

pub async fn security_group_create(
    svc: State,
    auth: Auth,
    v: Microversion,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    before_236(v)?;
    let body = json_body(&body)?;
    let m = body.get("security_group").cloned().ok_or_else(|| bad("security_group not specified"))?;
    let name = name_field(&m, "name")?;
    let description = name_field(&m, "description")?;
    let body = json!({"security_group": {"name": name, "description": description}});
    let g = call(&svc, &auth, "network", Method::POST, "/v2.0/security-groups", Some(&body)).await?;
    let names = group_names(&svc, &auth).await?;
    Ok(Json(json!({"security_group": group_view(&g["security_group"], &names)})))
}

/// Nova takes only uuids for security groups, and says so with a 400.
fn check_group_id(id: &str) -> Result<()> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(bad("Security group id should be uuid"));
    }
    Ok(())
}

/// Neutron's 409s (a group in use, the default group) are Nova's 400s.
fn conflict_is_bad_request(e: ComputeError) -> ComputeError {
    match e {
        ComputeError::Conflict(m) => ComputeError::BadRequest(m),
        other => other,
    }
}

pub async fn security_group_update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    before_236(v)?;
    check_group_id(&id)?;
    let body = json_body(&body)?;
    let m = body.get("security_group").cloned().ok_or_else(|| bad("security_group not specified"))?;
    let name = name_field(&m, "name")?;
    let description = name_field(&m, "description")?;
    let body = json!({"security_group": {"name": name, "description": description}});
    let g = call(&svc, &auth, "network", Method::PUT, &format!("/v2.0/security-groups/{id}"), Some(&body))
        .await
        .map_err(conflict_is_bad_request)?;
    let names = group_names(&svc, &auth).await?;
    Ok(Json(json!({"security_group": group_view(&g["security_group"], &names)})))
}

pub async fn security_group_delete(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    before_236(v)?;
    check_group_id(&id)?;
    call(&svc, &auth, "network", Method::DELETE, &format!("/v2.0/security-groups/{id}"), None)
        .await
        .map_err(conflict_is_bad_request)?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn security_group_rule_create(
    svc: State,
    auth: Auth,
    v: Microversion,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    before_236(v)?;
    let body = json_body(&body)?;
    let m = body.get("security_group_rule").cloned().ok_or_else(|| bad("security_group_rule not specified"))?;
    let parent = m["parent_group_id"]
        .as_str()
        .map(String::from)
        .or_else(|| m["parent_group_id"].as_i64().map(|n| n.to_string()))
        .ok_or_else(|| bad("Invalid parent_group_id"))?;
    check_group_id(&parent)?;
    let protocol = m["ip_protocol"].as_str().map(str::to_ascii_lowercase);
    let port = |k: &str| -> Result<Option<i64>> {
        match &m[k] {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(n.as_i64()),
            Value::String(s) => s.parse().map(Some).map_err(|_| bad(format!("Invalid port range {s}"))),
            other => Err(bad(format!("Invalid port range {other}"))),
        }
    };
    let (from, to) = (port("from_port")?, port("to_port")?);
    if let Some(p) = &protocol {
        if !["tcp", "udp", "icmp"].contains(&p.as_str()) {
            return Err(bad(format!("Invalid IP protocol {p}.")));
        }
        if p != "icmp" {
            match (from, to) {
                (Some(f), Some(t)) if (1..=65535).contains(&f) && (1..=65535).contains(&t) && f <= t => {}
                _ => return Err(bad("Invalid port range.")),
            }
        }
    }
    let mut rule =
        json!({"security_group_id": parent, "direction": "ingress", "ethertype": "IPv4", "protocol": protocol});
    if protocol.as_deref() == Some("icmp") {
        if from.is_some_and(|f| f != -1) {
            rule["port_range_min"] = json!(from);
        }
        if to.is_some_and(|t| t != -1) {
            rule["port_range_max"] = json!(to);
        }
    } else if protocol.is_some() {
        rule["port_range_min"] = json!(from);
        rule["port_range_max"] = json!(to);
    }
    match (m["cidr"].as_str(), m["group_id"].as_str()) {
        (Some(_), Some(_)) => return Err(bad("Both cidr and group_id given")),
        (Some(c), None) => {
            if c.parse::<ipnet_like::Cidr>().is_err() {
                return Err(bad(format!("Invalid cidr {c}.")));
            }
            rule["remote_ip_prefix"] = json!(c);
        }
        (None, Some(g)) => rule["remote_group_id"] = json!(g),
        (None, None) => {}
    }
    let r = call(
        &svc,
        &auth,
        "network",
        Method::POST,
        "/v2.0/security-group-rules",
        Some(&json!({"security_group_rule": rule})),
    )
    .await
    .map_err(|e| match e {
        ComputeError::NotFound(m) => ComputeError::NotFound(m),
        ComputeError::Conflict(m) => ComputeError::BadRequest(m),
        other => other,
    })?;
    let names = group_names(&svc, &auth).await?;
    Ok(Json(json!({"security_group_rule": rule_view(&r["security_group_rule"], &names)})))
}

/// CIDR syntax check without another dependency.
mod ipnet_like {
    pub struct Cidr;
    impl std::str::FromStr for Cidr {
        type Err = ();
        fn from_str(s: &str) -> Result<Cidr, ()> {
            let (addr, len) = s.split_once('/').ok_or(())?;
            let addr: std::net::IpAddr = addr.parse().map_err(|_| ())?;
            let len: u8 = len.parse().map_err(|_| ())?;
            if len > if addr.is_ipv4() { 32 } else { 128 } {
                return Err(());
            }
            Ok(Cidr)
        }
    }
}

pub async fn security_group_rule_delete(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    before_236(v)?;
    call(&svc, &auth, "network", Method::DELETE, &format!("/v2.0/security-group-rules/{id}"), None).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn server_security_groups(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let _ = v;
    let i = visible(&svc, &auth, &id).await?;
    let names = group_names(&svc, &auth).await?;
    let mut ids: Vec<String> = Vec::new();
    for vif in &i.network_info {
        let p = call(&svc, &auth, "network", Method::GET, &format!("/v2.0/ports/{}", vif.port_id), None).await?;
        for g in p["port"]["security_groups"].as_array().into_iter().flatten().filter_map(|g| g.as_str()) {
            if !ids.iter().any(|x| x == g) {
                ids.push(g.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for g in ids {
        let group = call(&svc, &auth, "network", Method::GET, &format!("/v2.0/security-groups/{g}"), None).await?;
        out.push(group_view(&group["security_group"], &names));
    }
    Ok(Json(json!({"security_groups": out})))
}

// ---------------------------------------------------------------- floating IPs and networks

async fn fip_view(svc: &ComputeApi, auth: &Auth, f: &Value) -> Result<Value> {
    let pool = match f["floating_network_id"].as_str() {
        Some(n) => call(svc, auth, "network", Method::GET, &format!("/v2.0/networks/{n}"), None)
            .await
            .map(|net| net["network"]["name"].clone())
            .unwrap_or(Value::Null),
        None => Value::Null,
    };
    let instance = match f["port_id"].as_str() {
        Some(p) => call(svc, auth, "network", Method::GET, &format!("/v2.0/ports/{p}"), None)
            .await
            .ok()
            .and_then(|port| port["port"]["device_id"].as_str().map(String::from)),
        None => None,
    };
    Ok(
        json!({"id": f["id"], "ip": f["floating_ip_address"], "fixed_ip": f["fixed_ip_address"], "instance_id": instance, "pool": pool}),
    )
}

pub async fn floating_ips(svc: State, auth: Auth, v: Microversion) -> Result<Json<Value>> {
    before_236(v)?;
    let path = format!("/v2.0/floatingips?project_id={}", auth.project_id.clone().unwrap_or_default());
    let all = call(&svc, &auth, "network", Method::GET, &path, None).await?;
    let mut out = Vec::new();
    for f in all["floatingips"].as_array().into_iter().flatten() {
        out.push(fip_view(&svc, &auth, f).await?);
    }
    Ok(Json(json!({"floating_ips": out})))
}

pub async fn floating_ip(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<Json<Value>> {
    before_236(v)?;
    let f = call(&svc, &auth, "network", Method::GET, &format!("/v2.0/floatingips/{id}"), None)
        .await
        .map_err(|_| ComputeError::NotFound(format!("Floating IP not found for ID {id}")))?;
    Ok(Json(json!({"floating_ip": fip_view(&svc, &auth, &f["floatingip"]).await?})))
}

pub async fn floating_ip_create(
    svc: State,
    auth: Auth,
    v: Microversion,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    before_236(v)?;
    let body = if body.iter().all(u8::is_ascii_whitespace) { json!({}) } else { json_body(&body)? };
    let pool = body.get("pool").and_then(Value::as_str);
    let nets = call(&svc, &auth, "network", Method::GET, "/v2.0/networks?router:external=True", None).await?;
    let net = nets["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| pool.is_none_or(|p| n["name"] == p || n["id"] == p))
        .cloned()
        .ok_or_else(|| ComputeError::NotFound(format!("Floating IP pool not found: {}", pool.unwrap_or("default"))))?;
    let f = call(
        &svc,
        &auth,
        "network",
        Method::POST,
        "/v2.0/floatingips",
        Some(&json!({"floatingip": {"floating_network_id": net["id"]}})),
    )
    .await?;
    Ok(Json(json!({"floating_ip": fip_view(&svc, &auth, &f["floatingip"]).await?})))
}

pub async fn floating_ip_delete(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<StatusCode> {
    before_236(v)?;
    call(&svc, &auth, "network", Method::DELETE, &format!("/v2.0/floatingips/{id}"), None)
        .await
        .map_err(|_| ComputeError::NotFound(format!("Floating IP not found for ID {id}")))?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn floating_ip_pools(svc: State, auth: Auth, v: Microversion) -> Result<Json<Value>> {
    before_236(v)?;
    let nets = call(&svc, &auth, "network", Method::GET, "/v2.0/networks?router:external=True", None).await?;
    let pools: Vec<Value> =
        nets["networks"].as_array().into_iter().flatten().map(|n| json!({"name": n["name"]})).collect();
    Ok(Json(json!({"floating_ip_pools": pools})))
}

fn network_view(n: &Value) -> Value {
    json!({"id": n["id"], "label": n["name"], "cidr": null, "cidr_v6": null, "bridge": null, "vlan": null, "dhcp_start": null,
        "gateway": null, "netmask": null, "multi_host": null, "project_id": n["project_id"]})
}

pub async fn networks(svc: State, auth: Auth, v: Microversion) -> Result<Json<Value>> {
    before_236(v)?;
    let nets = call(&svc, &auth, "network", Method::GET, "/v2.0/networks", None).await?;
    Ok(Json(
        json!({"networks": nets["networks"].as_array().into_iter().flatten().map(network_view).collect::<Vec<_>>()}),
    ))
}

pub async fn network(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<Json<Value>> {
    before_236(v)?;
    let n = call(&svc, &auth, "network", Method::GET, &format!("/v2.0/networks/{id}"), None)
        .await
        .map_err(|_| ComputeError::NotFound(format!("Network {id} could not be found.")))?;
    Ok(Json(json!({"network": network_view(&n["network"])})))
}

/// `/os-tenant-networks`: the caller's networks in the oldest shape (Nova
/// never filled in `cidr` once networking moved to Neutron).
fn tenant_network_view(n: &Value) -> Value {
    json!({"id": n["id"], "cidr": "None", "label": n["name"]})
}

pub async fn tenant_networks(svc: State, auth: Auth, v: Microversion) -> Result<Json<Value>> {
    before_236(v)?;
    let nets = call(&svc, &auth, "network", Method::GET, "/v2.0/networks", None).await?;
    let list: Vec<Value> = nets["networks"].as_array().into_iter().flatten().map(tenant_network_view).collect();
    Ok(Json(json!({"networks": list})))
}

pub async fn tenant_network(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<Json<Value>> {
    before_236(v)?;
    let n = call(&svc, &auth, "network", Method::GET, &format!("/v2.0/networks/{id}"), None)
        .await
        .map_err(|_| ComputeError::NotFound("Network not found".into()))?;
    Ok(Json(json!({"network": tenant_network_view(&n["network"])})))
}

/// `addFloatingIp` / `removeFloatingIp` (before 2.44).
pub async fn floating_ip_action(
    svc: &ComputeApi,
    auth: &Auth,
    i: &crate::model::Instance,
    add: bool,
    args: &Value,
) -> Result<()> {
    let address = args.get("address").and_then(Value::as_str).ok_or_else(|| bad("Address not specified"))?;
    let found =
        call(svc, auth, "network", Method::GET, &format!("/v2.0/floatingips?floating_ip_address={address}"), None)
            .await?;
    let f = found["floatingips"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .ok_or_else(|| ComputeError::NotFound(format!("floating IP not found for address {address}")))?;
    let id = f["id"].as_str().unwrap_or_default();
    if add {
        let fixed = args.get("fixed_address").and_then(Value::as_str);
        let vif = i
            .network_info
            .iter()
            .find(|v| fixed.is_none_or(|ip| v.fixed_ips.iter().any(|x| x.ip_address == ip)))
            .ok_or_else(|| bad("No nw_info cache associated with instance"))?;
        let mut body = json!({"floatingip": {"port_id": vif.port_id}});
        if let Some(ip) = fixed {
            body["floatingip"]["fixed_ip_address"] = json!(ip);
        }
        call(svc, auth, "network", Method::PUT, &format!("/v2.0/floatingips/{id}"), Some(&body))
            .await
            .map_err(conflict_is_bad_request)?;
    } else {
        let attached = f["port_id"].as_str().is_some_and(|p| i.network_info.iter().any(|v| v.port_id == p));
        if !attached {
            return Err(ComputeError::Conflict(format!(
                "Floating IP {address} is not associated with instance {}.",
                i.uuid
            )));
        }
        call(
            svc,
            auth,
            "network",
            Method::PUT,
            &format!("/v2.0/floatingips/{id}"),
            Some(&json!({"floatingip": {"port_id": null}})),
        )
        .await?;
    }
    // The server's addresses show the floating IP.
    let fip = address.to_string();
    svc.store
        .update_instance(&i.uuid, |x| {
            for v in &mut x.network_info {
                for ip in &mut v.fixed_ips {
                    ip.floating_ips.retain(|a| *a != fip);
                }
            }
            if add {
                if let Some(ip) = x.network_info.first_mut().and_then(|v| v.fixed_ips.first_mut()) {
                    ip.floating_ips.push(fip.clone());
                }
            }
            Ok(())
        })
        .await?;
    Ok(())
}
