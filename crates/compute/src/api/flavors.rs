//! `/flavors`: sizes of servers, their extra specs, and which projects may
//! use a private one.

use std::collections::{BTreeMap, HashMap};

use api::{Auth, BaseUrl, Microversion};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::{admin_only, bad, body_object, json_body, links, State};
use crate::error::{ComputeError, Result};
use crate::model::Flavor;

fn brief(base: &BaseUrl, f: &Flavor, v: Microversion) -> Value {
    let mut out = json!({"id": f.flavorid, "name": f.name, "links": links(base, "flavors", &f.flavorid)});
    if v.at_least(2, 55) {
        out["description"] = json!(f.description);
    }
    out
}

pub fn view(base: &BaseUrl, f: &Flavor, v: Microversion) -> Value {
    let mut out = brief(base, f, v);
    let swap = if f.swap == 0 && !v.at_least(2, 75) { json!("") } else { json!(f.swap) };
    for (k, val) in [
        ("ram", json!(f.memory_mb)),
        ("disk", json!(f.root_gb)),
        ("vcpus", json!(f.vcpus)),
        ("swap", swap),
        ("OS-FLV-EXT-DATA:ephemeral", json!(f.ephemeral_gb)),
        ("OS-FLV-DISABLED:disabled", json!(f.disabled)),
        ("os-flavor-access:is_public", json!(f.is_public)),
        ("rxtx_factor", json!(f.rxtx_factor)),
    ] {
        out[k] = val;
    }
    if v.at_least(2, 61) {
        out["extra_specs"] = json!(f.extra_specs);
    }
    out
}

/// Flavors the caller may see and use: public ones and private ones shared
/// with their project (admins see all).
async fn visible(svc: &super::ComputeApi, auth: &Auth, is_public: Option<&str>) -> Result<Vec<Flavor>> {
    let all = svc.store.flavors().await?;
    let project = auth.project_id.clone().unwrap_or_default();
    // Public only by default; `none`/`all` for both; else an oslo boolean.
    let wanted = match is_public.map(str::to_ascii_lowercase).as_deref() {
        None => Some(true),
        Some("none") | Some("all") => None,
        Some("1" | "t" | "true" | "on" | "y" | "yes") => Some(true),
        Some("0" | "f" | "false" | "off" | "n" | "no") => Some(false),
        Some(other) => return Err(bad(format!("Invalid is_public filter [{other}]"))),
    };
    let mut out = Vec::new();
    for f in all {
        let shared = !f.is_public && svc.store.flavor_access(&f.flavorid).await?.contains(&project);
        let keep = match (auth.is_admin(), wanted) {
            (true, None) => true,
            (true, Some(public)) => f.is_public == public,
            (false, _) => f.is_public || shared,
        };
        if keep {
            out.push(f);
        }
    }
    Ok(out)
}

async fn listing(svc: &super::ComputeApi, auth: &Auth, q: &HashMap<String, String>) -> Result<Vec<Flavor>> {
    let mut flavors = visible(svc, auth, q.get("is_public").map(String::as_str)).await?;
    let int = |k: &str| -> Result<Option<i64>> {
        q.get(k).map(|v| v.parse::<i64>().map_err(|_| bad(format!("Invalid {k} filter [{v}]")))).transpose()
    };
    if let Some(min) = int("minRam")? {
        flavors.retain(|f| f.memory_mb >= min);
    }
    if let Some(min) = int("minDisk")? {
        flavors.retain(|f| f.root_gb >= min);
    }
    let key = q.get("sort_key").map(String::as_str).unwrap_or("flavorid");
    let desc = match q.get("sort_dir").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(bad(format!("Invalid sort direction {other}"))),
    };
    let cmp = |a: &Flavor, b: &Flavor| -> std::cmp::Ordering {
        match key {
            "name" => a.name.cmp(&b.name),
            "memory_mb" => a.memory_mb.cmp(&b.memory_mb),
            "vcpus" => a.vcpus.cmp(&b.vcpus),
            "root_gb" => a.root_gb.cmp(&b.root_gb),
            "swap" => a.swap.cmp(&b.swap),
            "ephemeral_gb" => a.ephemeral_gb.cmp(&b.ephemeral_gb),
            _ => a.flavorid.cmp(&b.flavorid),
        }
    };
    if !["flavorid", "id", "name", "memory_mb", "vcpus", "root_gb", "swap", "ephemeral_gb", "rxtx_factor", "created_at"]
        .contains(&key)
    {
        return Err(bad(format!("Invalid sort key {key}")));
    }
    flavors.sort_by(|a, b| if desc { cmp(b, a) } else { cmp(a, b) });
    if let Some(marker) = q.get("marker") {
        let pos = flavors
            .iter()
            .position(|f| f.flavorid == *marker)
            .ok_or_else(|| bad(format!("marker [{marker}] not found")))?;
        flavors.drain(..=pos);
    }
    if let Some(limit) = q.get("limit") {
        let n: usize = limit.parse().map_err(|_| bad(format!("Invalid limit {limit}")))?;
        flavors.truncate(n);
    }
    Ok(flavors)
}

fn page_links(base: &BaseUrl, flavors: &[Flavor], q: &HashMap<String, String>, detail: bool) -> Option<Value> {
    let limit: usize = q.get("limit")?.parse().ok()?;
    if flavors.len() < limit || limit == 0 {
        return None;
    }
    let last = flavors.last()?;
    let path = if detail { "flavors/detail" } else { "flavors" };
    Some(json!([{"rel": "next", "href": format!("{}/v2.1/{path}?limit={limit}&marker={}", base.0, last.flavorid)}]))
}

pub async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let flavors = listing(&svc, &auth, &q).await?;
    let mut out = json!({"flavors": flavors.iter().map(|f| brief(&base, f, v)).collect::<Vec<_>>()});
    if let Some(l) = page_links(&base, &flavors, &q, false) {
        out["flavors_links"] = l;
    }
    Ok(Json(out))
}

pub async fn detail(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let flavors = listing(&svc, &auth, &q).await?;
    let mut out = json!({"flavors": flavors.iter().map(|f| view(&base, f, v)).collect::<Vec<_>>()});
    if let Some(l) = page_links(&base, &flavors, &q, true) {
        out["flavors_links"] = l;
    }
    Ok(Json(out))
}

/// A flavor the caller may use (404 for someone else's private flavor).
pub async fn usable(svc: &super::ComputeApi, auth: &Auth, id: &str) -> Result<Flavor> {
    let f = svc.store.flavor(id).await?;
    if f.is_public || auth.is_admin() {
        return Ok(f);
    }
    let project = auth.project_id.clone().unwrap_or_default();
    if svc.store.flavor_access(id).await?.contains(&project) {
        Ok(f)
    } else {
        Err(crate::store::flavors::not_found(id))
    }
}

pub async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let f = usable(&svc, &auth, &id).await?;
    Ok(Json(json!({"flavor": view(&base, &f, v)})))
}

fn int_field(m: &Map<String, Value>, key: &str, min: i64, default: Option<i64>) -> Result<i64> {
    let v = match m.get(key) {
        None => {
            return default.ok_or_else(|| {
                bad(format!("Invalid input for field/attribute flavor. '{key}' is a required property"))
            })
        }
        Some(v) => v,
    };
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= min && n <= i32::MAX as i64 => Ok(n),
        _ => Err(bad(format!("Invalid input for field/attribute {key}. Value: {v}. must be an integer >= {min}"))),
    }
}

pub async fn create(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-flavor-manage:create")?;
    let body = json_body(&body)?;
    let m = body_object(&body, "flavor")?;
    let name = match m.get("name") {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 255 && s.trim() == s => s.clone(),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute name. Value: {other}."))),
        None => return Err(bad("Invalid input for field/attribute flavor. 'name' is a required property")),
    };
    let flavorid = match m.get("id") {
        None | Some(Value::Null) => common::id::new_uuid(),
        Some(Value::String(s)) if s == "auto" => common::id::new_uuid(),
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 255
                && s.trim() == s
                && s.chars().all(|c| c.is_alphanumeric() || "-_. ".contains(c)) =>
        {
            s.clone()
        }
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute id. Value: {other}."))),
    };
    let rxtx = match m.get("rxtx_factor") {
        None => 1.0,
        Some(v) => match v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(x) if x > 0.0 => x,
            _ => return Err(bad(format!("Invalid input for field/attribute rxtx_factor. Value: {v}."))),
        },
    };
    let is_public = match m.get("os-flavor-access:is_public") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if ["true", "false", "True", "False"].contains(&s.as_str()) => {
            s.eq_ignore_ascii_case("true")
        }
        Some(other) => {
            return Err(bad(format!("Invalid input for field/attribute os-flavor-access:is_public. Value: {other}.")))
        }
    };
    let description = match m.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if v.at_least(2, 55) && s.chars().count() <= 65535 => Some(s.clone()),
        Some(other) => return Err(bad(format!("Invalid input for field/attribute description. Value: {other}."))),
    };
    let f = Flavor {
        flavorid,
        name,
        memory_mb: int_field(&m, "ram", 1, None)?,
        vcpus: int_field(&m, "vcpus", 1, None)?,
        root_gb: int_field(&m, "disk", 0, None)?,
        ephemeral_gb: int_field(&m, "OS-FLV-EXT-DATA:ephemeral", 0, Some(0))?,
        swap: int_field(&m, "swap", 0, Some(0))?,
        rxtx_factor: rxtx,
        is_public,
        disabled: false,
        description,
        internal_id: 0,
        extra_specs: BTreeMap::new(),
    };
    svc.store.create_flavor(&f).await?;
    Ok(Json(json!({"flavor": view(&base, &f, v)})))
}

pub async fn update(
    svc: State,
    auth: Auth,
    v: Microversion,
    base: BaseUrl,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    if !v.at_least(2, 55) {
        return Err(ComputeError::Api(api::ApiError(common::Fault::new(405, "Method not allowed before 2.55"))));
    }
    admin_only(&auth, "os_compute_api:os-flavor-manage:update")?;
    let body = json_body(&body)?;
    let m = body_object(&body, "flavor")?;
    let description = match m.get("description") {
        Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 65535 => Some(s.clone()),
        _ => return Err(bad("Invalid input for field/attribute flavor. 'description' is a required property")),
    };
    if m.len() != 1 {
        return Err(bad("Only the description of a flavor can be updated."));
    }
    svc.store.flavor(&id).await?;
    svc.store.set_flavor_description(&id, description).await?;
    let f = svc.store.flavor(&id).await?;
    Ok(Json(json!({"flavor": view(&base, &f, v)})))
}

pub async fn delete(svc: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    admin_only(&auth, "os_compute_api:os-flavor-manage:delete")?;
    svc.store.delete_flavor(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

fn access_view(id: &str, projects: &[String]) -> Value {
    json!({"flavor_access": projects.iter().map(|p| json!({"flavor_id": id, "tenant_id": p})).collect::<Vec<_>>()})
}

pub async fn access_list(svc: State, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-flavor-access")?;
    let f = svc.store.flavor(&id).await?;
    if f.is_public {
        return Err(ComputeError::NotFound("Access list not available for public flavors.".into()));
    }
    Ok(Json(access_view(&id, &svc.store.flavor_access(&id).await?)))
}

/// `addTenantAccess` / `removeTenantAccess`.
pub async fn access_action(
    svc: State,
    auth: Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body = json_body(&body)?;
    let (add, inner) = match (body.get("addTenantAccess"), body.get("removeTenantAccess")) {
        (Some(a), None) => (true, a),
        (None, Some(r)) => (false, r),
        _ => return Err(bad("Invalid request: expected addTenantAccess or removeTenantAccess")),
    };
    admin_only(
        &auth,
        if add {
            "os_compute_api:os-flavor-access:add_tenant_access"
        } else {
            "os_compute_api:os-flavor-access:remove_tenant_access"
        },
    )?;
    let tenant = inner
        .get("tenant")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 255)
        .ok_or_else(|| bad("Invalid input for field/attribute tenant."))?;
    let f = svc.store.flavor(&id).await?;
    if f.is_public {
        return Err(ComputeError::Conflict("Can not add access to a public flavor.".into()));
    }
    let changed = svc.store.change_flavor_access(&id, tenant, add).await?;
    if !changed {
        return Err(if add {
            ComputeError::Conflict(format!(
                "Flavor access already exists for flavor {id} and project {tenant} combination."
            ))
        } else {
            ComputeError::NotFound(format!("Flavor access not found for {id} / {tenant} combination."))
        });
    }
    Ok(Json(access_view(&id, &svc.store.flavor_access(&id).await?)))
}

/// Extra spec keys: letters, digits and `-_:. ` only, at most 255 characters.
fn check_spec(k: &str, v: &Value) -> Result<String> {
    if k.is_empty() || k.len() > 255 || !k.chars().all(|c| c.is_alphanumeric() || "-_:. ".contains(c)) {
        return Err(bad(format!("Invalid input for field/attribute extra_specs. Key '{k}' is not allowed")));
    }
    match v {
        Value::String(s) if s.len() <= 255 => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(bad(format!("Invalid input for field/attribute extra_specs. Value: {other}."))),
    }
}

pub async fn specs_list(svc: State, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>> {
    usable(&svc, &auth, &id).await?;
    Ok(Json(json!({"extra_specs": svc.store.extra_specs(&id).await?})))
}

pub async fn specs_set(svc: State, auth: Auth, Path(id): Path<String>, body: axum::body::Bytes) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-flavor-extra-specs:create")?;
    let body = json_body(&body)?;
    let m = body_object(&body, "extra_specs")?;
    let mut specs = BTreeMap::new();
    for (k, v) in &m {
        specs.insert(k.clone(), check_spec(k, v)?);
    }
    svc.store.flavor(&id).await?;
    svc.store.set_extra_specs(&id, &specs).await?;
    Ok(Json(json!({"extra_specs": specs})))
}

pub async fn spec_show(svc: State, auth: Auth, Path((id, key)): Path<(String, String)>) -> Result<Json<Value>> {
    usable(&svc, &auth, &id).await?;
    let specs = svc.store.extra_specs(&id).await?;
    let v = specs
        .get(&key)
        .ok_or_else(|| ComputeError::NotFound(format!("Flavor {id} has no extra specs with key {key}.")))?;
    Ok(Json(json!({ key: v })))
}

pub async fn spec_put(
    svc: State,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-flavor-extra-specs:update")?;
    let body = json_body(&body)?;
    let m = body.as_object().cloned().unwrap_or_default();
    if m.len() != 1 {
        return Err(bad("Request body contains too many items"));
    }
    let value = m.get(&key).ok_or_else(|| bad("Request body and URI mismatch"))?;
    let value = check_spec(&key, value)?;
    svc.store.flavor(&id).await?;
    svc.store.set_extra_specs(&id, &[(key.clone(), value.clone())].into()).await?;
    Ok(Json(json!({ key: value })))
}

pub async fn spec_delete(svc: State, auth: Auth, Path((id, key)): Path<(String, String)>) -> Result<StatusCode> {
    admin_only(&auth, "os_compute_api:os-flavor-extra-specs:delete")?;
    svc.store.flavor(&id).await?;
    if !svc.store.delete_extra_spec(&id, &key).await? {
        return Err(ComputeError::NotFound(format!("Flavor {id} has no extra specs with key {key}.")));
    }
    Ok(StatusCode::OK)
}
