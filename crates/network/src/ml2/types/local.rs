//! `local`: a network that exists only on one host, with no physical network and
//! no id. There is always one to give.

use db::AnyConnection;

use super::{invalid, SegmentRequest, TypeDriver};
use crate::error::Result;
use crate::store::{Segment, Store};

pub struct Local {
    pub mtu: u32,
}

fn segment(network_id: &str) -> Segment {
    Segment {
        id: common::id::new_uuid(),
        network_id: network_id.into(),
        network_type: "local".into(),
        physical_network: None,
        segmentation_id: None,
    }
}

#[async_trait::async_trait]
impl TypeDriver for Local {
    fn network_type(&self) -> &'static str {
        "local"
    }

    fn validate(&self, r: &SegmentRequest) -> Result<()> {
        if r.physical_network.is_some() || r.segmentation_id.is_some() {
            return Err(invalid(
                "provider:physical_network and provider:segmentation_id are prohibited for local provider network",
            ));
        }
        Ok(())
    }

    async fn reserve(&self, _: &Store, _: &mut AnyConnection, _: &SegmentRequest, network_id: &str) -> Result<Segment> {
        Ok(segment(network_id))
    }

    async fn allocate(&self, _: &Store, _: &mut AnyConnection, network_id: &str) -> Result<Option<Segment>> {
        Ok(Some(segment(network_id)))
    }

    fn mtu(&self, _: Option<&str>) -> u32 {
        self.mtu
    }
}
