//! Version discovery: `GET /` lists the API versions (300 Multiple Choices, as
//! Keystone answers), `GET /v3` describes v3. keystoneauth takes its base URL from
//! the `self` link, so it names the host the client used.

use api::BaseUrl;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

fn v3(base: &BaseUrl) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": base.join("/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

pub async fn root(base: BaseUrl) -> (StatusCode, Json<Value>) {
    (StatusCode::MULTIPLE_CHOICES, Json(json!({"versions": {"values": [v3(&base)]}})))
}

pub async fn version(base: BaseUrl) -> Json<Value> {
    Json(json!({"version": v3(&base)}))
}
