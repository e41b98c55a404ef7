//! The network database. Every API resource is a [`Record`] (`db::records`):
//! its id, owner, attributes as the API shows them, revision and timestamps,
//! stored by one generic path described by a [`Kind`]. The allocation tables (IP addresses,
//! segments) have their own modules. Nothing outside this module writes SQL.

mod agents;
mod allocations;
mod quotas;
mod tags;

use std::sync::Arc;

pub use db::records::{Attrs, Kind, Record};
use db::{AnyConnection, Db, DbError};

use crate::error::{NetworkError, Result};

pub use allocations::Segment;

pub const NETWORK: Kind = Kind { table: "network", name: "Network", not_found: "NetworkNotFound", keys: &[] };
pub const SUBNET: Kind =
    Kind { table: "subnet", name: "Subnet", not_found: "SubnetNotFound", keys: &["network_id", "subnetpool_id"] };
pub const PORT: Kind = Kind {
    table: "port",
    name: "Port",
    not_found: "PortNotFound",
    keys: &["network_id", "mac_address", "device_id", "device_owner"],
};
pub const ROUTER: Kind = Kind { table: "router", name: "Router", not_found: "RouterNotFound", keys: &[] };
pub const FLOATINGIP: Kind = Kind {
    table: "floatingip",
    name: "Floating IP",
    not_found: "FloatingIPNotFound",
    keys: &["floating_network_id", "port_id"],
};
pub const SECURITY_GROUP: Kind =
    Kind { table: "security_group", name: "Security group", not_found: "SecurityGroupNotFound", keys: &[] };
pub const SECURITY_GROUP_RULE: Kind = Kind {
    table: "security_group_rule",
    name: "Security group rule",
    not_found: "SecurityGroupRuleNotFound",
    keys: &["security_group_id"],
};
pub const SUBNETPOOL: Kind =
    Kind { table: "subnetpool", name: "Subnet pool", not_found: "SubnetPoolNotFound", keys: &[] };
pub const ADDRESS_SCOPE: Kind =
    Kind { table: "address_scope", name: "Address scope", not_found: "AddressScopeNotFound", keys: &[] };
pub const AGENT: Kind =
    Kind { table: "agent", name: "Agent", not_found: "AgentNotFound", keys: &["agent_type", "host"] };

/// A write transaction (serialised among writers on SQLite); rolls back
/// unless committed.
pub struct Tx<'a>(db::WriteTx<'a>);

impl Tx<'_> {
    pub fn conn(&mut self) -> &mut AnyConnection {
        self.0.conn()
    }

    pub async fn commit(self) -> Result<()> {
        Ok(self.0.commit().await?)
    }
}

#[derive(Clone)]
pub struct Store {
    pub(crate) db: Arc<Db>,
}

impl Store {
    pub async fn open(db: Arc<Db>) -> Result<Store> {
        db.migrate(crate::schema::MIGRATIONS).await?;
        Ok(Store { db })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub async fn begin(&self) -> Result<Tx<'_>> {
        Ok(Tx(self.db.begin_write().await?))
    }

    /// A connection for reads outside a transaction.
    pub async fn reader(&self) -> Result<db::PoolConnection> {
        Ok(self.db.pool().acquire().await.map_err(DbError::from)?)
    }

    pub async fn insert(&self, conn: &mut AnyConnection, kind: &Kind, r: &Record) -> Result<()> {
        Ok(self.db.insert_record(conn, kind, r).await?)
    }

    /// Writes `r` over the stored record with the same id.
    pub async fn update(&self, conn: &mut AnyConnection, kind: &Kind, r: &Record) -> Result<()> {
        Ok(self.db.update_record(conn, kind, r).await?)
    }

    pub async fn delete(&self, conn: &mut AnyConnection, kind: &Kind, id: &str) -> Result<()> {
        Ok(self.db.delete_record(conn, kind, id).await?)
    }

    pub async fn find_in(&self, conn: &mut AnyConnection, kind: &Kind, id: &str) -> Result<Option<Record>> {
        Ok(self.db.find_record_in(conn, kind, id).await?)
    }

    pub async fn find(&self, kind: &Kind, id: &str) -> Result<Option<Record>> {
        Ok(self.db.find_record(kind, id).await?)
    }

    /// The record, or Neutron's "not found" for its kind.
    pub async fn get(&self, kind: &Kind, id: &str) -> Result<Record> {
        self.find(kind, id).await?.ok_or_else(|| not_found(kind, id))
    }

    pub async fn get_in(&self, conn: &mut AnyConnection, kind: &Kind, id: &str) -> Result<Record> {
        self.find_in(conn, kind, id).await?.ok_or_else(|| not_found(kind, id))
    }

    /// Every record of `kind`, or those whose key column `column` is `value`.
    pub async fn list_in(
        &self,
        conn: &mut AnyConnection,
        kind: &Kind,
        by: Option<(&str, &str)>,
    ) -> Result<Vec<Record>> {
        Ok(self.db.list_records_in(conn, kind, by).await?)
    }

    pub async fn list(&self, kind: &Kind, by: Option<(&str, &str)>) -> Result<Vec<Record>> {
        Ok(self.db.list_records(kind, by).await?)
    }

    /// How many records of `kind` a project owns (for quotas).
    pub async fn count_owned(&self, conn: &mut AnyConnection, kind: &Kind, project_id: &str) -> Result<i64> {
        Ok(self.db.count_owned(conn, kind, project_id).await?)
    }
}

pub fn not_found(kind: &Kind, id: &str) -> NetworkError {
    NetworkError::not_found(kind.not_found, format!("{} {id} could not be found.", kind.name))
}

/// The kind stored in `table` (quota resources are named after their tables).
pub fn kind_by_table(table: &str) -> Option<&'static Kind> {
    [&NETWORK, &SUBNET, &PORT, &ROUTER, &FLOATINGIP, &SECURITY_GROUP, &SECURITY_GROUP_RULE, &SUBNETPOOL, &ADDRESS_SCOPE]
        .into_iter()
        .find(|k| k.table == table)
}
