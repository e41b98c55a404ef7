//! Test hooks, read from the environment of the process that runs sagas, so
//! tests can drive the real binary:
//!
//! - `FERROSTACK_SAGA_STOP_AT=<saga>.<step>`: the saga stops dead once that
//!   step's action has run, before its progress is written (the worst moment
//!   to crash), and says so in the file `FERROSTACK_SAGA_STOP_MARKER` (or on
//!   stderr); the test then kills the process. `…:before` stops before the
//!   action instead.
//! - `FERROSTACK_SAGA_FAIL_AT=<saga>.<step>`: that step's action runs and
//!   then fails, once per process, so the saga unwinds from there.
//!   `…:before` fails it without running it.
//! - `FERROSTACK_SAGA_REPEAT=1`: every action and every undo runs twice, as a
//!   redelivered message or a resumed saga would run it again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where in a step a hook fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Before,
    After,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub saga: String,
    pub step: String,
    pub when: When,
}

impl Point {
    /// `saga.step` or `saga.step:before`.
    pub fn parse(s: &str) -> Option<Point> {
        let (at, when) = match s.trim().rsplit_once(':') {
            Some((at, "before")) => (at, When::Before),
            Some((at, "after")) => (at, When::After),
            _ => (s.trim(), When::After),
        };
        let (saga, step) = at.split_once('.')?;
        Some(Point { saga: saga.to_string(), step: step.to_string(), when })
    }

    pub fn is(&self, saga: &str, step: &str, when: When) -> bool {
        self.saga == saga && self.step == step && self.when == when
    }
}

#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub stop_at: Option<Point>,
    pub stop_marker: Option<PathBuf>,
    pub fail_at: Option<Point>,
    pub repeat: bool,
    failed: Arc<AtomicBool>,
}

impl Hooks {
    pub fn none() -> Hooks {
        Hooks::default()
    }

    pub fn from_env() -> Hooks {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Hooks {
            stop_at: var("FERROSTACK_SAGA_STOP_AT").and_then(|v| Point::parse(&v)),
            stop_marker: var("FERROSTACK_SAGA_STOP_MARKER").map(PathBuf::from),
            fail_at: var("FERROSTACK_SAGA_FAIL_AT").and_then(|v| Point::parse(&v)),
            repeat: var("FERROSTACK_SAGA_REPEAT").is_some_and(|v| v != "0"),
            failed: Arc::default(),
        }
    }

    pub fn stop_at(mut self, point: Point, marker: Option<PathBuf>) -> Hooks {
        self.stop_at = Some(point);
        self.stop_marker = marker;
        self
    }

    pub fn fail_at(mut self, point: Point) -> Hooks {
        self.fail_at = Some(point);
        self
    }

    pub fn repeat(mut self) -> Hooks {
        self.repeat = true;
        self
    }

    pub fn is_active(&self) -> bool {
        self.stop_at.is_some() || self.fail_at.is_some() || self.repeat
    }

    /// How many times to run each action and undo.
    pub fn runs(&self) -> usize {
        if self.repeat {
            2
        } else {
            1
        }
    }

    pub(crate) fn should_stop(&self, saga: &str, step: &str, when: When) -> bool {
        self.stop_at.as_ref().is_some_and(|p| p.is(saga, step, when))
    }

    /// Whether to fail here: the first time only.
    pub(crate) fn should_fail(&self, saga: &str, step: &str, when: When) -> bool {
        self.fail_at.as_ref().is_some_and(|p| p.is(saga, step, when)) && !self.failed.swap(true, Ordering::SeqCst)
    }

    /// Says where the saga stopped, for the test waiting to kill the process.
    pub(crate) fn announce_stop(&self, saga: &str, id: &str, step: &str) {
        let line = format!("{saga}.{step} {id}\n");
        match &self.stop_marker {
            Some(path) => {
                if let Err(e) = std::fs::write(path, &line) {
                    tracing::error!(path = %path.display(), error = %e, "cannot write the saga stop marker");
                }
            }
            None => eprint!("saga stopped at {line}"),
        }
        tracing::warn!(saga, id, step, "test hook: saga stopped here, waiting to be killed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_name_a_saga_a_step_and_a_moment() {
        let p = Point::parse("build_instance.power_on").unwrap();
        assert!(p.is("build_instance", "power_on", When::After));
        let p = Point::parse("delete_instance.destroy_guest:before").unwrap();
        assert_eq!(p.when, When::Before);
        assert!(Point::parse("nonsense").is_none());
    }

    #[test]
    fn a_failure_is_injected_once() {
        let h = Hooks::none().fail_at(Point::parse("s.a").unwrap());
        assert!(h.should_fail("s", "a", When::After));
        assert!(!h.should_fail("s", "a", When::After));
    }
}
