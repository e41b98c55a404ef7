//! Tags on any standard resource (networks, subnets, ports, routers, …).

use db::{AnyConnection, DbError, RowExt};

use super::Store;
use crate::error::Result;

impl Store {
    /// Every (resource id, tag), for rendering lists.
    pub async fn all_tags(&self) -> Result<Vec<(String, String)>> {
        let rows = self.db.fetch_all(self.db.q("SELECT resource_id, tag FROM tag ORDER BY tag")).await?;
        Ok(rows.iter().map(|r| Ok((r.str("resource_id")?, r.str("tag")?))).collect::<Result<_, DbError>>()?)
    }

    pub async fn tags_of(&self, resource_id: &str) -> Result<Vec<String>> {
        let rows = self
            .db
            .fetch_all(self.db.q("SELECT tag FROM tag WHERE resource_id = ? ORDER BY tag").bind(resource_id))
            .await?;
        Ok(rows.iter().map(|r| r.str("tag")).collect::<Result<_, _>>()?)
    }

    /// Replaces a resource's tags.
    pub async fn set_tags(&self, conn: &mut AnyConnection, resource_id: &str, tags: &[String]) -> Result<()> {
        self.db
            .q("DELETE FROM tag WHERE resource_id = ?")
            .bind(resource_id)
            .execute(&mut *conn)
            .await
            .map_err(DbError::from)?;
        for t in tags {
            self.db
                .q("INSERT INTO tag (resource_id, tag) VALUES (?, ?)")
                .bind(resource_id)
                .bind(t)
                .execute(&mut *conn)
                .await
                .map_err(DbError::from)?;
        }
        Ok(())
    }
}
