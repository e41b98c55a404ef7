//! Runs sagas from their log records: forward step by step, writing progress
//! after each; on a failure, back through the undos; after a restart, from
//! wherever the log left each one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use tracing::Instrument;

use crate::hooks::When;
use crate::log::{LogError, Progress, SagaLog, SagaRecord, SagaState};
use crate::{Hooks, Saga, SagaContext, StepError, StepName};

/// How a run of a saga ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every step succeeded.
    Done,
    /// A step failed and every step before it was undone.
    Unwound(StepError),
    /// Another run (here or in another service) has it.
    Busy,
    /// No such saga in the log (it ended already).
    Gone,
    /// Its record cannot be read by this version of the saga.
    Unreadable(String),
}

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(10);

async fn backoff(delay: &mut Duration) {
    tokio::time::sleep(*delay).await;
    *delay = (*delay * 2).min(LAST_RETRY);
}

/// Runs one registered kind of saga.
trait Runner: Send + Sync {
    fn drive<'a>(&'a self, exec: &'a Executor, record: SagaRecord) -> BoxFuture<'a, Outcome>;
}

struct Typed<S: Saga>(Arc<S>);

impl<S: Saga> Runner for Typed<S> {
    fn drive<'a>(&'a self, exec: &'a Executor, record: SagaRecord) -> BoxFuture<'a, Outcome> {
        Box::pin(drive(&*self.0, exec, record))
    }
}

pub struct Executor {
    log: Arc<dyn SagaLog>,
    owner: String,
    hooks: Hooks,
    sagas: RwLock<HashMap<&'static str, Arc<dyn Runner>>>,
    running: Mutex<HashSet<String>>,
}

impl Executor {
    /// An executor running sagas as `owner` (the service's host name).
    pub fn new(log: Arc<dyn SagaLog>, owner: impl Into<String>, hooks: Hooks) -> Arc<Executor> {
        Arc::new(Executor {
            log,
            owner: owner.into(),
            hooks,
            sagas: RwLock::new(HashMap::new()),
            running: Mutex::new(HashSet::new()),
        })
    }

    pub fn log(&self) -> &Arc<dyn SagaLog> {
        &self.log
    }

    pub fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Makes sagas named `S::NAME` runnable here.
    pub fn register<S: Saga>(&self, saga: Arc<S>) {
        self.sagas.write().unwrap_or_else(|p| p.into_inner()).insert(S::NAME, Arc::new(Typed(saga)));
    }

    /// Records a new saga and runs it in the background.
    pub async fn start<S: Saga>(
        self: &Arc<Self>,
        id: &str,
        key: Option<String>,
        params: &S::Params,
        request_id: Option<String>,
    ) -> Result<(), LogError> {
        let record = crate::new_record::<S>(id, key, params, request_id).map_err(|e| LogError(e.message))?;
        self.log.create(&record).await?;
        self.spawn(id);
        Ok(())
    }

    /// Runs a recorded saga in the background, unless it runs here already.
    pub fn spawn(self: &Arc<Self>, id: &str) {
        let me = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            match me.run(&id).await {
                Ok(Outcome::Unreadable(why)) => tracing::error!(saga = %id, why, "saga record unreadable"),
                Ok(_) => {}
                Err(e) => tracing::error!(saga = %id, error = %e, "could not run the saga"),
            }
        });
    }

    /// Runs a recorded saga to its end (or to where another run has it).
    pub async fn run(self: &Arc<Self>, id: &str) -> Result<Outcome, LogError> {
        if !self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string()) {
            return Ok(Outcome::Busy);
        }
        let outcome = self.run_here(id).await;
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        outcome
    }

    async fn run_here(&self, id: &str) -> Result<Outcome, LogError> {
        let Some(record) = self.log.load(id).await? else { return Ok(Outcome::Gone) };
        if !self.log.adopt(id, &self.owner).await? {
            return Ok(Outcome::Busy);
        }
        let runner = self.sagas.read().unwrap_or_else(|p| p.into_inner()).get(record.name.as_str()).cloned();
        let Some(runner) = runner else {
            return Ok(Outcome::Unreadable(format!("no saga named {} is registered here", record.name)));
        };
        let span = tracing::info_span!(
            "saga",
            saga = %record.name,
            id = %record.id,
            request_id = record.request_id.as_deref().unwrap_or("-"),
        );
        Ok(runner.drive(self, record).instrument(span).await)
    }

    /// Runs, in the background, every saga left unfinished that this owner
    /// holds or nobody does and that is not running here: what a restarted
    /// service does first, and what it does now and then in case the message
    /// asking it to run a saga was lost.
    pub async fn resume_all(self: &Arc<Self>) -> Result<usize, LogError> {
        let mut unfinished = self.log.unfinished(&self.owner).await?;
        unfinished.retain(|r| !self.is_running(&r.id));
        for r in &unfinished {
            tracing::info!(saga = %r.name, id = %r.id, state = ?r.progress.state, done = r.progress.done, "resuming a saga");
            self.spawn(&r.id);
        }
        Ok(unfinished.len())
    }

    /// Whether a saga is running in this process now.
    pub fn is_running(&self, id: &str) -> bool {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).contains(id)
    }

    /// Writes progress, retrying while the log cannot be written: a step
    /// done but not recorded would only be run again, but running on
    /// without a record would lose track of it.
    /// Whether it is still ours: false when another service took the saga
    /// over (it thought this one had stopped), and this run must stop.
    async fn save(&self, id: &str, progress: &Progress) -> bool {
        let mut delay = FIRST_RETRY;
        loop {
            match self.log.save(id, &self.owner, progress).await {
                Ok(true) => return true,
                Ok(false) => {
                    tracing::warn!("another service has taken the saga over; it goes on from its last record there");
                    return false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record saga progress; retrying");
                    backoff(&mut delay).await;
                }
            }
        }
    }

    async fn finish(&self, id: &str) {
        let mut delay = FIRST_RETRY;
        while let Err(e) = self.log.finish(id, &self.owner).await {
            tracing::warn!(error = %e, "cannot remove an ended saga; retrying");
            backoff(&mut delay).await;
        }
    }

    async fn stop_here(&self, saga: &str, id: &str, step: &str) {
        self.hooks.announce_stop(saga, id, step);
        std::future::pending::<()>().await;
    }
}

/// Runs an action as many times as the hooks say (twice proves it idempotent).
async fn act<S: Saga>(
    saga: &S,
    step: S::Step,
    ctx: &SagaContext<S::Params>,
    runs: usize,
) -> Result<serde_json::Value, StepError> {
    let mut out = saga.action(step, ctx).await?;
    for _ in 1..runs {
        out = saga.action(step, ctx).await?;
    }
    Ok(out)
}

async fn drive<S: Saga>(saga: &S, exec: &Executor, record: SagaRecord) -> Outcome {
    let params: S::Params = match serde_json::from_value(record.params.clone()) {
        Ok(p) => p,
        Err(e) => return Outcome::Unreadable(format!("parameters of {}: {e}", record.name)),
    };
    let id = record.id.clone();
    let mut progress = record.progress;
    let mut ctx = SagaContext::new(id.clone(), params, record.request_id);
    ctx.outputs = progress.outputs.clone();
    let steps = S::Step::ALL;
    let hooks = exec.hooks.clone();
    let mut delay = FIRST_RETRY;
    loop {
        match progress.state {
            SagaState::Running if progress.done >= steps.len() => {
                exec.finish(&id).await;
                tracing::info!("saga done");
                return Outcome::Done;
            }
            SagaState::Running => {
                let step = steps[progress.done];
                let name = step.name();
                if hooks.should_stop(S::NAME, name, When::Before) {
                    exec.stop_here(S::NAME, &id, name).await;
                }
                let result = if hooks.should_fail(S::NAME, name, When::Before) {
                    Err(StepError::injected(S::NAME, name))
                } else {
                    match act(saga, step, &ctx, hooks.runs()).await {
                        Ok(_) if hooks.should_fail(S::NAME, name, When::After) => {
                            Err(StepError::injected(S::NAME, name))
                        }
                        other => other,
                    }
                };
                if hooks.should_stop(S::NAME, name, When::After) {
                    exec.stop_here(S::NAME, &id, name).await;
                }
                match result {
                    Ok(output) => {
                        tracing::debug!(step = name, "saga step done");
                        progress.outputs.insert(name.to_string(), output);
                        ctx.outputs = progress.outputs.clone();
                        progress.done += 1;
                        delay = FIRST_RETRY;
                        if !exec.save(&id, &progress).await {
                            return Outcome::Busy;
                        }
                    }
                    Err(e) if e.kind == crate::UNAVAILABLE => {
                        tracing::warn!(step = name, error = %e, "a dependency is unreachable; trying the step again");
                        backoff(&mut delay).await;
                    }
                    Err(e) if steps[..=progress.done].iter().any(|s| saga.forward_only(*s)) => {
                        tracing::warn!(step = name, error = %e, "a step past the point of no return failed; retrying it");
                        backoff(&mut delay).await;
                    }
                    Err(e) => {
                        tracing::warn!(step = name, error = %e, "saga step failed; unwinding");
                        progress.state = SagaState::Unwinding;
                        // The failed step is undone too: it may have done part of its work.
                        progress.undo_left = progress.done + 1;
                        progress.error = Some(e);
                        delay = FIRST_RETRY;
                        if !exec.save(&id, &progress).await {
                            return Outcome::Busy;
                        }
                    }
                }
            }
            SagaState::Unwinding if progress.undo_left == 0 => {
                let error = progress.error.clone().unwrap_or_else(|| StepError::new("Internal", "unwound"));
                while let Err(e) = saga.unwound(&ctx, &error).await {
                    tracing::warn!(error = %e, "the saga's after-unwind work failed; retrying");
                    backoff(&mut delay).await;
                }
                exec.finish(&id).await;
                tracing::info!(error = %error, "saga unwound");
                return Outcome::Unwound(error);
            }
            SagaState::Unwinding => {
                let step = steps[progress.undo_left.min(steps.len()) - 1];
                let mut undone = Ok(());
                for _ in 0..hooks.runs() {
                    undone = saga.undo(step, &ctx).await;
                    if undone.is_err() {
                        break;
                    }
                }
                match undone {
                    Ok(()) => {
                        tracing::debug!(step = step.name(), "saga step undone");
                        progress.undo_left = progress.undo_left.min(steps.len()) - 1;
                        delay = FIRST_RETRY;
                        if !exec.save(&id, &progress).await {
                            return Outcome::Busy;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(step = step.name(), error = %e, "undo failed; retrying");
                        backoff(&mut delay).await;
                    }
                }
            }
        }
    }
}
