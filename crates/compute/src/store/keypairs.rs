//! Key pairs: public keys stored per user under a name.

use db::{AnyRow, RowExt};
use serde::{Deserialize, Serialize};

use super::Store;
use crate::error::{ComputeError, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keypair {
    pub user_id: String,
    pub name: String,
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: i64,
}

fn from_row(r: &AnyRow) -> Result<Keypair> {
    Ok(Keypair {
        user_id: r.str("user_id")?,
        name: r.str("name")?,
        key_type: r.str("key_type")?,
        public_key: r.str("public_key")?,
        fingerprint: r.str("fingerprint")?,
        created_at: r.int("created_at")?,
    })
}

pub fn not_found(user: &str, name: &str) -> ComputeError {
    ComputeError::NotFound(format!("Keypair {name} not found for user {user}"))
}

impl Store {
    /// Stores a key pair, refusing a second one of the same name for the
    /// user, and one more than `limit`.
    pub async fn create_keypair(&self, k: &Keypair, limit: i64) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let count: i64 = db::query_scalar(&self.db.sql("SELECT COUNT(*) FROM keypair WHERE user_id = ?"))
            .bind(k.user_id.clone())
            .fetch_one(w.conn())
            .await
            .map_err(db::DbError::from)?;
        if limit >= 0 && count >= limit {
            return Err(ComputeError::OverQuota("Quota exceeded, too many key pairs.".into()));
        }
        let done = self
            .db
            .q("INSERT INTO keypair (user_id, name, key_type, public_key, fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(k.user_id.clone())
            .bind(k.name.clone())
            .bind(k.key_type.clone())
            .bind(k.public_key.clone())
            .bind(k.fingerprint.clone())
            .bind(k.created_at)
            .execute(w.conn())
            .await
            .map_err(db::DbError::from);
        match done {
            Ok(_) => {}
            Err(e) if e.is_unique_violation() => {
                return Err(ComputeError::Conflict(format!("Key pair '{}' already exists.", k.name)))
            }
            Err(e) => return Err(e.into()),
        }
        w.commit().await?;
        Ok(())
    }

    pub async fn keypairs(&self, user_id: &str) -> Result<Vec<Keypair>> {
        let rows = self
            .db
            .fetch_all(self.db.q("SELECT * FROM keypair WHERE user_id = ? ORDER BY name").bind(user_id.to_string()))
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn keypair(&self, user_id: &str, name: &str) -> Result<Keypair> {
        let row = self
            .db
            .q("SELECT * FROM keypair WHERE user_id = ? AND name = ?")
            .bind(user_id.to_string())
            .bind(name.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(db::DbError::from)?
            .ok_or_else(|| not_found(user_id, name))?;
        from_row(&row)
    }

    pub async fn delete_keypair(&self, user_id: &str, name: &str) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let done = self
            .db
            .q("DELETE FROM keypair WHERE user_id = ? AND name = ?")
            .bind(user_id.to_string())
            .bind(name.to_string())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        if done.rows_affected() == 0 {
            return Err(not_found(user_id, name));
        }
        w.commit().await?;
        Ok(())
    }
}
