//! `/v2/images`: image records, who sees them (visibility and members), and
//! JSON-patch updates.

use std::collections::HashMap;
use std::sync::Arc;

use api::Auth;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use db::records::Record;
use serde_json::{json, Map, Value};

use super::members::{self, MemberStatus};
use crate::error::{ImageError, Result};
use crate::{ImageService, IMAGE};

pub const DISK_FORMATS: &[&str] = &["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"];
pub const CONTAINER_FORMATS: &[&str] = &["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"];
const VISIBILITIES: &[&str] = &["public", "private", "shared", "community"];
/// Attributes the server keeps; clients may not set them.
const READ_ONLY: &[&str] = &[
    "id",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "locations",
    "os_hash_algo",
    "os_hash_value",
    "direct_url",
    "stores",
];
const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "min_disk",
    "min_ram",
    "visibility",
    "owner",
];
const LIMIT_DEFAULT: usize = 25;
const LIMIT_MAX: usize = 1000;

pub fn render(r: &Record) -> Map<String, Value> {
    let mut m: Map<String, Value> =
        r.attrs.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect();
    m.insert("id".into(), json!(r.id));
    m.insert("owner".into(), json!(r.project_id));
    m.insert("created_at".into(), json!(common::time::iso_seconds(r.created_at)));
    m.insert("updated_at".into(), json!(common::time::iso_seconds(r.updated_at)));
    m.insert("self".into(), json!(format!("/v2/images/{}", r.id)));
    m.insert("file".into(), json!(format!("/v2/images/{}/file", r.id)));
    m.insert("schema".into(), json!("/v2/schemas/image"));
    m
}

fn bad(m: impl Into<String>) -> ImageError {
    ImageError::BadRequest(m.into())
}

fn not_found(id: &str) -> ImageError {
    ImageError::NotFound(format!("No image found with ID {id}"))
}

/// Whether the caller may see the image: an admin, its owner, anyone for public
/// and community images, members of a shared image.
pub async fn visible(svc: &ImageService, auth: &Auth, r: &Record) -> Result<bool> {
    if auth.is_admin() || owns(auth, r) {
        return Ok(true);
    }
    match r.attrs.get("visibility").and_then(Value::as_str) {
        Some("public") | Some("community") => Ok(true),
        Some("shared") => {
            Ok(members::status_of(svc, &r.id, auth.project_id.as_deref().unwrap_or_default()).await?.is_some())
        }
        _ => Ok(false),
    }
}

pub fn owns(auth: &Auth, r: &Record) -> bool {
    auth.project_id.as_deref() == Some(r.project_id.as_str())
}

/// The image if the caller may see it; 404 otherwise.
pub async fn visible_image(svc: &ImageService, auth: &Auth, id: &str) -> Result<Record> {
    match svc.db.find_record(&IMAGE, id).await? {
        Some(r) if visible(svc, auth, &r).await? => Ok(r),
        _ => Err(not_found(id)),
    }
}

/// The image if the caller may change it (its owner or an admin); 404 when
/// they cannot see it, 403 when they only can see it.
pub async fn owned_image(svc: &ImageService, auth: &Auth, id: &str) -> Result<Record> {
    let r = visible_image(svc, auth, id).await?;
    if auth.is_admin() || owns(auth, &r) {
        Ok(r)
    } else {
        Err(ImageError::Forbidden(format!("You are not permitted to modify image {id}.")))
    }
}

/// Names Glance keeps for itself: `location` and the deletion markers of
/// its own records, and the `os_glance` prefix of its internal properties.
const RESERVED: &[&str] = &["location", "deleted", "deleted_at"];

fn is_reserved(key: &str) -> bool {
    RESERVED.contains(&key) || key.starts_with("os_glance")
}

/// Validates one attribute a client sets (create or patch) and returns its
/// stored value.
fn check_attr(auth: &Auth, key: &str, v: Value, creating: bool) -> Result<Value> {
    if READ_ONLY.contains(&key) && !(creating && key == "id") {
        return Err(ImageError::Forbidden(format!("Attribute '{key}' is read-only.")));
    }
    if is_reserved(key) {
        return Err(ImageError::Forbidden(format!("Attribute '{key}' is reserved.")));
    }
    if key.chars().count() > 255 {
        return Err(bad(format!("Property name '{key}' is too long")));
    }
    let int = |v: &Value| {
        v.as_i64()
            .filter(|n| *n >= 0)
            .map(Value::from)
            .ok_or_else(|| bad(format!("Invalid value for {key}: {v} is not a non-negative integer")))
    };
    let one_of = |v: &Value, opts: &[&str]| match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) if opts.contains(&s.as_str()) => Ok(v.clone()),
        _ => Err(bad(format!("Invalid value for {key}: {v} is not one of {opts:?}"))),
    };
    Ok(match key {
        "id" => match v.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()) {
            Some(u) => json!(u.to_string()),
            None => return Err(bad(format!("Invalid value for id: {v} is not a UUID"))),
        },
        "name" => match &v {
            Value::Null => v,
            Value::String(s) if s.chars().count() <= 255 => v,
            _ => return Err(bad(format!("Invalid value for name: {v}"))),
        },
        "visibility" => {
            let vis = v
                .as_str()
                .filter(|s| VISIBILITIES.contains(s))
                .ok_or_else(|| bad(format!("Invalid value for visibility: {v}")))?;
            if vis == "public" && !auth.is_admin() {
                return Err(ImageError::Forbidden("You are not authorized to make images public.".into()));
            }
            v
        }
        "protected" | "os_hidden" => match v {
            Value::Bool(_) => v,
            _ => return Err(bad(format!("Invalid value for {key}: {v} is not a boolean"))),
        },
        "min_ram" | "min_disk" => int(&v)?,
        "disk_format" => one_of(&v, DISK_FORMATS)?,
        "container_format" => one_of(&v, CONTAINER_FORMATS)?,
        "tags" => {
            let tags = v.as_array().ok_or_else(|| bad("Invalid value for tags: not a list"))?;
            let mut out: Vec<String> = Vec::new();
            for t in tags {
                let t =
                    t.as_str().filter(|t| t.chars().count() <= 255).ok_or_else(|| bad(format!("Invalid tag {t}")))?;
                if !out.iter().any(|x| x == t) {
                    out.push(t.to_string());
                }
            }
            json!(out)
        }
        "owner" => {
            if !auth.is_admin() {
                return Err(ImageError::Forbidden("Attribute 'owner' is read-only.".into()));
            }
            match v {
                Value::String(_) => v,
                _ => return Err(bad("Invalid value for owner")),
            }
        }
        // Other properties are free-form strings.
        _ => match v {
            Value::String(s) if s.chars().count() <= 65535 => Value::String(s),
            Value::Null => Value::Null,
            other => return Err(bad(format!("Invalid value for property {key}: {other} is not a string"))),
        },
    })
}

fn fresh_attrs() -> Map<String, Value> {
    json!({
        "name": null, "status": "queued", "visibility": "shared", "protected": false, "os_hidden": false,
        "checksum": null, "os_hash_algo": null, "os_hash_value": null, "size": null, "virtual_size": null,
        "min_ram": 0, "min_disk": 0, "disk_format": null, "container_format": null, "tags": [],
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

fn location(r: &Record) -> [(header::HeaderName, String); 1] {
    [(header::LOCATION, format!("/v2/images/{}", r.id))]
}

/// `POST /v2/images`
pub async fn create(State(svc): State<Arc<ImageService>>, auth: Auth, body: axum::body::Bytes) -> Result<Response> {
    let body: Value = api::body::decode(&body)?;
    let Value::Object(given) = body else { return Err(bad("The request body must be a JSON object.")) };
    let mut a = fresh_attrs();
    let mut id = None;
    let mut owner = auth.project_id.clone().unwrap_or_default();
    for (k, v) in given {
        let v = check_attr(&auth, &k, v, true)?;
        match k.as_str() {
            "id" => id = v.as_str().map(String::from),
            "owner" => owner = v.as_str().unwrap_or_default().to_string(),
            _ => {
                a.insert(k, v);
            }
        }
    }
    let id = id.unwrap_or_else(common::id::new_uuid);
    if svc.db.find_record(&IMAGE, &id).await?.is_some() {
        return Err(ImageError::Conflict(format!("An image with identifier {id} already exists")));
    }
    let r = Record::new(id, owner, a);
    let mut w = svc.db.begin_write().await?;
    svc.db.insert_record(w.conn(), &IMAGE, &r).await?;
    w.commit().await?;
    Ok((StatusCode::CREATED, location(&r), Json(Value::Object(render(&r)))).into_response())
}

pub async fn show(State(svc): State<Arc<ImageService>>, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>> {
    Ok(Json(Value::Object(render(&visible_image(&svc, &auth, &id).await?))))
}

/// `GET /v2/images/{id}/tasks` (2.12): the asynchronous tasks that worked on
/// the image. Data here only ever arrives synchronously (`PUT /file`), so
/// there are none to show.
pub async fn tasks(State(svc): State<Arc<ImageService>>, auth: Auth, Path(id): Path<String>) -> Result<Json<Value>> {
    visible_image(&svc, &auth, &id).await?;
    Ok(Json(json!({"tasks": []})))
}

/// A list filter value with Glance's operators: `in:a,b` and, for times and
/// sizes, `gt:`, `gte:`, `lt:`, `lte:`, `eq:`, `neq:`.
fn matches_filter(v: Option<&Value>, wanted: &str) -> bool {
    let text = match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => return false,
        Some(other) => other.to_string(),
    };
    if let Some(list) = wanted.strip_prefix("in:") {
        return split_in(list).contains(&text);
    }
    for (op, f) in [
        ("gte:", (|a: std::cmp::Ordering| a.is_ge()) as fn(std::cmp::Ordering) -> bool),
        ("lte:", |a| a.is_le()),
        ("gt:", |a| a.is_gt()),
        ("lt:", |a| a.is_lt()),
        ("neq:", |a| a.is_ne()),
        ("eq:", |a| a.is_eq()),
    ] {
        if let Some(rhs) = wanted.strip_prefix(op) {
            return f(text.as_str().cmp(rhs));
        }
    }
    text == wanted
}

/// `in:` lists allow quoted entries containing commas.
fn split_in(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in list.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// `GET /v2/images`, with Glance's filters, sorting and paging.
pub async fn list(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>> {
    let mut filters: Vec<(String, String)> = Vec::new();
    let mut tags = Vec::new();
    let (mut limit, mut marker) = (None, None);
    let mut sorts: Vec<(String, bool)> = Vec::new();
    let (mut sort_keys, mut sort_dirs) = (Vec::new(), Vec::new());
    let mut visibility = None;
    let mut member_status = "accepted".to_string();
    let (mut size_min, mut size_max) = (None, None);
    let mut hidden = false;
    for (k, v) in &pairs {
        match k.as_str() {
            "limit" => {
                limit = Some(v.parse::<usize>().map_err(|_| bad(format!("limit param must be an integer, not {v}")))?)
            }
            "marker" => marker = Some(v.clone()),
            "sort_key" => sort_keys.push(v.clone()),
            "sort_dir" => sort_dirs.push(v.clone()),
            "sort" => {
                for part in v.split(',') {
                    let (key, dir) = part.split_once(':').unwrap_or((part, "desc"));
                    sorts.push((key.trim().to_string(), dir.trim() != "desc"));
                }
            }
            "tag" => tags.push(v.clone()),
            "visibility" => visibility = Some(v.clone()),
            "member_status" => member_status = v.clone(),
            "size_min" => size_min = Some(v.parse::<i64>().map_err(|_| bad("size_min must be an integer"))?),
            "size_max" => size_max = Some(v.parse::<i64>().map_err(|_| bad("size_max must be an integer"))?),
            "os_hidden" => hidden = v.eq_ignore_ascii_case("true"),
            _ => filters.push((k.clone(), v.clone())),
        }
    }
    if let Some(v) = &visibility {
        if !VISIBILITIES.contains(&v.as_str()) && v != "all" {
            return Err(bad(format!("Invalid visibility value: {v}")));
        }
    }
    if !["accepted", "pending", "rejected", "all"].contains(&member_status.as_str()) {
        return Err(bad(format!("Invalid status value: {member_status}")));
    }
    for (i, key) in sort_keys.iter().enumerate() {
        let dir = sort_dirs.get(i).or(sort_dirs.first()).map(String::as_str).unwrap_or("desc");
        if dir != "asc" && dir != "desc" {
            return Err(bad(format!("Invalid sort direction: {dir}")));
        }
        sorts.push((key.clone(), dir == "asc"));
    }
    if let Some((k, _)) = sorts.iter().find(|(k, _)| !SORT_KEYS.contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid sort key: {k}. It should be one of the following: {}.",
            SORT_KEYS.join(", ")
        )));
    }
    if sorts.is_empty() {
        sorts.push(("created_at".into(), false));
    }
    if !sorts.iter().any(|(k, _)| k == "id") {
        let asc = sorts[0].1;
        sorts.push(("id".into(), asc));
    }

    let project = auth.project_id.clone().unwrap_or_default();
    let memberships = members::of_member(&svc, &project).await?;
    let mut images: Vec<Map<String, Value>> = Vec::new();
    for r in svc.db.list_records(&IMAGE, None).await? {
        let vis = r.attrs.get("visibility").and_then(Value::as_str).unwrap_or("shared").to_string();
        let mine = r.project_id == project;
        let membership = memberships.get(&r.id);
        let shown = match visibility.as_deref() {
            // Without a visibility filter: public, owned, and shared with us
            // (accepted by default); community images only on request.
            None => {
                auth.is_admin()
                    || mine
                    || vis == "public"
                    || (vis == "shared"
                        && membership.is_some_and(|s| member_status == "all" || s.as_str() == member_status))
            }
            Some("all") => {
                auth.is_admin()
                    || mine
                    || vis == "public"
                    || vis == "community"
                    || (vis == "shared" && membership.is_some())
            }
            Some("community") => vis == "community",
            Some("public") => vis == "public",
            Some("private") => vis == "private" && (auth.is_admin() || mine),
            Some("shared") => {
                vis == "shared"
                    && (auth.is_admin()
                        || mine
                        || membership.is_some_and(|s| member_status == "all" || s.as_str() == member_status))
            }
            Some(_) => false,
        };
        if !shown {
            continue;
        }
        // Hidden images appear only when asked for with `os_hidden=true`.
        if r.flag("os_hidden") != hidden {
            continue;
        }
        let m = render(&r);
        let size = m.get("size").and_then(Value::as_i64);
        if size_min.is_some_and(|min| size.is_none_or(|s| s < min))
            || size_max.is_some_and(|max| size.is_none_or(|s| s > max))
        {
            continue;
        }
        let has_tags = m.get("tags").and_then(Value::as_array).cloned().unwrap_or_default();
        if !tags.iter().all(|t| has_tags.iter().any(|x| x.as_str() == Some(t.as_str()))) {
            continue;
        }
        if filters.iter().all(|(k, v)| matches_filter(m.get(k.as_str()), v)) {
            images.push(m);
        }
    }
    images.sort_by(|a, b| {
        for (k, asc) in &sorts {
            let o = compare(a.get(k.as_str()), b.get(k.as_str()));
            if o != std::cmp::Ordering::Equal {
                return if *asc { o } else { o.reverse() };
            }
        }
        std::cmp::Ordering::Equal
    });
    let start = match &marker {
        Some(m) => images
            .iter()
            .position(|i| i["id"].as_str() == Some(m.as_str()))
            .map(|p| p + 1)
            .ok_or_else(|| not_found(m))?,
        None => 0,
    };
    let limit = limit.unwrap_or(LIMIT_DEFAULT).min(LIMIT_MAX);
    let page: Vec<Value> = images.iter().skip(start).take(limit).cloned().map(Value::Object).collect();
    let mut out = json!({"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"});
    if start + limit < images.len() {
        if let Some(last) = page.last().and_then(|i| i["id"].as_str()) {
            let mut q: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k != "marker")
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            q.push(format!("marker={last}"));
            out["next"] = json!(format!("/v2/images?{}", q.join("&")));
        }
    }
    Ok(Json(out))
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const PATCH_TYPE: &str = "application/openstack-images-v2.1-json-patch";

/// One operation's kind and path, in either patch dialect: v2.1's
/// `{"op": "replace", "path": "/name"}` or v2.0's `{"replace": "/name"}`.
fn patch_operation(op: &Value) -> Result<(&str, &str)> {
    if let Some(kind) = op.get("op").and_then(Value::as_str) {
        let path =
            op.get("path").and_then(Value::as_str).ok_or_else(|| bad(format!("Operation {op} has no 'path'")))?;
        return Ok((kind, path));
    }
    ["add", "replace", "remove"]
        .iter()
        .find_map(|k| op.get(*k).and_then(Value::as_str).map(|path| (*k, path)))
        .ok_or_else(|| bad(format!("Operation {op} names no operation")))
}

/// The attribute a JSON pointer names (RFC 6901: `~1` is `/`, `~0` is `~`),
/// refusing what Glance refuses: no leading `/`, empty or nested tokens, and
/// a `~` that starts no known escape.
fn pointer_key(path: &str) -> Result<String> {
    let invalid = |why: &str| bad(format!("Pointer `{path}` {why}"));
    let token = path.strip_prefix('/').ok_or_else(|| invalid("does not start with \"/\"."))?;
    if token.trim().is_empty() {
        return Err(invalid("does not contain a valid token."));
    }
    if token.contains('/') {
        return Err(invalid("names a nested attribute; only top-level attributes can be patched."));
    }
    let mut chars = token.chars().peekable();
    let mut key = String::new();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('~', Some('0')) => key.push('~'),
            ('~', Some('1')) => key.push('/'),
            ('~', _) => return Err(invalid("contains \"~\" not part of a recognized escape sequence.")),
            (c, _) => {
                key.push(c);
                continue;
            }
        }
        chars.next();
    }
    Ok(key.trim().to_string())
}

/// `PATCH /v2/images/{id}` with a JSON patch (`add`, `replace`, `remove`).
pub async fn update(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !ctype.starts_with(PATCH_TYPE) && !ctype.starts_with("application/openstack-images-v2.0-json-patch") {
        return Err(ImageError::UnsupportedMedia(format!("Unsupported Content-Type {ctype}; use {PATCH_TYPE}")));
    }
    let ops: Value = api::body::decode(&body)?;
    let ops = ops.as_array().ok_or_else(|| bad("A JSON patch must be a list of operations."))?.clone();
    let mut r = owned_image(&svc, &auth, &id).await?;
    for op in ops {
        let (kind, path) = patch_operation(&op)?;
        let key = pointer_key(path)?;
        let key = key.as_str();
        match kind {
            "add" | "replace" => {
                let v = op.get("value").cloned().ok_or_else(|| bad(format!("Operation {op} has no 'value'")))?;
                if kind == "replace" && !r.attrs.contains_key(key) && key != "owner" {
                    return Err(bad(format!("Property {key} does not exist.")));
                }
                if matches!(key, "disk_format" | "container_format")
                    && r.attrs.get("status").and_then(Value::as_str) != Some("queued")
                {
                    return Err(ImageError::Forbidden(format!(
                        "Attribute {key} can be only replaced for a queued image."
                    )));
                }
                let v = check_attr(&auth, key, v, false)?;
                if key == "owner" {
                    r.project_id = v.as_str().unwrap_or_default().to_string();
                } else {
                    r.attrs.insert(key.to_string(), v);
                }
            }
            "remove" => {
                if is_reserved(key) {
                    return Err(ImageError::Forbidden(format!("Attribute '{key}' is reserved.")));
                }
                if fresh_attrs().contains_key(key) || READ_ONLY.contains(&key) || key == "owner" {
                    return Err(ImageError::Forbidden(format!("Attribute '{key}' cannot be removed.")));
                }
                if r.attrs.remove(key).is_none() {
                    return Err(ImageError::Conflict(format!("Property {key} does not exist.")));
                }
            }
            other => return Err(bad(format!("Invalid operation: `{other}`"))),
        }
    }
    r.touch();
    let mut w = svc.db.begin_write().await?;
    svc.db.update_record(w.conn(), &IMAGE, &r).await?;
    w.commit().await?;
    Ok(Json(Value::Object(render(&r))))
}

pub async fn delete(State(svc): State<Arc<ImageService>>, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let r = owned_image(&svc, &auth, &id).await?;
    if r.attrs.get("protected").and_then(Value::as_bool) == Some(true) {
        return Err(ImageError::Forbidden(format!("Image {id} is protected and cannot be deleted.")));
    }
    let mut w = svc.db.begin_write().await?;
    members::delete_all(&svc, w.conn(), &id).await?;
    svc.db.delete_record(w.conn(), &IMAGE, &id).await?;
    w.commit().await?;
    svc.files.remove(&id).await.map_err(crate::files::StoreError::from).map_err(ImageError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deactivation and reactivation, by the image's owner or an admin.
async fn set_status(svc: &ImageService, auth: &Auth, id: &str, from: &str, to: &str) -> Result<StatusCode> {
    let mut r = owned_image(svc, auth, id).await?;
    let status = r.attrs.get("status").and_then(Value::as_str).unwrap_or_default().to_string();
    if status == to {
        return Ok(StatusCode::NO_CONTENT);
    }
    if status != from {
        return Err(ImageError::Forbidden(format!("Not allowed to change status of image in status '{status}'.")));
    }
    r.attrs.insert("status".into(), json!(to));
    r.touch();
    let mut w = svc.db.begin_write().await?;
    svc.db.update_record(w.conn(), &IMAGE, &r).await?;
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn deactivate(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    set_status(&svc, &auth, &id, "active", "deactivated").await
}

pub async fn reactivate(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    set_status(&svc, &auth, &id, "deactivated", "active").await
}

async fn change_tags(svc: &ImageService, auth: &Auth, id: &str, tag: &str, add: bool) -> Result<StatusCode> {
    let mut r = owned_image(svc, auth, id).await?;
    let mut tags: Vec<String> = r
        .attrs
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if add {
        if tag.chars().count() > 255 {
            return Err(bad("Tag is too long"));
        }
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    } else {
        let before = tags.len();
        tags.retain(|t| t != tag);
        if tags.len() == before {
            return Err(ImageError::NotFound(format!("Tag {tag} not found")));
        }
    }
    r.attrs.insert("tags".into(), json!(tags));
    r.touch();
    let mut w = svc.db.begin_write().await?;
    svc.db.update_record(w.conn(), &IMAGE, &r).await?;
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_tag(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    change_tags(&svc, &auth, &id, &tag, true).await
}

pub async fn remove_tag(
    State(svc): State<Arc<ImageService>>,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    change_tags(&svc, &auth, &id, &tag, false).await
}

/// Image id → the caller's membership status, for listings.
pub type Memberships = HashMap<String, MemberStatus>;

#[cfg(test)]
mod pointer_tests {
    use super::pointer_key;

    #[test]
    fn pointers_decode_their_escapes_and_refuse_unknown_ones() {
        assert_eq!(pointer_key("/name").unwrap(), "name");
        assert_eq!(pointer_key("/a~1b~0c").unwrap(), "a/b~c");
        for bad in ["/~2", "/x~", "name", "/", "/a/b", "/ "] {
            assert!(pointer_key(bad).is_err(), "{bad}");
        }
    }
}
