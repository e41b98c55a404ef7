//! Linux Bridge: a `brq<net>` bridge per network, physical networks through
//! `interface_mappings` (or `bridge_mappings`), VXLAN overlays. No GRE: Linux
//! bridges have no GRE ports.

use serde_json::{json, Value};

use super::{maps_physnet, tunnels, MechanismDriver};
use crate::store::Segment;

pub struct LinuxBridge;

#[async_trait::async_trait]
impl MechanismDriver for LinuxBridge {
    fn name(&self) -> &'static str {
        "linuxbridge"
    }

    fn agent_type(&self) -> &'static str {
        "Linux bridge agent"
    }

    fn vif_type(&self) -> &'static str {
        "bridge"
    }

    fn vif_details(&self) -> Value {
        json!({"connectivity": "l2", "port_filter": true})
    }

    fn can_bind(&self, c: &Value, s: &Segment) -> bool {
        let physnet = s.physical_network.as_deref();
        match s.network_type.as_str() {
            "local" => true,
            "flat" | "vlan" => {
                maps_physnet(c, "interface_mappings", physnet) || maps_physnet(c, "bridge_mappings", physnet)
            }
            "vxlan" => tunnels(c, "vxlan"),
            _ => false,
        }
    }
}
