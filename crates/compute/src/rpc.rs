//! The compute service's parts talk over the bus: the API casts to the
//! conductor, the conductor calls the scheduler and casts to a host, a host
//! calls the conductor for every change it makes. These wrappers name the
//! topics and methods in one place.

use serde_json::{json, Value};

use bus::{Bus, Message, Target};

use crate::error::{from_bus, ComputeError, Result};
use crate::model::Instance;
use crate::scheduler::{RequestSpec, Selection};

pub const CONDUCTOR: &str = "conductor";
pub const SCHEDULER: &str = "scheduler";
pub const COMPUTE: &str = "compute";

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| ComputeError::Internal(format!("unreadable reply: {e}")))
}

/// Arguments of a handler, decoded.
pub fn args<T: serde::de::DeserializeOwned>(m: &Message) -> Result<T, bus::RemoteError> {
    serde_json::from_value(m.args.clone())
        .map_err(|e| bus::RemoteError::new("BadRequest", format!("{}: bad arguments: {e}", m.method)))
}

#[derive(Clone)]
pub struct ConductorApi {
    pub bus: Bus,
}

impl ConductorApi {
    async fn call(&self, method: &str, args: Value, request_id: Option<&str>) -> Result<Value> {
        let msg = Message::new(method, args).with_request_id(request_id.map(String::from));
        self.bus.call(&Target::topic(CONDUCTOR), msg).await.map_err(from_bus)
    }

    async fn cast(&self, method: &str, args: Value, request_id: Option<&str>) -> Result<()> {
        let msg = Message::new(method, args).with_request_id(request_id.map(String::from));
        self.bus.cast(&Target::topic(CONDUCTOR), msg).await.map_err(from_bus)
    }

    pub async fn build_instances(
        &self,
        uuids: &[String],
        admin_passwords: &[Option<String>],
        request_id: &str,
    ) -> Result<()> {
        self.cast("build_instances", json!({"uuids": uuids, "admin_passwords": admin_passwords}), Some(request_id))
            .await
    }

    pub async fn instance_get(&self, uuid: &str) -> Result<Instance> {
        decode(self.call("instance_get", json!({"uuid": uuid}), None).await?)
    }

    /// Applies `changes` (instance fields) if the task state is one of
    /// `expected` (any, when `expected` is None).
    pub async fn instance_update(
        &self,
        uuid: &str,
        changes: Value,
        expected: Option<&[Option<&str>]>,
    ) -> Result<Instance> {
        decode(
            self.call(
                "instance_update",
                json!({"uuid": uuid, "changes": changes, "expected_task_state": expected}),
                None,
            )
            .await?,
        )
    }

    pub async fn instances_on_host(&self, host: &str) -> Result<Vec<Instance>> {
        decode(self.call("instances_on_host", json!({"host": host}), None).await?)
    }

    /// Records a host's step on the action a request started.
    pub async fn action_event(
        &self,
        uuid: &str,
        request_id: &str,
        event: &str,
        host: &str,
        result: Option<&str>,
        details: Option<&str>,
    ) {
        let args = json!({"uuid": uuid, "request_id": request_id, "event": event, "host": host, "result": result, "details": details});
        if let Err(e) = self.call("action_event", args, Some(request_id)).await {
            tracing::warn!(%uuid, event, error = %e, "could not record an instance action event");
        }
    }

    /// A build failed on `host`: reschedule or give up.
    pub async fn build_failed(
        &self,
        uuid: &str,
        host: &str,
        reason: &str,
        admin_password: Option<&str>,
        request_id: &str,
    ) -> Result<()> {
        self.cast(
            "build_failed",
            json!({"uuid": uuid, "host": host, "reason": reason, "admin_password": admin_password}),
            Some(request_id),
        )
        .await
    }

    /// The instance is gone from its host: mark it deleted, free its claims.
    pub async fn instance_destroyed(&self, uuid: &str, request_id: &str) -> Result<()> {
        self.call("instance_destroyed", json!({"uuid": uuid}), Some(request_id)).await.map(|_| ())
    }

    /// A shelved instance left its host: its claims go.
    pub async fn instance_offloaded(&self, uuid: &str, request_id: &str) -> Result<()> {
        self.call("instance_offloaded", json!({"uuid": uuid}), Some(request_id)).await.map(|_| ())
    }

    pub async fn service_heartbeat(&self, host: &str, binary: &str, topic: &str) -> Result<()> {
        self.call("service_heartbeat", json!({"host": host, "binary": binary, "topic": topic}), None).await.map(|_| ())
    }

    pub async fn compute_node_report(&self, node: Value) -> Result<()> {
        self.call("compute_node_report", node, None).await.map(|_| ())
    }

    /// How many members of a server group each host holds (the late
    /// affinity check).
    pub async fn group_hosts(&self, group: &str, except: &str) -> Result<std::collections::BTreeMap<String, usize>> {
        decode(self.call("group_hosts", json!({"group": group, "except": except}), None).await?)
    }

    pub async fn build_succeeded(&self, host: &str) -> Result<()> {
        self.cast("build_succeeded", json!({"host": host}), None).await
    }

    /// A move (resize, migration) reached `status`; the conductor moves claims.
    pub async fn migration_update(&self, uuid: &str, status: &str, request_id: &str) -> Result<()> {
        self.call("migration_update", json!({"uuid": uuid, "status": status}), Some(request_id)).await.map(|_| ())
    }
}

#[derive(Clone)]
pub struct SchedulerApi {
    pub bus: Bus,
}

impl SchedulerApi {
    /// Hosts for each spec, claimed; NoValidHost when any does not fit.
    pub async fn select_destinations(&self, specs: &[RequestSpec], request_id: &str) -> Result<Vec<Selection>> {
        let msg = Message::new("select_destinations", json!({"specs": specs})).with_request_id(Some(request_id.into()));
        decode(self.bus.call(&Target::topic(SCHEDULER), msg).await.map_err(from_bus)?)
    }
}

#[derive(Clone)]
pub struct ComputeRpc {
    pub bus: Bus,
}

impl ComputeRpc {
    pub async fn cast(&self, host: &str, method: &str, args: Value, request_id: &str) -> Result<()> {
        let msg = Message::new(method, args).with_request_id(Some(request_id.into()));
        self.bus.cast(&Target::server(COMPUTE, host), msg).await.map_err(from_bus)
    }

    pub async fn call(&self, host: &str, method: &str, args: Value, request_id: &str) -> Result<Value> {
        let msg = Message::new(method, args).with_request_id(Some(request_id.into()));
        self.bus.call(&Target::server(COMPUTE, host), msg).await.map_err(from_bus)
    }
}
