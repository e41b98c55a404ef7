//! Server → agents: fanout casts. Nobody listening is fine (no agents yet);
//! agents that miss a notification catch up through `get_devices_details_list`.

use bus::{Bus, Message};
use serde_json::{json, Value};

use super::*;

#[derive(Clone)]
pub struct Notifier {
    bus: Bus,
}

impl Notifier {
    pub fn new(bus: Bus) -> Notifier {
        Notifier { bus }
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    async fn fanout(&self, topic: &str, method: &str, args: Value) {
        if let Err(e) = self.bus.fanout(topic, Message::new(method, args)).await {
            tracing::warn!(topic, method, error = %e, "agent notification failed");
        }
    }

    /// A port changed (created, bound, updated): agents on its host wire it.
    pub async fn port_update(&self, port: &Value, segment: Option<&crate::store::Segment>) {
        let args = json!({
            "port": port,
            "network_type": segment.map(|s| s.network_type.clone()),
            "segmentation_id": segment.and_then(|s| s.segmentation_id),
            "physical_network": segment.and_then(|s| s.physical_network.clone()),
        });
        self.fanout(PORT_UPDATE_TOPIC, "port_update", args).await;
    }

    pub async fn port_delete(&self, port_id: &str, network_id: &str) {
        self.fanout(PORT_DELETE_TOPIC, "port_delete", json!({"port_id": port_id, "network_id": network_id})).await;
    }

    pub async fn network_update(&self, network: &Value) {
        self.fanout(NETWORK_UPDATE_TOPIC, "network_update", json!({"network": network})).await;
    }

    pub async fn network_delete(&self, network_id: &str) {
        self.fanout(NETWORK_DELETE_TOPIC, "network_delete", json!({"network_id": network_id})).await;
    }

    /// Rules of these groups changed: agents refresh the ports in them.
    pub async fn security_groups_rule_updated(&self, security_groups: &[String]) {
        self.fanout(
            SECURITY_GROUP_UPDATE_TOPIC,
            "security_groups_rule_updated",
            json!({"security_groups": security_groups}),
        )
        .await;
    }

    /// Members of these groups changed (remote-group rules follow members).
    pub async fn security_groups_member_updated(&self, security_groups: &[String]) {
        self.fanout(
            SECURITY_GROUP_UPDATE_TOPIC,
            "security_groups_member_updated",
            json!({"security_groups": security_groups}),
        )
        .await;
    }
}
