//! Where a saga's progress is kept: one record per saga (its parameters and
//! its progress), written after every step and removed when the saga ends,
//! so the log holds exactly the sagas still under way.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::StepError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaState {
    /// Running its steps forward.
    #[default]
    Running,
    /// Undoing its steps after a failure.
    Unwinding,
}

/// How far a saga got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub state: SagaState,
    /// Steps completed (the index of the next one to run).
    pub done: usize,
    /// While unwinding: steps still to undo (the last of them next).
    #[serde(default)]
    pub undo_left: usize,
    /// Each completed step's output, by step name.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    /// Why it is unwinding.
    #[serde(default)]
    pub error: Option<StepError>,
}

/// One saga in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaRecord {
    pub id: String,
    pub name: String,
    /// What the saga works on (an instance), so others can see it is busy.
    pub key: Option<String>,
    /// The service running it; `None` until one takes it up.
    pub owner: Option<String>,
    pub params: Value,
    pub request_id: Option<String>,
    pub progress: Progress,
}

#[derive(Debug, thiserror::Error)]
#[error("saga log: {0}")]
pub struct LogError(pub String);

/// The persistence a saga executor needs.
#[async_trait::async_trait]
pub trait SagaLog: Send + Sync + 'static {
    /// Records a new saga. A saga already recorded under the same id is
    /// left as it is: creating is idempotent.
    async fn create(&self, record: &SagaRecord) -> Result<(), LogError>;
    async fn load(&self, id: &str) -> Result<Option<SagaRecord>, LogError>;
    /// Takes the saga up as `owner`, unless another owner holds it (a log
    /// may count an owner that has stopped as holding nothing); whether it did.
    async fn adopt(&self, id: &str, owner: &str) -> Result<bool, LogError>;
    /// Records progress made by `owner`; false when another owner has taken
    /// the saga over since (the run that asked then stops).
    async fn save(&self, id: &str, owner: &str, progress: &Progress) -> Result<bool, LogError>;
    /// The saga ended (done or unwound): its record goes, if `owner` still
    /// holds it.
    async fn finish(&self, id: &str, owner: &str) -> Result<(), LogError>;
    /// Every saga not ended that `owner` may adopt.
    async fn unfinished(&self, owner: &str) -> Result<Vec<SagaRecord>, LogError>;
}

/// A log in memory, for tests and for processes that need no restart.
#[derive(Default)]
pub struct MemoryLog {
    records: Mutex<HashMap<String, SagaRecord>>,
}

impl MemoryLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SagaRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[async_trait::async_trait]
impl SagaLog for MemoryLog {
    async fn create(&self, record: &SagaRecord) -> Result<(), LogError> {
        self.lock().entry(record.id.clone()).or_insert_with(|| record.clone());
        Ok(())
    }

    async fn load(&self, id: &str) -> Result<Option<SagaRecord>, LogError> {
        Ok(self.lock().get(id).cloned())
    }

    async fn adopt(&self, id: &str, owner: &str) -> Result<bool, LogError> {
        let mut records = self.lock();
        let Some(r) = records.get_mut(id) else { return Ok(false) };
        match &r.owner {
            Some(o) if o != owner => Ok(false),
            _ => {
                r.owner = Some(owner.to_string());
                Ok(true)
            }
        }
    }

    async fn save(&self, id: &str, owner: &str, progress: &Progress) -> Result<bool, LogError> {
        match self.lock().get_mut(id) {
            Some(r) if r.owner.as_deref().is_none_or(|o| o == owner) => {
                r.progress = progress.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn finish(&self, id: &str, owner: &str) -> Result<(), LogError> {
        let mut records = self.lock();
        if records.get(id).is_some_and(|r| r.owner.as_deref().is_none_or(|o| o == owner)) {
            records.remove(id);
        }
        Ok(())
    }

    async fn unfinished(&self, owner: &str) -> Result<Vec<SagaRecord>, LogError> {
        Ok(self.lock().values().filter(|r| r.owner.as_deref().is_none_or(|o| o == owner)).cloned().collect())
    }
}
