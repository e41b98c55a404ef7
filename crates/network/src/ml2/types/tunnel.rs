//! `vxlan` and `gre`: overlay networks carried between hosts in tunnels, told
//! apart by a VNI or GRE key. The tunnel headers come out of the underlay's MTU.

use db::AnyConnection;

use super::{invalid, lowest_free, SegmentRequest, TypeDriver};
use crate::error::Result;
use crate::store::{Segment, Store};

/// Bytes of outer headers over IPv4: VXLAN 50 (Ethernet 14 + IP 20 + UDP 8 +
/// VXLAN 8), GRE 42 (Ethernet 14 + IP 20 + GRE 8).
const VXLAN_OVERHEAD: u32 = 50;
const GRE_OVERHEAD: u32 = 42;

pub struct Tunnel {
    network_type: &'static str,
    ranges: Vec<(i64, i64)>,
    max_id: i64,
    /// The underlay's MTU.
    path_mtu: u32,
}

impl Tunnel {
    pub const MAX_VNI: i64 = (1 << 24) - 1;
    pub const MAX_GRE_KEY: i64 = (1 << 32) - 1;

    pub fn vxlan(ranges: Vec<(i64, i64)>, path_mtu: u32) -> Tunnel {
        Tunnel { network_type: "vxlan", ranges, max_id: Self::MAX_VNI, path_mtu }
    }

    pub fn gre(ranges: Vec<(i64, i64)>, path_mtu: u32) -> Tunnel {
        Tunnel { network_type: "gre", ranges, max_id: Self::MAX_GRE_KEY, path_mtu }
    }

    fn segment(&self, network_id: &str, id: i64) -> Segment {
        Segment {
            id: common::id::new_uuid(),
            network_id: network_id.into(),
            network_type: self.network_type.into(),
            physical_network: None,
            segmentation_id: Some(id),
        }
    }
}

#[async_trait::async_trait]
impl TypeDriver for Tunnel {
    fn network_type(&self) -> &'static str {
        self.network_type
    }

    fn validate(&self, r: &SegmentRequest) -> Result<()> {
        if r.physical_network.is_some() {
            return Err(invalid(format!("provider:physical_network specified for {} network", self.network_type)));
        }
        if let Some(id) = r.segmentation_id {
            if !(1..=self.max_id).contains(&id) {
                return Err(invalid(format!("segmentation_id out of range (1 through {})", self.max_id)));
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
        let id = match r.segmentation_id {
            Some(id) => id,
            None => {
                let taken = store.taken_ids(conn, self.network_type, None).await?;
                lowest_free(&self.ranges, &taken).ok_or_else(|| crate::error::NetworkError::Unavailable {
                    kind: "NoNetworkAvailable",
                    message: "Unable to create the network. No tenant network is available for allocation.".into(),
                })?
            }
        };
        store.claim_id(conn, self.network_type, None, id, network_id).await?;
        Ok(self.segment(network_id, id))
    }

    async fn allocate(&self, store: &Store, conn: &mut AnyConnection, network_id: &str) -> Result<Option<Segment>> {
        let taken = store.taken_ids(conn, self.network_type, None).await?;
        match lowest_free(&self.ranges, &taken) {
            Some(id) => {
                store.claim_id(conn, self.network_type, None, id, network_id).await?;
                Ok(Some(self.segment(network_id, id)))
            }
            None => Ok(None),
        }
    }

    fn mtu(&self, _: Option<&str>) -> u32 {
        let overhead = if self.network_type == "vxlan" { VXLAN_OVERHEAD } else { GRE_OVERHEAD };
        self.path_mtu.saturating_sub(overhead)
    }
}
