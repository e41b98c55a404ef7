//! Credentials (`/v3/credentials`, and EC2 keys): opaque blobs a user stores,
//! kept encrypted at rest with the credential key repository.

use db::AnyRow;
use db::{DbError, RowExt};

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

impl Store {
    pub async fn create_credential(&self, c: &Credential) -> Result<()> {
        let res = self
            .db
            .q("INSERT INTO credential (id, user_id, project_id, type, encrypted_blob, extra) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&c.id)
            .bind(&c.user_id)
            .bind(c.project_id.as_deref())
            .bind(&c.credential_type)
            .bind(&c.encrypted_blob)
            .bind(to_text(&c.extra))
            .execute(self.db.pool())
            .await
            .map_err(DbError::from);
        match res {
            Err(e) if e.is_unique_violation() => {
                Err(IdentityError::conflict("credential", format!("Duplicate ID, {}.", c.id)))
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    pub async fn update_credential(&self, c: &Credential) -> Result<()> {
        self.db
            .q("UPDATE credential SET user_id = ?, project_id = ?, type = ?, encrypted_blob = ?, extra = ? WHERE id = ?")
            .bind(&c.user_id)
            .bind(c.project_id.as_deref())
            .bind(&c.credential_type)
            .bind(&c.encrypted_blob)
            .bind(to_text(&c.extra))
            .bind(&c.id)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    pub async fn find_credential(&self, id: &str) -> Result<Option<Credential>> {
        let row = self
            .db
            .q("SELECT * FROM credential WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    pub async fn list_credentials(&self) -> Result<Vec<Credential>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM credential ORDER BY id")).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    pub async fn delete_credential(&self, id: &str) -> Result<()> {
        self.db
            .q("DELETE FROM credential WHERE id = ?")
            .bind(id)
            .execute(self.db.pool())
            .await
            .map_err(DbError::from)?;
        Ok(())
    }
}
