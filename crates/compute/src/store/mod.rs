//! The compute database, one file per kind of record. Only the API, the
//! conductor and the scheduler hold a [`Store`]; compute hosts never do.

pub mod actions;
pub mod aggregates;
pub mod allocations;
pub mod consoles;
pub mod flavors;
pub mod groups;
pub mod instances;
pub mod keypairs;
pub mod migrations;
pub mod quotas;
pub mod sagas;
pub mod services;

use std::sync::Arc;

use db::Db;

use crate::error::Result;

#[derive(Clone)]
pub struct Store {
    pub db: Arc<Db>,
    /// Saga progress, written in groups (`sagas.rs`).
    progress: sagas::ProgressWriter,
    /// Action ids by (instance, request id): actions are never re-keyed.
    action_ids: Arc<std::sync::Mutex<std::collections::HashMap<(String, String), String>>>,
}

impl Store {
    pub async fn open(connection: &db::Connection) -> Result<Store> {
        let db = Arc::new(connection.open().await?);
        db.migrate(crate::schema::MIGRATIONS).await?;
        let progress = sagas::ProgressWriter::start(db.clone());
        Ok(Store { db, progress, action_ids: Arc::default() })
    }

    /// The writer that groups saga progress and small records into shared
    /// transactions.
    pub fn progress_writer(&self) -> &sagas::ProgressWriter {
        &self.progress
    }

    /// One statement with text arguments, in its own write transaction.
    async fn write(&self, sql: &'static str, args: &[&str]) -> Result<()> {
        let mut w = self.db.begin_write().await?;
        let mut q = self.db.q(sql);
        for a in args {
            q = q.bind(a.to_string());
        }
        q.execute(w.conn()).await.map_err(db::DbError::from)?;
        w.commit().await?;
        Ok(())
    }
}

pub(crate) fn now() -> i64 {
    common::time::now_micros()
}
