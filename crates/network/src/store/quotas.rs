//! Per-project quota overrides; a resource without a row uses the default.

use db::{DbError, RowExt};

use super::Store;
use crate::error::Result;

impl Store {
    /// (project, resource, limit) rows, for one project or all.
    pub async fn quota_overrides(&self, project_id: Option<&str>) -> Result<Vec<(String, String, i64)>> {
        let rows = match project_id {
            Some(p) => self.db.fetch_all(self.db.q("SELECT * FROM quota WHERE project_id = ?").bind(p)).await?,
            None => self.db.fetch_all(self.db.q("SELECT * FROM quota")).await?,
        };
        Ok(rows
            .iter()
            .map(|r| Ok((r.str("project_id")?, r.str("resource")?, r.int("hard_limit")?)))
            .collect::<Result<_, DbError>>()?)
    }

    pub async fn set_quota(&self, project_id: &str, resource: &str, limit: i64) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        self.db
            .q("DELETE FROM quota WHERE project_id = ? AND resource = ?")
            .bind(project_id)
            .bind(resource)
            .execute(w.conn())
            .await
            .map_err(DbError::from)?;
        self.db
            .q("INSERT INTO quota (project_id, resource, hard_limit) VALUES (?, ?, ?)")
            .bind(project_id)
            .bind(resource)
            .bind(limit)
            .execute(w.conn())
            .await
            .map_err(DbError::from)?;
        w.commit().await?;
        Ok(())
    }

    pub async fn clear_quotas(&self, project_id: &str) -> Result<()> {
        self.db
            .q("DELETE FROM quota WHERE project_id = ?")
            .bind(project_id)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(())
    }
}
