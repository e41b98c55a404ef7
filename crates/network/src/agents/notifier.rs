//! Server → agents: fanout casts. Nobody listening is fine (no agents yet);
//! agents that miss a notification catch up through `get_devices_details_list`.

use bus::Bus;
use serde_json::Value;

use network_rpc::*;

/// What the DHCP agents are told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpEvent {
    NetworkCreate,
    NetworkUpdate,
    NetworkDelete,
    SubnetCreate,
    SubnetUpdate,
    SubnetDelete,
    PortCreate,
    PortUpdate,
    PortDelete,
}

#[derive(Clone)]
pub struct Notifier {
    bus: Bus,
}

fn log_failure(method: &str, r: Result<(), bus::BusError>) {
    if let Err(e) = r {
        tracing::warn!(method, error = %e, "agent notification failed");
    }
}

impl Notifier {
    pub fn new(bus: Bus) -> Notifier {
        Notifier { bus }
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// A port changed (created, bound, updated): agents on its host wire it.
    pub async fn port_update(&self, port: &Value, segment: Option<&crate::store::Segment>) {
        let args = PortUpdate {
            port: port.clone(),
            network_type: segment.map(|s| s.network_type.clone()),
            segmentation_id: segment.and_then(|s| s.segmentation_id),
            physical_network: segment.and_then(|s| s.physical_network.clone()),
        };
        log_failure("port_update", PortUpdatesClient::new(&self.bus).port_update(&args).await);
    }

    pub async fn port_delete(&self, port_id: &str, network_id: &str) {
        let args = PortDelete { port_id: port_id.into(), network_id: network_id.into() };
        log_failure("port_delete", PortDeletesClient::new(&self.bus).port_delete(&args).await);
    }

    pub async fn network_update(&self, network: &Value) {
        let args = NetworkUpdate { network: network.clone() };
        log_failure("network_update", NetworkUpdatesClient::new(&self.bus).network_update(&args).await);
    }

    pub async fn network_delete(&self, network_id: &str) {
        let args = NetworkDelete { network_id: network_id.into() };
        log_failure("network_delete", NetworkDeletesClient::new(&self.bus).network_delete(&args).await);
    }

    /// Rules of these groups changed: agents refresh the ports in them.
    pub async fn security_groups_rule_updated(&self, security_groups: &[String]) {
        let args = SecurityGroups { security_groups: security_groups.to_vec() };
        let client = SecurityGroupUpdatesClient::new(&self.bus);
        log_failure("security_groups_rule_updated", client.security_groups_rule_updated(&args).await);
    }

    /// Members of these groups changed (remote-group rules follow members).
    pub async fn security_groups_member_updated(&self, security_groups: &[String]) {
        let args = SecurityGroups { security_groups: security_groups.to_vec() };
        let client = SecurityGroupUpdatesClient::new(&self.bus);
        log_failure("security_groups_member_updated", client.security_groups_member_updated(&args).await);
    }

    /// The DHCP agents: `method` is one of [`DhcpAgentNotify`]'s.
    pub async fn dhcp(&self, method: DhcpEvent, payload: Value) {
        let client = DhcpAgentNotifyClient::new(&self.bus);
        let args = DhcpPayload { payload };
        let r = match method {
            DhcpEvent::NetworkCreate => client.network_create_end(&args).await,
            DhcpEvent::NetworkUpdate => client.network_update_end(&args).await,
            DhcpEvent::NetworkDelete => client.network_delete_end(&args).await,
            DhcpEvent::SubnetCreate => client.subnet_create_end(&args).await,
            DhcpEvent::SubnetUpdate => client.subnet_update_end(&args).await,
            DhcpEvent::SubnetDelete => client.subnet_delete_end(&args).await,
            DhcpEvent::PortCreate => client.port_create_end(&args).await,
            DhcpEvent::PortUpdate => client.port_update_end(&args).await,
            DhcpEvent::PortDelete => client.port_delete_end(&args).await,
        };
        log_failure("dhcp agent notification", r);
    }

    /// The L3 agents: these routers changed.
    pub async fn routers_updated(&self, routers: Vec<String>) {
        let client = L3AgentNotifyClient::new(&self.bus);
        log_failure("routers_updated", client.routers_updated(&RoutersUpdated { routers }).await);
    }

    pub async fn router_deleted(&self, router_id: &str) {
        let client = L3AgentNotifyClient::new(&self.bus);
        log_failure("router_deleted", client.router_deleted(&RouterDeleted { router_id: router_id.into() }).await);
    }

    /// l2population: these ports are up, here is where.
    pub async fn add_fdb_entries(&self, entries: Vec<FdbEntry>) {
        let client = L2populationClient::new(&self.bus);
        log_failure("add_fdb_entries", client.add_fdb_entries(&FdbEntries { entries }).await);
    }

    /// l2population: these ports are gone from where they were.
    pub async fn remove_fdb_entries(&self, entries: Vec<FdbEntry>) {
        let client = L2populationClient::new(&self.bus);
        log_failure("remove_fdb_entries", client.remove_fdb_entries(&FdbEntries { entries }).await);
    }
}
