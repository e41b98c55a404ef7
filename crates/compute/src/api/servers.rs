//! `/servers`: create (validated here, built over the bus), list with Nova's
//! filters, show, update and delete.

use std::collections::{BTreeMap, HashMap};

use api::request_id::RequestId;
use api::{Auth, BaseUrl, Microversion};
use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::views::{self, ServerView};
use super::{bad, body_object, json_body, only_missing, ComputeApi, State};
use crate::error::{ComputeError, Result};
use crate::model::{vm_state, Instance, RequestedNetwork, RequestedNetworks};
use crate::sagas::build::{saga_id as build_saga_id, Build, BuildParams};
use crate::sagas::delete::{saga_id as delete_saga_id, Delete, DeleteParams};
use crate::store::actions::NewAction;

/// Each compute host's service state as `host_status` shows it.
pub async fn host_statuses(svc: &ComputeApi) -> Result<HashMap<String, &'static str>> {
    let down_time = svc.config.service_down_time;
    Ok(svc
        .store
        .services()
        .await?
        .into_iter()
        .filter(|s| s.binary == compute_rpc::host::BINARY)
        .map(|s| {
            let status = if s.forced_down || !s.is_up(down_time) {
                "DOWN"
            } else if s.disabled {
                "MAINTENANCE"
            } else {
                "UP"
            };
            (s.host, status)
        })
        .collect())
}

/// The server if the caller may see it (its project, or an admin).
pub async fn visible(svc: &ComputeApi, auth: &Auth, id: &str) -> Result<Instance> {
    let i = svc.store.instance(id).await?;
    if auth.is_admin() || auth.project_id.as_deref() == Some(i.project_id.as_str()) {
        Ok(i)
    } else {
        Err(crate::store::instances::not_found(id))
    }
}

pub async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let i = visible(&svc, &auth, &id).await?;
    let statuses = host_statuses(&svc).await?;
    let view = ServerView { base: &base, v, admin: auth.is_admin(), host_status: &statuses };
    Ok(Json(json!({"server": view.show(&i)})))
}

// ---------------------------------------------------------------- listing

const SORT_KEYS: &[&str] = &[
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "availability_zone",
    "config_drive",
    "created_at",
    "display_description",
    "display_name",
    "host",
    "hostname",
    "image_ref",
    "instance_type_id",
    "kernel_id",
    "key_name",
    "launch_index",
    "launched_at",
    "locked",
    "locked_by",
    "node",
    "power_state",
    "progress",
    "project_id",
    "ramdisk_id",
    "root_device_name",
    "task_state",
    "terminated_at",
    "updated_at",
    "user_id",
    "uuid",
    "vm_state",
];

const FILTERS: &[&str] = &[
    "name",
    "status",
    "image",
    "flavor",
    "host",
    "node",
    "changes-since",
    "changes-before",
    "ip",
    "ip6",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "locked",
    "availability_zone",
    "reservation_id",
    "all_tenants",
    "tenant_id",
    "project_id",
    "user_id",
    "deleted",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "key_name",
    "vm_state",
    "task_state",
    "power_state",
    "config_drive",
    "launched_at",
    "terminated_at",
    "access_ip_v4",
    "access_ip_v6",
    "hostname",
    "description",
    "uuid",
    "created_at",
    "updated_at",
    "launch_index",
    "progress",
    "display_name",
    "display_description",
    "kernel_id",
    "ramdisk_id",
    "root_device_name",
    "auto_disk_config",
    "locked_by",
    "soft_deleted",
    "block_device_mapping",
    "image_ref",
    "instance_type_id",
    "pinned_availability_zone",
];

fn sort_value(i: &Instance, key: &str) -> Value {
    match key {
        "display_name" => json!(i.display_name),
        "created_at" => json!(i.created_at),
        "updated_at" => json!(i.updated_at),
        "uuid" => json!(i.uuid),
        "host" => json!(i.host),
        "node" => json!(i.node),
        "vm_state" => json!(i.vm_state),
        "task_state" => json!(i.task_state),
        "power_state" => json!(i.power_state),
        "project_id" => json!(i.project_id),
        "user_id" => json!(i.user_id),
        "availability_zone" => json!(i.availability_zone),
        "key_name" => json!(i.key_name),
        "launched_at" => json!(i.launched_at),
        "terminated_at" => json!(i.terminated_at),
        "hostname" => json!(i.hostname),
        "image_ref" => json!(i.image_ref),
        "locked" => json!(i.locked),
        "progress" => json!(i.progress),
        "display_description" => json!(i.display_description),
        "instance_type_id" => json!(i.flavor.flavorid),
        "launch_index" => json!(i.launch_index),
        "access_ip_v4" => json!(i.access_ip_v4),
        "access_ip_v6" => json!(i.access_ip_v6),
        _ => Value::Null,
    }
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Value::Null, Value::Null) => Equal,
        (Value::Null, _) => Less,
        (_, Value::Null) => Greater,
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}

fn parse_time(q: &str, key: &str) -> Result<i64> {
    common::time::parse_iso(q)
        .ok_or_else(|| bad(format!("Invalid filter field: {key}. Value: {q} is not a valid date-time")))
}

fn split_tags(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()
}

/// The servers a list request selects, sorted and paged, and whether more
/// follow.
async fn select(
    svc: &ComputeApi,
    auth: &Auth,
    v: Microversion,
    pairs: &[(String, String)],
) -> Result<(Vec<Instance>, Option<usize>)> {
    let mut q: HashMap<String, Vec<String>> = HashMap::new();
    for (k, val) in pairs {
        q.entry(k.clone()).or_default().push(val.clone());
    }
    let one = |k: &str| q.get(k).and_then(|v| v.last()).map(String::as_str);
    if v.at_least(2, 75) {
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !FILTERS.contains(&k.as_str())) {
            return Err(bad(format!("Invalid input for query parameters {k}. Additional properties are not allowed")));
        }
    }
    let admin = auth.is_admin();
    let all_tenants = admin
        && one("all_tenants")
            .is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "f" | "off" | "no" | "n"));
    // Without all_tenants, tenant_id is ignored and the caller's project is
    // listed, as Nova has done since lp:#1185290.
    let project = if all_tenants {
        one("tenant_id").or(one("project_id")).map(String::from)
    } else {
        Some(auth.project_id.clone().unwrap_or_default())
    };
    let mut all = svc.store.instances(project.as_deref()).await?;
    let changes_since = one("changes-since").map(|s| parse_time(s, "changes-since")).transpose()?;
    let changes_before =
        one("changes-before").filter(|_| v.at_least(2, 66)).map(|s| parse_time(s, "changes-before")).transpose()?;
    if let (Some(a), Some(b)) = (changes_since, changes_before) {
        if a > b {
            return Err(bad("The value of changes-since must be less than or equal to changes-before."));
        }
    }
    let want_deleted = admin && one("deleted").is_some_and(|d| d.eq_ignore_ascii_case("true") || d == "1");
    all.retain(|i| {
        if changes_since.is_some() || changes_before.is_some() {
            true
        } else if want_deleted {
            i.deleted
        } else {
            !i.deleted
        }
    });
    if let Some(t) = changes_since {
        all.retain(|i| i.updated_at >= t);
    }
    if let Some(t) = changes_before {
        all.retain(|i| i.updated_at <= t);
    }
    if let Some(name) = one("name") {
        let re = regex::Regex::new(name).map_err(|_| bad(format!("Invalid name filter {name}")))?;
        all.retain(|i| re.is_match(&i.display_name));
    }
    if let Some(statuses) = q.get("status") {
        let wanted: Vec<String> = statuses.iter().map(|s| s.to_ascii_uppercase()).collect();
        all.retain(|i| wanted.iter().any(|w| w == i.status()));
    }
    if let Some(image) = one("image") {
        let id = image.rsplit('/').next().unwrap_or(image);
        all.retain(|i| i.image_ref == id);
    }
    if let Some(flavor) = one("flavor") {
        let id = flavor.rsplit('/').next().unwrap_or(flavor);
        all.retain(|i| i.flavor.flavorid == id);
    }
    if let Some(r) = one("reservation_id") {
        all.retain(|i| i.reservation_id == r);
    }
    if let Some(z) = one("availability_zone") {
        all.retain(|i| i.availability_zone.as_deref() == Some(z));
    }
    if let Some(k) = one("key_name") {
        all.retain(|i| i.key_name.as_deref() == Some(k));
    }
    if admin {
        if let Some(h) = one("host") {
            all.retain(|i| i.host.as_deref() == Some(h));
        }
        if let Some(n) = one("node") {
            all.retain(|i| i.node.as_deref() == Some(n));
        }
        if let Some(u) = one("user_id") {
            all.retain(|i| i.user_id == u);
        }
        if let Some(s) = one("vm_state") {
            all.retain(|i| i.vm_state == s);
        }
        if let Some(s) = one("task_state") {
            all.retain(|i| i.task_state.as_deref() == Some(s));
        }
    }
    for (key, version) in [("ip", 4), ("ip6", 6)] {
        if let Some(pattern) = one(key) {
            let re = regex::Regex::new(pattern).map_err(|_| bad(format!("Invalid {key} filter {pattern}")))?;
            all.retain(|i| {
                i.network_info
                    .iter()
                    .flat_map(|v| v.fixed_ips.iter())
                    .any(|ip| ip.version == version && re.is_match(&ip.ip_address))
            });
        }
    }
    if v.at_least(2, 26) {
        if let Some(tags) = one("tags").map(split_tags) {
            all.retain(|i| tags.iter().all(|t| i.tags.contains(t)));
        }
        if let Some(tags) = one("tags-any").map(split_tags) {
            all.retain(|i| tags.iter().any(|t| i.tags.contains(t)));
        }
        if let Some(tags) = one("not-tags").map(split_tags) {
            all.retain(|i| !tags.iter().all(|t| i.tags.contains(t)));
        }
        if let Some(tags) = one("not-tags-any").map(split_tags) {
            all.retain(|i| !tags.iter().any(|t| i.tags.contains(t)));
        }
    }
    if v.at_least(2, 73) {
        if let Some(l) = one("locked") {
            let locked = match l.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "t" | "on" | "y" => true,
                "false" | "0" | "no" | "f" | "off" | "n" => false,
                _ => return Err(bad(format!("Unrecognized value '{l}', acceptable values are: true, false"))),
            };
            all.retain(|i| i.locked == locked);
        }
    }
    // Sorting: created_at descending by default, then uuid.
    let keys: Vec<String> = q.get("sort_key").cloned().unwrap_or_default();
    let dirs: Vec<String> = q.get("sort_dir").cloned().unwrap_or_default();
    for d in &dirs {
        if d != "asc" && d != "desc" {
            return Err(bad(format!(
                "Invalid input for query parameters sort_dir. Value: {d}. '{d}' is not one of ['asc', 'desc']"
            )));
        }
    }
    let mut sorts: Vec<(String, bool)> = Vec::new();
    for (n, k) in keys.iter().enumerate() {
        if !SORT_KEYS.contains(&k.as_str()) {
            return Err(bad(format!("Invalid input for query parameters sort_key. Value: {k}.")));
        }
        sorts.push((k.clone(), dirs.get(n).map(String::as_str).unwrap_or("desc") == "desc"));
    }
    if sorts.is_empty() {
        sorts.push(("created_at".into(), dirs.first().map(String::as_str).unwrap_or("desc") == "desc"));
    }
    sorts.push(("uuid".into(), sorts[0].1));
    all.sort_by(|a, b| {
        for (k, desc) in &sorts {
            let o = compare(&sort_value(a, k), &sort_value(b, k));
            if o != std::cmp::Ordering::Equal {
                return if *desc { o.reverse() } else { o };
            }
        }
        std::cmp::Ordering::Equal
    });
    if let Some(marker) = one("marker") {
        let pos =
            all.iter().position(|i| i.uuid == marker).ok_or_else(|| bad(format!("marker [{marker}] not found")))?;
        all.drain(..=pos);
    }
    let limit = match one("limit") {
        Some(l) => Some(
            l.parse::<usize>().map_err(|_| bad(format!("Invalid input for query parameters limit. Value: {l}.")))?,
        ),
        None => None,
    };
    let cap = limit.unwrap_or(1000).min(1000);
    let more = (all.len() > cap).then_some(cap);
    all.truncate(cap);
    let full_page = limit.filter(|l| *l == all.len() && *l > 0);
    Ok((all, more.or(full_page)))
}

fn next_link(base: &BaseUrl, path: &str, pairs: &[(String, String)], last: &Instance) -> Value {
    let mut q: Vec<String> = pairs.iter().filter(|(k, _)| k != "marker").map(|(k, v)| format!("{k}={v}")).collect();
    q.push(format!("marker={}", last.uuid));
    json!([{"rel": "next", "href": format!("{}/v2.1/{path}?{}", base.0, q.join("&"))}])
}

async fn listing(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    pairs: Vec<(String, String)>,
    detail: bool,
) -> Result<Json<Value>> {
    let (servers, more) = select(&svc, &auth, v, &pairs).await?;
    let statuses = if detail { host_statuses(&svc).await? } else { HashMap::new() };
    let view = ServerView { base: &base, v, admin: auth.is_admin(), host_status: &statuses };
    let list: Vec<Value> = servers.iter().map(|i| if detail { view.full(i) } else { view.brief(i) }).collect();
    let mut out = json!({"servers": list});
    if let (Some(_), Some(last)) = (more, servers.last()) {
        out["servers_links"] = next_link(&base, if detail { "servers/detail" } else { "servers" }, &pairs, last);
    }
    Ok(Json(out))
}

pub async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    listing(svc, auth, v, base, pairs, false).await
}

pub async fn detail(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    listing(svc, auth, v, base, pairs, true).await
}

pub async fn ips(svc: State, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>> {
    let i = visible(&svc, &auth, &id).await?;
    let mut out = Map::new();
    for (net, addrs) in views::addresses(&i).as_object().cloned().unwrap_or_default() {
        let plain: Vec<Value> = addrs
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| json!({"version": a["version"], "addr": a["addr"]}))
            .collect();
        out.insert(net, json!(plain));
    }
    Ok(Json(json!({"addresses": out})))
}

pub async fn ips_of(svc: State, auth: Auth, Path((id, network)): Path<(String, String)>) -> Result<Json<Value>> {
    let i = visible(&svc, &auth, &id).await?;
    let all = views::addresses(&i);
    let addrs = all
        .get(&network)
        .ok_or_else(|| ComputeError::NotFound("Instance is not a member of specified network".into()))?;
    let plain: Vec<Value> =
        addrs.as_array().into_iter().flatten().map(|a| json!({"version": a["version"], "addr": a["addr"]})).collect();
    Ok(Json(json!({ network: plain })))
}

// ---------------------------------------------------------------- create

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

fn string_field(m: &Map<String, Value>, key: &str, max: usize, required: bool) -> Result<Option<String>> {
    match m.get(key) {
        None if required => {
            Err(bad(format!("Invalid input for field/attribute server. '{key}' is a required property")))
        }
        None => Ok(None),
        Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!("Invalid input for field/attribute {key}. Value: {other}."))),
    }
}

/// `hostname` (2.90): a host name of 2 to 63 letters, digits and inner
/// hyphens; from 2.94 a fully qualified name of up to 255 characters.
fn hostname_field(m: &Map<String, Value>, v: Microversion) -> Result<Option<String>> {
    let Some(h) = string_field(m, "hostname", 255, false)? else { return Ok(None) };
    let ok = if v.at_least(2, 94) {
        !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    } else {
        let b = h.as_bytes();
        (2..=63).contains(&b.len())
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if !ok {
        return Err(bad(format!("Invalid input for field/attribute hostname. Value: {h}.")));
    }
    Ok(Some(h))
}

/// Server names: 1 to 255 characters, no leading or trailing whitespace.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 255 || name.trim() != name {
        return Err(bad(format!("Invalid input for field/attribute name. Value: {name}.")));
    }
    Ok(())
}

/// A host name from a display name, as Nova sanitises it.
fn hostname_of(name: &str, index: Option<usize>) -> String {
    let mut h: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else if c == ' ' || c == '_' || c == '.' {
                '-'
            } else {
                '\0'
            }
        })
        .filter(|c| *c != '\0')
        .collect();
    h = h.trim_matches('-').to_string();
    h.truncate(63);
    if let Some(n) = index {
        h = format!("{h}-{n}");
    }
    if h.is_empty() {
        "server".into()
    } else {
        h
    }
}

fn metadata_of(v: Option<&Value>, limit: i64) -> Result<BTreeMap<String, String>> {
    let Some(v) = v else { return Ok(BTreeMap::new()) };
    let m = v
        .as_object()
        .ok_or_else(|| bad("Invalid input for field/attribute metadata. Value is not of type 'object'"))?;
    let mut out = BTreeMap::new();
    for (k, val) in m {
        let val = val
            .as_str()
            .ok_or_else(|| bad(format!("Invalid input for field/attribute metadata. Value of {k} is not a string")))?;
        if k.is_empty() || k.chars().count() > 255 || val.chars().count() > 255 {
            return Err(bad(format!(
                "Invalid input for field/attribute metadata. Key or value of {k} is too long or empty"
            )));
        }
        out.insert(k.clone(), val.to_string());
    }
    if limit >= 0 && out.len() as i64 > limit {
        return Err(ComputeError::OverQuota(format!(
            "Quota exceeded for metadata_items: Requested {}, but already used 0 of {limit} metadata_items",
            out.len()
        )));
    }
    Ok(out)
}

pub fn quota(svc: &ComputeApi, name: &str) -> i64 {
    svc.config.quotas.iter().find(|(n, _)| *n == name).map(|(_, l)| *l).unwrap_or(-1)
}

/// The project's limit for `name`: an admin's override or the default.
pub async fn project_quota(svc: &ComputeApi, project: &str, name: &str) -> Result<i64> {
    Ok(svc.store.quota_overrides(project).await?.get(name).copied().unwrap_or_else(|| quota(svc, name)))
}

/// Instances, cores and RAM a project uses now.
pub async fn usage(svc: &ComputeApi, project: &str) -> Result<(i64, i64, i64)> {
    svc.store.project_usage(project).await
}

/// Resolves `networks` into ports to make or take, checked with the user's
/// token so a user cannot use what they cannot see.
async fn requested_networks(
    svc: &ComputeApi,
    auth: &Auth,
    v: Microversion,
    raw: Option<&Value>,
) -> Result<RequestedNetworks> {
    let list = match raw {
        None if v.at_least(2, 37) => {
            return Err(bad("Invalid input for field/attribute server. 'networks' is a required property"))
        }
        None => None,
        Some(Value::String(s)) if v.at_least(2, 37) && s == "none" => return Ok(RequestedNetworks::None),
        Some(Value::String(s)) if v.at_least(2, 37) && s == "auto" => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute networks. Value: {other}."))),
    };
    let token = Some(auth.token.as_str());
    let Some(list) = list else {
        // `auto`: the project's one network, or the one shared network.
        let (_, nets) =
            svc.session.call("network", Method::GET, "/v2.0/networks?router:external=False", None, token).await?;
        let nets: Vec<Value> = nets["networks"].as_array().cloned().unwrap_or_default();
        let own: Vec<&Value> = nets.iter().filter(|n| n["project_id"].as_str() == auth.project_id.as_deref()).collect();
        let shared: Vec<&Value> = nets.iter().filter(|n| n["shared"] == true).collect();
        let chosen = match (own.len(), shared.len()) {
            (1, _) => own[0],
            (0, 1) => shared[0],
            (0, 0) => return Ok(RequestedNetworks::List(Vec::new())),
            _ => {
                return Err(ComputeError::Conflict(
                    "Multiple possible networks found, use a Network ID to be more specific.".into(),
                ))
            }
        };
        return Ok(RequestedNetworks::List(vec![RequestedNetwork {
            network_id: chosen["id"].as_str().map(String::from),
            ..Default::default()
        }]));
    };
    let mut out = Vec::new();
    for entry in &list {
        let m = entry
            .as_object()
            .ok_or_else(|| bad(format!("Invalid input for field/attribute networks. Value: {entry}.")))?;
        for k in m.keys() {
            if !["uuid", "port", "fixed_ip", "tag"].contains(&k.as_str()) {
                return Err(bad(format!("Invalid input for field/attribute networks. Additional properties are not allowed ('{k}' was unexpected)")));
            }
        }
        let net = m.get("uuid").and_then(Value::as_str).filter(|s| !s.is_empty());
        let port = m.get("port").and_then(Value::as_str).filter(|s| !s.is_empty());
        let fixed_ip = m.get("fixed_ip").and_then(Value::as_str);
        let tag = m.get("tag").and_then(Value::as_str).map(String::from);
        if tag.is_some() && !v.at_least(2, 32) {
            return Err(bad("Invalid input for field/attribute networks. 'tag' needs microversion 2.32"));
        }
        if let Some(ip) = fixed_ip {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(bad(format!(
                    "Invalid input for field/attribute fixed_ip. Value: {ip}. '{ip}' is not a 'ip-address'"
                )));
            }
        }
        if let Some(port) = port {
            if !is_uuid(port) {
                return Err(bad(format!(
                    "Invalid input for field/attribute port. Value: {port}. '{port}' is not a 'uuid'"
                )));
            }
            let (status, p) =
                svc.session.call("network", Method::GET, &format!("/v2.0/ports/{port}"), None, token).await?;
            if status == StatusCode::NOT_FOUND {
                return Err(ComputeError::NotFound(format!("Port id {port} could not be found.")));
            }
            if !p["port"]["device_id"].as_str().unwrap_or_default().is_empty() {
                return Err(ComputeError::Conflict(format!("Port {port} is still in use.")));
            }
            out.push(RequestedNetwork {
                port_id: Some(port.into()),
                network_id: p["port"]["network_id"].as_str().map(String::from),
                fixed_ip: None,
                tag,
            });
            continue;
        }
        let Some(net) = net else { return Err(bad("Bad networks format: network uuid is not in proper format")) };
        if !is_uuid(net) {
            return Err(bad(format!("Bad networks format: network uuid is not in proper format ({net})")));
        }
        let (status, _) =
            svc.session.call("network", Method::GET, &format!("/v2.0/networks/{net}"), None, token).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(bad(format!("Network {net} could not be found.")));
        }
        out.push(RequestedNetwork {
            network_id: Some(net.into()),
            port_id: None,
            fixed_ip: fixed_ip.map(String::from),
            tag,
        });
    }
    Ok(RequestedNetworks::List(out))
}

/// The image to boot, checked as the user (and against the flavor).
async fn boot_image(
    svc: &ComputeApi,
    auth: &Auth,
    id: &str,
    flavor: &crate::model::Flavor,
) -> Result<Map<String, Value>> {
    let id = id.rsplit('/').next().unwrap_or(id);
    if !is_uuid(id) {
        return Err(bad(format!("Invalid imageRef provided: {id}")));
    }
    let (status, image) =
        svc.session.call("image", Method::GET, &format!("/v2/images/{id}"), None, Some(&auth.token)).await?;
    if status == StatusCode::NOT_FOUND {
        return Err(bad(format!("Image {id} could not be found.")));
    }
    if !status.is_success() {
        return Err(crate::session::remote_error("image", status, &image).into());
    }
    if image["status"] != "active" {
        return Err(bad(format!("Image {id} is not active.")));
    }
    let min_ram = image["min_ram"].as_i64().unwrap_or(0);
    let min_disk = image["min_disk"].as_i64().unwrap_or(0);
    let size_gb = (image["size"].as_i64().unwrap_or(0) + (1 << 30) - 1) >> 30;
    if flavor.memory_mb < min_ram {
        return Err(bad("Flavor's memory is too small for requested image."));
    }
    if flavor.root_gb > 0 && (flavor.root_gb < min_disk || flavor.root_gb < size_gb) {
        return Err(bad("Flavor's disk is too small for requested image."));
    }
    // What the instance keeps: formats and sizes, and the free-form
    // properties (what the ImagePropertiesFilter reads).
    let base = [
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
    let obj = image.as_object().cloned().unwrap_or_default();
    let properties: Map<String, Value> =
        obj.iter().filter(|(k, _)| !base.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut meta: Map<String, Value> = obj.into_iter().filter(|(k, _)| base.contains(&k.as_str())).collect();
    meta.insert("properties".into(), Value::Object(properties));
    Ok(meta)
}

async fn security_group_ids(svc: &ComputeApi, auth: &Auth, names: &[String]) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for name in names {
        let (_, by_name) = svc
            .session
            .call("network", Method::GET, &format!("/v2.0/security-groups?name={name}"), None, Some(&auth.token))
            .await?;
        let own = by_name["security_groups"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|g| g["project_id"].as_str() == auth.project_id.as_deref() || auth.is_admin())
            .and_then(|g| g["id"].as_str().map(String::from));
        let id = match own {
            Some(id) => id,
            None => {
                let (status, g) = svc
                    .session
                    .call("network", Method::GET, &format!("/v2.0/security-groups/{name}"), None, Some(&auth.token))
                    .await?;
                if !status.is_success() {
                    return Err(bad(format!("Unable to find security_group with name or id '{name}'")));
                }
                g["security_group"]["id"].as_str().unwrap_or_default().to_string()
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

fn zone_exists(zones: &[String], default: &str, zone: &str) -> bool {
    zone == default || zones.iter().any(|z| z == zone)
}

pub async fn create(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    RequestId(request_id): RequestId,
    body: axum::body::Bytes,
) -> Result<Response> {
    let body = json_body(&body)?;
    let m = body_object(&body, "server")?;
    let name = string_field(&m, "name", 255, true)?.unwrap_or_default();
    check_name(&name)?;
    let flavor_ref = match m.get("flavorRef") {
        Some(Value::String(s)) if !s.is_empty() => s.rsplit('/').next().unwrap_or(s).to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute flavorRef. Value: {other}."))),
        None => return Err(bad("Invalid input for field/attribute server. 'flavorRef' is a required property")),
    };
    let flavor = match super::flavors::usable(&svc, &auth, &flavor_ref).await {
        Ok(f) if !f.disabled => f,
        Ok(_) => return Err(bad(format!("Flavor {flavor_ref} is disabled."))),
        Err(e) => return Err(only_missing(e, || bad(format!("Flavor {flavor_ref} could not be found.")))),
    };
    // Volumes are not offered: only an image-backed root disk.
    let bdm = m.get("block_device_mapping_v2").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut image_ref = match m.get("imageRef") {
        Some(Value::String(s)) => s.clone(),
        None => String::new(),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute imageRef. Value: {other}."))),
    };
    for b in &bdm {
        let source = b["source_type"].as_str().unwrap_or_default();
        let dest = b["destination_type"].as_str().unwrap_or("local");
        if source == "image" && dest == "local" && image_ref.is_empty() {
            image_ref = b["uuid"].as_str().unwrap_or_default().to_string();
        } else if dest == "volume" || source == "volume" || source == "snapshot" {
            return Err(bad("Block device mapping is invalid: the volume service is not available in this cloud."));
        }
    }
    if image_ref.is_empty() {
        return Err(bad("Invalid imageRef provided: a server needs an image to boot from."));
    }
    let image_meta = boot_image(&svc, &auth, &image_ref, &flavor).await?;
    let image_ref = image_meta.get("id").and_then(Value::as_str).unwrap_or(&image_ref).to_string();

    let count = |key: &str| -> Result<i64> {
        match m.get(key) {
            None => Ok(1),
            Some(v) => match v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
                Some(n) if n >= 1 => Ok(n),
                _ => Err(bad(format!("Invalid input for field/attribute {key}. Value: {v}."))),
            },
        }
    };
    let min_count = count("min_count")?;
    let max_count = if m.contains_key("max_count") { count("max_count")? } else { min_count };
    if min_count > max_count {
        return Err(bad("min_count must be <= max_count"));
    }
    let networks = requested_networks(&svc, &auth, v, m.get("networks")).await?;
    if let RequestedNetworks::List(l) = &networks {
        if max_count > 1 && l.iter().any(|r| r.port_id.is_some()) {
            return Err(bad("Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports."));
        }
    }
    let key_name = string_field(&m, "key_name", 255, false)?;
    let key_data = match &key_name {
        Some(k) => Some(
            svc.store
                .keypair(&auth.user_id, k)
                .await
                .map_err(|e| only_missing(e, || bad("Invalid key_name provided.")))?
                .public_key,
        ),
        None => None,
    };
    let groups: Vec<String> = match m.get("security_groups") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|g| {
                g["name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .ok_or_else(|| bad(format!("Invalid input for field/attribute security_groups. Value: {g}.")))
            })
            .collect::<Result<_>>()?,
        Some(other) => return Err(bad(format!("Invalid input for field/attribute security_groups. Value: {other}."))),
    };
    let mut unique_groups: Vec<String> = Vec::new();
    for g in groups {
        if !unique_groups.contains(&g) {
            unique_groups.push(g);
        }
    }
    let group_ids = security_group_ids(&svc, &auth, &unique_groups).await?;
    let user_data = string_field(&m, "user_data", 65535 * 4 / 3 + 4, false)?;
    if let Some(u) = &user_data {
        if !views::check_user_data(u) {
            return Err(bad("User data needs to be valid base 64."));
        }
    }
    let metadata = metadata_of(m.get("metadata"), quota(&svc, "metadata_items"))?;
    if let Some(files) = m.get("personality") {
        if v.at_least(2, 57) {
            return Err(bad("Invalid input for field/attribute server. Additional properties are not allowed ('personality' was unexpected)"));
        }
        let files = files.as_array().ok_or_else(|| bad("Invalid input for field/attribute personality."))?;
        if files.len() as i64 > quota(&svc, "injected_files") {
            return Err(ComputeError::OverLimit("Personality file limit exceeded".into()));
        }
        for f in files {
            let contents = f["contents"].as_str().unwrap_or_default();
            if !views::check_user_data(contents) {
                return Err(bad("Personality content could not be decoded."));
            }
            if f["path"].as_str().unwrap_or_default().len() as i64 > quota(&svc, "injected_file_path_bytes") {
                return Err(ComputeError::OverLimit("Personality file path exceeds maximum 255".into()));
            }
            if (contents.len() * 3 / 4) as i64 > quota(&svc, "injected_file_content_bytes") {
                return Err(ComputeError::OverLimit("Personality file content exceeds maximum 10240".into()));
            }
        }
    }
    let admin_pass = match m.get("adminPass") {
        Some(Value::String(p)) => p.clone(),
        None => rand::thread_rng().sample_iter(rand::distributions::Alphanumeric).take(12).map(char::from).collect(),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute adminPass. Value: {other}."))),
    };
    let mut ips = [None, None];
    for (n, (key, v6)) in [("accessIPv4", false), ("accessIPv6", true)].iter().enumerate() {
        if let Some(ip) = string_field(&m, key, 64, false)?.filter(|s| !s.is_empty()) {
            let addr = match ip.parse::<std::net::IpAddr>() {
                Ok(a) if a.is_ipv6() == *v6 => a,
                _ => return Err(bad(format!("Invalid input for field/attribute {key}. Value: {ip}."))),
            };
            // Kept in canonical form, as Nova does (`::babe:dc0c:1602`).
            ips[n] = Some(addr.to_string());
        }
    }
    let disk_config = match m.get("OS-DCF:diskConfig").and_then(Value::as_str) {
        None => "MANUAL".to_string(),
        Some(d @ ("AUTO" | "MANUAL")) => d.to_string(),
        Some(other) => {
            return Err(bad(format!("Invalid input for field/attribute OS-DCF:diskConfig. Value: {other}.")))
        }
    };
    let description = if v.at_least(2, 19) { string_field(&m, "description", 255, false)? } else { None };
    let tags: Vec<String> = match m.get("tags") {
        Some(Value::Array(a)) if v.at_least(2, 52) => {
            let tags: Vec<String> = a.iter().filter_map(|t| t.as_str().map(String::from)).collect();
            if tags.len() != a.len() || tags.len() > 50 || tags.iter().any(|t| !super::metadata::valid_tag(t)) {
                return Err(bad("Invalid input for field/attribute tags."));
            }
            tags
        }
        None => Vec::new(),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute tags. Value: {other}."))),
    };
    let config_drive = match m.get("config_drive") {
        Some(Value::Bool(true)) => "True".to_string(),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => "True".to_string(),
        _ => String::new(),
    };
    // Zone, or (admins) zone:host[:node].
    let zone = string_field(&m, "availability_zone", 255, false)?.filter(|z| !z.is_empty());
    if let Some(z) = &zone {
        let parts: Vec<&str> = z.split(':').collect();
        if parts.len() > 1 {
            super::admin_only(&auth, "os_compute_api:servers:create:forced_host")?;
        }
        let zones: Vec<String> =
            svc.store.aggregates().await?.iter().filter_map(|a| a.availability_zone().map(String::from)).collect();
        if !parts[0].is_empty() && !zone_exists(&zones, &svc.config.scheduler.default_availability_zone, parts[0]) {
            return Err(bad("The requested availability zone is not available"));
        }
    }
    // Scheduler hints, and the server group they may name.
    let hints =
        body.get("os:scheduler_hints").or_else(|| body.get("OS-SCH-HNT:scheduler_hints")).cloned().unwrap_or(json!({}));
    let mut hints =
        hints.as_object().cloned().ok_or_else(|| bad("Invalid input for field/attribute os:scheduler_hints."))?;
    let group = match hints.get("group") {
        Some(Value::String(g)) => {
            let g =
                svc.store.group(g).await.map_err(|e| only_missing(e, || bad(format!("Invalid server group {g}"))))?;
            if g.project_id != auth.project_id.clone().unwrap_or_default() && !auth.is_admin() {
                return Err(bad(format!("Invalid server group {}", g.id)));
            }
            hints.insert("_group_policy".into(), json!(g.policy));
            if let Some(max) = g.max_server_per_host() {
                hints.insert("_group_max_server_per_host".into(), json!(max));
            }
            Some(g)
        }
        None => None,
        Some(other) => return Err(bad(format!("Invalid input for field/attribute group. Value: {other}."))),
    };
    for key in ["same_host", "different_host"] {
        let ids = match hints.get(key) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
            _ => continue,
        };
        if ids.iter().any(|i| !is_uuid(i)) {
            return Err(bad(format!("Invalid input for field/attribute {key}. Value is not a UUID.")));
        }
    }

    // Quota: as many as fit between min_count and max_count.
    let project = auth.project_id.clone().unwrap_or_default();
    let (used_instances, used_cores, used_ram) = usage(&svc, &project).await?;
    let limits =
        [("instances", used_instances, 1), ("cores", used_cores, flavor.vcpus), ("ram", used_ram, flavor.memory_mb)];
    let mut allowed = max_count;
    for (resource, used, each) in limits {
        let limit = project_quota(&svc, &project, resource).await?;
        if limit < 0 || each == 0 {
            continue;
        }
        let fits = (limit - used) / each;
        if fits < min_count {
            return Err(ComputeError::OverQuota(format!(
                "Quota exceeded for {resource}: Requested {}, but already used {used} of {limit} {resource}",
                min_count * each
            )));
        }
        allowed = allowed.min(fits);
    }
    if let Some(g) = &group {
        let limit = project_quota(&svc, &project, "server_group_members").await?;
        if limit >= 0 && g.members.len() as i64 + allowed > limit {
            return Err(ComputeError::OverQuota("Quota exceeded, too many servers in group".into()));
        }
    }

    let reservation_id = format!("r-{}", &common::id::new_hex_id()[..8]);
    let now = common::time::now_micros();
    let hostname_given = if v.at_least(2, 90) { hostname_field(&m, v)? } else { None };
    let mut instances = Vec::new();
    for n in 0..allowed {
        let multi = allowed > 1;
        let display_name = if multi { format!("{name}-{}", n + 1) } else { name.clone() };
        instances.push(Instance {
            uuid: common::id::new_uuid(),
            project_id: project.clone(),
            user_id: auth.user_id.clone(),
            hostname: hostname_given.clone().unwrap_or_else(|| hostname_of(&name, multi.then_some(n as usize + 1))),
            display_name,
            display_description: description.clone(),
            flavor: flavor.clone(),
            image_ref: image_ref.clone(),
            image_meta: image_meta.clone(),
            key_name: key_name.clone(),
            key_data: key_data.clone(),
            vm_state: vm_state::BUILDING.into(),
            task_state: Some("scheduling".into()),
            metadata: metadata.clone(),
            tags: tags.clone(),
            user_data: user_data.clone(),
            config_drive: config_drive.clone(),
            access_ip_v4: ips[0].clone(),
            access_ip_v6: ips[1].clone(),
            disk_config: disk_config.clone(),
            security_groups: if unique_groups.is_empty() { vec!["default".into()] } else { unique_groups.clone() },
            security_group_ids: group_ids.clone(),
            requested_networks: networks.clone(),
            scheduler_hints: hints.clone(),
            server_group: group.as_ref().map(|g| g.id.clone()),
            reservation_id: reservation_id.clone(),
            launch_index: n,
            requested_availability_zone: zone.clone(),
            availability_zone: zone
                .as_ref()
                .map(|z| z.split(':').next().unwrap_or_default().to_string())
                .filter(|z| !z.is_empty()),
            created_at: now,
            updated_at: now,
            ..Default::default()
        });
    }
    let sagas = instances
        .iter()
        .map(|i| {
            let params = BuildParams {
                instance_uuid: i.uuid.clone(),
                admin_password: Some(admin_pass.clone()),
                attempt: 1,
                last_failure: None,
            };
            saga::new_record::<Build>(
                build_saga_id(&i.uuid, 1),
                Some(i.uuid.clone()),
                &params,
                Some(request_id.clone()),
            )
            .map_err(|e| ComputeError::Internal(e.message))
        })
        .collect::<Result<Vec<_>>>()?;
    let saga_ids: Vec<String> = sagas.iter().map(|s| s.id.clone()).collect();
    let actions: Vec<NewAction> =
        instances.iter().map(|i| NewAction::new(&i.uuid, &request_id, "create", &project, &auth.user_id)).collect();
    svc.store.create_instances(&instances, &sagas, &actions).await?;
    let uuids: Vec<String> = instances.iter().map(|i| i.uuid.clone()).collect();
    if let Some(g) = &group {
        let limit = project_quota(&svc, &project, "server_group_members").await?;
        if let Err(e) = svc.store.add_group_members(&g.id, &uuids, limit).await {
            for i in &instances {
                svc.store
                    .update_instance(&i.uuid, |x| {
                        x.deleted = true;
                        x.vm_state = vm_state::DELETED.into();
                        x.task_state = None;
                        Ok(())
                    })
                    .await?;
            }
            // Their builds find them gone and end at once.
            svc.run_sagas(saga_ids, &request_id).await?;
            return Err(e);
        }
    }
    svc.run_sagas(saga_ids, &request_id).await?;

    if m.get("return_reservation_id").is_some_and(|r| r == true || r == "True" || r == "true") {
        return Ok((StatusCode::ACCEPTED, Json(json!({"reservation_id": reservation_id}))).into_response());
    }
    let first = &instances[0];
    let mut server = json!({
        "id": first.uuid,
        "links": super::links(&base, "servers", &first.uuid),
        "OS-DCF:diskConfig": disk_config,
        "adminPass": admin_pass,
    });
    if !matches!(networks, RequestedNetworks::None) {
        server["security_groups"] = json!(first.security_groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>());
    }
    let location = format!("{}/v2.1/servers/{}", base.0, first.uuid);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(json!({"server": server}))).into_response())
}

// ---------------------------------------------------------------- update, delete

pub async fn update(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body = json_body(&body)?;
    let m = body_object(&body, "server")?;
    visible(&svc, &auth, &id).await?;
    let mut allowed = vec!["name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"];
    if v.at_least(2, 19) {
        allowed.push("description");
    }
    if v.at_least(2, 90) {
        allowed.push("hostname");
    }
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid input for field/attribute server. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let name = string_field(&m, "name", 255, false)?;
    if let Some(n) = &name {
        check_name(n)?;
    }
    let description = m
        .get("description")
        .map(|d| match d {
            Value::Null => Ok(None),
            Value::String(s) if s.chars().count() <= 255 => Ok(Some(s.clone())),
            other => Err(bad(format!("Invalid input for field/attribute description. Value: {other}."))),
        })
        .transpose()?;
    let v4 = string_field(&m, "accessIPv4", 64, false)?;
    let v6 = string_field(&m, "accessIPv6", 64, false)?;
    // Absent: unchanged; empty: cleared; else kept in canonical form.
    let canonical = |ip: Option<String>, want6: bool| -> Result<Option<String>> {
        match ip {
            None => Ok(None),
            Some(ip) if ip.is_empty() => Ok(Some(ip)),
            Some(ip) => match ip.parse::<std::net::IpAddr>() {
                Ok(a) if a.is_ipv6() == want6 => Ok(Some(a.to_string())),
                _ => Err(bad(format!("Invalid input for field/attribute accessIP. Value: {ip}."))),
            },
        }
    };
    let v4 = canonical(v4, false)?;
    let v6 = canonical(v6, true)?;
    let disk_config = match m.get("OS-DCF:diskConfig").and_then(Value::as_str) {
        None => None,
        Some(d @ ("AUTO" | "MANUAL")) => Some(d.to_string()),
        Some(other) => {
            return Err(bad(format!("Invalid input for field/attribute OS-DCF:diskConfig. Value: {other}.")))
        }
    };
    let hostname = if v.at_least(2, 90) { hostname_field(&m, v)? } else { None };
    let i = svc
        .store
        .update_instance(&id, |i| {
            if let Some(n) = &name {
                i.display_name = n.clone();
            }
            if let Some(d) = &description {
                i.display_description = d.clone();
            }
            if let Some(ip) = &v4 {
                i.access_ip_v4 = Some(ip.clone()).filter(|s| !s.is_empty());
            }
            if let Some(ip) = &v6 {
                i.access_ip_v6 = Some(ip.clone()).filter(|s| !s.is_empty());
            }
            if let Some(d) = &disk_config {
                i.disk_config = d.clone();
            }
            if let Some(h) = &hostname {
                i.hostname = h.clone();
            }
            Ok(())
        })
        .await?;
    let statuses = host_statuses(&svc).await?;
    let view = ServerView { base: &base, v, admin: auth.is_admin(), host_status: &statuses };
    Ok(Json(json!({"server": view.after_change(&i, false)})))
}

/// A locked server refuses changes from anyone but an admin.
pub fn check_lock(auth: &Auth, i: &Instance) -> Result<()> {
    if i.locked && !auth.is_admin() {
        return Err(ComputeError::Conflict(format!("Instance {} is locked", i.uuid)));
    }
    Ok(())
}

/// Deletes a server, whatever its state, in one way: the delete saga (its
/// guest, ports, claims and record go, and a workflow under way unwinds
/// first).
pub async fn delete_instance(svc: &ComputeApi, auth: &Auth, i: &Instance, request_id: &str) -> Result<()> {
    let project = auth.project_id.clone().unwrap_or_default();
    let action = NewAction::new(&i.uuid, request_id, "delete", &project, &auth.user_id);
    let params = DeleteParams { instance_uuid: i.uuid.clone() };
    svc.start_saga::<Delete>(&i.uuid, &delete_saga_id(&i.uuid), &params, &action, |x| {
        x.task_state = Some("deleting".into());
        Ok(())
    })
    .await?;
    Ok(())
}

pub async fn delete(
    svc: State,
    auth: Auth,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let i = visible(&svc, &auth, &id).await?;
    check_lock(&auth, &i)?;
    delete_instance(&svc, &auth, &i, &request_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
