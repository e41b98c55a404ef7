//! The saga log: one row per workflow under way (build, delete, resize, …),
//! its parameters and its progress as JSON, keyed by the instance it works
//! on. The conductor owns it; a row goes when its saga ends, so the table
//! holds exactly the work still to finish after a restart.

use std::sync::Arc;

use db::{AnyConnection, AnyRow, Db, RowExt};
use saga::{LogError, Progress, SagaLog, SagaRecord};
use tokio::sync::{mpsc, oneshot};

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

/// An event of an instance action, for the grouped writer.
pub struct EventChange {
    pub action_id: String,
    pub event: String,
    pub host: Option<String>,
    pub result: Option<String>,
    pub details: Option<String>,
}

/// A write the grouped writer makes: a saga's progress, its end, its owner,
/// and the small records its steps leave (action events, build results).
enum Change {
    Save {
        id: String,
        owner: String,
        progress: String,
    },
    Finish {
        id: String,
        owner: String,
    },
    /// Taken unless a conductor seen up since `alive_since` holds it.
    Adopt {
        id: String,
        owner: String,
        alive_since: i64,
    },
    Event(EventChange),
    BuildResult {
        host: String,
        failed: bool,
    },
}

type Written = Result<bool, String>;

/// Writes saga progress in groups: every change waiting when the writer gets
/// the database goes in one transaction (group commit), and each caller hears
/// when its own is written. Hundreds of sagas moving at once then cost a
/// handful of transactions, not one each, on a database with one writer.
#[derive(Clone)]
pub struct ProgressWriter {
    tx: mpsc::UnboundedSender<(Change, oneshot::Sender<Written>)>,
}

impl ProgressWriter {
    pub fn start(db: Arc<Db>) -> ProgressWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Change, oneshot::Sender<Written>)>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while let Ok(next) = rx.try_recv() {
                    group.push(next);
                }
                let (changes, waiting): (Vec<Change>, Vec<_>) = group.into_iter().unzip();
                match write_group(&db, &changes).await {
                    Ok(results) => {
                        for (done, r) in waiting.into_iter().zip(results) {
                            let _ = done.send(Ok(r));
                        }
                    }
                    Err(e) => {
                        for done in waiting {
                            let _ = done.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        ProgressWriter { tx }
    }

    async fn send(&self, change: Change) -> Result<bool, LogError> {
        let (done, written) = oneshot::channel();
        self.tx.send((change, done)).map_err(|_| LogError("the saga log writer has stopped".into()))?;
        written.await.map_err(|_| LogError("the saga log writer has stopped".into()))?.map_err(LogError)
    }

    pub async fn event(&self, e: EventChange) -> Result<(), LogError> {
        self.send(Change::Event(e)).await.map(|_| ())
    }

    pub async fn build_result(&self, host: &str, failed: bool) -> Result<(), LogError> {
        self.send(Change::BuildResult { host: host.to_string(), failed }).await.map(|_| ())
    }
}

/// Which sagas an owner (bound first) may take: those nobody holds, its own,
/// and those of a conductor that has not reported since a time (bound
/// second), or is forced down, or is gone — its work is taken over.
macro_rules! adoptable {
    () => {
        "(owner IS NULL OR owner = ? OR owner NOT IN \
         (SELECT host FROM service WHERE binary_name = 'nova-conductor' AND forced_down = 0 AND last_seen_up >= ?))"
    };
}

/// One transaction for a group of changes, in the order they came; what
/// each answers (whether an adoption took).
async fn write_group(db: &Db, changes: &[Change]) -> Result<Vec<bool>, db::DbError> {
    let mut w = db.begin_write().await?;
    let now = super::now();
    let mut results = Vec::with_capacity(changes.len());
    for change in changes {
        let answer = match change {
            Change::Save { id, owner, progress } => {
                let done = db
                    .q("UPDATE saga SET progress = ?, updated_at = ? WHERE id = ? AND owner = ?")
                    .bind(progress.clone())
                    .bind(now)
                    .bind(id.clone())
                    .bind(owner.clone())
                    .execute(w.conn())
                    .await?;
                done.rows_affected() == 1
            }
            Change::Finish { id, owner } => {
                db.q("DELETE FROM saga WHERE id = ? AND owner = ?")
                    .bind(id.clone())
                    .bind(owner.clone())
                    .execute(w.conn())
                    .await?;
                true
            }
            Change::Adopt { id, owner, alive_since } => {
                let done = db
                    .q(concat!("UPDATE saga SET owner = ? WHERE id = ? AND ", adoptable!()))
                    .bind(owner.clone())
                    .bind(id.clone())
                    .bind(owner.clone())
                    .bind(*alive_since)
                    .execute(w.conn())
                    .await?;
                done.rows_affected() == 1
            }
            Change::Event(e) => {
                let (host, result, details) = (e.host.as_deref(), e.result.as_deref(), e.details.as_deref());
                super::actions::write_event(db, w.conn(), &e.action_id, &e.event, host, result, details).await?;
                true
            }
            Change::BuildResult { host, failed } => {
                super::services::write_build_result(db, w.conn(), host, *failed).await?;
                true
            }
        };
        results.push(answer);
    }
    w.commit().await?;
    Ok(results)
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

/// The saga log as conductors share it: each adopts the sagas it starts or
/// is asked to run, and takes over those of a conductor whose service has
/// not reported for `takeover_after` (Nova's `service_down_time`). A
/// conductor that was only slow finds out at its next progress write and
/// stops; the steps are safe to run again.
pub struct ConductorSagaLog {
    store: Store,
    takeover_after: std::time::Duration,
}

impl ConductorSagaLog {
    pub fn new(store: Store, takeover_after: std::time::Duration) -> ConductorSagaLog {
        ConductorSagaLog { store, takeover_after }
    }

    fn alive_since(&self) -> i64 {
        super::now() - self.takeover_after.as_micros() as i64
    }
}

#[async_trait::async_trait]
impl SagaLog for ConductorSagaLog {
    async fn create(&self, record: &SagaRecord) -> Result<(), LogError> {
        let mut w = self.store.db.begin_write().await.map_err(log_error)?;
        self.store.insert_saga(w.conn(), record).await.map_err(log_error)?;
        w.commit().await.map_err(log_error)
    }

    async fn load(&self, id: &str) -> Result<Option<SagaRecord>, LogError> {
        let rows = self
            .store
            .db
            .fetch_all(self.store.db.q("SELECT * FROM saga WHERE id = ?").bind(id.to_string()))
            .await
            .map_err(log_error)?;
        rows.first().map(from_row).transpose().map_err(log_error)
    }

    async fn adopt(&self, id: &str, owner: &str) -> Result<bool, LogError> {
        let (id, owner, alive_since) = (id.to_string(), owner.to_string(), self.alive_since());
        self.store.progress.send(Change::Adopt { id, owner, alive_since }).await
    }

    async fn save(&self, id: &str, owner: &str, progress: &Progress) -> Result<bool, LogError> {
        let progress = serde_json::to_string(progress).map_err(log_error)?;
        self.store.progress.send(Change::Save { id: id.to_string(), owner: owner.to_string(), progress }).await
    }

    async fn finish(&self, id: &str, owner: &str) -> Result<(), LogError> {
        self.store.progress.send(Change::Finish { id: id.to_string(), owner: owner.to_string() }).await.map(|_| ())
    }

    async fn unfinished(&self, owner: &str) -> Result<Vec<SagaRecord>, LogError> {
        let rows = self
            .store
            .db
            .fetch_all(
                self.store
                    .db
                    .q(concat!("SELECT * FROM saga WHERE ", adoptable!(), " ORDER BY created_at"))
                    .bind(owner.to_string())
                    .bind(self.alive_since()),
            )
            .await
            .map_err(log_error)?;
        rows.iter().map(from_row).collect::<Result<Vec<_>>>().map_err(log_error)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn store(name: &str) -> (std::path::PathBuf, Store) {
        let path = std::env::temp_dir().join(format!("fs-saga-log-{}-{name}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let connection = db::Connection {
            url: format!("sqlite:///{}", path.display()),
            max_retries: Some(0),
            retry_interval: Duration::from_secs(1),
            pool_timeout: Duration::from_secs(5),
        };
        (path, Store::open(&connection).await.unwrap())
    }

    fn record(id: &str) -> SagaRecord {
        SagaRecord {
            id: id.into(),
            name: "build".into(),
            key: Some("instance-1".into()),
            owner: None,
            params: serde_json::json!({}),
            request_id: None,
            progress: Progress::default(),
        }
    }

    #[tokio::test]
    async fn a_stopped_conductor_s_sagas_are_taken_over_and_its_late_writes_refused() {
        let (path, store) = store("takeover").await;
        store.register_service("c1", "nova-conductor", "conductor").await.unwrap();
        store.register_service("c2", "nova-conductor", "conductor").await.unwrap();
        let log = ConductorSagaLog::new(store.clone(), Duration::from_secs(60));
        log.create(&record("s1")).await.unwrap();
        assert!(log.adopt("s1", "c1").await.unwrap());
        // c1 reports: its saga is its own.
        assert!(!log.adopt("s1", "c2").await.unwrap());
        assert!(log.unfinished("c2").await.unwrap().is_empty());
        assert_eq!(log.unfinished("c1").await.unwrap().len(), 1);
        // c1 stops reporting: c2 takes its saga over.
        store.db.q("UPDATE service SET last_seen_up = 0 WHERE host = 'c1'").execute(store.db.pool()).await.unwrap();
        assert_eq!(log.unfinished("c2").await.unwrap().len(), 1);
        assert!(log.adopt("s1", "c2").await.unwrap());
        // c1 was only slow: what it writes now is refused, and it stops.
        let progress = Progress { done: 1, ..Progress::default() };
        assert!(!log.save("s1", "c1", &progress).await.unwrap());
        log.finish("s1", "c1").await.unwrap();
        assert!(log.save("s1", "c2", &progress).await.unwrap());
        assert_eq!(log.load("s1").await.unwrap().unwrap().progress.done, 1);
        log.finish("s1", "c2").await.unwrap();
        assert!(log.load("s1").await.unwrap().is_none());
        let _ = std::fs::remove_file(path);
    }
}
