//! Every compute saga, through the real binary:
//!
//! - killed with SIGKILL at each of its steps (stopped there by a test hook,
//!   after the step's work and before its progress is written), restarted on
//!   the same state: the workflow finished or was undone;
//! - failed at each of its steps: it unwinds (or, past its point of no
//!   return, retries);
//! - with every action and undo run twice, as a redelivered message or a
//!   resumed saga runs them: the same result as once.
//!
//! After each, the cloud is a clean slate: no saga row, no task, no port,
//! claim or guest that no live server accounts for. Each test prints its
//! rows of the table workflow × step → outcome.

mod common;
mod workflows;

use workflows::{Cloud, Outcome, Workflow};

/// Kills the cloud at every step of `w` and checks what the restart makes of it.
async fn crash_at_every_step(w: Workflow) {
    let mut rows = Vec::new();
    for step in w.steps() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("stopped");
        let env = [
            ("FERROSTACK_SAGA_STOP_AT", format!("{}.{step}", w.saga())),
            ("FERROSTACK_SAGA_STOP_MARKER", marker.display().to_string()),
        ];
        let cloud = Cloud::start(&dir.path().join("state"), &env).await;
        let mut subject = cloud.prepare(w).await;
        cloud.trigger(w, &mut subject).await;
        let start = std::time::Instant::now();
        while !marker.exists() {
            assert!(start.elapsed() < workflows::WAIT, "{} never reached {step}", w.label());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        println!("{} killed at {step}", w.label());
        let cloud = cloud.restart().await;
        let outcome = cloud.outcome(w, &subject).await;
        cloud.assert_clean(&format!("{} killed at {step}", w.label())).await;
        rows.push(workflows::row(w, step, "SIGKILL", outcome));
    }
    println!("{}", rows.join("\n"));
}

/// Fails `w` once at every step and checks it unwinds (or retries) cleanly.
async fn fail_at_every_step(w: Workflow) {
    let mut rows = Vec::new();
    for step in w.steps() {
        let dir = tempfile::tempdir().unwrap();
        let env = [("FERROSTACK_SAGA_FAIL_AT", format!("{}.{step}", w.saga()))];
        let cloud = Cloud::start(&dir.path().join("state"), &env).await;
        let mut subject = cloud.prepare(w).await;
        cloud.trigger(w, &mut subject).await;
        println!("{} fails at {step}", w.label());
        let outcome = cloud.outcome(w, &subject).await;
        assert_eq!(outcome, w.after_failure_at(step), "{} failed at {step}", w.label());
        cloud.assert_clean(&format!("{} failed at {step}", w.label())).await;
        rows.push(workflows::row(w, step, "fails", outcome));
    }
    println!("{}", rows.join("\n"));
}

macro_rules! every_step {
    ($($crash:ident, $fail:ident: $w:expr;)*) => {
        $(
            #[tokio::test]
            async fn $crash() {
                crash_at_every_step($w).await;
            }

            #[tokio::test]
            async fn $fail() {
                fail_at_every_step($w).await;
            }
        )*
    };
}

every_step! {
    build_killed_at_every_step, build_failed_at_every_step: Workflow::Build;
    delete_killed_at_every_step, delete_failed_at_every_step: Workflow::Delete;
    resize_killed_at_every_step, resize_failed_at_every_step: Workflow::Resize;
    confirm_killed_at_every_step, confirm_failed_at_every_step: Workflow::ConfirmResize;
    revert_killed_at_every_step, revert_failed_at_every_step: Workflow::RevertResize;
    cold_migration_killed_at_every_step, cold_migration_failed_at_every_step: Workflow::ColdMigration;
    live_migration_killed_at_every_step, live_migration_failed_at_every_step: Workflow::LiveMigration;
    shelve_killed_at_every_step, shelve_failed_at_every_step: Workflow::Shelve;
    unshelve_killed_at_every_step, unshelve_failed_at_every_step: Workflow::Unshelve;
    snapshot_killed_at_every_step, snapshot_failed_at_every_step: Workflow::Snapshot;
}

#[tokio::test]
async fn every_step_of_every_saga_run_twice_does_what_once_does() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::start(&dir.path().join("state"), &[("FERROSTACK_SAGA_REPEAT", "1".into())]).await;
    let mut rows = Vec::new();
    for w in workflows::ALL {
        let mut subject = cloud.prepare(w).await;
        cloud.trigger(w, &mut subject).await;
        let outcome = cloud.outcome(w, &subject).await;
        assert_eq!(outcome, Outcome::Finished, "{} with every step run twice", w.label());
        cloud.assert_clean(&format!("{} run twice", w.label())).await;
        rows.push(workflows::row(w, "every step", "twice", outcome));
    }
    println!("{}", rows.join("\n"));
}
