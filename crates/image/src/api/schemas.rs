//! `/v2/schemas/*`: the JSON schemas clients (glanceclient, Horizon) read to
//! learn an image's attributes, and the version document at `/`.

use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::images::{CONTAINER_FORMATS, DISK_FORMATS};

fn nullable_enum(options: &[&str]) -> Vec<Value> {
    std::iter::once(Value::Null).chain(options.iter().map(|f| json!(f))).collect()
}

fn image_properties() -> Value {
    let nullable_string =
        |desc: &str, max: u64| json!({"type": ["null", "string"], "maxLength": max, "description": desc});
    let read_only = |t: Value, desc: &str| json!({"type": t, "readOnly": true, "description": desc});
    json!({
        "id": {"type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
               "description": "An identifier for the image"},
        "name": nullable_string("Descriptive name for the image", 255),
        "status": {"type": "string", "readOnly": true, "description": "Status of the image",
                   "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"]},
        "visibility": {"type": "string", "enum": ["community", "public", "private", "shared"],
                       "description": "Scope of image accessibility"},
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
        "checksum": read_only(json!(["null", "string"]), "md5 hash of image contents."),
        "os_hash_algo": read_only(json!(["null", "string"]), "Algorithm to calculate the os_hash_value"),
        "os_hash_value": read_only(json!(["null", "string"]), "Hexdigest of the image contents using the algorithm in os_hash_algo."),
        "owner": nullable_string("Owner of the image", 255),
        "size": read_only(json!(["null", "integer"]), "Size of image file in bytes"),
        "virtual_size": read_only(json!(["null", "integer"]), "Virtual size of image in bytes"),
        "container_format": {"type": ["null", "string"], "enum": nullable_enum(CONTAINER_FORMATS), "description": "Format of the container"},
        "disk_format": {"type": ["null", "string"], "enum": nullable_enum(DISK_FORMATS), "description": "Format of the disk"},
        "created_at": read_only(json!("string"), "Date and time of image registration"),
        "updated_at": read_only(json!("string"), "Date and time of the last image modification"),
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}, "description": "List of strings related to the image"},
        "direct_url": read_only(json!("string"), "URL to access the image file kept in external store"),
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
        "self": read_only(json!("string"), "An image self url"),
        "file": read_only(json!("string"), "An image file url"),
        "stores": read_only(json!("string"), "Store in which image data resides."),
        "schema": read_only(json!("string"), "An image schema url"),
        "locations": {"type": "array", "description": "A set of URLs to access the image file kept in external store",
                      "items": {"type": "object", "required": ["url", "metadata"],
                                "properties": {"url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}}}},
        "kernel_id": {"type": ["null", "string"], "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.", "is_base": false},
        "ramdisk_id": {"type": ["null", "string"], "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.", "is_base": false},
        "instance_uuid": {"type": "string", "description": "Metadata which can be used to record which instance this image is associated with.", "is_base": false},
        "architecture": {"type": "string", "description": "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html", "is_base": false},
        "os_distro": {"type": "string", "description": "Common name of operating system distribution", "is_base": false},
        "os_version": {"type": "string", "description": "Operating system version as specified by the distributor", "is_base": false},
    })
}

fn image_schema() -> Value {
    json!({
        "name": "image",
        "properties": image_properties(),
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

pub async fn image() -> Json<Value> {
    Json(image_schema())
}

pub async fn images() -> Json<Value> {
    Json(json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }))
}

fn member_schema() -> Value {
    json!({
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"], "description": "The status of this image member"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "schema": {"type": "string", "readOnly": true},
        },
    })
}

pub async fn member() -> Json<Value> {
    Json(member_schema())
}

pub async fn members() -> Json<Value> {
    Json(json!({
        "name": "members",
        "properties": {"members": {"type": "array", "items": member_schema()}, "schema": {"type": "string"}},
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }))
}

/// The API versions this service speaks; Glance answers `/` and `/versions`
/// with 300 Multiple Choices.
pub async fn versions(OriginalUri(uri): OriginalUri, base: api::url::BaseUrl) -> (StatusCode, Json<Value>) {
    let status = if uri.path() == "/versions" { StatusCode::OK } else { StatusCode::MULTIPLE_CHOICES };
    let link = format!("{}/v2/", base.0.trim_end_matches('/'));
    let version =
        |id: &str, status: &str| json!({"id": id, "status": status, "links": [{"rel": "self", "href": link}]});
    let list: Vec<Value> = [
        ("v2.16", "CURRENT"),
        ("v2.15", "SUPPORTED"),
        ("v2.9", "SUPPORTED"),
        ("v2.7", "SUPPORTED"),
        ("v2.6", "SUPPORTED"),
        ("v2.5", "SUPPORTED"),
        ("v2.4", "SUPPORTED"),
        ("v2.3", "SUPPORTED"),
        ("v2.2", "SUPPORTED"),
        ("v2.1", "SUPPORTED"),
        ("v2.0", "SUPPORTED"),
    ]
    .iter()
    .map(|(id, st)| version(id, st))
    .collect();
    (status, Json(json!({"versions": list})))
}
