//! The DHCP agent's loop (Neutron's `DhcpAgent`): it reports its state, hears
//! the server's network, subnet and port notifications, and keeps the
//! networks it serves equal to what the server says.
//!
//! The notifications go to every DHCP agent; each one asks the server about
//! the network a notification names (`get_network_info`), which answers
//! only to the agent serving it, so scheduling stays the server's alone.
//! Notifications that arrive together are handled once per network.
//!
//! Resync (at start, and after a failure): the server's networks for this
//! host are served — a dnsmasq that already runs with the same command line
//! is kept, so its leases and clients see nothing — and every network this
//! agent has files for but no longer serves is let go.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bus::{Bus, CallContext, RemoteError, ServeOptions};
use network_rpc::*;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{LocalDhcp, Served};
use crate::agent::{report, state_report, AgentIdentity};

/// A DHCP agent serving one host.
pub struct DhcpAgent {
    pub identity: AgentIdentity,
    pub host: String,
    pub dhcp: LocalDhcp,
    /// How long a failed resync waits before the next.
    pub resync_interval: Duration,
}

#[derive(Debug)]
enum Event {
    /// Something of this network changed.
    Network(String),
}

impl DhcpAgent {
    /// Starts the agent; its tasks run until the bus goes.
    pub async fn start(self, bus: Bus) -> Result<Vec<JoinHandle<()>>, bus::BusError> {
        let configurations = json!({
            "dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq",
            "dhcp_lease_duration": 86400,
            "log_agent_heartbeats": false,
        });
        // The server learns of the agent before its first resync, so the
        // networks no agent serves are given to it then.
        let reports = PluginReportsClient::new(&bus);
        if let Err(e) = reports.report_state(&state_report(&self.identity, &self.host, &configurations, true)).await {
            tracing::warn!(error = %e, "first state report failed");
        }
        let mut tasks = vec![report(self.identity.clone(), self.host.clone(), configurations, reports)];
        let (tx, rx) = mpsc::unbounded_channel();
        let server = format!("{}.{}", self.host, self.identity.binary);
        tasks.push(DhcpAgentNotify::serve(&bus, &server, Arc::new(Listener(tx)), ServeOptions::default()).await?);
        let looper = Loop {
            host: self.host,
            dhcp: self.dhcp,
            plugin: PluginClient::new(&bus),
            served: BTreeSet::new(),
            resync_interval: self.resync_interval,
        };
        tasks.push(tokio::spawn(looper.run(rx)));
        Ok(tasks)
    }
}

/// The network a notification's payload names.
fn network_of(payload: &Value) -> Option<String> {
    let id = payload
        .pointer("/network/id")
        .or_else(|| payload.get("network_id"))
        .or_else(|| payload.pointer("/subnet/network_id"))
        .or_else(|| payload.pointer("/port/network_id"))?;
    id.as_str().map(String::from)
}

struct Listener(mpsc::UnboundedSender<Event>);

impl Listener {
    fn heard(&self, args: DhcpPayload) -> Result<(), RemoteError> {
        if let Some(id) = network_of(&args.payload) {
            let _ = self.0.send(Event::Network(id));
        }
        Ok(())
    }
}

impl DhcpAgentNotifyHandler for Listener {
    async fn network_create_end(&self, _ctx: &CallContext, args: DhcpPayload) -> Result<(), RemoteError> {
        self.heard(args)
    }
    async fn network_update_end(&self, _ctx: &CallContext, args: DhcpPayload) -> Result<(), RemoteError> {
        self.heard(args)
    }
    async fn network_delete_end(&self, _ctx: &CallContext, args: DhcpPayload) -> Result<(), RemoteError> {
        self.heard(args)
    }
    async fn subnet_create_end(&self, _ctx: &CallContext, args: DhcpPayload) -> Result<(), RemoteError> {
        self.heard(args)
    }
    async fn subnet_update_end(&self, _ctx: &CallContext, args: DhcpPayload) -> Result<(), RemoteError> {
        self.heard(args)
    }
    async fn subnet_delete_end(&self, _ctx: &CallContext, args: DhcpPayload) -> Result<(), RemoteError> {
        self.heard(args)
    }
    async fn port_create_end(&self, _ctx: &CallContext, args: DhcpPayload) -> Result<(), RemoteError> {
        self.heard(args)
    }
    async fn port_update_end(&self, _ctx: &CallContext, args: DhcpPayload) -> Result<(), RemoteError> {
        self.heard(args)
    }
    async fn port_delete_end(&self, _ctx: &CallContext, args: DhcpPayload) -> Result<(), RemoteError> {
        self.heard(args)
    }
}

#[derive(Debug, thiserror::Error)]
enum LoopError {
    #[error("server: {0}")]
    Rpc(#[from] bus::BusError),
    #[error(transparent)]
    Dhcp(#[from] super::DhcpError),
}

/// The one task that changes this host's DHCP.
struct Loop {
    host: String,
    dhcp: LocalDhcp,
    plugin: PluginClient,
    /// The networks served now.
    served: BTreeSet<String>,
    resync_interval: Duration,
}

impl Loop {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        let mut resync = true;
        // Networks whose last change failed, tried again on the next round.
        let mut retry: BTreeSet<String> = BTreeSet::new();
        loop {
            if resync {
                match self.resync().await {
                    Ok(failed) => {
                        resync = false;
                        retry.extend(failed);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "DHCP resync failed; trying again");
                        tokio::time::sleep(self.resync_interval).await;
                        continue;
                    }
                }
            }
            let mut networks = std::mem::take(&mut retry);
            let first = if networks.is_empty() {
                rx.recv().await
            } else {
                tokio::time::timeout(self.resync_interval, rx.recv()).await.unwrap_or(None)
            };
            if let Some(Event::Network(id)) = first {
                networks.insert(id);
            } else if rx.is_closed() {
                return;
            }
            while let Ok(Event::Network(id)) = rx.try_recv() {
                networks.insert(id);
            }
            for id in networks {
                if let Err(e) = self.refresh(&id).await {
                    tracing::warn!(network = %id, error = %e, "DHCP for the network failed; trying again");
                    // The server out of reach may have sent what we missed;
                    // a refusal concerns this network alone.
                    if matches!(&e, LoopError::Rpc(b) if b.is_unavailable() || matches!(b, bus::BusError::NoReply { .. }))
                    {
                        resync = true;
                    }
                    retry.insert(id);
                }
            }
        }
    }

    /// Serves what the server says this host serves; lets go of the rest.
    /// Fails only when the server cannot say; the networks that failed on
    /// their own are returned, to be tried again one by one (one network
    /// the server refuses a port on holds up no other).
    async fn resync(&mut self) -> Result<BTreeSet<String>, LoopError> {
        let active = self.plugin.get_active_networks_info(&Host { host: self.host.clone() }).await?;
        let wanted: BTreeSet<String> = active.iter().filter(|n| n.has_dhcp()).map(|n| n.id.clone()).collect();
        let mut failed = BTreeSet::new();
        for net in active.into_iter().filter(DhcpNetwork::has_dhcp) {
            let id = net.id.clone();
            if let Err(e) = self.serve(net).await {
                tracing::warn!(network = %id, error = %e, "DHCP for the network failed; trying again");
                failed.insert(id);
            }
        }
        let known: BTreeSet<String> = self.dhcp.networks().into_iter().chain(self.served.iter().cloned()).collect();
        for id in known.difference(&wanted) {
            if let Err(e) = self.let_go(id).await {
                tracing::warn!(network = %id, error = %e, "letting the network go failed; trying again");
                failed.insert(id.clone());
            }
        }
        tracing::info!(networks = wanted.len(), failed = failed.len(), "DHCP resynced");
        Ok(failed)
    }

    /// Brings one network's DHCP in line with the server.
    async fn refresh(&mut self, network_id: &str) -> Result<(), LoopError> {
        let args = NetworkOnHost { network_id: network_id.into(), host: self.host.clone() };
        match self.plugin.get_network_info(&args).await? {
            Some(net) if net.has_dhcp() => self.serve(net).await,
            _ if self.served.contains(network_id) || self.dhcp.networks().iter().any(|n| n == network_id) => {
                self.let_go(network_id).await
            }
            _ => Ok(()),
        }
    }

    async fn serve(&mut self, mut net: DhcpNetwork) -> Result<(), LoopError> {
        let wanted_subnets: BTreeSet<&str> =
            net.subnets.iter().filter(|s| s.enable_dhcp).map(|s| s.id.as_str()).collect();
        let port = match net.dhcp_port(&self.host) {
            Some(p) if wanted_subnets.iter().all(|s| p.fixed_ips.iter().any(|f| f.subnet_id == *s)) => p.clone(),
            _ => {
                let request = DhcpPortRequest { network_id: net.id.clone(), host: self.host.clone() };
                let port = self.plugin.create_dhcp_port(&request).await?;
                net.ports.retain(|p| p.id != port.id);
                net.ports.push(port.clone());
                port
            }
        };
        let served = self.dhcp.enable(&net, &port).await?;
        if served != Served::Unchanged {
            tracing::info!(network = %net.id, ports = net.ports.len(), ?served, "DHCP served");
        }
        self.served.insert(net.id);
        Ok(())
    }

    async fn let_go(&mut self, network_id: &str) -> Result<(), LoopError> {
        self.dhcp.disable(network_id).await?;
        self.served.remove(network_id);
        let request = DhcpPortRequest { network_id: network_id.into(), host: self.host.clone() };
        self.plugin.release_dhcp_port(&request).await?;
        tracing::info!(network = %network_id, "DHCP no longer served here");
        Ok(())
    }
}
