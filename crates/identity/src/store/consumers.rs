//! OS-OAUTH1 consumers.

use db::AnyRow;
use db::{DbError, RowExt};

use super::{parse_map, to_text, Extra, Store};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub id: String,
    pub description: Option<String>,
    pub secret_hash: String,
    pub extra: Extra,
}

fn from_row(row: &AnyRow) -> Result<Consumer, DbError> {
    Ok(Consumer {
        id: row.str("id")?,
        description: row.opt_str("description")?,
        secret_hash: row.str("secret_hash")?,
        extra: parse_map(&row.str("extra")?),
    })
}

impl Store {
    pub async fn create_consumer(&self, c: &Consumer) -> Result<()> {
        self.db
            .q("INSERT INTO consumer (id, description, secret_hash, extra) VALUES (?, ?, ?, ?)")
            .bind(&c.id)
            .bind(c.description.as_deref())
            .bind(&c.secret_hash)
            .bind(to_text(&c.extra))
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    pub async fn update_consumer(&self, c: &Consumer) -> Result<()> {
        self.db
            .q("UPDATE consumer SET description = ?, extra = ? WHERE id = ?")
            .bind(c.description.as_deref())
            .bind(to_text(&c.extra))
            .bind(&c.id)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    pub async fn get_consumer(&self, id: &str) -> Result<Consumer> {
        let row = self
            .db
            .q("SELECT * FROM consumer WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(DbError::from)?;
        row.as_ref().map(from_row).transpose()?.ok_or_else(|| IdentityError::not_found("consumer", id))
    }

    pub async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM consumer ORDER BY id")).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    pub async fn delete_consumer(&self, id: &str) -> Result<()> {
        self.db.q("DELETE FROM consumer WHERE id = ?").bind(id).execute(self.db.pool()).await.map_err(DbError::from)?;
        Ok(())
    }
}
