//! A minimal in-tree agent: it reports its state on a period, like every
//! Neutron agent, and (for the L2 kind) acknowledges the ports bound on its
//! host, so that ports go ACTIVE end to end. It wires nothing: it stands in for
//! the datapath agents until they exist, and says so in its configurations.

use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, CallContext, RemoteError, ServeOptions};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::interfaces::{
    DeviceOnHost, PluginClient, PluginReportsClient, PortUpdate, PortUpdates, PortUpdatesHandler, ReportState,
};

#[derive(Debug, Clone)]
pub struct StandIn {
    pub agent_type: String,
    pub binary: String,
    pub topic: String,
    pub host: String,
    pub configurations: Value,
    pub availability_zone: Option<String>,
    pub report_interval: Duration,
    /// Whether it acknowledges port updates (the L2 agent's job).
    pub acks_ports: bool,
}

impl StandIn {
    fn state(&self, start: bool) -> Value {
        let mut configurations = self.configurations.clone();
        if let Value::Object(c) = &mut configurations {
            c.insert("datapath".into(), json!("none: ferrostack in-tree stand-in agent"));
        }
        // oslo's nesting: the argument `agent_state` holds `{"agent_state": {...}}`.
        json!({"agent_state": {
            "agent_type": self.agent_type,
            "binary": self.binary,
            "topic": self.topic,
            "host": self.host,
            "configurations": configurations,
            "availability_zone": self.availability_zone,
            "start_flag": start,
        }})
    }

    /// Starts reporting (and acknowledging); the tasks end with the bus.
    pub async fn start(self, bus: Bus) -> Result<Vec<JoinHandle<()>>, bus::BusError> {
        let hosts = vec![self.host.clone()];
        self.start_on(&hosts, bus).await
    }

    /// Stand-ins like this one on each of `hosts` (simulated hypervisors
    /// beside one compute process), in this process: each reports its own
    /// state, and one consumer acknowledges the ports bound on any of them,
    /// as one agent process listens once however many ports it wires. (A
    /// notification consumer per simulated host would have the broker copy
    /// every port change a thousand times.)
    pub async fn start_on(&self, hosts: &[String], bus: Bus) -> Result<Vec<JoinHandle<()>>, bus::BusError> {
        let mut tasks = Vec::new();
        if self.acks_ports {
            let server = format!("{}.{}", self.host, self.binary);
            let acker = Arc::new(PortAcker { hosts: hosts.iter().cloned().collect(), plugin: PluginClient::new(&bus) });
            tasks.push(PortUpdates::serve(&bus, &server, acker, ServeOptions::default()).await?);
        }
        for host in hosts {
            let agent = StandIn { host: host.clone(), ..self.clone() };
            tasks.push(agent.report(PluginReportsClient::new(&bus)));
        }
        Ok(tasks)
    }

    fn report(self, reports: PluginReportsClient) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let state = ReportState { agent_state: self.state(first), time: None };
                match reports.report_state(&state).await {
                    Ok(_) => first = false,
                    Err(e) => tracing::warn!(agent = %self.agent_type, error = %e, "state report failed"),
                }
                tokio::time::sleep(self.report_interval).await;
            }
        })
    }
}

/// The L2 stand-in's one job: say a port bound on one of its hosts is up.
struct PortAcker {
    hosts: std::collections::HashSet<String>,
    plugin: PluginClient,
}

impl PortUpdatesHandler for PortAcker {
    async fn port_update(&self, ctx: &CallContext, update: PortUpdate) -> Result<(), RemoteError> {
        let port = &update.port;
        let host = port["binding:host_id"].as_str().unwrap_or_default();
        let bound_here = self.hosts.contains(host) && crate::api::ports::is_bound(port["binding:vif_type"].as_str());
        if bound_here && port["status"].as_str() != Some("ACTIVE") {
            let device = DeviceOnHost {
                device: port["id"].as_str().unwrap_or_default().to_string(),
                agent_id: Some(host.to_string()),
                host: host.to_string(),
            };
            if let Err(e) = self.plugin.for_request(ctx.request_id.clone()).update_device_up(&device).await {
                tracing::warn!(error = %e, "update_device_up failed");
            }
        }
        Ok(())
    }
}
