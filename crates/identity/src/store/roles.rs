//! Roles (global, or specific to a domain) and the implications between them.

use db::{AnyRow, DbError, RowExt};

use super::{parse_map, to_text, Extra, Store};
use crate::error::{IdentityError, Result};
use crate::schema::NULL_DOMAIN;

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub id: String,
    pub name: String,
    /// `None` for a global role.
    pub domain_id: Option<String>,
    pub description: Option<String>,
    pub options: Extra,
    pub extra: Extra,
}

fn from_row(row: &AnyRow) -> Result<Role, DbError> {
    let domain_id = row.str("domain_id")?;
    Ok(Role {
        id: row.str("id")?,
        name: row.str("name")?,
        domain_id: (domain_id != NULL_DOMAIN).then_some(domain_id),
        description: row.opt_str("description")?,
        options: parse_map(&row.str("options")?),
        extra: parse_map(&row.str("extra")?),
    })
}

fn duplicate(r: &Role) -> IdentityError {
    IdentityError::conflict("role", format!("Duplicate entry found with name {}.", r.name))
}

impl Store {
    pub async fn create_role(&self, r: &Role) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO role (id, name, domain_id, description, extra, options) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&r.id)
            .bind(&r.name)
            .bind(r.domain_id.as_deref().unwrap_or(NULL_DOMAIN))
            .bind(r.description.as_deref())
            .bind(to_text(&r.extra))
            .bind(to_text(&r.options));
        self.write(q, || duplicate(r)).await.map(drop)
    }

    pub async fn update_role(&self, r: &Role) -> Result<()> {
        let q = self
            .db
            .q("UPDATE role SET name = ?, description = ?, extra = ?, options = ? WHERE id = ?")
            .bind(&r.name)
            .bind(r.description.as_deref())
            .bind(to_text(&r.extra))
            .bind(to_text(&r.options))
            .bind(&r.id);
        self.write(q, || duplicate(r)).await.map(drop)
    }

    pub async fn get_role(&self, id: &str) -> Result<Role> {
        self.get("SELECT * FROM role WHERE id = ?", id, "role", from_row).await
    }

    pub async fn list_roles(&self) -> Result<Vec<Role>> {
        self.all(self.db.q("SELECT * FROM role ORDER BY name, id"), from_row).await
    }

    /// Deletes a role with its assignments and implications.
    pub async fn delete_role(&self, id: &str) -> Result<()> {
        self.delete_with(
            &[
                "DELETE FROM assignment WHERE role_id = ?",
                "DELETE FROM application_credential_role WHERE role_id = ?",
                "DELETE FROM implied_role WHERE prior_role_id = ? OR implied_role_id = ?",
                "DELETE FROM role WHERE id = ?",
            ],
            id,
        )
        .await
    }

    /// Every implication as (prior, implied).
    pub async fn list_implied_roles(&self) -> Result<Vec<(String, String)>> {
        let q = self
            .db
            .q("SELECT prior_role_id, implied_role_id FROM implied_role ORDER BY prior_role_id, implied_role_id");
        self.all(q, |r| Ok((r.str("prior_role_id")?, r.str("implied_role_id")?))).await
    }

    /// Records that `prior` implies `implied`; doing so twice is not an error.
    pub async fn create_implied_role(&self, prior: &str, implied: &str) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO implied_role (prior_role_id, implied_role_id) VALUES (?, ?)")
            .bind(prior)
            .bind(implied);
        match self.write(q, || IdentityError::conflict("implied role", prior)).await {
            Ok(_) | Err(IdentityError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the implication existed.
    pub async fn delete_implied_role(&self, prior: &str, implied: &str) -> Result<bool> {
        let q = self
            .db
            .q("DELETE FROM implied_role WHERE prior_role_id = ? AND implied_role_id = ?")
            .bind(prior)
            .bind(implied);
        Ok(self.write(q, || IdentityError::conflict("implied role", prior)).await? > 0)
    }
}
