//! OS-OAUTH1 consumers.

use db::{AnyRow, DbError, RowExt};

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

fn duplicate(c: &Consumer) -> IdentityError {
    IdentityError::conflict("consumer", format!("Duplicate ID, {}.", c.id))
}

impl Store {
    pub async fn create_consumer(&self, c: &Consumer) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO consumer (id, description, secret_hash, extra) VALUES (?, ?, ?, ?)")
            .bind(&c.id)
            .bind(c.description.as_deref())
            .bind(&c.secret_hash)
            .bind(to_text(&c.extra));
        self.write(q, || duplicate(c)).await.map(drop)
    }

    pub async fn update_consumer(&self, c: &Consumer) -> Result<()> {
        let q = self
            .db
            .q("UPDATE consumer SET description = ?, extra = ? WHERE id = ?")
            .bind(c.description.as_deref())
            .bind(to_text(&c.extra))
            .bind(&c.id);
        self.write(q, || duplicate(c)).await.map(drop)
    }

    pub async fn get_consumer(&self, id: &str) -> Result<Consumer> {
        self.get("SELECT * FROM consumer WHERE id = ?", id, "consumer", from_row).await
    }

    pub async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        self.all(self.db.q("SELECT * FROM consumer ORDER BY id"), from_row).await
    }

    pub async fn delete_consumer(&self, id: &str) -> Result<()> {
        self.delete_with(&["DELETE FROM consumer WHERE id = ?"], id).await
    }
}
