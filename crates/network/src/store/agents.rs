//! Which agent hosts which network (DHCP agents) or router (L3 agents).

use db::{AnyConnection, DbError, RowExt};

use super::Store;
use crate::error::Result;

impl Store {
    /// Binds; binding twice is not an error.
    pub async fn bind_agent(&self, conn: &mut AnyConnection, agent_id: &str, resource_id: &str) -> Result<bool> {
        let insert = self
            .db
            .q("INSERT INTO agent_binding (agent_id, resource_id) VALUES (?, ?)")
            .bind(agent_id)
            .bind(resource_id);
        Ok(self.db.insert_unless_duplicate(conn, insert).await?)
    }

    /// Whether the binding existed.
    pub async fn unbind_agent(&self, conn: &mut AnyConnection, agent_id: &str, resource_id: &str) -> Result<bool> {
        let r = self
            .db
            .q("DELETE FROM agent_binding WHERE agent_id = ? AND resource_id = ?")
            .bind(agent_id)
            .bind(resource_id)
            .execute(conn)
            .await
            .map_err(DbError::from)?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn unbind_resource(&self, conn: &mut AnyConnection, resource_id: &str) -> Result<()> {
        self.db
            .q("DELETE FROM agent_binding WHERE resource_id = ?")
            .bind(resource_id)
            .execute(conn)
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    /// (agent id, resource id) pairs.
    pub async fn agent_bindings(&self) -> Result<Vec<(String, String)>> {
        let rows = self.db.fetch_all(self.db.q("SELECT agent_id, resource_id FROM agent_binding")).await?;
        Ok(rows.iter().map(|r| Ok((r.str("agent_id")?, r.str("resource_id")?))).collect::<Result<_, DbError>>()?)
    }
}
