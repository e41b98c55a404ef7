//! Every message between the network server and its agents, typed, in one
//! place: what agents ask the server (`q-reports-plugin`, `q-plugin`) and what
//! the server tells all agents (`q-agent-notifier-*` fanouts). Agents need only
//! this module and the bus.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

bus::interface! {
    /// Agents keep themselves alive by reporting on a period.
    pub interface PluginReports {
        topic: super::REPORTS_TOPIC,
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
        topic: super::PLUGIN_TOPIC,
        version: (1, 0),
        client: PluginClient,
        handler: PluginHandler,
        methods: {
            call get_devices_details_list(DevicesOnHost) -> Vec<Value>;
            call get_device_details(DeviceOnHost) -> Value;
            call update_device_up(DeviceOnHost) -> ();
            call update_device_down(DeviceOnHost) -> ();
        }
    }
}

bus::interface! {
    /// A port was made, bound or changed.
    pub interface PortUpdates {
        topic: super::PORT_UPDATE_TOPIC,
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
        topic: super::PORT_DELETE_TOPIC,
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
        topic: super::NETWORK_UPDATE_TOPIC,
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
        topic: super::NETWORK_DELETE_TOPIC,
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
        topic: super::SECURITY_GROUP_UPDATE_TOPIC,
        version: (1, 0),
        client: SecurityGroupUpdatesClient,
        handler: SecurityGroupUpdatesHandler,
        methods: {
            fanout security_groups_rule_updated(SecurityGroups) -> ();
            fanout security_groups_member_updated(SecurityGroups) -> ();
        }
    }
}
