//! The saga log: one row per workflow under way (build, delete, resize, …),
//! its parameters and its progress as JSON, keyed by the instance it works
//! on. The conductor owns it; a row goes when its saga ends, so the table
//! holds exactly the work still to finish after a restart.

use db::{AnyConnection, AnyRow, RowExt};
use saga::{LogError, Progress, SagaLog, SagaRecord};

use super::Store;
use crate::error::{ComputeError, Result};

fn from_row(r: &AnyRow) -> Result<SagaRecord> {
    let unreadable = |what: &str, e: serde_json::Error| ComputeError::Internal(format!("saga {what}: {e}"));
    Ok(SagaRecord {
        id: r.str("id")?,
        name: r.str("name")?,
        key: r.opt_str("saga_key")?,
        owner: r.opt_str("owner")?,
        params: serde_json::from_str(&r.str("params")?).map_err(|e| unreadable("parameters", e))?,
        request_id: r.opt_str("request_id")?,
        progress: serde_json::from_str(&r.str("progress")?).map_err(|e| unreadable("progress", e))?,
    })
}

fn log_error(e: impl std::fmt::Display) -> LogError {
    LogError(e.to_string())
}

impl Store {
    /// Records a saga inside the caller's transaction (with the change that
    /// asks for it); one recorded already under its id is left alone.
    pub async fn insert_saga(&self, conn: &mut AnyConnection, r: &SagaRecord) -> Result<()> {
        let exists = db::query(&self.db.sql("SELECT id FROM saga WHERE id = ?"))
            .bind(r.id.clone())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db::DbError::from)?;
        if exists.is_some() {
            return Ok(());
        }
        let encode = |what: &str, v: Result<String, serde_json::Error>| {
            v.map_err(|e| ComputeError::Internal(format!("saga {what} cannot be written: {e}")))
        };
        let params = encode("parameters", serde_json::to_string(&r.params))?;
        let progress = encode("progress", serde_json::to_string(&r.progress))?;
        let now = super::now();
        self.db
            .q("INSERT INTO saga (id, name, saga_key, owner, params, request_id, progress, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(r.id.clone())
            .bind(r.name.clone())
            .bind(r.key.clone())
            .bind(r.owner.clone())
            .bind(params)
            .bind(r.request_id.clone())
            .bind(progress)
            .bind(now)
            .bind(now)
            .execute(conn)
            .await
            .map_err(db::DbError::from)?;
        Ok(())
    }

    /// The sagas working on `key` (an instance) now.
    pub async fn sagas_for(&self, key: &str) -> Result<Vec<SagaRecord>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM saga WHERE saga_key = ?").bind(key.to_string())).await?;
        rows.iter().map(from_row).collect()
    }

    /// Every saga under way.
    pub async fn sagas(&self) -> Result<Vec<SagaRecord>> {
        let rows = self.db.fetch_all(self.db.q("SELECT * FROM saga ORDER BY created_at")).await?;
        rows.iter().map(from_row).collect()
    }
}

#[async_trait::async_trait]
impl SagaLog for Store {
    async fn create(&self, record: &SagaRecord) -> Result<(), LogError> {
        let mut w = self.db.begin_write().await.map_err(log_error)?;
        self.insert_saga(w.conn(), record).await.map_err(log_error)?;
        w.commit().await.map_err(log_error)
    }

    async fn load(&self, id: &str) -> Result<Option<SagaRecord>, LogError> {
        let rows = self
            .db
            .fetch_all(self.db.q("SELECT * FROM saga WHERE id = ?").bind(id.to_string()))
            .await
            .map_err(log_error)?;
        rows.first().map(from_row).transpose().map_err(log_error)
    }

    async fn adopt(&self, id: &str, owner: &str) -> Result<bool, LogError> {
        let mut w = self.db.begin_write().await.map_err(log_error)?;
        let done = self
            .db
            .q("UPDATE saga SET owner = ? WHERE id = ? AND (owner IS NULL OR owner = ?)")
            .bind(owner.to_string())
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(w.conn())
            .await
            .map_err(log_error)?;
        w.commit().await.map_err(log_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn save(&self, id: &str, progress: &Progress) -> Result<(), LogError> {
        let text = serde_json::to_string(progress).map_err(log_error)?;
        let mut w = self.db.begin_write().await.map_err(log_error)?;
        self.db
            .q("UPDATE saga SET progress = ?, updated_at = ? WHERE id = ?")
            .bind(text)
            .bind(super::now())
            .bind(id.to_string())
            .execute(w.conn())
            .await
            .map_err(log_error)?;
        w.commit().await.map_err(log_error)
    }

    async fn finish(&self, id: &str) -> Result<(), LogError> {
        self.write("DELETE FROM saga WHERE id = ?", &[id]).await.map_err(log_error)
    }

    async fn unfinished(&self, owner: &str) -> Result<Vec<SagaRecord>, LogError> {
        let rows = self
            .db
            .fetch_all(
                self.db
                    .q("SELECT * FROM saga WHERE owner IS NULL OR owner = ? ORDER BY created_at")
                    .bind(owner.to_string()),
            )
            .await
            .map_err(log_error)?;
        rows.iter().map(from_row).collect::<Result<Vec<_>>>().map_err(log_error)
    }
}
