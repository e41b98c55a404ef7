//! Application credentials: a secret a user makes to let a program act as them on
//! one project, with a subset of their roles.

use db::AnyRow;
use db::{DbError, RowExt};

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
        let row = self
            .db
            .q("SELECT * FROM application_credential WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(DbError::from)?;
        match row {
            None => Ok(None),
            Some(row) => {
                let mut c = from_row(&row)?;
                c.role_ids = self.app_cred_roles(&c.id).await?;
                Ok(Some(c))
            }
        }
    }

    pub async fn list_app_creds(&self, user_id: &str) -> Result<Vec<AppCred>> {
        let rows = self
            .db
            .fetch_all(self.db.q("SELECT * FROM application_credential WHERE user_id = ? ORDER BY name").bind(user_id))
            .await?;
        let mut out = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        for c in &mut out {
            c.role_ids = self.app_cred_roles(&c.id).await?;
        }
        Ok(out)
    }

    async fn app_cred_roles(&self, id: &str) -> Result<Vec<String>> {
        let rows = self
            .db
            .fetch_all(
                self.db
                    .q("SELECT role_id FROM application_credential_role WHERE application_credential_id = ? ORDER BY role_id")
                    .bind(id),
            )
            .await?;
        Ok(rows.iter().map(|r| r.str("role_id")).collect::<Result<_, _>>()?)
    }

    pub async fn delete_app_cred(&self, id: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        for sql in [
            "DELETE FROM application_credential_role WHERE application_credential_id = ?",
            "DELETE FROM application_credential WHERE id = ?",
        ] {
            self.db.q(sql).bind(id).execute(w.conn()).await.map_err(DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }

    pub async fn delete_app_creds_of_project(&self, project_id: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        for sql in [
            "DELETE FROM application_credential_role WHERE application_credential_id IN
                (SELECT id FROM application_credential WHERE project_id = ?)",
            "DELETE FROM application_credential WHERE project_id = ?",
        ] {
            self.db.q(sql).bind(project_id).execute(w.conn()).await.map_err(DbError::from)?;
        }
        w.commit().await?;
        Ok(())
    }
}
