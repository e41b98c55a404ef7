//! Sagas, in the manner of Oxide's omicron: a multi-step workflow is a list of
//! steps, each a small action with its undo. The saga's progress — how many
//! steps are done, their outputs, whether it is unwinding — is written to a
//! [`SagaLog`] after every step, so a process killed at any point picks the
//! saga up where the log says when it comes back: it runs the next step again
//! (every action must be idempotent, and every undo safe whether or not its
//! action ran, fully or in part), or goes on unwinding.
//!
//! A failed step is undone with every step before it, latest first, and then
//! [`Saga::unwound`] runs once (to record the failure, or to try again
//! elsewhere). Steps past a point of no return ([`Saga::forward_only`]) are
//! retried until they succeed instead.
//!
//! Test hooks ([`Hooks`]) stop a saga at a named step (for crash tests that
//! then kill the process), fail one, or run every action and undo twice.

mod executor;
mod hooks;
mod log;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use executor::{Executor, Outcome};
pub use hooks::Hooks;
pub use log::{LogError, MemoryLog, Progress, SagaLog, SagaRecord, SagaState};

/// The steps of a saga: an enum whose variants, in declaration order, are
/// the order the steps run in. Declare them with [`steps!`].
pub trait StepName: Copy + PartialEq + fmt::Debug + Send + Sync + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
}

/// Declares a saga's steps, in order, each with the name the log and the
/// test hooks use:
///
/// ```ignore
/// saga::steps! {
///     pub enum BuildStep {
///         /// The scheduler picks and claims a host. Undo: the claim goes.
///         Schedule = "schedule",
///         PowerOn = "power_on",
///     }
/// }
/// ```
#[macro_export]
macro_rules! steps {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $label:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $crate::StepName for $name {
            const ALL: &'static [Self] = &[$($name::$variant),*];

            fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }
        }
    };
}

/// Why a step failed. `kind` lets a saga tell failures apart when it
/// decides what to do after unwinding (e.g. reschedule a build that failed on
/// its host, but not one that found no host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub kind: String,
    pub message: String,
}

/// The kind of a failure to reach a dependency (the database, the bus): the
/// executor tries the step again after a pause instead of unwinding, as steps
/// may run twice. An outage then delays work instead of failing it.
pub const UNAVAILABLE: &str = "Unavailable";

impl StepError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        StepError { kind: kind.into(), message: message.into() }
    }

    /// A failure injected by a test hook.
    pub fn injected(saga: &str, step: &str) -> Self {
        StepError::new("Injected", format!("test hook: {saga} fails at {step}"))
    }
}

/// What a step sees: the saga's id and parameters, the request that started
/// it, and the outputs of the steps done before it.
#[derive(Debug, Clone)]
pub struct SagaContext<P> {
    pub id: String,
    pub params: P,
    pub request_id: Option<String>,
    outputs: BTreeMap<String, Value>,
}

impl<P> SagaContext<P> {
    pub fn new(id: impl Into<String>, params: P, request_id: Option<String>) -> Self {
        SagaContext { id: id.into(), params, request_id, outputs: BTreeMap::new() }
    }

    /// The output of an earlier step; an error if it has none (it did not run).
    pub fn output<T: DeserializeOwned>(&self, step: impl StepName) -> Result<T, StepError> {
        let v = self
            .outputs
            .get(step.name())
            .ok_or_else(|| StepError::new("Internal", format!("step {} has no output yet", step.name())))?;
        serde_json::from_value(v.clone())
            .map_err(|e| StepError::new("Internal", format!("the output of step {} is unreadable: {e}", step.name())))
    }

    /// The output of an earlier step if it ran and left one.
    pub fn maybe_output<T: DeserializeOwned>(&self, step: impl StepName) -> Option<T> {
        self.outputs.get(step.name()).and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub fn request_id(&self) -> Option<String> {
        self.request_id.clone()
    }
}

/// A workflow. The implementing type holds what its steps need (stores,
/// clients); the log holds the rest.
pub trait Saga: Send + Sync + 'static {
    /// The saga's name in the log and in test hooks.
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    type Step: StepName;

    /// Whether `step` is past the point of no return: when it (or a step
    /// after it) fails, it is retried rather than the saga unwound.
    fn forward_only(&self, _step: Self::Step) -> bool {
        false
    }

    fn action(
        &self,
        step: Self::Step,
        ctx: &SagaContext<Self::Params>,
    ) -> impl Future<Output = Result<Value, StepError>> + Send;

    /// Undoes `step`: must be safe whether its action ran fully, in part or
    /// not at all, and to repeat.
    fn undo(
        &self,
        step: Self::Step,
        ctx: &SagaContext<Self::Params>,
    ) -> impl Future<Output = Result<(), StepError>> + Send;

    /// Runs once the saga has unwound completely, with the error that made
    /// it unwind; retried until it succeeds, so it must be idempotent.
    fn unwound(
        &self,
        _ctx: &SagaContext<Self::Params>,
        _error: &StepError,
    ) -> impl Future<Output = Result<(), StepError>> + Send {
        async { Ok(()) }
    }
}

/// A new saga's record, ready for [`SagaLog::create`] (or for a caller that
/// writes it in its own transaction, with the change that asks for it).
pub fn new_record<S: Saga>(
    id: impl Into<String>,
    key: Option<String>,
    params: &S::Params,
    request_id: Option<String>,
) -> Result<SagaRecord, StepError> {
    let params = serde_json::to_value(params)
        .map_err(|e| StepError::new("Internal", format!("unencodable parameters of {}: {e}", S::NAME)))?;
    Ok(SagaRecord {
        id: id.into(),
        name: S::NAME.to_string(),
        key,
        owner: None,
        params,
        request_id,
        progress: Progress::default(),
    })
}

#[cfg(test)]
mod tests;
