//! A minimal in-tree agent: it reports its state on a period, like every
//! Neutron agent, and (for the L2 kind) acknowledges the ports bound on its
//! host, so that ports go ACTIVE end to end. It wires nothing: it stands in for
//! the datapath agents until they exist, and says so in its configurations.

use std::time::Duration;

use bus::{Bus, Message, Target};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::{PLUGIN_TOPIC, PORT_UPDATE_TOPIC, REPORTS_TOPIC};

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
        json!({"agent_state": {"agent_state": {
            "agent_type": self.agent_type,
            "binary": self.binary,
            "topic": self.topic,
            "host": self.host,
            "configurations": configurations,
            "availability_zone": self.availability_zone,
            "start_flag": start,
        }}})
    }

    /// Starts reporting (and acknowledging); the tasks end with the bus.
    pub async fn start(self, bus: Bus) -> Result<Vec<JoinHandle<()>>, bus::BusError> {
        let mut tasks = Vec::new();
        if self.acks_ports {
            let mut updates = bus.listen(PORT_UPDATE_TOPIC, &format!("{}.{}", self.host, self.binary)).await?;
            let (bus2, me) = (bus.clone(), self.clone());
            tasks.push(tokio::spawn(async move {
                while let Some(incoming) = updates.next().await {
                    let port = &incoming.message.args["port"];
                    let bound_here = port["binding:host_id"].as_str() == Some(me.host.as_str())
                        && !matches!(
                            port["binding:vif_type"].as_str(),
                            Some("unbound") | Some("binding_failed") | None
                        );
                    if bound_here && port["status"].as_str() != Some("ACTIVE") {
                        let args = json!({"device": port["id"], "agent_id": me.host, "host": me.host});
                        let msg =
                            Message::new("update_device_up", args).with_request_id(incoming.message.request_id.clone());
                        if let Err(e) = bus2.call(&Target::topic(PLUGIN_TOPIC), msg).await {
                            tracing::warn!(error = %e, "update_device_up failed");
                        }
                    }
                }
            }));
        }
        tasks.push(tokio::spawn(async move {
            let mut first = true;
            loop {
                let msg = Message::new("report_state", self.state(first));
                match bus.call(&Target::topic(REPORTS_TOPIC), msg).await {
                    Ok(_) => first = false,
                    Err(e) => tracing::warn!(agent = %self.agent_type, error = %e, "state report failed"),
                }
                tokio::time::sleep(self.report_interval).await;
            }
        }));
        Ok(tasks)
    }
}
