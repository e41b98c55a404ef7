//! Open vSwitch: ports on `br-int`, provider networks through `bridge_mappings`,
//! overlays through the agent's `tunnel_types`.

use serde_json::{json, Value};

use super::{maps_physnet, tunnels, MechanismDriver};
use crate::store::Segment;

pub struct OpenVswitch;

#[async_trait::async_trait]
impl MechanismDriver for OpenVswitch {
    fn name(&self) -> &'static str {
        "openvswitch"
    }

    fn agent_type(&self) -> &'static str {
        "Open vSwitch agent"
    }

    fn vif_type(&self) -> &'static str {
        "ovs"
    }

    fn vif_details(&self) -> Value {
        // Security groups live on a Linux bridge between the tap and br-int.
        json!({
            "connectivity": "l2",
            "port_filter": true,
            "ovs_hybrid_plug": true,
            "datapath_type": "system",
            "bridge_name": "br-int",
        })
    }

    fn can_bind(&self, c: &Value, s: &Segment) -> bool {
        match s.network_type.as_str() {
            "local" => true,
            "flat" | "vlan" => maps_physnet(c, "bridge_mappings", s.physical_network.as_deref()),
            "vxlan" | "gre" => tunnels(c, &s.network_type),
            _ => false,
        }
    }
}
