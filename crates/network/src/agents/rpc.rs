//! Agents → server: the RPCs agents make. `report_state` keeps an agent alive;
//! `get_devices_details_list` tells an agent how to wire ports;
//! `update_device_up`/`update_device_down` report that it has.

use std::sync::Arc;

use bus::{CallContext, RemoteError, ServeOptions};
use serde_json::{json, Value};

use super::interfaces::{
    DeviceOnHost, DevicesOnHost, Plugin, PluginHandler, PluginReports, PluginReportsHandler, ReportState,
};
use crate::error::Result;
use crate::store::{Record, NETWORK, PORT};
use crate::Network;

fn remote(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("NetworkError", e.to_string())
}

/// The server's answers to its agents.
struct AgentRpc(Arc<Network>);

/// Serves the agent RPC topics as `server` (the network server's host name).
pub async fn serve(net: Arc<Network>, server: &str) -> std::result::Result<(), bus::BusError> {
    let bus = net.notifier.bus().clone();
    let rpc = Arc::new(AgentRpc(net));
    PluginReports::serve(&bus, server, rpc.clone(), ServeOptions::default()).await?;
    Plugin::serve(&bus, server, rpc.clone(), ServeOptions::default()).await?;
    // A server killed between a port's commit and its notification lost the
    // notification: a new one sends again what no agent has wired yet.
    tokio::spawn(async move { renotify_unwired(&rpc.0, None).await });
    Ok(())
}

/// Notifies the agents again of every port bound (on `host`, or anywhere)
/// that is not up yet. Agents missed what was sent while they or the server
/// were down (notifications are fanouts, and a server may die between commit
/// and cast); wiring a port twice is harmless.
async fn renotify_unwired(net: &Network, host: Option<&str>) {
    let ports = match net.store.list(&PORT, None).await {
        Ok(ports) => ports,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the ports to notify again");
            return;
        }
    };
    let unwired = ports.iter().filter(|p| {
        let bound_to = p.str("binding:host_id").unwrap_or_default();
        !bound_to.is_empty()
            && host.is_none_or(|h| h == bound_to)
            && p.str("status") == Some("DOWN")
            && crate::api::ports::is_bound(p.str("binding:vif_type"))
    });
    let mut sent = 0;
    for port in unwired {
        crate::api::ports::notify_port(net, port).await;
        sent += 1;
    }
    if sent > 0 {
        tracing::info!(ports = sent, host = host.unwrap_or("any"), "notified the agents again of ports not up yet");
    }
}

impl PluginReportsHandler for AgentRpc {
    async fn report_state(&self, _ctx: &CallContext, args: ReportState) -> std::result::Result<String, RemoteError> {
        let state = args.state();
        crate::api::agents::report_state(&self.0, state).await.map_err(remote)?;
        // A restarted agent missed the notifications sent while it was down
        // (Neutron's l2population resyncs on the same flag).
        let restarted = state.get("start_flag").and_then(Value::as_bool) == Some(true);
        let agent_type = state.get("agent_type").and_then(Value::as_str).unwrap_or_default();
        let l2 = ![crate::api::agents::DHCP_AGENT, crate::api::agents::L3_AGENT].contains(&agent_type);
        if restarted && l2 {
            let (net, host) =
                (self.0.clone(), state.get("host").and_then(Value::as_str).unwrap_or_default().to_string());
            tokio::spawn(async move { renotify_unwired(&net, Some(&host)).await });
        }
        Ok("alive".into())
    }
}

impl PluginHandler for AgentRpc {
    async fn get_devices_details_list(
        &self,
        _ctx: &CallContext,
        args: DevicesOnHost,
    ) -> std::result::Result<Vec<Value>, RemoteError> {
        let mut out = Vec::new();
        for d in &args.devices {
            out.push(device_details(&self.0, d).await.map_err(remote)?);
        }
        Ok(out)
    }

    async fn get_device_details(
        &self,
        _ctx: &CallContext,
        args: DeviceOnHost,
    ) -> std::result::Result<Value, RemoteError> {
        device_details(&self.0, &args.device).await.map_err(remote)
    }

    async fn update_device_up(&self, _ctx: &CallContext, args: DeviceOnHost) -> std::result::Result<(), RemoteError> {
        set_status(&self.0, &args.device, &args.host, true).await.map_err(remote)
    }

    async fn update_device_down(&self, _ctx: &CallContext, args: DeviceOnHost) -> std::result::Result<(), RemoteError> {
        set_status(&self.0, &args.device, &args.host, false).await.map_err(remote)
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
