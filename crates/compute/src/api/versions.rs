//! Version documents: `/` lists v2.0 and v2.1; `/v2.1` and `/v2` describe
//! one, with the microversion range.

use api::BaseUrl;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::VERSIONS;

const UPDATED: &str = "2013-07-23T11:33:21Z";

fn version(base: &BaseUrl, id: &str) -> Value {
    let (path, status, version, min) = match id {
        "v2.0" => ("v2/", "SUPPORTED", String::new(), String::new()),
        _ => ("v2.1/", "CURRENT", VERSIONS.max.to_string(), VERSIONS.min.to_string()),
    };
    json!({
        "id": id,
        "status": status,
        "version": version,
        "min_version": min,
        "updated": if id == "v2.0" { "2011-01-21T11:33:21Z" } else { UPDATED },
        "links": [{"rel": "self", "href": format!("{}/{path}", base.0)}],
    })
}

fn detailed(base: &BaseUrl, id: &str) -> Value {
    let mut v = version(base, id);
    v["links"] = json!([
        {"rel": "self", "href": format!("{}/{}/", base.0, if id == "v2.0" { "v2" } else { "v2.1" })},
        {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
    ]);
    v["media-types"] =
        json!([{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]);
    v
}

pub async fn root(base: BaseUrl) -> (StatusCode, Json<Value>) {
    (StatusCode::OK, Json(json!({"versions": [version(&base, "v2.0"), version(&base, "v2.1")]})))
}

pub async fn v21(base: BaseUrl) -> Json<Value> {
    Json(json!({"version": detailed(&base, "v2.1")}))
}

pub async fn v2(base: BaseUrl) -> Json<Value> {
    Json(json!({"version": detailed(&base, "v2.0")}))
}
