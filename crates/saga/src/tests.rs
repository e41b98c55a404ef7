use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::hooks::Point;
use super::*;

steps! {
    pub enum ToyStep {
        Reserve = "reserve",
        Allocate = "allocate",
        Commit = "commit",
    }
}

/// A world whose state the saga changes: a set of things that exist, and
/// how many times its after-unwind work ran.
#[derive(Default)]
struct World {
    things: Mutex<BTreeSet<String>>,
    unwound: AtomicUsize,
    actions: AtomicUsize,
}

struct Toy {
    world: Arc<World>,
    /// Whether `commit` is past the point of no return.
    commit_is_final: bool,
}

impl World {
    fn set(&self) -> BTreeSet<String> {
        self.things.lock().unwrap().clone()
    }
}

impl Saga for Toy {
    const NAME: &'static str = "toy";
    type Params = String;
    type Step = ToyStep;

    fn forward_only(&self, step: ToyStep) -> bool {
        self.commit_is_final && step == ToyStep::Commit
    }

    async fn action(&self, step: ToyStep, ctx: &SagaContext<String>) -> Result<Value, StepError> {
        self.world.actions.fetch_add(1, Ordering::SeqCst);
        let thing = format!("{}-{}", ctx.params, step.name());
        if step == ToyStep::Commit {
            // Uses what an earlier step made.
            let reserved: String = ctx.output(ToyStep::Reserve)?;
            assert_eq!(reserved, format!("{}-reserve", ctx.params));
        }
        self.world.things.lock().unwrap().insert(thing.clone());
        Ok(json!(thing))
    }

    async fn undo(&self, step: ToyStep, ctx: &SagaContext<String>) -> Result<(), StepError> {
        self.world.things.lock().unwrap().remove(&format!("{}-{}", ctx.params, step.name()));
        Ok(())
    }

    async fn unwound(&self, _ctx: &SagaContext<String>, _error: &StepError) -> Result<(), StepError> {
        self.world.unwound.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn executor(log: Arc<MemoryLog>, hooks: Hooks, world: Arc<World>, commit_is_final: bool) -> Arc<Executor> {
    let exec = Executor::new(log, "conductor-1", hooks);
    exec.register(Arc::new(Toy { world, commit_is_final }));
    exec
}

async fn create(log: &MemoryLog, id: &str) {
    let record = new_record::<Toy>(id, Some("x".into()), &"x".to_string(), Some("req-1".into())).unwrap();
    log.create(&record).await.unwrap();
}

#[tokio::test]
async fn a_saga_runs_its_steps_in_order_and_leaves_no_record() {
    let (log, world) = (Arc::new(MemoryLog::default()), Arc::new(World::default()));
    let exec = executor(log.clone(), Hooks::none(), world.clone(), false);
    create(&log, "s1").await;
    assert_eq!(exec.run("s1").await.unwrap(), Outcome::Done);
    assert_eq!(world.set(), ["x-allocate", "x-commit", "x-reserve"].map(String::from).into());
    assert!(log.is_empty());
    assert_eq!(exec.run("s1").await.unwrap(), Outcome::Gone, "an ended saga does not run again");
}

#[tokio::test]
async fn every_step_run_twice_leaves_the_world_as_one_run_does() {
    let (log, world) = (Arc::new(MemoryLog::default()), Arc::new(World::default()));
    let exec = executor(log.clone(), Hooks::none().repeat(), world.clone(), false);
    create(&log, "s1").await;
    assert_eq!(exec.run("s1").await.unwrap(), Outcome::Done);
    assert_eq!(world.actions.load(Ordering::SeqCst), 6);
    assert_eq!(world.set().len(), 3);
}

#[tokio::test]
async fn a_failure_at_any_step_unwinds_to_a_clean_slate() {
    for step in ToyStep::ALL {
        for when in ["", ":before"] {
            let (log, world) = (Arc::new(MemoryLog::default()), Arc::new(World::default()));
            let point = Point::parse(&format!("toy.{}{when}", step.name())).unwrap();
            let exec = executor(log.clone(), Hooks::none().fail_at(point).repeat(), world.clone(), false);
            create(&log, "s1").await;
            match exec.run("s1").await.unwrap() {
                Outcome::Unwound(e) => assert_eq!(e.kind, "Injected"),
                other => panic!("{step:?}{when}: {other:?}"),
            }
            assert!(world.set().is_empty(), "{step:?}{when}: {:?}", world.set());
            assert_eq!(world.unwound.load(Ordering::SeqCst), 1);
            assert!(log.is_empty());
        }
    }
}

#[tokio::test]
async fn a_failure_past_the_point_of_no_return_is_retried_not_unwound() {
    let (log, world) = (Arc::new(MemoryLog::default()), Arc::new(World::default()));
    let hooks = Hooks::none().fail_at(Point::parse("toy.commit").unwrap());
    let exec = executor(log.clone(), hooks, world.clone(), true);
    create(&log, "s1").await;
    assert_eq!(exec.run("s1").await.unwrap(), Outcome::Done);
    assert_eq!(world.set().len(), 3);
    assert_eq!(world.unwound.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_saga_stopped_mid_step_resumes_on_a_new_executor() {
    for step in ToyStep::ALL {
        let (log, world) = (Arc::new(MemoryLog::default()), Arc::new(World::default()));
        let marker = tempfile_path(step.name());
        let point = Point::parse(&format!("toy.{}", step.name())).unwrap();
        let first = executor(log.clone(), Hooks::none().stop_at(point, Some(marker.clone())), world.clone(), false);
        create(&log, "s1").await;
        first.spawn("s1");
        wait_for(|| marker.exists()).await;
        // The step's action ran but its progress was not written.
        let record = log.load("s1").await.unwrap().unwrap();
        assert_eq!(ToyStep::ALL[record.progress.done], *step);
        // A new process (a new executor on the same log) takes it up.
        let second = executor(log.clone(), Hooks::none(), world.clone(), false);
        assert_eq!(second.resume_all().await.unwrap(), 1);
        wait_for(|| log.is_empty()).await;
        assert_eq!(world.set().len(), 3);
        let _ = std::fs::remove_file(&marker);
    }
}

#[tokio::test]
async fn a_saga_held_by_another_owner_is_left_alone() {
    let (log, world) = (Arc::new(MemoryLog::default()), Arc::new(World::default()));
    create(&log, "s1").await;
    assert!(log.adopt("s1", "conductor-2").await.unwrap());
    let exec = executor(log.clone(), Hooks::none(), world.clone(), false);
    assert_eq!(exec.run("s1").await.unwrap(), Outcome::Busy);
    assert_eq!(exec.resume_all().await.unwrap(), 0);
    assert!(world.set().is_empty());
}

#[tokio::test]
async fn only_the_holder_of_a_saga_records_its_progress_or_ends_it() {
    let log = MemoryLog::default();
    create(&log, "s1").await;
    assert!(log.adopt("s1", "conductor-1").await.unwrap());
    let progress = log.load("s1").await.unwrap().unwrap().progress;
    assert!(log.save("s1", "conductor-1", &progress).await.unwrap());
    // A run elsewhere that lost the saga hears so, and stops.
    assert!(!log.save("s1", "conductor-2", &progress).await.unwrap());
    log.finish("s1", "conductor-2").await.unwrap();
    assert!(log.load("s1").await.unwrap().is_some());
    log.finish("s1", "conductor-1").await.unwrap();
    assert!(log.load("s1").await.unwrap().is_none());
}

fn tempfile_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("saga-stop-{}-{name}", std::process::id()))
}

async fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened");
}
