//! Remote consoles: `POST /servers/{id}/remote-consoles` (2.6+) and the older
//! `os-getVNCConsole` action hand out a URL with a fresh token; the console
//! proxy trades the token for a connection to the guest's display;
//! `/os-console-auth-tokens/{token}` lets an admin see where a token leads.

use api::request_id::RequestId;
use api::{Auth, Microversion};
use axum::extract::Path;
use axum::Json;
use serde_json::{json, Value};

use super::server_actions::host_of;
use super::servers::visible;
use super::{admin_only, bad, body_object, json_body, ComputeApi, State};
use crate::error::{ComputeError, Result};
use crate::model::{vm_state, Instance};
use crate::store::consoles::ConsoleToken;

fn unavailable(kind: &str) -> ComputeError {
    bad(format!("Unavailable console type {kind}."))
}

/// A noVNC URL for the server's display, with a token valid for the
/// configured time.
pub async fn novnc_url(svc: &ComputeApi, i: &Instance, request_id: &str) -> Result<String> {
    if !svc.config.vnc_enabled {
        return Err(unavailable("novnc"));
    }
    if i.vm_state == vm_state::BUILDING || i.host.is_none() {
        return Err(ComputeError::Conflict(format!("Instance {} is not ready", i.uuid)));
    }
    let host = host_of(i)?;
    let uuid = i.uuid.clone();
    let at = svc.host(&host, request_id).get_vnc_console(&compute_rpc::host::InstanceRef { uuid }).await?;
    let token = uuid::Uuid::new_v4().to_string();
    let target =
        ConsoleToken { instance_uuid: i.uuid.clone(), console_type: "novnc".into(), host: at.host, port: at.port };
    svc.store.create_console_token(&token, &target, svc.config.console_token_ttl).await?;
    let base = &svc.config.novncproxy_base_url;
    let joiner = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{joiner}path=%3Ftoken%3D{token}"))
}

pub async fn create(
    svc: State,
    auth: Auth,
    v: Microversion,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    if !v.at_least(2, 6) {
        return Err(ComputeError::NotFound("The resource could not be found.".into()));
    }
    let body = json_body(&body)?;
    let m = body_object(&body, "remote_console")?;
    let field = |k: &str| -> Result<String> {
        m.get(k).and_then(Value::as_str).map(String::from).ok_or_else(|| {
            bad(format!("Invalid input for field/attribute remote_console. '{k}' is a required property"))
        })
    };
    let (protocol, kind) = (field("protocol")?, field("type")?);
    let known_protocols: &[&str] =
        if v.at_least(2, 8) { &["vnc", "spice", "rdp", "serial", "mks"] } else { &["vnc", "spice", "rdp", "serial"] };
    if !known_protocols.contains(&protocol.as_str()) {
        return Err(bad(format!("Invalid input for field/attribute protocol. Value: {protocol}.")));
    }
    let known_types = ["novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial", "webmks", "spice-direct"];
    if !known_types.contains(&kind.as_str()) {
        return Err(bad(format!("Invalid input for field/attribute type. Value: {kind}.")));
    }
    let i = visible(&svc, &auth, &id).await?;
    if protocol != "vnc" || kind != "novnc" {
        return Err(unavailable(&kind));
    }
    let url = novnc_url(&svc, &i, &request_id).await?;
    Ok(Json(json!({"remote_console": {"protocol": protocol, "type": kind, "url": url}})))
}

/// `GET /os-console-auth-tokens/{token}` (admin): where the token leads.
pub async fn show_token(svc: State, auth: Auth, v: Microversion, Path(token): Path<String>) -> Result<Json<Value>> {
    admin_only(&auth, "os_compute_api:os-console-auth-tokens")?;
    let t = svc
        .store
        .console_token(&token)
        .await?
        .ok_or_else(|| ComputeError::NotFound(format!("The token '{token}' is invalid or has expired")))?;
    // Before 2.31 only RDP tokens could be looked at.
    if !v.at_least(2, 31) && t.console_type != "rdp-html5" {
        return Err(ComputeError::Unauthorized("The requested console type details are not accessible".into()));
    }
    Ok(Json(json!({"console": {
        "instance_uuid": t.instance_uuid, "host": t.host, "port": t.port, "internal_access_path": null,
    }})))
}
