//! Policy blobs (`/v3/policies`): stored and returned, never interpreted, as in
//! Keystone.

use db::{AnyRow, DbError, RowExt};

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

fn duplicate(p: &Policy) -> IdentityError {
    IdentityError::conflict("policy", format!("Duplicate ID, {}.", p.id))
}

impl Store {
    pub async fn create_policy(&self, p: &Policy) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO policy (id, type, \"blob\", extra) VALUES (?, ?, ?, ?)")
            .bind(&p.id)
            .bind(&p.policy_type)
            .bind(&p.blob)
            .bind(to_text(&p.extra));
        self.write(q, || duplicate(p)).await.map(drop)
    }

    pub async fn update_policy(&self, p: &Policy) -> Result<()> {
        let q = self
            .db
            .q("UPDATE policy SET type = ?, \"blob\" = ?, extra = ? WHERE id = ?")
            .bind(&p.policy_type)
            .bind(&p.blob)
            .bind(to_text(&p.extra))
            .bind(&p.id);
        self.write(q, || duplicate(p)).await.map(drop)
    }

    pub async fn get_policy(&self, id: &str) -> Result<Policy> {
        self.get("SELECT * FROM policy WHERE id = ?", id, "policy", from_row).await
    }

    pub async fn list_policies(&self) -> Result<Vec<Policy>> {
        self.all(self.db.q("SELECT * FROM policy ORDER BY id"), from_row).await
    }

    pub async fn delete_policy(&self, id: &str) -> Result<()> {
        self.delete_with(&["DELETE FROM policy WHERE id = ?"], id).await
    }
}
