//! Agents → server: the RPCs agents make. `report_state` keeps an agent alive;
//! `get_devices_details_list` tells an agent how to wire ports;
//! `update_device_up`/`update_device_down` report that it has.

use std::sync::Arc;

use bus::{Message, RemoteError, Reply};
use serde_json::{json, Value};

use super::{PLUGIN_TOPIC, REPORTS_TOPIC};
use crate::error::Result;
use crate::store::{Record, NETWORK, PORT};
use crate::Network;

fn remote(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("NetworkError", e.to_string())
}

/// Serves the agent RPC topics as `server` (the network server's host name).
pub async fn serve(net: Arc<Network>, server: &str) -> std::result::Result<(), bus::BusError> {
    let bus = net.notifier.bus().clone();
    let reports = net.clone();
    bus.serve(REPORTS_TOPIC, server, move |m: Message| {
        let net = reports.clone();
        async move { handle_report(&net, m).await }
    })
    .await?;
    let plugin = net.clone();
    bus.serve(PLUGIN_TOPIC, server, move |m: Message| {
        let net = plugin.clone();
        async move { handle_plugin(&net, m).await }
    })
    .await?;
    Ok(())
}

async fn handle_report(net: &Network, m: Message) -> Reply {
    match m.method.as_str() {
        "report_state" => {
            // oslo sends {"agent_state": {"agent_state": {...}}, "time": ...}.
            let state =
                m.args.get("agent_state").map(|s| s.get("agent_state").unwrap_or(s)).cloned().unwrap_or(Value::Null);
            crate::api::agents::report_state(net, &state).await.map_err(remote)?;
            Ok(json!("alive"))
        }
        other => Err(RemoteError::new("UnsupportedVersion", format!("unknown method {other}"))),
    }
}

async fn handle_plugin(net: &Network, m: Message) -> Reply {
    let host = m.args.get("host").and_then(Value::as_str).unwrap_or_default().to_string();
    match m.method.as_str() {
        "get_devices_details_list" => {
            let devices: Vec<String> = m
                .args
                .get("devices")
                .and_then(Value::as_array)
                .map(|d| d.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default();
            let mut out = Vec::new();
            for d in devices {
                out.push(device_details(net, &d).await.map_err(remote)?);
            }
            Ok(Value::Array(out))
        }
        "get_device_details" => {
            let device = m.args.get("device").and_then(Value::as_str).unwrap_or_default();
            device_details(net, device).await.map_err(remote)
        }
        "update_device_up" | "update_device_down" => {
            let device = m.args.get("device").and_then(Value::as_str).unwrap_or_default().to_string();
            let up = m.method == "update_device_up";
            set_status(net, &device, &host, up).await.map_err(remote)?;
            Ok(Value::Null)
        }
        other => Err(RemoteError::new("UnsupportedVersion", format!("unknown method {other}"))),
    }
}

/// What an agent needs to wire a port: its network's segment, MTU, addresses
/// and security.
async fn device_details(net: &Network, device: &str) -> Result<Value> {
    let Some(port) = net.store.find(&PORT, device).await? else {
        return Ok(json!({"device": device}));
    };
    let network_id = port.str("network_id").unwrap_or_default().to_string();
    let network: Option<Record> = net.store.find(&NETWORK, &network_id).await?;
    let segments = net.store.segments(&network_id).await?;
    let segment = port.str("_segment_id").and_then(|sid| segments.iter().find(|s| s.id == sid)).or(segments.first());
    Ok(json!({
        "device": device,
        "port_id": port.id,
        "network_id": network_id,
        "mac_address": port.str("mac_address"),
        "admin_state_up": port.flag("admin_state_up"),
        "network_type": segment.map(|s| s.network_type.clone()),
        "segmentation_id": segment.and_then(|s| s.segmentation_id),
        "physical_network": segment.and_then(|s| s.physical_network.clone()),
        "mtu": network.as_ref().and_then(|n| n.attrs.get("mtu").cloned()),
        "fixed_ips": port.attrs.get("fixed_ips"),
        "device_owner": port.str("device_owner"),
        "security_groups": port.attrs.get("security_groups"),
        "port_security_enabled": port.flag("port_security_enabled"),
        "allowed_address_pairs": port.attrs.get("allowed_address_pairs"),
        "profile": port.attrs.get("binding:profile"),
    }))
}

/// An agent wired (or unwired) a port on its host.
async fn set_status(net: &Network, device: &str, host: &str, up: bool) -> Result<()> {
    let mut w = net.store.begin().await?;
    let Some(mut port) = net.store.find_in(w.conn(), &PORT, device).await? else { return Ok(()) };
    let bound_here = port.str("binding:host_id") == Some(host);
    let status = if up { "ACTIVE" } else { "DOWN" };
    if (bound_here || host.is_empty()) && port.str("status") != Some(status) {
        port.attrs.insert("status".into(), json!(status));
        port.touch();
        net.store.update(w.conn(), &PORT, &port).await?;
    }
    w.commit().await?;
    Ok(())
}
