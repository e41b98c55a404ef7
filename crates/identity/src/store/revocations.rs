//! Revocation events. Fernet tokens are not stored, so revoking one means recording
//! which tokens are dead: those issued before a moment that match an event's
//! user, project, domain or audit id. Events older than the longest token life are
//! pruned, since every token they could match has expired anyway.

use db::{AnyRow, DbError, RowExt};

use super::Store;
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationEvent {
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub audit_id: Option<String>,
    /// Microseconds; tokens issued at or before this moment match.
    pub issued_before: i64,
    pub revoked_at: i64,
}

fn from_row(row: &AnyRow) -> Result<RevocationEvent, DbError> {
    Ok(RevocationEvent {
        user_id: row.opt_str("user_id")?,
        project_id: row.opt_str("project_id")?,
        domain_id: row.opt_str("domain_id")?,
        audit_id: row.opt_str("audit_id")?,
        issued_before: row.int("issued_before")?,
        revoked_at: row.int("revoked_at")?,
    })
}

impl Store {
    pub async fn add_revocation(&self, e: &RevocationEvent) -> Result<()> {
        let q = self
            .db
            .q("INSERT INTO revocation_event (id, user_id, project_id, domain_id, audit_id, issued_before, revoked_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(common::id::new_hex_id())
            .bind(e.user_id.as_deref())
            .bind(e.project_id.as_deref())
            .bind(e.domain_id.as_deref())
            .bind(e.audit_id.as_deref())
            .bind(e.issued_before)
            .bind(e.revoked_at);
        self.write(q, || IdentityError::conflict("revocation event", "")).await.map(drop)
    }

    /// Events that may match a token issued at `issued_at` for this user and
    /// these audit ids (the caller checks each event in full).
    pub async fn revocations_for(
        &self,
        issued_at: i64,
        user_id: &str,
        audit_ids: &[String],
    ) -> Result<Vec<RevocationEvent>> {
        let q = self
            .db
            .q("SELECT * FROM revocation_event WHERE issued_before >= ?
                AND (user_id = ? OR user_id IS NULL OR audit_id = ? OR audit_id = ?)")
            .bind(issued_at)
            .bind(user_id)
            .bind(audit_ids.first().map(String::as_str).unwrap_or(""))
            .bind(audit_ids.get(1).map(String::as_str).unwrap_or(""));
        self.all(q, from_row).await
    }

    pub async fn list_revocations(&self, since: Option<i64>) -> Result<Vec<RevocationEvent>> {
        let q = self
            .db
            .q("SELECT * FROM revocation_event WHERE revoked_at >= ? ORDER BY revoked_at")
            .bind(since.unwrap_or(0));
        self.all(q, from_row).await
    }

    /// Drops events revoked before `before`.
    pub async fn prune_revocations(&self, before: i64) -> Result<u64> {
        let q = self.db.q("DELETE FROM revocation_event WHERE revoked_at < ?").bind(before);
        self.write(q, || IdentityError::conflict("revocation event", "")).await
    }
}
