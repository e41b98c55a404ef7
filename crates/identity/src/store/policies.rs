//! Policy blobs (`/v3/policies`): stored and returned, never interpreted, as in
//! Keystone.

use db::AnyRow;
use db::{DbError, RowExt};

use super::{parse_map, to_text, Extra, Store};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub id: String,
    pub policy_type: String,
    pub blob: String,
    pub extra: Extra,
}

fn from_row(row: &AnyRow) -> Result<Policy, DbError> {
    Ok(Policy {
        id: row.str("id")?,
        policy_type: row.str("type")?,
        blob: row.str("blob")?,
        extra: parse_map(&row.str("extra")?),
    })
}

impl Store {
    pub async fn create_policy(&self, p: &Policy) -> Result<()> {
        self.db
            .q("INSERT INTO policy (id, type, blob, extra) VALUES (?, ?, ?, ?)")
            .bind(&p.id)
            .bind(&p.policy_type)
            .bind(&p.blob)
            .bind(to_text(&p.extra))
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    pub async fn update_policy(&self, p: &Policy) -> Result<()> {
        self.db
            .q("UPDATE policy SET type = ?, blob = ?, extra = ? WHERE id = ?")
            .bind(&p.policy_type)
            .bind(&p.blob)
            .bind(to_text(&p.extra))
            .bind(&p.id)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    pub async fn get_policy(&self, id: &str) -> Result<Policy> {
        let row = self
            .db
            .q("SELECT * FROM policy WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(DbError::from)?;
        row.as_ref().map(from_row).transpose()?.ok_or_else(|| IdentityError::not_found("policy", id))
    }

    pub async fn list_policies(&self) -> Result<Vec<Policy>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM policy ORDER BY id")).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    pub async fn delete_policy(&self, id: &str) -> Result<()> {
        self.db.q("DELETE FROM policy WHERE id = ?").bind(id).execute(self.db.pool()).await.map_err(DbError::from)?;
        Ok(())
    }
}
