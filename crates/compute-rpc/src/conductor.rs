//! The conductor's interface (`conductor` on the bus): what the API asks of it
//! (run the sagas it recorded) and what compute hosts ask of it (they never
//! open the database: every read and write of theirs comes here).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{ComputeNode, Instance};

/// Sagas the API recorded (in the same transaction as the change that
/// asked for them) for the conductor to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SagaIds {
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRef {
    pub uuid: String,
}

/// Applies `changes` (fields of [`Instance`], as JSON) if the task state is
/// one of `expected_task_state` (any, when absent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceUpdate {
    pub uuid: String,
    pub changes: Map<String, Value>,
    #[serde(default)]
    pub expected_task_state: Option<Vec<Option<String>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRef {
    pub host: String,
}

/// An instance placed on a host, and whether a saga is working on it now
/// (then the saga, not the host, settles it after a restart).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInstance {
    pub instance: Instance,
    pub in_saga: bool,
}

/// A step of the action a request started, as `os-instance-actions` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionEvent {
    pub uuid: String,
    pub request_id: String,
    pub event: String,
    pub host: String,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub host: String,
    pub binary: String,
    pub topic: String,
}

bus::interface! {
    /// The conductor.
    pub interface Conductor {
        topic: "conductor",
        version: (1, 0),
        client: ConductorClient,
        handler: ConductorHandler,
        methods: {
            /// Runs sagas the API recorded.
            cast run_sagas(SagaIds) -> ();
            /// The instance, deleted ones included (`None`: never existed).
            call instance_get(InstanceRef) -> Option<Instance>;
            call instance_update(InstanceUpdate) -> Instance;
            /// Live instances placed on the host.
            call instances_on_host(HostRef) -> Vec<HostInstance>;
            call action_event(ActionEvent) -> ();
            call service_heartbeat(Heartbeat) -> ();
            call compute_node_report(ComputeNode) -> ();
        }
    }
}
