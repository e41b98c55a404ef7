//! Users and their passwords.

use db::{AnyRow, DbError, RowExt};

use super::{flag, parse_map, to_text, Extra, Select, Store};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub domain_id: String,
    pub name: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub password_hash: Option<String>,
    pub password_created_at: Option<i64>,
    /// Attributes Keystone keeps without interpreting (`email`, `description`, …).
    pub extra: Extra,
    pub options: Extra,
    pub created_at: i64,
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub domain_id: Option<String>,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub ids: Option<Vec<String>>,
}

fn from_row(row: &AnyRow) -> Result<User, DbError> {
    Ok(User {
        id: row.str("id")?,
        domain_id: row.str("domain_id")?,
        name: row.str("name")?,
        enabled: row.flag("enabled")?,
        default_project_id: row.opt_str("default_project_id")?,
        password_hash: row.opt_str("password_hash")?,
        password_created_at: row.opt_int("password_created_at")?,
        extra: parse_map(&row.str("extra")?),
        options: parse_map(&row.str("options")?),
        created_at: row.int("created_at")?,
    })
}

fn duplicate(u: &User) -> IdentityError {
    IdentityError::conflict("user", format!("Duplicate entry found with name {} at domain ID {}.", u.name, u.domain_id))
}

impl Store {
    pub async fn create_user(&self, u: &User) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO identity_user (id, domain_id, name, enabled, default_project_id, password_hash,
                password_created_at, extra, options, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(&u.id)
            .bind(&u.domain_id)
            .bind(&u.name)
            .bind(flag(u.enabled))
            .bind(u.default_project_id.as_deref())
            .bind(u.password_hash.as_deref())
            .bind(u.password_created_at)
            .bind(to_text(&u.extra))
            .bind(to_text(&u.options))
            .bind(u.created_at);
        self.write(q, || duplicate(u)).await.map(drop)
    }

    pub async fn update_user(&self, u: &User) -> Result<()> {
        let q = self
            .db
            .q("UPDATE identity_user SET name = ?, enabled = ?, default_project_id = ?, password_hash = ?,
                password_created_at = ?, extra = ?, options = ? WHERE id = ?")
            .bind(&u.name)
            .bind(flag(u.enabled))
            .bind(u.default_project_id.as_deref())
            .bind(u.password_hash.as_deref())
            .bind(u.password_created_at)
            .bind(to_text(&u.extra))
            .bind(to_text(&u.options))
            .bind(&u.id);
        self.write(q, || duplicate(u)).await.map(drop)
    }

    pub async fn find_user(&self, id: &str) -> Result<Option<User>> {
        self.find("SELECT * FROM identity_user WHERE id = ?", id, from_row).await
    }

    pub async fn get_user(&self, id: &str) -> Result<User> {
        self.get("SELECT * FROM identity_user WHERE id = ?", id, "user", from_row).await
    }

    pub async fn get_user_by_name(&self, name: &str, domain_id: &str) -> Result<User> {
        let q = self.db.q("SELECT * FROM identity_user WHERE name = ? AND domain_id = ?").bind(name).bind(domain_id);
        self.all(q, from_row).await?.pop().ok_or_else(|| IdentityError::not_found("user", name))
    }

    pub async fn list_users(&self, f: &UserFilter) -> Result<Vec<User>> {
        let select = Select::from("identity_user")
            .flag("enabled", f.enabled)
            .eq("name", &f.name)
            .eq("domain_id", &f.domain_id)
            .any_of("id", &f.ids);
        self.select(select, "name, id", from_row).await
    }

    /// Deletes a user with their memberships, assignments, application
    /// credentials and credentials.
    pub async fn delete_user(&self, id: &str) -> Result<()> {
        self.delete_with(
            &[
                "DELETE FROM user_group_membership WHERE user_id = ?",
                "DELETE FROM assignment WHERE actor_id = ?",
                "DELETE FROM application_credential_role WHERE application_credential_id IN
                    (SELECT id FROM application_credential WHERE user_id = ?)",
                "DELETE FROM application_credential WHERE user_id = ?",
                "DELETE FROM credential WHERE user_id = ?",
                "DELETE FROM identity_user WHERE id = ?",
            ],
            id,
        )
        .await
    }
}
