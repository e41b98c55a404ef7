//! `flat`: a whole physical network, untagged. One network per physical network;
//! admins create them, projects never get one allocated.

use db::AnyConnection;

use super::{invalid, SegmentRequest, TypeDriver};
use crate::error::Result;
use crate::store::{Segment, Store};

pub struct Flat {
    /// Allowed physical networks; `*` allows any.
    pub flat_networks: Vec<String>,
    pub mtu: u32,
    pub physnet_mtus: Vec<(String, u32)>,
}

#[async_trait::async_trait]
impl TypeDriver for Flat {
    fn network_type(&self) -> &'static str {
        "flat"
    }

    fn validate(&self, r: &SegmentRequest) -> Result<()> {
        let Some(p) = &r.physical_network else {
            return Err(invalid("physical_network required for flat provider network"));
        };
        if !self.flat_networks.iter().any(|f| f == "*" || f == p) {
            return Err(invalid(format!("physical_network '{p}' unknown for flat provider network")));
        }
        if r.segmentation_id.is_some() {
            return Err(invalid("segmentation_id specified for flat provider network"));
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
        store.claim_flat(conn, &physnet, network_id).await?;
        Ok(Segment {
            id: common::id::new_uuid(),
            network_id: network_id.into(),
            network_type: "flat".into(),
            physical_network: Some(physnet),
            segmentation_id: None,
        })
    }

    async fn allocate(&self, _: &Store, _: &mut AnyConnection, _: &str) -> Result<Option<Segment>> {
        Ok(None)
    }

    fn mtu(&self, physical_network: Option<&str>) -> u32 {
        physical_network
            .and_then(|p| self.physnet_mtus.iter().find(|(n, _)| n == p))
            .map_or(self.mtu, |(_, m)| (*m).min(self.mtu))
    }
}
