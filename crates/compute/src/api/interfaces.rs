//! `/servers/{id}/os-interface`: a server's ports, attached and detached
//! while it runs.

use api::request_id::RequestId;
use api::{Auth, Microversion};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use reqwest::Method;
use serde_json::{json, Value};

use super::servers::{check_lock, visible};
use super::{bad, json_body, State};
use crate::error::{ComputeError, Result};
use crate::model::{vm_state, Instance, Vif};

fn view(vif: &Vif, v: Microversion) -> Value {
    let mut out = json!({
        "port_state": vif.port_state,
        "fixed_ips": vif.fixed_ips.iter().map(|ip| json!({"subnet_id": ip.subnet_id, "ip_address": ip.ip_address})).collect::<Vec<_>>(),
        "port_id": vif.port_id,
        "net_id": vif.network_id,
        "mac_addr": vif.mac_address,
    });
    if v.at_least(2, 70) {
        out["tag"] = json!(vif.tag);
    }
    out
}

fn check_state(i: &Instance, what: &str) -> Result<()> {
    if ![vm_state::ACTIVE, vm_state::PAUSED, vm_state::STOPPED].contains(&i.vm_state.as_str()) {
        return Err(ComputeError::Conflict(format!(
            "Cannot '{what}' instance {} while it is in vm_state {}",
            i.uuid, i.vm_state
        )));
    }
    if let Some(t) = &i.task_state {
        return Err(ComputeError::Conflict(format!(
            "Cannot '{what}' instance {} while it is in task_state {t}",
            i.uuid
        )));
    }
    Ok(())
}

pub async fn list(svc: State, auth: Auth, v: Microversion, Path(id): Path<String>) -> Result<Json<Value>> {
    let i = visible(&svc, &auth, &id).await?;
    Ok(Json(json!({"interfaceAttachments": i.network_info.iter().map(|x| view(x, v)).collect::<Vec<_>>()})))
}

pub async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, port)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let i = visible(&svc, &auth, &id).await?;
    let vif = i
        .network_info
        .iter()
        .find(|x| x.port_id == port)
        .ok_or_else(|| ComputeError::NotFound(format!("Instance {id} is not attached to port {port}.")))?;
    Ok(Json(json!({"interfaceAttachment": view(vif, v)})))
}

pub async fn attach(
    svc: State,
    auth: Auth,
    v: Microversion,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let body = json_body(&body)?;
    let m = body.get("interfaceAttachment").cloned().unwrap_or(json!({}));
    let m = m.as_object().cloned().ok_or_else(|| bad("Invalid input for field/attribute interfaceAttachment."))?;
    let i = visible(&svc, &auth, &id).await?;
    check_lock(&auth, &i)?;
    check_state(&i, "attach_interface")?;
    let mut net_id = m.get("net_id").and_then(Value::as_str).map(String::from);
    let port_id = m.get("port_id").and_then(Value::as_str).map(String::from);
    let fixed_ip = m
        .get("fixed_ips")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|f| f["ip_address"].as_str())
        .map(String::from);
    if fixed_ip.is_some() && net_id.is_none() {
        return Err(bad("Must input network_id when request IP address"));
    }
    if net_id.is_some() && port_id.is_some() {
        return Err(bad("Must not input both network_id and port_id"));
    }
    let tag = m.get("tag").and_then(Value::as_str).filter(|_| v.at_least(2, 49)).map(String::from);
    let token = Some(auth.token.as_str());
    if let Some(p) = &port_id {
        let (status, port) = svc.session.call("network", Method::GET, &format!("/v2.0/ports/{p}"), None, token).await?;
        if !status.is_success() {
            return Err(ComputeError::NotFound(format!("Port {p} could not be found.")));
        }
        if !port["port"]["device_id"].as_str().unwrap_or_default().is_empty() {
            return Err(ComputeError::Conflict(format!("Port {p} is still in use.")));
        }
    } else if net_id.is_none() {
        let (_, nets) =
            svc.session.call("network", Method::GET, "/v2.0/networks?router:external=False", None, token).await?;
        let own: Vec<Value> = nets["networks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["project_id"].as_str() == Some(i.project_id.as_str()))
            .cloned()
            .collect();
        match own.len() {
            1 => net_id = own[0]["id"].as_str().map(String::from),
            0 => return Err(bad("No network available to attach an interface to.")),
            _ => {
                return Err(ComputeError::Conflict(
                    "Multiple possible networks found, use a Network ID to be more specific.".into(),
                ))
            }
        }
    } else if let Some(n) = &net_id {
        let (status, _) = svc.session.call("network", Method::GET, &format!("/v2.0/networks/{n}"), None, token).await?;
        if !status.is_success() {
            return Err(ComputeError::NotFound(format!("Network {n} could not be found.")));
        }
    }
    let host = i.host.clone().ok_or_else(|| ComputeError::Conflict("The server has no host.".into()))?;
    svc.store.start_action(&i.uuid, &request_id, "attach_interface", &i.project_id, &auth.user_id).await?;
    let args = compute_rpc::host::AttachArgs { uuid: i.uuid.clone(), net_id, port_id, fixed_ip, tag };
    let vif: Vif = svc.host(&host, &request_id).attach_interface(&args).await?;
    Ok(Json(json!({"interfaceAttachment": view(&vif, v)})))
}

pub async fn detach(
    svc: State,
    auth: Auth,
    RequestId(request_id): RequestId,
    Path((id, port)): Path<(String, String)>,
) -> Result<StatusCode> {
    let i = visible(&svc, &auth, &id).await?;
    check_lock(&auth, &i)?;
    check_state(&i, "detach_interface")?;
    if !i.network_info.iter().any(|x| x.port_id == port) {
        return Err(ComputeError::NotFound(format!("Port {port} is not attached")));
    }
    let host = i.host.clone().ok_or_else(|| ComputeError::Conflict("The server has no host.".into()))?;
    svc.store.start_action(&i.uuid, &request_id, "detach_interface", &i.project_id, &auth.user_id).await?;
    let args = compute_rpc::host::DetachArgs { uuid: i.uuid.clone(), port_id: port };
    svc.host(&host, &request_id).detach_interface(&args).await?;
    Ok(StatusCode::ACCEPTED)
}
