//! Every message between the network server and its agents, typed, in one
//! place: what agents ask the server (`q-reports-plugin`, `q-plugin`) and what
//! the server tells all agents (`q-agent-notifier-*` fanouts). The server and
//! the agents both build on this crate and the bus, and on nothing of each
//! other. Topics follow Neutron's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const REPORTS_TOPIC: &str = "q-reports-plugin";
pub const PLUGIN_TOPIC: &str = "q-plugin";
pub const PORT_UPDATE_TOPIC: &str = "q-agent-notifier-port-update";
pub const PORT_DELETE_TOPIC: &str = "q-agent-notifier-port-delete";
pub const NETWORK_UPDATE_TOPIC: &str = "q-agent-notifier-network-update";
pub const NETWORK_DELETE_TOPIC: &str = "q-agent-notifier-network-delete";
pub const SECURITY_GROUP_UPDATE_TOPIC: &str = "q-agent-notifier-security_group-update";
pub const L2POPULATION_TOPIC: &str = "q-agent-notifier-l2population-update";
/// The DHCP and L3 agents' own topics (Neutron's `dhcp_agent`, `l3_agent`).
pub const DHCP_AGENT_TOPIC: &str = "dhcp_agent";
pub const L3_AGENT_TOPIC: &str = "l3_agent";

/// The `agent_type` each kind of agent reports, as Neutron names them.
pub const LINUXBRIDGE_AGENT: &str = "Linux bridge agent";
pub const OPENVSWITCH_AGENT: &str = "Open vSwitch agent";
pub const DHCP_AGENT: &str = "DHCP agent";
pub const L3_AGENT: &str = "L3 agent";

/// The VXLAN UDP port (IANA's), which Neutron's agents use by default.
pub const VXLAN_UDP_PORT: u16 = 4789;

/// Whether a port of this `binding:vif_type` is bound: an agent on its host
/// has something to wire.
pub fn is_bound(vif_type: Option<&str>) -> bool {
    !matches!(vif_type, Some("unbound" | "binding_failed") | None)
}

/// The kernel device names Neutron gives a network's bridge and a port's tap:
/// a prefix and the first 11 characters of the id (interface names hold 15).
pub fn bridge_name(network_id: &str) -> String {
    format!("brq{}", short_id(network_id))
}

pub fn tap_name(port_id: &str) -> String {
    format!("tap{}", short_id(port_id))
}

/// The `device_id` of the DHCP port the agent on `host` serves
/// `network_id` from (Neutron's: a name-based UUID of the host).
pub fn dhcp_device_id(host: &str, network_id: &str) -> String {
    format!("dhcp{}-{network_id}", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, host.as_bytes()))
}

fn short_id(id: &str) -> &str {
    id.get(..11).unwrap_or(id)
}

/// `report_state`: oslo sends `{"agent_state": {"agent_state": {...}}, "time": ...}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportState {
    pub agent_state: Value,
    #[serde(default)]
    pub time: Option<String>,
}

impl ReportState {
    /// The agent's state, with or without oslo's extra level of nesting.
    pub fn state(&self) -> &Value {
        self.agent_state.get("agent_state").unwrap_or(&self.agent_state)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevicesOnHost {
    pub devices: Vec<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub host: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceOnHost {
    pub device: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub host: String,
}

/// `update_device_list`: many devices up and down on one host at once.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeviceList {
    #[serde(default)]
    pub devices_up: Vec<String>,
    #[serde(default)]
    pub devices_down: Vec<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub host: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceListResult {
    #[serde(default)]
    pub devices_up: Vec<String>,
    #[serde(default)]
    pub failed_devices_up: Vec<String>,
    #[serde(default)]
    pub devices_down: Vec<String>,
    #[serde(default)]
    pub failed_devices_down: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    pub host: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkOnHost {
    pub network_id: String,
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

/// What an agent needs to wire one port: its network's segment, MTU,
/// addresses and security. `network_id` is empty for a device the server
/// does not know (Neutron answers `{"device": id}` alone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceDetails {
    pub device: String,
    #[serde(default)]
    pub network_id: String,
    #[serde(default)]
    pub mac_address: String,
    #[serde(default)]
    pub admin_state_up: bool,
    #[serde(default)]
    pub network_type: Option<String>,
    #[serde(default)]
    pub segmentation_id: Option<i64>,
    #[serde(default)]
    pub physical_network: Option<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    #[serde(default)]
    pub device_owner: String,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub port_security_enabled: bool,
    #[serde(default)]
    pub allowed_address_pairs: Vec<Value>,
    /// The host it is bound to, and how (`binding:vif_type`).
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub vif_type: String,
}

impl DeviceDetails {
    /// Whether the server knows the device as a port bound somewhere.
    pub fn is_known(&self) -> bool {
        !self.network_id.is_empty()
    }
}

impl DeviceDetails {
    /// The details a port update carries (the port as the API shows it, and
    /// its segment), without asking the server again.
    pub fn from_port_update(u: &PortUpdate) -> DeviceDetails {
        let p = &u.port;
        let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let list = |k: &str| p.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        DeviceDetails {
            device: text("id"),
            network_id: text("network_id"),
            mac_address: text("mac_address"),
            admin_state_up: p.get("admin_state_up").and_then(Value::as_bool).unwrap_or(true),
            network_type: u.network_type.clone(),
            segmentation_id: u.segmentation_id,
            physical_network: u.physical_network.clone(),
            mtu: None,
            fixed_ips: serde_json::from_value(p.get("fixed_ips").cloned().unwrap_or_default()).unwrap_or_default(),
            device_owner: text("device_owner"),
            security_groups: list("security_groups").iter().filter_map(|g| g.as_str().map(String::from)).collect(),
            port_security_enabled: p.get("port_security_enabled").and_then(Value::as_bool).unwrap_or(false),
            allowed_address_pairs: list("allowed_address_pairs"),
            host: text("binding:host_id"),
            vif_type: text("binding:vif_type"),
        }
    }
}

/// A port changed (made, bound, updated): the agents on its host wire it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortUpdate {
    pub port: Value,
    #[serde(default)]
    pub network_type: Option<String>,
    #[serde(default)]
    pub segmentation_id: Option<i64>,
    #[serde(default)]
    pub physical_network: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortDelete {
    pub port_id: String,
    pub network_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkUpdate {
    pub network: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkDelete {
    pub network_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecurityGroups {
    pub security_groups: Vec<String>,
}

/// One security group rule as an agent enforces it (Neutron's fields; a
/// `protocol` of `None` is any, `port_range_*` are ICMP type and code for
/// ICMP).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SecurityGroupRule {
    #[serde(default)]
    pub id: String,
    pub direction: String,
    pub ethertype: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port_range_min: Option<i64>,
    #[serde(default)]
    pub port_range_max: Option<i64>,
    #[serde(default)]
    pub remote_ip_prefix: Option<String>,
    #[serde(default)]
    pub remote_group_id: Option<String>,
}

/// The addresses of a group's member ports (fixed IPs and allowed address
/// pairs), by ethertype: what a remote-group rule matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberIps {
    #[serde(rename = "IPv4", default)]
    pub ipv4: Vec<String>,
    #[serde(rename = "IPv6", default)]
    pub ipv6: Vec<String>,
}

/// `security_group_info_for_devices`: the rules of the devices' groups, and
/// the members of every group those rules name as remote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecurityGroupInfo {
    #[serde(default)]
    pub security_groups: BTreeMap<String, Vec<SecurityGroupRule>>,
    #[serde(default)]
    pub sg_member_ips: BTreeMap<String, MemberIps>,
}

impl SecurityGroupInfo {
    /// Adds what `other` says, replacing the groups it names.
    pub fn merge(&mut self, other: SecurityGroupInfo) {
        self.security_groups.extend(other.security_groups);
        self.sg_member_ips.extend(other.sg_member_ips);
    }
}

/// What the DHCP agent is told: Neutron's `payload` — `{"network": …}`,
/// `{"subnet": …}`, `{"port": …}`, or the ids of what went
/// (`{"network_id": …}`, `{"subnet_id": …, "network_id": …}`,
/// `{"port_id": …, "network_id": …}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DhcpPayload {
    pub payload: Value,
}

/// `get_network_info`: one network as its DHCP agent serves it, with the
/// fields of the API's records it needs (so the server can answer with
/// those records as they are).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DhcpNetwork {
    pub id: String,
    #[serde(default)]
    pub mtu: u32,
    #[serde(default)]
    pub subnets: Vec<DhcpSubnet>,
    #[serde(default)]
    pub ports: Vec<DhcpPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DhcpSubnet {
    pub id: String,
    pub cidr: String,
    pub ip_version: u8,
    #[serde(default)]
    pub enable_dhcp: bool,
    #[serde(default)]
    pub gateway_ip: Option<String>,
    #[serde(default)]
    pub dns_nameservers: Vec<String>,
    #[serde(default)]
    pub host_routes: Vec<HostRoute>,
    #[serde(default)]
    pub ipv6_address_mode: Option<String>,
    #[serde(default)]
    pub ipv6_ra_mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub destination: String,
    pub nexthop: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DhcpPort {
    pub id: String,
    pub mac_address: String,
    #[serde(default)]
    pub device_owner: String,
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    #[serde(default)]
    pub extra_dhcp_opts: Vec<ExtraDhcpOpt>,
}

impl DhcpNetwork {
    /// Whether dnsmasq has anything to serve here.
    pub fn has_dhcp(&self) -> bool {
        self.subnets.iter().any(|s| s.enable_dhcp)
    }

    /// The DHCP port of the agent on `host`.
    pub fn dhcp_port(&self, host: &str) -> Option<&DhcpPort> {
        let device_id = dhcp_device_id(host, &self.id);
        self.ports.iter().find(|p| p.device_owner == "network:dhcp" && p.device_id == device_id)
    }
}

/// `create_dhcp_port` / `release_dhcp_port`: the DHCP port the agent on
/// `host` serves `network_id` from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpPortRequest {
    pub network_id: String,
    pub host: String,
}

/// A port's `extra_dhcp_opts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraDhcpOpt {
    pub opt_name: String,
    pub opt_value: String,
    #[serde(default = "ipv4")]
    pub ip_version: u8,
}

fn ipv4() -> u8 {
    4
}

/// Routers whose ports, gateway, routes or floating IPs changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoutersUpdated {
    pub routers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouterDeleted {
    pub router_id: String,
}

/// l2population: a port of an overlay network that is up on a host, where the
/// other hosts' agents send its frames (`tunnel_ip`) and answer ARP for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FdbEntry {
    pub network_id: String,
    pub network_type: String,
    pub segmentation_id: i64,
    pub port_id: String,
    pub host: String,
    pub tunnel_ip: String,
    pub mac_address: String,
    pub ip_addresses: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FdbEntries {
    pub entries: Vec<FdbEntry>,
}

bus::interface! {
    /// Agents keep themselves alive by reporting on a period.
    pub interface PluginReports {
        topic: crate::REPORTS_TOPIC,
        version: (1, 0),
        client: PluginReportsClient,
        handler: PluginReportsHandler,
        methods: {
            call report_state(ReportState) -> String;
        }
    }
}

bus::interface! {
    /// Agents ask how to wire their ports and say when they have.
    pub interface Plugin {
        topic: crate::PLUGIN_TOPIC,
        version: (1, 3),
        client: PluginClient,
        handler: PluginHandler,
        methods: {
            call get_devices_details_list(DevicesOnHost) -> Vec<DeviceDetails>;
            call get_device_details(DeviceOnHost) -> DeviceDetails;
            call update_device_up(DeviceOnHost) -> ();
            call update_device_down(DeviceOnHost) -> ();
            // Many at once, in one transaction on the server.
            call update_device_list(DeviceList) -> DeviceListResult;
            // What a (re)starting agent wires: every port bound to its host.
            call get_ports_on_host(Host) -> Vec<DeviceDetails>;
            // l2population's full table for one network, as seen from `host`.
            call get_network_fdb(NetworkOnHost) -> Vec<FdbEntry>;
            // What the firewall enforces on these devices.
            call security_group_info_for_devices(DevicesOnHost) -> SecurityGroupInfo;
            // The DHCP agents': the networks the agent on the host serves
            // (networks no agent serves are given to it), one of them as
            // dnsmasq is given it (`None`: not that agent's to serve), and
            // the agent's DHCP port on a network, made or found; released
            // when the agent stops serving it.
            call get_active_networks_info(Host) -> Vec<DhcpNetwork>;
            call get_network_info(NetworkOnHost) -> Option<DhcpNetwork>;
            call create_dhcp_port(DhcpPortRequest) -> DhcpPort;
            call release_dhcp_port(DhcpPortRequest) -> ();
        }
    }
}

bus::interface! {
    /// A port was made, bound or changed.
    pub interface PortUpdates {
        topic: crate::PORT_UPDATE_TOPIC,
        version: (1, 0),
        client: PortUpdatesClient,
        handler: PortUpdatesHandler,
        methods: {
            fanout port_update(PortUpdate) -> ();
        }
    }
}

bus::interface! {
    pub interface PortDeletes {
        topic: crate::PORT_DELETE_TOPIC,
        version: (1, 0),
        client: PortDeletesClient,
        handler: PortDeletesHandler,
        methods: {
            fanout port_delete(PortDelete) -> ();
        }
    }
}

bus::interface! {
    pub interface NetworkUpdates {
        topic: crate::NETWORK_UPDATE_TOPIC,
        version: (1, 0),
        client: NetworkUpdatesClient,
        handler: NetworkUpdatesHandler,
        methods: {
            fanout network_update(NetworkUpdate) -> ();
        }
    }
}

bus::interface! {
    pub interface NetworkDeletes {
        topic: crate::NETWORK_DELETE_TOPIC,
        version: (1, 0),
        client: NetworkDeletesClient,
        handler: NetworkDeletesHandler,
        methods: {
            fanout network_delete(NetworkDelete) -> ();
        }
    }
}

bus::interface! {
    /// Security group rules or members changed: agents refresh those groups' ports.
    pub interface SecurityGroupUpdates {
        topic: crate::SECURITY_GROUP_UPDATE_TOPIC,
        version: (1, 0),
        client: SecurityGroupUpdatesClient,
        handler: SecurityGroupUpdatesHandler,
        methods: {
            fanout security_groups_rule_updated(SecurityGroups) -> ();
            fanout security_groups_member_updated(SecurityGroups) -> ();
        }
    }
}

bus::interface! {
    /// The DHCP agents hear of networks, subnets and ports (each keeps only
    /// the networks scheduled to it).
    pub interface DhcpAgentNotify {
        topic: crate::DHCP_AGENT_TOPIC,
        version: (1, 0),
        client: DhcpAgentNotifyClient,
        handler: DhcpAgentNotifyHandler,
        methods: {
            fanout network_create_end(DhcpPayload) -> ();
            fanout network_update_end(DhcpPayload) -> ();
            fanout network_delete_end(DhcpPayload) -> ();
            fanout subnet_create_end(DhcpPayload) -> ();
            fanout subnet_update_end(DhcpPayload) -> ();
            fanout subnet_delete_end(DhcpPayload) -> ();
            fanout port_create_end(DhcpPayload) -> ();
            fanout port_update_end(DhcpPayload) -> ();
            fanout port_delete_end(DhcpPayload) -> ();
        }
    }
}

bus::interface! {
    /// The L3 agents hear of routers that changed or went (each keeps only
    /// the routers scheduled to it).
    pub interface L3AgentNotify {
        topic: crate::L3_AGENT_TOPIC,
        version: (1, 0),
        client: L3AgentNotifyClient,
        handler: L3AgentNotifyHandler,
        methods: {
            fanout routers_updated(RoutersUpdated) -> ();
            fanout router_deleted(RouterDeleted) -> ();
        }
    }
}

bus::interface! {
    /// l2population: overlay ports came up or went, somewhere.
    pub interface L2population {
        topic: crate::L2POPULATION_TOPIC,
        version: (1, 0),
        client: L2populationClient,
        handler: L2populationHandler,
        methods: {
            fanout add_fdb_entries(FdbEntries) -> ();
            fanout remove_fdb_entries(FdbEntries) -> ();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_neutrons() {
        assert_eq!(bridge_name("5c1e8b2a-9f7e-4d7c-8b1a-000000000000"), "brq5c1e8b2a-9f");
        assert_eq!(tap_name("0a1b2c3d-4e5f-6789-abcd-ef0123456789"), "tap0a1b2c3d-4e");
        assert!(tap_name("0a1b2c3d-4e5f-6789-abcd-ef0123456789").len() <= 15);
    }
}
