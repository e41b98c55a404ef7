//! Console tokens: each grants its holder, for a while, a connection to one
//! instance's console. Only a hash of the token is kept, so the table alone
//! opens nothing.

use db::RowExt;
use sha2::{Digest, Sha256};

use super::Store;
use crate::error::Result;

/// What a valid token leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleToken {
    pub instance_uuid: String,
    pub console_type: String,
    pub host: String,
    pub port: u16,
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Records a new token for `target`, valid for `ttl`.
    pub async fn create_console_token(
        &self,
        token: &str,
        target: &ConsoleToken,
        ttl: std::time::Duration,
    ) -> Result<()> {
        let expires = super::now() + ttl.as_micros() as i64;
        let mut w = self.db.begin_write().await?;
        // Expired tokens go as new ones come.
        self.db
            .q("DELETE FROM console_auth_token WHERE expires < ?")
            .bind(super::now())
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        self.db
            .q("INSERT INTO console_auth_token (token_hash, instance_uuid, console_type, host, port, expires) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(hash(token))
            .bind(target.instance_uuid.clone())
            .bind(target.console_type.clone())
            .bind(target.host.clone())
            .bind(i64::from(target.port))
            .bind(expires)
            .execute(w.conn())
            .await
            .map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }

    /// The target of `token`, if it exists and has not expired.
    pub async fn console_token(&self, token: &str) -> Result<Option<ConsoleToken>> {
        let row = self
            .db
            .q("SELECT * FROM console_auth_token WHERE token_hash = ? AND expires >= ?")
            .bind(hash(token))
            .bind(super::now())
            .fetch_optional(self.db.pool())
            .await
            .map_err(db::DbError::from)?;
        row.map(|r| {
            Ok(ConsoleToken {
                instance_uuid: r.str("instance_uuid")?,
                console_type: r.str("console_type")?,
                host: r.str("host")?,
                port: u16::try_from(r.int("port")?).unwrap_or_default(),
            })
        })
        .transpose()
    }

    /// A deleted instance's consoles close to new connections.
    pub async fn delete_console_tokens(&self, instance_uuid: &str) -> Result<()> {
        self.write("DELETE FROM console_auth_token WHERE instance_uuid = ?", &[instance_uuid]).await
    }
}
