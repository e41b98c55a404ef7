//! Migrations: a resize, cold migration or live migration under way or done.

use db::{AnyRow, RowExt};
use serde::{Deserialize, Serialize};

use super::Store;
use crate::error::{ComputeError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    pub id: i64,
    pub uuid: String,
    pub instance_uuid: String,
    /// `resize`, `migration` or `live-migration`.
    pub migration_type: String,
    pub status: String,
    pub source_compute: Option<String>,
    pub dest_compute: Option<String>,
    pub old_flavor: Option<String>,
    pub new_flavor: Option<String>,
    pub project_id: String,
    pub user_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(r: &AnyRow) -> Result<Migration> {
    Ok(Migration {
        id: r.int("id")?,
        uuid: r.str("uuid")?,
        instance_uuid: r.str("instance_uuid")?,
        migration_type: r.str("migration_type")?,
        status: r.str("status")?,
        source_compute: r.opt_str("source_compute")?,
        dest_compute: r.opt_str("dest_compute")?,
        old_flavor: r.opt_str("old_flavor")?,
        new_flavor: r.opt_str("new_flavor")?,
        project_id: r.str("project_id")?,
        user_id: r.str("user_id")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

impl Store {
    /// Records a migration; one recorded already under its uuid is kept.
    pub async fn create_migration(&self, m: &Migration) -> Result<()> {
        if self.migration(&m.uuid).await?.is_some() {
            return Ok(());
        }
        let mut w = self.db.begin_write().await?;
        self.db
            .q("INSERT INTO migration (uuid, instance_uuid, migration_type, status, source_compute, dest_compute, old_flavor, new_flavor, project_id, user_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(m.uuid.clone())
            .bind(m.instance_uuid.clone())
            .bind(m.migration_type.clone())
            .bind(m.status.clone())
            .bind(m.source_compute.clone())
            .bind(m.dest_compute.clone())
            .bind(m.old_flavor.clone())
            .bind(m.new_flavor.clone())
            .bind(m.project_id.clone())
            .bind(m.user_id.clone())
            .bind(m.created_at)
            .bind(m.updated_at)
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }

    pub async fn set_migration(&self, uuid: &str, status: &str, dest: Option<&str>) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        self.db
            .q("UPDATE migration SET status = ?, dest_compute = COALESCE(?, dest_compute), updated_at = ? WHERE uuid = ?")
            .bind(status.to_string())
            .bind(dest.map(String::from))
            .bind(super::now())
            .bind(uuid.to_string())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }

    pub async fn migrations(&self, instance: Option<&str>) -> Result<Vec<Migration>> {
        let rows = match instance {
            Some(i) => {
                self.db
                    .fetch_all(
                        self.db.q("SELECT * FROM migration WHERE instance_uuid = ? ORDER BY id").bind(i.to_string()),
                    )
                    .await?
            }
            None => self.db.fetch_all(self.db.q("SELECT * FROM migration ORDER BY id")).await?,
        };
        rows.iter().map(from_row).collect()
    }

    pub async fn migration(&self, uuid: &str) -> Result<Option<Migration>> {
        let rows =
            self.db.fetch_all(self.db.q("SELECT * FROM migration WHERE uuid = ?").bind(uuid.to_string())).await?;
        rows.first().map(from_row).transpose()
    }

    /// The instance's migration still in progress.
    pub async fn active_migration(&self, instance: &str) -> Result<Migration> {
        self.migrations(Some(instance))
            .await?
            .into_iter()
            .rev()
            .find(|m| !matches!(m.status.as_str(), "confirmed" | "reverted" | "error" | "completed" | "failed"))
            .ok_or_else(|| ComputeError::NotFound(format!("Migration for instance {instance} could not be found.")))
    }
}
