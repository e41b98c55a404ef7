//! The plugin layer, between the API and the agents, as Neutron has it:
//! API → core plugin (ML2: networks' segments, ports' addresses and
//! bindings) and service plugins (L3, …) → agents. A plugin operation runs
//! in one [`Txn`]: it owns the transaction, calls IPAM and ML2, and records
//! what it changed; the agents are told ([`notify::publish`]) only once the
//! transaction has committed, so they never hear of a change that was rolled
//! back. Handlers in `api/` parse, authorise, call the plugin and render.
//!
//! Every write runs in a `Txn` and records its changes, so the agents (L2,
//! DHCP, L3) hear of all of them, typed, after commit. One module a
//! resource: the core plugin's `networks`, `subnets`, `ports` and
//! `security_groups`; the L3 service plugin's `routers` and `floatingips`;
//! `agents` (liveness, scheduling, state reports), `dhcp` (what the DHCP
//! agents ask: their networks and DHCP ports) and `quotas`. The caller's
//! [`Auth`] is the request context, as Neutron's `context`: it scopes what a
//! project may see; policy (who may do what) is the API's.

pub mod agents;
pub mod dhcp;
pub mod floatingips;
pub mod networks;
pub mod notify;
pub mod ports;
pub mod quotas;
pub mod routers;
pub mod security_groups;
pub mod subnets;

use api::Auth;
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

/// Whether the caller may see a record owned by `project_id`.
pub fn owns(auth: &Auth, project_id: &str) -> bool {
    auth.is_admin() || auth.project_id.as_deref() == Some(project_id)
}

/// A new resource id: a dashed UUID, as Neutron's.
pub fn new_id() -> String {
    common::id::new_uuid()
}

/// Microseconds since the epoch, now.
pub fn now() -> i64 {
    common::time::now_micros()
}

/// How long ago `micros` was.
pub fn time_since(micros: i64) -> std::time::Duration {
    std::time::Duration::from_micros((now() - micros).max(0) as u64)
}
