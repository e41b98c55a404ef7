//! The ML2 core plugin's two axes: type drivers decide *what* a network is
//! (and own segment allocation), mechanism drivers decide *how* a host wires a
//! port. Both are chosen by configuration.

pub mod mechanisms;
pub mod types;

use db::AnyConnection;
use serde_json::Value;

use crate::config::NetworkConfig;
use crate::error::{NetworkError, Result};
use crate::store::{Segment, Store};
use mechanisms::{L2population, LinuxBridge, MechanismDriver, OpenVswitch, PortContext};
use types::{Flat, Local, SegmentRequest, Tunnel, TypeDriver, Vlan};

pub struct Ml2 {
    types: Vec<Box<dyn TypeDriver>>,
    tenant_network_types: Vec<String>,
    mechanisms: Vec<Box<dyn MechanismDriver>>,
}

/// What binding a port on a host decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub vif_type: &'static str,
    pub vif_details: Value,
    pub segment_id: String,
    pub driver: &'static str,
}

impl Ml2 {
    pub fn new(c: &NetworkConfig) -> std::result::Result<Ml2, String> {
        let physnet_mtus = types::physnet_mtus(&c.physical_network_mtus);
        let path_mtu = if c.path_mtu > 0 { c.path_mtu } else { c.global_physnet_mtu };
        let ranges = |entries: &[String], what: &str, max: i64| -> std::result::Result<Vec<(i64, i64)>, String> {
            entries.iter().map(|e| types::parse_range(e, what, max)).collect()
        };
        let mut loaded: Vec<Box<dyn TypeDriver>> = Vec::new();
        for name in &c.type_drivers {
            let driver: Box<dyn TypeDriver> = match name.as_str() {
                "local" => Box::new(Local { mtu: c.global_physnet_mtu }),
                "flat" => Box::new(Flat {
                    flat_networks: c.flat_networks.clone(),
                    mtu: c.global_physnet_mtu,
                    physnet_mtus: physnet_mtus.clone(),
                }),
                "vlan" => Box::new(Vlan::new(&c.network_vlan_ranges, c.global_physnet_mtu, physnet_mtus.clone())?),
                "vxlan" => Box::new(Tunnel::vxlan(ranges(&c.vni_ranges, "VXLAN", Tunnel::MAX_VNI)?, path_mtu)),
                "gre" => Box::new(Tunnel::gre(ranges(&c.tunnel_id_ranges, "GRE", Tunnel::MAX_GRE_KEY)?, path_mtu)),
                other => return Err(format!("[ml2] type_drivers: unknown type driver {other:?}")),
            };
            loaded.push(driver);
        }
        for t in &c.tenant_network_types {
            if !c.type_drivers.contains(t) {
                return Err(format!("[ml2] tenant_network_types: {t:?} is not among the type_drivers"));
            }
        }
        let mut mechanisms: Vec<Box<dyn MechanismDriver>> = Vec::new();
        for name in &c.mechanism_drivers {
            let driver: Box<dyn MechanismDriver> = match name.as_str() {
                "openvswitch" => Box::new(OpenVswitch),
                "linuxbridge" => Box::new(LinuxBridge),
                "l2population" => Box::new(L2population),
                other => return Err(format!("[ml2] mechanism_drivers: unknown mechanism driver {other:?}")),
            };
            mechanisms.push(driver);
        }
        Ok(Ml2 { types: loaded, tenant_network_types: c.tenant_network_types.clone(), mechanisms })
    }

    fn driver(&self, network_type: &str) -> Result<&dyn TypeDriver> {
        self.types.iter().find(|d| d.network_type() == network_type).map(|d| d.as_ref()).ok_or_else(|| {
            NetworkError::invalid(
                "InvalidInput",
                format!("Invalid input for operation: network_type value '{network_type}' not supported."),
            )
        })
    }

    /// Checks requested provider segments before anything is written.
    pub fn validate(&self, requests: &[SegmentRequest]) -> Result<()> {
        for r in requests {
            self.driver(&r.network_type)?.validate(r)?;
        }
        Ok(())
    }

    /// The network's segments: the requested ones reserved, or one allocated
    /// from the first project network type that still has one.
    pub async fn create_segments(
        &self,
        store: &Store,
        conn: &mut AnyConnection,
        network_id: &str,
        requests: &[SegmentRequest],
    ) -> Result<Vec<Segment>> {
        let mut segments = Vec::new();
        if requests.is_empty() {
            for t in &self.tenant_network_types {
                if let Some(s) = self.driver(t)?.allocate(store, conn, network_id).await? {
                    segments.push(s);
                    break;
                }
            }
            if segments.is_empty() {
                return Err(NetworkError::Unavailable {
                    kind: "NoNetworkAvailable",
                    message: "Unable to create the network. No tenant network is available for allocation.".into(),
                });
            }
        } else {
            for r in requests {
                segments.push(self.driver(&r.network_type)?.reserve(store, conn, r, network_id).await?);
            }
        }
        for (i, s) in segments.iter().enumerate() {
            store.add_segment(conn, s, i as i64).await?;
        }
        Ok(segments)
    }

    /// A network's MTU: the smallest its segments carry.
    pub fn mtu(&self, segments: &[Segment]) -> u32 {
        segments
            .iter()
            .filter_map(|s| self.driver(&s.network_type).ok().map(|d| d.mtu(s.physical_network.as_deref())))
            .min()
            .unwrap_or(0)
    }

    /// Tells every mechanism driver, in configured order, of port changes
    /// that have committed.
    pub async fn ports_postcommit(&self, net: &crate::Network, changes: &[PortContext<'_>]) {
        if changes.is_empty() {
            return;
        }
        for driver in &self.mechanisms {
            driver.ports_postcommit(net, changes).await;
        }
    }

    /// Binds a port on a host that runs `agents` (type and configurations of
    /// each alive agent there): the first driver, in configured order, that has
    /// an agent able to wire one of the segments.
    /// An agent that says its host cannot carry a network type (what the
    /// kernel lacks, in its `unsupported_network_types`) binds nothing of it.
    pub fn bind(&self, segments: &[Segment], agents: &[(String, Value)]) -> Option<Binding> {
        for driver in &self.mechanisms {
            for (_, configurations) in agents.iter().filter(|(t, _)| t == driver.agent_type()) {
                let carried = |s: &&Segment| unsupported(configurations, &s.network_type).is_none();
                if let Some(s) = segments.iter().filter(carried).find(|s| driver.can_bind(configurations, s)) {
                    return Some(Binding {
                        vif_type: driver.vif_type(),
                        vif_details: driver.vif_details(),
                        segment_id: s.id.clone(),
                        driver: driver.name(),
                    });
                }
            }
        }
        None
    }
}

/// Why an agent with these configurations cannot carry `network_type`, if it
/// says it cannot.
pub fn unsupported<'a>(configurations: &'a Value, network_type: &str) -> Option<&'a str> {
    configurations.get("unsupported_network_types").and_then(|u| u.get(network_type)).and_then(Value::as_str)
}

/// Why no mechanism driver bound a port on a host with these agents: what
/// the agents said they cannot carry, or that none can reach the segments.
pub fn binding_failure(segments: &[Segment], agents: &[(String, Value)]) -> String {
    if agents.is_empty() {
        return "no alive L2 agent on the host".into();
    }
    let reasons: Vec<String> = segments
        .iter()
        .flat_map(|s| {
            agents.iter().filter_map(move |(t, c)| {
                unsupported(c, &s.network_type).map(|r| format!("{t} cannot carry {} networks: {r}", s.network_type))
            })
        })
        .collect();
    if reasons.is_empty() {
        let types: Vec<&str> = segments.iter().map(|s| s.network_type.as_str()).collect();
        format!("no agent on the host can reach a segment of type {}", types.join(", "))
    } else {
        reasons.join("; ")
    }
}
