//! The network database. Every API resource is a [`Record`]: its id, owner,
//! attributes (as the API shows them), revision and timestamps, stored by one
//! generic path described by a [`Kind`]. The allocation tables (IP addresses,
//! segments) have their own modules. Nothing outside this module writes SQL.

mod agents;
mod allocations;
mod quotas;
mod tags;

use std::sync::Arc;

use db::{AnyConnection, AnyRow, Db, DbError, RowExt};
use serde_json::{Map, Value};

use crate::error::{NetworkError, Result};

pub use allocations::Segment;

pub type Attrs = Map<String, Value>;

/// How one kind of resource is stored.
#[derive(Debug)]
pub struct Kind {
    pub table: &'static str,
    /// The resource's name in messages ("network", "security group").
    pub name: &'static str,
    /// Neutron's name for "not found", e.g. `NetworkNotFound`.
    pub not_found: &'static str,
    /// Attributes copied into columns of their own, for indexes and keys.
    pub keys: &'static [&'static str],
}

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

/// One stored resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub project_id: String,
    pub attrs: Attrs,
    pub revision_number: i64,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record {
    /// A new record: revision 0, created now.
    pub fn new(id: String, project_id: String, attrs: Attrs) -> Record {
        let now = common::time::now_micros();
        Record { id, project_id, attrs, revision_number: 0, created_at: now, updated_at: now }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }

    pub fn flag(&self, key: &str) -> bool {
        self.attrs.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    /// Marks a change: the revision goes up and `updated_at` moves.
    pub fn touch(&mut self) {
        self.revision_number += 1;
        self.updated_at = common::time::now_micros().max(self.updated_at);
    }
}

fn key_value(attrs: &Attrs, key: &str) -> Option<String> {
    match attrs.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
    }
}

fn from_row(row: &AnyRow) -> Result<Record, DbError> {
    Ok(Record {
        id: row.str("id")?,
        project_id: row.str("project_id")?,
        attrs: serde_json::from_str(&row.str("attrs")?).unwrap_or_default(),
        revision_number: row.int("revision_number")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

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
        let mut cols = vec!["id", "project_id", "attrs", "revision_number", "created_at", "updated_at"];
        cols.extend_from_slice(kind.keys);
        let marks = vec!["?"; cols.len()].join(", ");
        let sql = format!("INSERT INTO {} ({}) VALUES ({marks})", kind.table, cols.join(", "));
        let sql = self.db.sql(&sql).into_owned();
        let mut q = db::query(&sql)
            .bind(&r.id)
            .bind(&r.project_id)
            .bind(Value::Object(r.attrs.clone()).to_string())
            .bind(r.revision_number)
            .bind(r.created_at)
            .bind(r.updated_at);
        for k in kind.keys {
            q = q.bind(key_value(&r.attrs, k).unwrap_or_default());
        }
        q.execute(conn).await.map_err(DbError::from)?;
        Ok(())
    }

    /// Writes `r` over the stored record with the same id.
    pub async fn update(&self, conn: &mut AnyConnection, kind: &Kind, r: &Record) -> Result<()> {
        let mut sets = vec!["project_id = ?", "attrs = ?", "revision_number = ?", "updated_at = ?"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        sets.extend(kind.keys.iter().map(|k| format!("{k} = ?")));
        let sql = format!("UPDATE {} SET {} WHERE id = ?", kind.table, sets.join(", "));
        let sql = self.db.sql(&sql).into_owned();
        let mut q = db::query(&sql)
            .bind(&r.project_id)
            .bind(Value::Object(r.attrs.clone()).to_string())
            .bind(r.revision_number)
            .bind(r.updated_at);
        for k in kind.keys {
            q = q.bind(key_value(&r.attrs, k).unwrap_or_default());
        }
        q.bind(&r.id).execute(conn).await.map_err(DbError::from)?;
        Ok(())
    }

    pub async fn delete(&self, conn: &mut AnyConnection, kind: &Kind, id: &str) -> Result<()> {
        let sql = self.db.sql(&format!("DELETE FROM {} WHERE id = ?", kind.table)).into_owned();
        db::query(&sql).bind(id).execute(conn).await.map_err(DbError::from)?;
        Ok(())
    }

    pub async fn find_in(&self, conn: &mut AnyConnection, kind: &Kind, id: &str) -> Result<Option<Record>> {
        let sql = self.db.sql(&format!("SELECT * FROM {} WHERE id = ?", kind.table)).into_owned();
        let row = db::query(&sql).bind(id).fetch_optional(conn).await.map_err(DbError::from)?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    pub async fn find(&self, kind: &Kind, id: &str) -> Result<Option<Record>> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        self.find_in(&mut conn, kind, id).await
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
        let sql = match by {
            Some((col, _)) => format!("SELECT * FROM {} WHERE {col} = ? ORDER BY created_at, id", kind.table),
            None => format!("SELECT * FROM {} ORDER BY created_at, id", kind.table),
        };
        let sql = self.db.sql(&sql).into_owned();
        let mut q = db::query(&sql);
        if let Some((_, v)) = by {
            q = q.bind(v.to_string());
        }
        let rows = q.fetch_all(conn).await.map_err(DbError::from)?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    pub async fn list(&self, kind: &Kind, by: Option<(&str, &str)>) -> Result<Vec<Record>> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        self.list_in(&mut conn, kind, by).await
    }

    /// How many records of `kind` a project owns (for quotas).
    pub async fn count_owned(&self, conn: &mut AnyConnection, kind: &Kind, project_id: &str) -> Result<i64> {
        let sql = self.db.sql(&format!("SELECT COUNT(*) FROM {} WHERE project_id = ?", kind.table)).into_owned();
        let n: i64 = db::query_scalar(&sql).bind(project_id).fetch_one(conn).await.map_err(DbError::from)?;
        Ok(n)
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
