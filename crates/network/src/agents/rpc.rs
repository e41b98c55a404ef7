//! Agents → server: the RPCs agents make. `report_state` keeps an agent alive;
//! `get_devices_details_list` / `get_ports_on_host` tell an agent how to wire
//! ports; `update_device_up`/`update_device_down` report that it has, and
//! l2population tells every other agent where a port that came up (or went)
//! lives; `get_network_fdb` gives a (re)starting agent the whole table.

use std::sync::Arc;

use bus::{CallContext, RemoteError, ServeOptions};
use network_rpc::{
    DeviceDetails, DeviceList, DeviceListResult, DeviceOnHost, DevicesOnHost, DhcpNetwork, DhcpPort, DhcpPortRequest,
    FdbEntry, FixedIp, Host, MemberIps, NetworkOnHost, Plugin, PluginHandler, PluginReports, PluginReportsHandler,
    ReportState, SecurityGroupInfo, SecurityGroupRule,
};
use serde_json::{json, Value};

use crate::error::Result;
use crate::ml2::mechanisms::l2population;
use crate::plugin::{Change, Txn};
use crate::store::{Record, Segment, NETWORK, PORT, SECURITY_GROUP_RULE};
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
    tokio::spawn(async move { renotify_unwired(&rpc.0).await });
    Ok(())
}

/// Notifies the agents again of every bound port that is not up yet. Agents
/// missed what was sent while the server was down (notifications are fanouts,
/// and a server may die between commit and cast); wiring a port twice is
/// harmless. (An agent that restarts asks for its host's ports itself.)
async fn renotify_unwired(net: &Network) {
    let ports = match net.store.list(&PORT, None).await {
        Ok(ports) => ports,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the ports to notify again");
            return;
        }
    };
    let unwired = ports.iter().filter(|p| {
        !p.str("binding:host_id").unwrap_or_default().is_empty()
            && p.str("status") == Some("DOWN")
            && network_rpc::is_bound(p.str("binding:vif_type"))
    });
    let mut sent = 0;
    for port in unwired {
        crate::plugin::notify::port_update(net, port).await;
        sent += 1;
    }
    if sent > 0 {
        tracing::info!(ports = sent, "notified the agents again of ports not up yet");
    }
}

impl PluginReportsHandler for AgentRpc {
    async fn report_state(&self, _ctx: &CallContext, args: ReportState) -> std::result::Result<String, RemoteError> {
        crate::plugin::agents::report_state(&self.0, args.state()).await.map_err(remote)?;
        Ok("alive".into())
    }
}

impl PluginHandler for AgentRpc {
    async fn get_devices_details_list(
        &self,
        _ctx: &CallContext,
        args: DevicesOnHost,
    ) -> std::result::Result<Vec<DeviceDetails>, RemoteError> {
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
    ) -> std::result::Result<DeviceDetails, RemoteError> {
        device_details(&self.0, &args.device).await.map_err(remote)
    }

    async fn update_device_up(&self, _ctx: &CallContext, args: DeviceOnHost) -> std::result::Result<(), RemoteError> {
        set_status(&self.0, &args.device, &args.host, true).await.map_err(remote)
    }

    async fn update_device_down(&self, _ctx: &CallContext, args: DeviceOnHost) -> std::result::Result<(), RemoteError> {
        set_status(&self.0, &args.device, &args.host, false).await.map_err(remote)
    }

    async fn update_device_list(
        &self,
        _ctx: &CallContext,
        args: DeviceList,
    ) -> std::result::Result<DeviceListResult, RemoteError> {
        let net = &self.0;
        set_statuses(net, &args.devices_up, &args.host, true).await.map_err(remote)?;
        set_statuses(net, &args.devices_down, &args.host, false).await.map_err(remote)?;
        Ok(DeviceListResult { devices_up: args.devices_up, devices_down: args.devices_down, ..Default::default() })
    }

    async fn get_ports_on_host(
        &self,
        _ctx: &CallContext,
        args: Host,
    ) -> std::result::Result<Vec<DeviceDetails>, RemoteError> {
        let net = &self.0;
        let ports = net.store.list(&PORT, None).await.map_err(remote)?;
        let mut out = Vec::new();
        for p in ports.iter().filter(|p| {
            p.str("binding:host_id") == Some(args.host.as_str()) && network_rpc::is_bound(p.str("binding:vif_type"))
        }) {
            out.push(details_of(net, p).await.map_err(remote)?);
        }
        Ok(out)
    }

    async fn get_network_fdb(
        &self,
        _ctx: &CallContext,
        args: NetworkOnHost,
    ) -> std::result::Result<Vec<FdbEntry>, RemoteError> {
        l2population::network_fdb(&self.0, &args.network_id, &args.host).await.map_err(remote)
    }

    async fn security_group_info_for_devices(
        &self,
        _ctx: &CallContext,
        args: DevicesOnHost,
    ) -> std::result::Result<SecurityGroupInfo, RemoteError> {
        security_group_info(&self.0, &args.devices).await.map_err(remote)
    }

    async fn get_active_networks_info(
        &self,
        _ctx: &CallContext,
        args: Host,
    ) -> std::result::Result<Vec<DhcpNetwork>, RemoteError> {
        crate::plugin::dhcp::active_networks(&self.0, &args.host).await.map_err(remote)
    }

    async fn get_network_info(
        &self,
        _ctx: &CallContext,
        args: NetworkOnHost,
    ) -> std::result::Result<Option<DhcpNetwork>, RemoteError> {
        crate::plugin::dhcp::network_info(&self.0, &args.network_id, &args.host).await.map_err(remote)
    }

    async fn create_dhcp_port(
        &self,
        _ctx: &CallContext,
        args: DhcpPortRequest,
    ) -> std::result::Result<DhcpPort, RemoteError> {
        crate::plugin::dhcp::dhcp_port(&self.0, &args.network_id, &args.host).await.map_err(remote)
    }

    async fn release_dhcp_port(
        &self,
        _ctx: &CallContext,
        args: DhcpPortRequest,
    ) -> std::result::Result<(), RemoteError> {
        crate::plugin::dhcp::release_dhcp_port(&self.0, &args.network_id, &args.host).await.map_err(remote)
    }
}

fn port_groups(port: &Record) -> impl Iterator<Item = &str> {
    port.attrs.get("security_groups").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

/// The rules of the devices' groups, and the member addresses of every group
/// those rules name as remote (as Neutron's `security_group_info_for_devices`).
async fn security_group_info(net: &Network, devices: &[String]) -> Result<SecurityGroupInfo> {
    let mut info = SecurityGroupInfo::default();
    for device in devices {
        let Some(port) = net.store.find(&PORT, device).await? else { continue };
        for group in port_groups(&port) {
            if info.security_groups.contains_key(group) {
                continue;
            }
            let rules = net.store.list(&SECURITY_GROUP_RULE, Some(("security_group_id", group))).await?;
            info.security_groups.insert(group.to_string(), rules.iter().map(rule_of).collect());
        }
    }
    let remotes: std::collections::BTreeSet<String> =
        info.security_groups.values().flatten().filter_map(|r| r.remote_group_id.clone()).collect();
    if remotes.is_empty() {
        return Ok(info);
    }
    let ports = net.store.list(&PORT, None).await?;
    for group in remotes {
        let mut members = MemberIps::default();
        for port in ports.iter().filter(|p| port_groups(p).any(|g| g == group)) {
            let pairs = port.attrs.get("allowed_address_pairs").and_then(Value::as_array).into_iter().flatten();
            let addresses = fixed_ips(port)
                .into_iter()
                .map(|f| f.ip_address)
                .chain(pairs.filter_map(|p| p.get("ip_address").and_then(Value::as_str).map(String::from)));
            for a in addresses {
                let list = if a.contains(':') { &mut members.ipv6 } else { &mut members.ipv4 };
                if !list.contains(&a) {
                    list.push(a);
                }
            }
        }
        info.sg_member_ips.insert(group, members);
    }
    Ok(info)
}

fn rule_of(r: &Record) -> SecurityGroupRule {
    let text = |k: &str| r.str(k).map(String::from);
    let number = |k: &str| r.attrs.get(k).and_then(Value::as_i64);
    SecurityGroupRule {
        id: r.id.clone(),
        direction: text("direction").unwrap_or_default(),
        ethertype: text("ethertype").unwrap_or_else(|| "IPv4".into()),
        protocol: text("protocol"),
        port_range_min: number("port_range_min"),
        port_range_max: number("port_range_max"),
        remote_ip_prefix: text("remote_ip_prefix"),
        remote_group_id: text("remote_group_id"),
    }
}

async fn device_details(net: &Network, device: &str) -> Result<DeviceDetails> {
    match net.store.find(&PORT, device).await? {
        Some(port) => details_of(net, &port).await,
        None => Ok(DeviceDetails { device: device.to_string(), ..DeviceDetails::default() }),
    }
}

/// The segment the port is bound on (else its network's first).
pub(crate) async fn bound_segment(net: &Network, port: &Record) -> Result<Option<Segment>> {
    let segments = net.store.segments(port.str("network_id").unwrap_or_default()).await?;
    let bound = port.str("_segment_id").and_then(|sid| segments.iter().position(|s| s.id == sid));
    Ok(segments.into_iter().nth(bound.unwrap_or(0)))
}

/// What an agent needs to wire a port: its network's segment, MTU, addresses
/// and security.
async fn details_of(net: &Network, port: &Record) -> Result<DeviceDetails> {
    let network_id = port.str("network_id").unwrap_or_default().to_string();
    let network: Option<Record> = net.store.find(&NETWORK, &network_id).await?;
    let segment = bound_segment(net, port).await?;
    let list = |key: &str| port.attrs.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(DeviceDetails {
        device: port.id.clone(),
        network_id,
        mac_address: port.str("mac_address").unwrap_or_default().to_string(),
        admin_state_up: port.flag("admin_state_up"),
        network_type: segment.as_ref().map(|s| s.network_type.clone()),
        segmentation_id: segment.as_ref().and_then(|s| s.segmentation_id),
        physical_network: segment.as_ref().and_then(|s| s.physical_network.clone()),
        mtu: network.as_ref().and_then(|n| n.attrs.get("mtu")).and_then(Value::as_u64).map(|m| m as u32),
        fixed_ips: fixed_ips(port),
        device_owner: port.str("device_owner").unwrap_or_default().to_string(),
        security_groups: list("security_groups").iter().filter_map(|g| g.as_str().map(String::from)).collect(),
        port_security_enabled: port.flag("port_security_enabled"),
        allowed_address_pairs: list("allowed_address_pairs"),
        host: port.str("binding:host_id").unwrap_or_default().to_string(),
        vif_type: port.str("binding:vif_type").unwrap_or_default().to_string(),
    })
}

fn fixed_ips(port: &Record) -> Vec<FixedIp> {
    crate::plugin::ports::fixed_ips(port)
        .into_iter()
        .map(|(subnet_id, ip_address)| FixedIp { subnet_id, ip_address })
        .collect()
}

/// An agent wired (or unwired) a port on its host. Once up on an overlay
/// network, every other host learns where it is (l2population).
async fn set_status(net: &Network, device: &str, host: &str, up: bool) -> Result<()> {
    set_statuses(net, &[device.to_string()], host, up).await
}

/// [`set_status`] for many devices: one transaction, after which the
/// mechanism drivers hear of the status changes (l2population: one fanout).
async fn set_statuses(net: &Network, devices: &[String], host: &str, up: bool) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let status = if up { "ACTIVE" } else { "DOWN" };
    let mut w = Txn::begin(net).await?;
    for device in devices {
        let Some(mut port) = net.store.find_in(w.conn(), &PORT, device).await? else { continue };
        let bound_here = port.str("binding:host_id") == Some(host);
        if (bound_here || host.is_empty()) && port.str("status") != Some(status) {
            let before = port.clone();
            port.attrs.insert("status".into(), json!(status));
            port.touch();
            net.store.update(w.conn(), &PORT, &port).await?;
            w.record(Change::PortStatus { before, after: port });
        }
    }
    w.commit().await
}
