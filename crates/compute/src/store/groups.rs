//! Server groups and their members.

use db::{AnyRow, RowExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Store;
use crate::error::{ComputeError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerGroup {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub policy: String,
    pub rules: Map<String, Value>,
    pub members: Vec<String>,
    pub created_at: i64,
}

impl ServerGroup {
    pub fn max_server_per_host(&self) -> Option<i64> {
        self.rules.get("max_server_per_host").and_then(Value::as_i64)
    }
}

pub fn not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Instance group {id} could not be found."))
}

impl Store {
    fn group_from_row(r: &AnyRow) -> Result<ServerGroup> {
        Ok(ServerGroup {
            id: r.str("id")?,
            name: r.str("name")?,
            project_id: r.str("project_id")?,
            user_id: r.str("user_id")?,
            policy: r.str("policy")?,
            rules: serde_json::from_str(&r.str("rules")?).unwrap_or_default(),
            members: Vec::new(),
            created_at: r.int("created_at")?,
        })
    }

    pub async fn create_group(&self, g: &ServerGroup, limit: i64) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let count: i64 = db::query_scalar(&self.db.sql("SELECT COUNT(*) FROM server_group WHERE project_id = ?"))
            .bind(g.project_id.clone())
            .fetch_one(w.conn())
            .await
            .map_err(db::DbError::from)?;
        if limit >= 0 && count >= limit {
            return Err(ComputeError::OverQuota("Quota exceeded, too many server groups.".into()));
        }
        self.db
            .q("INSERT INTO server_group (id, name, project_id, user_id, policy, rules, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(g.id.clone())
            .bind(g.name.clone())
            .bind(g.project_id.clone())
            .bind(g.user_id.clone())
            .bind(g.policy.clone())
            .bind(Value::Object(g.rules.clone()).to_string())
            .bind(g.created_at)
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }

    async fn with_members(&self, mut groups: Vec<ServerGroup>) -> Result<Vec<ServerGroup>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM server_group_member")).await?;
        let mut by_group: std::collections::HashMap<String, Vec<String>> = Default::default();
        for r in &rows {
            by_group.entry(r.str("group_id")?).or_default().push(r.str("instance_uuid")?);
        }
        for g in &mut groups {
            g.members = by_group.remove(&g.id).unwrap_or_default();
        }
        Ok(groups)
    }

    pub async fn groups(&self, project: Option<&str>) -> Result<Vec<ServerGroup>> {
        let rows = match project {
            Some(p) => {
                self.db
                    .fetch_all(
                        self.db
                            .q("SELECT * FROM server_group WHERE project_id = ? ORDER BY created_at")
                            .bind(p.to_string()),
                    )
                    .await?
            }
            None => self.db.fetch_all(self.db.q("SELECT * FROM server_group ORDER BY created_at")).await?,
        };
        let groups = rows.iter().map(Self::group_from_row).collect::<Result<Vec<_>>>()?;
        self.with_members(groups).await
    }

    pub async fn group(&self, id: &str) -> Result<ServerGroup> {
        let row = self
            .db
            .q("SELECT * FROM server_group WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(db::DbError::from)?
            .ok_or_else(|| not_found(id))?;
        let g = Self::group_from_row(&row)?;
        Ok(self.with_members(vec![g]).await?.pop().unwrap_or_else(|| unreachable!()))
    }

    /// The group an instance belongs to.
    pub async fn group_of(&self, instance: &str) -> Result<Option<String>> {
        let row = self
            .db
            .q("SELECT group_id FROM server_group_member WHERE instance_uuid = ?")
            .bind(instance.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(db::DbError::from)?;
        Ok(row.map(|r| r.str("group_id")).transpose()?)
    }

    /// Adds members, refusing to go past `limit` members.
    pub async fn add_group_members(&self, id: &str, instances: &[String], limit: i64) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let count: i64 = db::query_scalar(&self.db.sql("SELECT COUNT(*) FROM server_group_member WHERE group_id = ?"))
            .bind(id.to_string())
            .fetch_one(w.conn())
            .await
            .map_err(db::DbError::from)?;
        if limit >= 0 && count + instances.len() as i64 > limit {
            return Err(ComputeError::OverQuota("Quota exceeded, too many servers in group".into()));
        }
        for i in instances {
            self.db
                .q("INSERT INTO server_group_member (group_id, instance_uuid) VALUES (?, ?)")
                .bind(id.to_string())
                .bind(i.clone())
                .execute(w.conn())
                .await
                .map_err(db::DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    pub async fn remove_group_member(&self, instance: &str) -> Result<()> {
        self.write("DELETE FROM server_group_member WHERE instance_uuid = ?", &[instance]).await
    }

    pub async fn delete_group(&self, id: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let done = self
            .db
            .q("DELETE FROM server_group WHERE id = ?")
            .bind(id.to_string())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        self.db
            .q("DELETE FROM server_group_member WHERE group_id = ?")
            .bind(id.to_string())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }
}
