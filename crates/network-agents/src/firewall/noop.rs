//! `firewall_driver = noop`: every port passes everything (and the stand-in
//! agents, which wire nothing, use it too).

use async_trait::async_trait;
use network_rpc::{DeviceDetails, SecurityGroupInfo};

use super::{Firewall, FirewallResult};

pub struct Noop;

#[async_trait]
impl Firewall for Noop {
    async fn sync(&self, _ports: &[DeviceDetails], _groups: &SecurityGroupInfo) -> FirewallResult<()> {
        Ok(())
    }

    async fn update(&self, _ports: &[DeviceDetails], _groups: &SecurityGroupInfo) -> FirewallResult<()> {
        Ok(())
    }

    async fn remove(&self, _ports: &[String]) -> FirewallResult<()> {
        Ok(())
    }

    fn enforces(&self) -> bool {
        false
    }
}
