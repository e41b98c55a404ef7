//! Credentials (`/v3/credentials`): opaque blobs a user stores, kept encrypted at
//! rest with the credential key repository.

use db::{AnyRow, DbError, RowExt};

use super::{parse_map, to_text, Extra, Store};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub credential_type: String,
    /// Encrypted; see `crate::credentials`.
    pub encrypted_blob: String,
    pub extra: Extra,
}

fn from_row(row: &AnyRow) -> Result<Credential, DbError> {
    Ok(Credential {
        id: row.str("id")?,
        user_id: row.str("user_id")?,
        project_id: row.opt_str("project_id")?,
        credential_type: row.str("type")?,
        encrypted_blob: row.str("encrypted_blob")?,
        extra: parse_map(&row.str("extra")?),
    })
}

fn duplicate(c: &Credential) -> IdentityError {
    IdentityError::conflict("credential", format!("Duplicate ID, {}.", c.id))
}

impl Store {
    pub async fn create_credential(&self, c: &Credential) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO credential (id, user_id, project_id, type, encrypted_blob, extra) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&c.id)
            .bind(&c.user_id)
            .bind(c.project_id.as_deref())
            .bind(&c.credential_type)
            .bind(&c.encrypted_blob)
            .bind(to_text(&c.extra));
        self.write(q, || duplicate(c)).await.map(drop)
    }

    pub async fn update_credential(&self, c: &Credential) -> Result<()> {
        let q = self
            .db
            .q("UPDATE credential SET user_id = ?, project_id = ?, type = ?, encrypted_blob = ?, extra = ? WHERE id = ?")
            .bind(&c.user_id)
            .bind(c.project_id.as_deref())
            .bind(&c.credential_type)
            .bind(&c.encrypted_blob)
            .bind(to_text(&c.extra))
            .bind(&c.id);
        self.write(q, || duplicate(c)).await.map(drop)
    }

    pub async fn find_credential(&self, id: &str) -> Result<Option<Credential>> {
        self.find("SELECT * FROM credential WHERE id = ?", id, from_row).await
    }

    pub async fn list_credentials(&self) -> Result<Vec<Credential>> {
        self.all(self.db.q("SELECT * FROM credential ORDER BY id"), from_row).await
    }

    pub async fn delete_credential(&self, id: &str) -> Result<()> {
        self.delete_with(&["DELETE FROM credential WHERE id = ?"], id).await
    }
}
