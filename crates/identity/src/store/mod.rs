//! Identity's database: one file per kind of record, each an `impl Store` block.
//! Nothing outside this module writes SQL.

mod app_creds;
mod assignments;
mod catalog;
mod consumers;
mod credentials;
mod domain_configs;
mod groups;
mod policies;
mod projects;
mod revocations;
mod roles;
mod users;

use std::sync::Arc;

use db::{AnyRow, Db, DbError, Query};
use serde_json::{Map, Value};

pub use app_creds::AppCred;
pub use assignments::{Assignment, AssignmentFilter, Target};
pub use catalog::{Endpoint, EndpointGroup, Region, Service};
pub use consumers::Consumer;
pub use credentials::Credential;
pub use domain_configs::DomainConfig;
pub use groups::Group;
pub use policies::Policy;
pub use projects::{Project, ProjectFilter};
pub use revocations::RevocationEvent;
pub use roles::Role;
pub use users::{User, UserFilter};

use crate::error::{IdentityError, Result};

pub type Extra = Map<String, Value>;

#[derive(Clone)]
pub struct Store {
    pub(crate) db: Arc<Db>,
}

/// A `SELECT` narrowed by optional filters, each bound rather than spliced.
pub(crate) struct Select {
    sql: String,
    args: Vec<String>,
    /// A filter on an empty id list: nothing can match.
    empty: bool,
}

impl Select {
    pub(crate) fn from(table: &'static str) -> Select {
        Select { sql: format!("SELECT * FROM {table} WHERE 1 = 1"), args: Vec::new(), empty: false }
    }

    /// `column = value`, when a value is given.
    pub(crate) fn eq(mut self, column: &'static str, value: &Option<String>) -> Select {
        if let Some(v) = value {
            self.sql.push_str(&format!(" AND {column} = ?"));
            self.args.push(v.clone());
        }
        self
    }

    /// A 0/1 flag column, when a value is given.
    pub(crate) fn flag(mut self, column: &'static str, value: Option<bool>) -> Select {
        if let Some(v) = value {
            self.sql.push_str(&format!(" AND {column} = {}", i64::from(v)));
        }
        self
    }

    /// `column IN (values)`, when a list is given.
    pub(crate) fn any_of(mut self, column: &'static str, values: &Option<Vec<String>>) -> Select {
        if let Some(vs) = values {
            self.empty |= vs.is_empty();
            if !vs.is_empty() {
                self.sql.push_str(&format!(" AND {column} IN ({})", vec!["?"; vs.len()].join(", ")));
                self.args.extend(vs.iter().cloned());
            }
        }
        self
    }
}

/// How a row becomes a record.
pub(crate) type FromRow<T> = fn(&AnyRow) -> Result<T, DbError>;

impl Store {
    pub async fn open(db: Arc<Db>) -> Result<Store> {
        db.migrate(crate::schema::MIGRATIONS).await?;
        Ok(Store { db })
    }

    /// The record `sql` selects by `id`, if any.
    pub(crate) async fn find<T>(&self, sql: &'static str, id: &str, from_row: FromRow<T>) -> Result<Option<T>> {
        let row = self.db.q(sql).bind(id).fetch_optional(self.db.pool()).await.map_err(DbError::from)?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Like [`Store::find`], but a missing record is a `kind` not found.
    pub(crate) async fn get<T>(
        &self,
        sql: &'static str,
        id: &str,
        kind: &'static str,
        from_row: FromRow<T>,
    ) -> Result<T> {
        self.find(sql, id, from_row).await?.ok_or_else(|| IdentityError::not_found(kind, id))
    }

    /// Every record `query` selects.
    pub(crate) async fn all<T>(&self, query: Query<'_>, from_row: FromRow<T>) -> Result<Vec<T>> {
        let rows = self.db.fetch_all(query).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// The records a [`Select`] finds, in `order`.
    pub(crate) async fn select<T>(&self, select: Select, order: &'static str, from_row: FromRow<T>) -> Result<Vec<T>> {
        if select.empty {
            return Ok(Vec::new());
        }
        let sql = self.db.sql(&format!("{} ORDER BY {order}", select.sql)).into_owned();
        let mut q = db::query(&sql);
        for a in select.args {
            q = q.bind(a);
        }
        self.all(q, from_row).await
    }

    /// Runs a statement; a broken unique constraint becomes `conflict()`.
    /// Returns the rows affected.
    pub(crate) async fn write(&self, query: Query<'_>, conflict: impl FnOnce() -> IdentityError) -> Result<u64> {
        match query.execute(self.db.pool()).await.map_err(DbError::from) {
            Ok(r) => Ok(r.rows_affected()),
            Err(e) if e.is_unique_violation() => Err(conflict()),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `statements`, each bound to `id`, in one transaction: a record and
    /// everything that hangs off it go together or not at all.
    pub(crate) async fn delete_with(&self, statements: &[&'static str], id: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        for sql in statements {
            let binds = sql.matches('?').count();
            let mut q = self.db.q(sql);
            for _ in 0..binds {
                q = q.bind(id);
            }
            q.execute(w.conn()).await.map_err(DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }
}

pub(crate) fn parse_map(text: &str) -> Extra {
    serde_json::from_str(text).unwrap_or_default()
}

pub(crate) fn to_text(map: &Extra) -> String {
    Value::Object(map.clone()).to_string()
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}
