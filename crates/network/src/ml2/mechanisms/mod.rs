//! ML2 mechanism drivers: *how* a host realises a network. A driver binds a port
//! on a host when that host runs its agent, alive, and the agent can reach the
//! port's segment (a bridge for its physical network, a tunnel of its type).
//! After a port change commits, every driver hears of it
//! ([`MechanismDriver::ports_postcommit`], Neutron's `*_port_postcommit`):
//! l2population binds nothing and only does that.

pub mod l2population;
mod linuxbridge;
mod openvswitch;

use async_trait::async_trait;
pub use l2population::L2population;
pub use linuxbridge::LinuxBridge;
pub use openvswitch::OpenVswitch;
use serde_json::{json, Value};

use crate::store::{Record, Segment};
use crate::Network;

/// A port change that has committed: `original` is `None` for a new port,
/// `current` is `None` for a deleted one.
#[derive(Debug, Clone, Copy)]
pub struct PortContext<'a> {
    pub original: Option<&'a Record>,
    pub current: Option<&'a Record>,
}

#[async_trait]
pub trait MechanismDriver: Send + Sync {
    /// The name in `[ml2] mechanism_drivers`.
    fn name(&self) -> &'static str;
    /// The `agent_type` its agents report; a driver without agents binds
    /// nothing.
    fn agent_type(&self) -> &'static str {
        ""
    }
    /// `binding:vif_type` of the ports it binds.
    fn vif_type(&self) -> &'static str {
        "unbound"
    }
    /// `binding:vif_details` of the ports it binds.
    fn vif_details(&self) -> Value {
        json!({})
    }
    /// Whether an agent with these `configurations` can wire `segment`.
    fn can_bind(&self, _agent_configurations: &Value, _segment: &Segment) -> bool {
        false
    }
    /// After a transaction's port changes have committed, all at once (so a
    /// driver can tell its agents in one message). Telling is best effort:
    /// agents that miss it catch up when they resync.
    async fn ports_postcommit(&self, _net: &Network, _changes: &[PortContext<'_>]) {}
}

/// Whether the agent's `key` mapping (bridge or interface mappings) names
/// the physical network.
pub(crate) fn maps_physnet(configurations: &Value, key: &str, physnet: Option<&str>) -> bool {
    physnet.is_some_and(|p| configurations.get(key).and_then(Value::as_object).is_some_and(|m| m.contains_key(p)))
}

/// Whether the agent runs tunnels of `network_type`.
pub(crate) fn tunnels(configurations: &Value, network_type: &str) -> bool {
    configurations
        .get("tunnel_types")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|x| x.as_str() == Some(network_type)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seg(t: &str, p: Option<&str>) -> Segment {
        Segment {
            id: "s".into(),
            network_id: "n".into(),
            network_type: t.into(),
            physical_network: p.map(String::from),
            segmentation_id: None,
        }
    }

    #[test]
    fn drivers_bind_only_what_their_agent_can_reach() {
        let ovs = OpenVswitch;
        let conf = json!({"bridge_mappings": {"physnet1": "br-eth1"}, "tunnel_types": ["vxlan"]});
        assert!(ovs.can_bind(&conf, &seg("vlan", Some("physnet1"))));
        assert!(!ovs.can_bind(&conf, &seg("vlan", Some("physnet2"))));
        assert!(ovs.can_bind(&conf, &seg("vxlan", None)));
        assert!(!ovs.can_bind(&conf, &seg("gre", None)));
        assert!(ovs.can_bind(&conf, &seg("local", None)));

        let lb = LinuxBridge;
        let conf = json!({"interface_mappings": {"public": "eth0"}, "tunnel_types": ["vxlan", "gre"]});
        assert!(lb.can_bind(&conf, &seg("flat", Some("public"))));
        assert!(lb.can_bind(&conf, &seg("vxlan", None)));
        assert!(!lb.can_bind(&conf, &seg("gre", None)), "Linux bridges carry no GRE");
        assert_eq!(lb.vif_type(), "bridge");
        assert_eq!(ovs.vif_type(), "ovs");
    }
}
