//! Resources as records: an id, an owner, the attributes an API shows (kept as
//! JSON), a revision and timestamps, plus copies of the few attributes the
//! database must index or keep unique, in columns of their own. Services whose
//! resources are attribute bags (Neutron's, Glance's) store them all through this
//! one path, described per table by a [`Kind`].

use serde_json::{Map, Value};
use sqlx::any::AnyRow;

use crate::{AnyConnection, Db, DbError, RowExt};

pub type Attrs = Map<String, Value>;

/// `CREATE TABLE` for a record table without key columns, for migrations:
/// `record_table!("image")`.
#[macro_export]
macro_rules! record_table {
    ($table:literal) => {
        concat!(
            "CREATE TABLE ",
            $table,
            " (id VARCHAR(64) PRIMARY KEY, project_id VARCHAR(64) NOT NULL, attrs TEXT NOT NULL,",
            " revision_number BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)"
        )
    };
}

/// How one kind of resource is stored.
#[derive(Debug)]
pub struct Kind {
    pub table: &'static str,
    /// The resource's name in messages ("network", "security group").
    pub name: &'static str,
    /// The API's name for "not found", e.g. `NetworkNotFound`.
    pub not_found: &'static str,
    /// Attributes copied into columns of their own, for indexes and keys.
    pub keys: &'static [&'static str],
}

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

pub fn record_from_row(row: &AnyRow) -> Result<Record, DbError> {
    Ok(Record {
        id: row.str("id")?,
        project_id: row.str("project_id")?,
        attrs: serde_json::from_str(&row.str("attrs")?).unwrap_or_default(),
        revision_number: row.int("revision_number")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

impl Db {
    pub async fn insert_record(&self, conn: &mut AnyConnection, kind: &Kind, r: &Record) -> Result<(), DbError> {
        let mut cols = vec!["id", "project_id", "attrs", "revision_number", "created_at", "updated_at"];
        cols.extend_from_slice(kind.keys);
        let marks = vec!["?"; cols.len()].join(", ");
        let sql = format!("INSERT INTO {} ({}) VALUES ({marks})", kind.table, cols.join(", "));
        let sql = self.sql(&sql).into_owned();
        let mut q = sqlx::query(&sql)
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
    pub async fn update_record(&self, conn: &mut AnyConnection, kind: &Kind, r: &Record) -> Result<(), DbError> {
        let mut sets = vec!["project_id = ?", "attrs = ?", "revision_number = ?", "updated_at = ?"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        sets.extend(kind.keys.iter().map(|k| format!("{k} = ?")));
        let sql = format!("UPDATE {} SET {} WHERE id = ?", kind.table, sets.join(", "));
        let sql = self.sql(&sql).into_owned();
        let mut q = sqlx::query(&sql)
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

    pub async fn delete_record(&self, conn: &mut AnyConnection, kind: &Kind, id: &str) -> Result<(), DbError> {
        let sql = self.sql(&format!("DELETE FROM {} WHERE id = ?", kind.table)).into_owned();
        sqlx::query(&sql).bind(id).execute(conn).await.map_err(DbError::from)?;
        Ok(())
    }

    pub async fn find_record_in(
        &self,
        conn: &mut AnyConnection,
        kind: &Kind,
        id: &str,
    ) -> Result<Option<Record>, DbError> {
        let sql = self.sql(&format!("SELECT * FROM {} WHERE id = ?", kind.table)).into_owned();
        let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await.map_err(DbError::from)?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub async fn find_record(&self, kind: &Kind, id: &str) -> Result<Option<Record>, DbError> {
        let mut conn = self.pool().acquire().await.map_err(DbError::from)?;
        self.find_record_in(&mut conn, kind, id).await
    }

    /// Every record of `kind`, or those whose key column `column` is `value`.
    pub async fn list_records_in(
        &self,
        conn: &mut AnyConnection,
        kind: &Kind,
        by: Option<(&str, &str)>,
    ) -> Result<Vec<Record>, DbError> {
        let sql = match by {
            Some((col, _)) => format!("SELECT * FROM {} WHERE {col} = ? ORDER BY created_at, id", kind.table),
            None => format!("SELECT * FROM {} ORDER BY created_at, id", kind.table),
        };
        let sql = self.sql(&sql).into_owned();
        let mut q = sqlx::query(&sql);
        if let Some((_, v)) = by {
            q = q.bind(v.to_string());
        }
        let rows = q.fetch_all(conn).await.map_err(DbError::from)?;
        rows.iter().map(record_from_row).collect::<Result<_, _>>()
    }

    pub async fn list_records(&self, kind: &Kind, by: Option<(&str, &str)>) -> Result<Vec<Record>, DbError> {
        let mut conn = self.pool().acquire().await.map_err(DbError::from)?;
        self.list_records_in(&mut conn, kind, by).await
    }

    /// How many records of `kind` a project owns (for quotas).
    pub async fn count_owned(&self, conn: &mut AnyConnection, kind: &Kind, project_id: &str) -> Result<i64, DbError> {
        let sql = self.sql(&format!("SELECT COUNT(*) FROM {} WHERE project_id = ?", kind.table)).into_owned();
        let n: i64 = sqlx::query_scalar(&sql).bind(project_id).fetch_one(conn).await.map_err(DbError::from)?;
        Ok(n)
    }
}
