//! Host aggregates: named sets of hosts with metadata. An
//! `availability_zone` key makes the aggregate a zone.

use std::collections::BTreeMap;

use db::{AnyRow, RowExt};
use serde::{Deserialize, Serialize};

use super::Store;
use crate::error::{ComputeError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub hosts: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl Aggregate {
    pub fn availability_zone(&self) -> Option<&str> {
        self.metadata.get("availability_zone").map(String::as_str)
    }
}

pub fn not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Aggregate {id} could not be found."))
}

fn from_row(r: &AnyRow) -> Result<Aggregate> {
    Ok(Aggregate {
        id: r.int("id")?,
        uuid: r.str("uuid")?,
        name: r.str("name")?,
        hosts: Vec::new(),
        metadata: BTreeMap::new(),
        created_at: r.int("created_at")?,
        updated_at: r.opt_int("updated_at")?,
    })
}

impl Store {
    pub async fn aggregates(&self) -> Result<Vec<Aggregate>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM aggregate ORDER BY id")).await?;
        let mut aggs = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        let hosts = self.db.fetch_all(self.db.q("SELECT * FROM aggregate_host ORDER BY host")).await?;
        let meta = self.db.fetch_all(self.db.q("SELECT * FROM aggregate_metadata")).await?;
        for a in &mut aggs {
            for h in &hosts {
                if h.int("aggregate_id")? == a.id {
                    a.hosts.push(h.str("host")?);
                }
            }
            for m in &meta {
                if m.int("aggregate_id")? == a.id {
                    a.metadata.insert(m.str("meta_key")?, m.str("meta_value")?);
                }
            }
        }
        Ok(aggs)
    }

    pub async fn aggregate(&self, id: i64) -> Result<Aggregate> {
        self.aggregates().await?.into_iter().find(|a| a.id == id).ok_or_else(|| not_found(&id.to_string()))
    }

    pub async fn create_aggregate(&self, name: &str, zone: Option<&str>) -> Result<Aggregate> {
        let mut w = self.db.begin_write().await?;
        let uuid = common::id::new_uuid();
        let done = self
            .db
            .q("INSERT INTO aggregate (uuid, name, created_at) VALUES (?, ?, ?)")
            .bind(uuid.clone())
            .bind(name.to_string())
            .bind(super::now())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from);
        match done {
            Ok(_) => {}
            Err(e) if e.is_unique_violation() => {
                return Err(ComputeError::Conflict(format!("Aggregate {name} already exists.")))
            }
            Err(e) => return Err(e.into()),
        }
        let id: i64 = db::query_scalar(&self.db.sql("SELECT id FROM aggregate WHERE uuid = ?"))
            .bind(uuid.clone())
            .fetch_one(w.conn())
            .await
            .map_err(db::DbError::from)?;
        if let Some(zone) = zone {
            self.db
                .q("INSERT INTO aggregate_metadata (aggregate_id, meta_key, meta_value) VALUES (?, 'availability_zone', ?)")
                .bind(id)
                .bind(zone.to_string())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        w.commit().await?;
        self.aggregate(id).await
    }

    pub async fn rename_aggregate(&self, id: i64, name: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let done = self
            .db
            .q("UPDATE aggregate SET name = ?, updated_at = ? WHERE id = ?")
            .bind(name.to_string())
            .bind(super::now())
            .bind(id)
            .execute(w.conn())
            .await
            .map_err(db::DbError::from);
        match done {
            Ok(_) => {}
            Err(e) if e.is_unique_violation() => {
                return Err(ComputeError::Conflict(format!("Aggregate {name} already exists.")))
            }
            Err(e) => return Err(e.into()),
        }
        w.commit().await?;
        Ok(())
    }

    /// Sets metadata; a `None` value removes the key.
    pub async fn set_aggregate_metadata(&self, id: i64, changes: &BTreeMap<String, Option<String>>) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        for (k, v) in changes {
            self.db
                .q("DELETE FROM aggregate_metadata WHERE aggregate_id = ? AND meta_key = ?")
                .bind(id)
                .bind(k.clone())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
            if let Some(v) = v {
                self.db
                    .q("INSERT INTO aggregate_metadata (aggregate_id, meta_key, meta_value) VALUES (?, ?, ?)")
                    .bind(id)
                    .bind(k.clone())
                    .bind(v.clone())
                    .execute(w.conn())
                    .await
                    .map_err(db::DbError::from)?;
            }
        }
        self.db
            .q("UPDATE aggregate SET updated_at = ? WHERE id = ?")
            .bind(super::now())
            .bind(id)
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }

    /// Adds or removes a host; false when there was nothing to change.
    pub async fn change_aggregate_host(&self, id: i64, host: &str, add: bool) -> Result<bool> {
        let mut w = self.db.begin_write().await?;
        let changed = if add {
            let q = self.db.q("INSERT INTO aggregate_host (aggregate_id, host) VALUES (?, ?)");
            self.db.insert_unless_duplicate(w.conn(), q.bind(id).bind(host.to_string())).await?
        } else {
            let q = self.db.q("DELETE FROM aggregate_host WHERE aggregate_id = ? AND host = ?");
            let done = q.bind(id).bind(host.to_string()).execute(w.conn()).await;
            done.map_err(db::DbError::from)?.rows_affected() > 0
        };
        w.commit().await?;
        Ok(changed)
    }

    pub async fn delete_aggregate(&self, id: i64) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        for sql in [
            "DELETE FROM aggregate WHERE id = ?",
            "DELETE FROM aggregate_host WHERE aggregate_id = ?",
            "DELETE FROM aggregate_metadata WHERE aggregate_id = ?",
        ] {
            let sql = self.db.sql(sql).into_owned();
            db::query(&sql).bind(id).execute(w.conn()).await.map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }
}
