//! `vlan`: an 802.1Q tag on a physical network. Project networks get the lowest
//! free tag of the configured ranges; admins may name any tag on a known
//! physical network.

use db::AnyConnection;

use super::{invalid, lowest_free, parse_range, SegmentRequest, TypeDriver};
use crate::error::Result;
use crate::store::{Segment, Store};

const MAX_VLAN: i64 = 4094;

pub struct Vlan {
    /// Every physical network VLANs may use, with its ranges for projects
    /// (empty for a physnet open only to provider networks).
    pub physnets: Vec<(String, Vec<(i64, i64)>)>,
    pub mtu: u32,
    pub physnet_mtus: Vec<(String, u32)>,
}

impl Vlan {
    /// From `network_vlan_ranges` entries: `physnet` or `physnet:min:max`.
    pub fn new(entries: &[String], mtu: u32, physnet_mtus: Vec<(String, u32)>) -> std::result::Result<Vlan, String> {
        let mut physnets: Vec<(String, Vec<(i64, i64)>)> = Vec::new();
        for e in entries {
            let (name, range) = match e.split_once(':') {
                None => (e.trim().to_string(), None),
                Some((n, r)) => (n.trim().to_string(), Some(parse_range(r, "VLAN", MAX_VLAN)?)),
            };
            match physnets.iter_mut().find(|(n, _)| *n == name) {
                Some((_, ranges)) => ranges.extend(range),
                None => physnets.push((name, range.into_iter().collect())),
            }
        }
        Ok(Vlan { physnets, mtu, physnet_mtus })
    }
}

#[async_trait::async_trait]
impl TypeDriver for Vlan {
    fn network_type(&self) -> &'static str {
        "vlan"
    }

    fn validate(&self, r: &SegmentRequest) -> Result<()> {
        let Some(p) = &r.physical_network else {
            return Err(invalid("physical_network required for VLAN provider network"));
        };
        if !self.physnets.iter().any(|(n, _)| n == p) {
            return Err(invalid(format!("physical_network '{p}' unknown for VLAN provider network")));
        }
        if let Some(id) = r.segmentation_id {
            if !(1..=MAX_VLAN).contains(&id) {
                return Err(invalid(format!("segmentation_id out of range (1 through {MAX_VLAN})")));
            }
        }
        Ok(())
    }

    async fn reserve(
        &self,
        store: &Store,
        conn: &mut AnyConnection,
        r: &SegmentRequest,
        network_id: &str,
    ) -> Result<Segment> {
        let physnet = r.physical_network.clone().unwrap_or_default();
        let id = match r.segmentation_id {
            Some(id) => id,
            None => {
                let ranges =
                    self.physnets.iter().find(|(n, _)| *n == physnet).map(|(_, r)| r.clone()).unwrap_or_default();
                let taken = store.taken_ids(conn, "vlan", Some(&physnet)).await?;
                lowest_free(&ranges, &taken).ok_or_else(|| crate::error::NetworkError::Unavailable {
                    kind: "NoNetworkAvailable",
                    message: "Unable to create the network. No tenant network is available for allocation.".into(),
                })?
            }
        };
        store.claim_id(conn, "vlan", Some(&physnet), id, network_id).await?;
        Ok(Segment {
            id: common::id::new_uuid(),
            network_id: network_id.into(),
            network_type: "vlan".into(),
            physical_network: Some(physnet),
            segmentation_id: Some(id),
        })
    }

    async fn allocate(&self, store: &Store, conn: &mut AnyConnection, network_id: &str) -> Result<Option<Segment>> {
        for (physnet, ranges) in &self.physnets {
            let taken = store.taken_ids(conn, "vlan", Some(physnet)).await?;
            if let Some(id) = lowest_free(ranges, &taken) {
                store.claim_id(conn, "vlan", Some(physnet), id, network_id).await?;
                return Ok(Some(Segment {
                    id: common::id::new_uuid(),
                    network_id: network_id.into(),
                    network_type: "vlan".into(),
                    physical_network: Some(physnet.clone()),
                    segmentation_id: Some(id),
                }));
            }
        }
        Ok(None)
    }

    fn mtu(&self, physical_network: Option<&str>) -> u32 {
        physical_network
            .and_then(|p| self.physnet_mtus.iter().find(|(n, _)| n == p))
            .map_or(self.mtu, |(_, m)| (*m).min(self.mtu))
    }
}
