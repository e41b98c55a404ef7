//! Per-project quota limits set by an admin, over the configured defaults.

use std::collections::BTreeMap;

use db::RowExt;

use super::Store;
use crate::error::Result;

impl Store {
    pub async fn quota_overrides(&self, project: &str) -> Result<BTreeMap<String, i64>> {
        let rows = self
            .db
            .fetch_all(
                self.db.q("SELECT resource, hard_limit FROM quota WHERE project_id = ?").bind(project.to_string()),
            )
            .await?;
        rows.iter().map(|r| Ok((r.str("resource")?, r.int("hard_limit")?))).collect()
    }

    pub async fn set_quotas(&self, project: &str, limits: &BTreeMap<String, i64>) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        for (k, v) in limits {
            self.db
                .q("DELETE FROM quota WHERE project_id = ? AND resource = ?")
                .bind(project.to_string())
                .bind(k.clone())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
            self.db
                .q("INSERT INTO quota (project_id, resource, hard_limit) VALUES (?, ?, ?)")
                .bind(project.to_string())
                .bind(k.clone())
                .bind(*v)
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    pub async fn reset_quotas(&self, project: &str) -> Result<()> {
        self.write("DELETE FROM quota WHERE project_id = ?", &[project]).await
    }
}
