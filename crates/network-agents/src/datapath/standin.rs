//! The stand-in datapath: it wires nothing and says every port is wired, so
//! ports bound to a host without a real datapath (the fake hypervisors, the
//! simulated hosts of a scale run) come up as they would. Its agents say so
//! in their configurations.

use std::collections::HashSet;

use async_trait::async_trait;
use network_rpc::{DeviceDetails, FdbEntry};
use serde_json::{json, Value};

use super::{Datapath, DatapathResult, Wiring};

pub struct StandIn {
    configurations: Value,
}

impl StandIn {
    pub fn new(mut configurations: Value) -> StandIn {
        if let Value::Object(c) = &mut configurations {
            c.insert("datapath".into(), json!("none: ferrostack in-tree stand-in agent"));
        }
        StandIn { configurations }
    }
}

#[async_trait]
impl Datapath for StandIn {
    fn configurations(&self) -> Value {
        self.configurations.clone()
    }

    async fn wire(&self, _port: &DeviceDetails) -> DatapathResult<Wiring> {
        Ok(Wiring::Wired)
    }

    async fn unwire(&self, _port: &DeviceDetails) -> DatapathResult<()> {
        Ok(())
    }

    async fn remove_network(&self, _network_id: &str) -> DatapathResult<()> {
        Ok(())
    }

    async fn set_fdb(&self, _network_id: &str, _entries: &[FdbEntry]) -> DatapathResult<()> {
        Ok(())
    }

    async fn remove_stale(&self, _networks: &HashSet<String>, _ports: &HashSet<String>) -> DatapathResult<()> {
        Ok(())
    }
}
