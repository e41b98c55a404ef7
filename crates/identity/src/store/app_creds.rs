//! Application credentials: a secret a user makes to let a program act as them on
//! one project, with a subset of their roles.

use db::{AnyRow, DbError, RowExt};

use super::{flag, Store};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct AppCred {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    pub description: Option<String>,
    pub user_id: String,
    pub project_id: Option<String>,
    pub system: Option<String>,
    pub expires_at: Option<i64>,
    /// Whether the credential may create more credentials (and trusts).
    pub unrestricted: bool,
    pub role_ids: Vec<String>,
}

fn from_row(row: &AnyRow) -> Result<AppCred, DbError> {
    Ok(AppCred {
        id: row.str("id")?,
        name: row.str("name")?,
        secret_hash: row.str("secret_hash")?,
        description: row.opt_str("description")?,
        user_id: row.str("user_id")?,
        project_id: row.opt_str("project_id")?,
        system: row.opt_str("system")?,
        expires_at: row.opt_int("expires_at")?,
        unrestricted: row.flag("unrestricted")?,
        role_ids: Vec::new(),
    })
}

impl Store {
    pub async fn create_app_cred(&self, c: &AppCred) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let res = self
            .db
            .q("INSERT INTO application_credential (id, name, secret_hash, description, user_id, project_id, system,
                expires_at, unrestricted, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.secret_hash)
            .bind(c.description.as_deref())
            .bind(&c.user_id)
            .bind(c.project_id.as_deref())
            .bind(c.system.as_deref())
            .bind(c.expires_at)
            .bind(flag(c.unrestricted))
            .bind(common::time::now_micros())
            .execute(w.conn())
            .await
            .map_err(DbError::from);
        match res {
            Err(e) if e.is_unique_violation() => {
                return Err(IdentityError::conflict(
                    "application_credential",
                    format!("Duplicate entry found with name {}.", c.name),
                ))
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        for role in &c.role_ids {
            self.db
                .q("INSERT INTO application_credential_role (application_credential_id, role_id) VALUES (?, ?)")
                .bind(&c.id)
                .bind(role)
                .execute(w.conn())
                .await
                .map_err(DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    pub async fn find_app_cred(&self, id: &str) -> Result<Option<AppCred>> {
        match self.find("SELECT * FROM application_credential WHERE id = ?", id, from_row).await? {
            None => Ok(None),
            Some(mut c) => {
                c.role_ids = self.app_cred_roles(&c.id).await?;
                Ok(Some(c))
            }
        }
    }

    pub async fn list_app_creds(&self, user_id: &str) -> Result<Vec<AppCred>> {
        let q = self.db.q("SELECT * FROM application_credential WHERE user_id = ? ORDER BY name").bind(user_id);
        let mut out = self.all(q, from_row).await?;
        for c in &mut out {
            c.role_ids = self.app_cred_roles(&c.id).await?;
        }
        Ok(out)
    }

    async fn app_cred_roles(&self, id: &str) -> Result<Vec<String>> {
        let q = self
            .db
            .q("SELECT role_id FROM application_credential_role WHERE application_credential_id = ? ORDER BY role_id")
            .bind(id);
        self.all(q, |r| r.str("role_id")).await
    }

    pub async fn delete_app_cred(&self, id: &str) -> Result<()> {
        self.delete_with(
            &[
                "DELETE FROM application_credential_role WHERE application_credential_id = ?",
                "DELETE FROM application_credential WHERE id = ?",
            ],
            id,
        )
        .await
    }

    pub async fn delete_app_creds_of_project(&self, project_id: &str) -> Result<()> {
        self.delete_with(
            &[
                "DELETE FROM application_credential_role WHERE application_credential_id IN
                    (SELECT id FROM application_credential WHERE project_id = ?)",
                "DELETE FROM application_credential WHERE project_id = ?",
            ],
            project_id,
        )
        .await
    }
}
