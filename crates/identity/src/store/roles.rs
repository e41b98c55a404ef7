//! Roles (global, or specific to a domain) and the implications between them.

use db::AnyRow;
use db::{DbError, RowExt};

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
        let res = self
            .db
            .q("INSERT INTO role (id, name, domain_id, description, extra, options) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&r.id)
            .bind(&r.name)
            .bind(r.domain_id.as_deref().unwrap_or(NULL_DOMAIN))
            .bind(r.description.as_deref())
            .bind(to_text(&r.extra))
            .bind(to_text(&r.options))
            .execute(self.db.pool())
            .await
            .map_err(DbError::from);
        match res {
            Err(e) if e.is_unique_violation() => Err(duplicate(r)),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    pub async fn update_role(&self, r: &Role) -> Result<()> {
        let res = self
            .db
            .q("UPDATE role SET name = ?, description = ?, extra = ?, options = ? WHERE id = ?")
            .bind(&r.name)
            .bind(r.description.as_deref())
            .bind(to_text(&r.extra))
            .bind(to_text(&r.options))
            .bind(&r.id)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from);
        match res {
            Err(e) if e.is_unique_violation() => Err(duplicate(r)),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    pub async fn get_role(&self, id: &str) -> Result<Role> {
        let row = self
            .db
            .q("SELECT * FROM role WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(DbError::from)?;
        row.as_ref().map(from_row).transpose()?.ok_or_else(|| IdentityError::not_found("role", id))
    }

    pub async fn list_roles(&self) -> Result<Vec<Role>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM role ORDER BY name, id")).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Deletes a role with its assignments and implications.
    pub async fn delete_role(&self, id: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        for sql in [
            "DELETE FROM assignment WHERE role_id = ?",
            "DELETE FROM application_credential_role WHERE role_id = ?",
            "DELETE FROM implied_role WHERE prior_role_id = ? OR implied_role_id = ?",
            "DELETE FROM role WHERE id = ?",
        ] {
            let mut q = self.db.q(sql).bind(id);
            if sql.contains("OR") {
                q = q.bind(id);
            }
            q.execute(w.conn()).await.map_err(DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Every implication as (prior, implied).
    pub async fn list_implied_roles(&self) -> Result<Vec<(String, String)>> {
        let rows =
            self.db
                .fetch_all(self.db.q(
                    "SELECT prior_role_id, implied_role_id FROM implied_role ORDER BY prior_role_id, implied_role_id",
                ))
                .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.str("prior_role_id")?, r.str("implied_role_id")?)))
            .collect::<Result<_, DbError>>()?)
    }

    /// Whether the implication was new.
    pub async fn create_implied_role(&self, prior: &str, implied: &str) -> Result<bool> {
        let res = self
            .db
            .q("INSERT INTO implied_role (prior_role_id, implied_role_id) VALUES (?, ?)")
            .bind(prior)
            .bind(implied)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from);
        match res {
            Err(e) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(true),
        }
    }

    /// Whether the implication existed.
    pub async fn delete_implied_role(&self, prior: &str, implied: &str) -> Result<bool> {
        let res = self
            .db
            .q("DELETE FROM implied_role WHERE prior_role_id = ? AND implied_role_id = ?")
            .bind(prior)
            .bind(implied)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(res.rows_affected() > 0)
    }
}
