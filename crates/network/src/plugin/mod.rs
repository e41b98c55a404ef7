//! The plugin layer, between the API and the agents, as Neutron has it:
//! API → core plugin (ML2: networks' segments, ports' addresses and
//! bindings) and service plugins (L3, …) → agents. A plugin operation runs
//! in one [`Txn`]: it owns the transaction, calls IPAM and ML2, and records
//! what it changed; the agents are told ([`notify::publish`]) only once the
//! transaction has committed, so they never hear of a change that was rolled
//! back. Handlers in `api/` parse, authorise, call the plugin and render.
//!
//! Every write of networks, subnets, ports, routers, floating IPs and
//! security group rules runs in a `Txn` and records its changes, so the
//! agents (L2, DHCP, L3) hear of all of them, typed, after commit. The core
//! plugin's ports live here (`ports.rs`); the other resources' logic still
//! sits in their `api/` handlers, inside a `Txn` (moving it here is next).

pub mod notify;
pub mod ports;

use db::AnyConnection;

pub use notify::Change;

use crate::error::Result;
use crate::store::Tx;
use crate::Network;

/// A plugin operation's transaction and the changes it made.
pub struct Txn<'a> {
    net: &'a Network,
    tx: Tx<'a>,
    changes: Vec<Change>,
}

impl<'a> Txn<'a> {
    pub async fn begin(net: &'a Network) -> Result<Txn<'a>> {
        Ok(Txn { net, tx: net.store.begin().await?, changes: Vec::new() })
    }

    pub fn conn(&mut self) -> &mut AnyConnection {
        self.tx.conn()
    }

    /// Something to tell the agents once this commits.
    pub fn record(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Commits, then tells the agents what changed.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        notify::publish(self.net, self.changes).await;
        Ok(())
    }
}
