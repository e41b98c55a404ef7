//! What an agent's datapath does, whichever it is: wire a port bound to its
//! host, unwire it, keep a network's overlay forwarding entries, and on resync
//! remove what it made that is no longer wanted. The agent loop decides
//! *what*; a datapath knows *how* on its kind of host.

pub mod linuxbridge;
pub mod standin;

use std::collections::HashSet;

use async_trait::async_trait;
use network_rpc::{DeviceDetails, FdbEntry};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("{0}")]
    Netdev(#[from] netdev::NetdevError),
    #[error("port {port}: {reason}")]
    CannotWire { port: String, reason: String },
}

pub type DatapathResult<T> = Result<T, DatapathError>;

/// How wiring a port went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wiring {
    /// Wired: the agent reports it up.
    Wired,
    /// Its device (the tap the hypervisor makes) is not there yet: the agent
    /// tries again when it appears.
    NoDevice,
}

#[async_trait]
pub trait Datapath: Send + Sync {
    /// What the agent reports in its `configurations` (what it can reach).
    fn configurations(&self) -> Value;

    /// Wires the port on its network (making the network's devices first).
    async fn wire(&self, port: &DeviceDetails) -> DatapathResult<Wiring>;

    /// Undoes [`Datapath::wire`] for the port.
    async fn unwire(&self, port: &DeviceDetails) -> DatapathResult<()>;

    /// A network with no port left here: its devices go.
    async fn remove_network(&self, network_id: &str) -> DatapathResult<()>;

    /// Sets the overlay forwarding entries of a network wired here to exactly
    /// `entries` (ports on other hosts), keeping those already right.
    async fn set_fdb(&self, network_id: &str, entries: &[FdbEntry]) -> DatapathResult<()>;

    /// Resync: removes what this datapath made for networks and ports not in
    /// these sets, touching nothing that is kept.
    async fn remove_stale(&self, networks: &HashSet<String>, ports: &HashSet<String>) -> DatapathResult<()>;

    /// A signal for every device that appears (the agent then retries ports
    /// waiting for theirs), if the datapath can watch.
    fn watch(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        None
    }
}
