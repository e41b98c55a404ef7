//! The message bus: how the parts of a service talk (compute-api → conductor →
//! scheduler → compute@host; the network server ↔ its agents). The model is
//! oslo.messaging's: a *topic* names a service (`conductor`, `compute`), a *server*
//! names one host serving it, and a message is a method name, JSON arguments and the
//! request id that caused it.
//!
//! - [`Bus::call`] sends to one server of a topic and waits for its answer, up to a timeout;
//! - [`Bus::cast`] sends to one server and does not wait;
//! - [`Bus::fanout`] sends to every server of a topic;
//! - [`Bus::listen`] / [`Bus::serve`] receive a topic's messages as one server.
//!
//! Callers see only [`Bus`]; a [`Transport`] carries the messages. The in-process
//! transport serves the all-in-one; an AMQP transport behind the same trait serves
//! the scale-out deployment.

mod memory;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

pub use memory::InProcess;

/// Where a message goes: any server of `topic`, or the named one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub topic: String,
    pub server: Option<String>,
}

impl Target {
    pub fn topic(topic: impl Into<String>) -> Self {
        Target { topic: topic.into(), server: None }
    }

    pub fn server(topic: impl Into<String>, server: impl Into<String>) -> Self {
        Target { topic: topic.into(), server: Some(server.into()) }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.server {
            Some(s) => write!(f, "{}.{}", self.topic, s),
            None => f.write_str(&self.topic),
        }
    }
}

/// One RPC message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub method: String,
    pub args: Value,
    /// The `x-openstack-request-id` of the API request that caused this message,
    /// so its log lines can be followed across services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Message {
    pub fn new(method: impl Into<String>, args: Value) -> Self {
        Message { method: method.into(), args, request_id: None }
    }

    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }
}

/// An error a server returned for a call, carried back to the caller.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RemoteError {
    pub kind: String,
    pub message: String,
}

impl RemoteError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        RemoteError { kind: kind.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("no server is listening on {0}")]
    NoListener(String),
    #[error("timed out after {timeout:?} waiting for a reply from {target}")]
    Timeout { target: String, timeout: Duration },
    #[error("{target} dropped the call without replying")]
    NoReply { target: String },
    #[error("remote error from {target}: {error}")]
    Remote { target: String, error: RemoteError },
    #[error("transport error: {0}")]
    Transport(String),
}

pub type Reply = Result<Value, RemoteError>;

/// A message received by a server. A call carries a way to answer it.
#[derive(Debug)]
pub struct Incoming {
    pub message: Message,
    reply: Option<oneshot::Sender<Reply>>,
}

impl Incoming {
    pub fn new(message: Message, reply: Option<oneshot::Sender<Reply>>) -> Self {
        Incoming { message, reply }
    }

    /// Whether the sender waits for an answer.
    pub fn is_call(&self) -> bool {
        self.reply.is_some()
    }

    /// Answers a call; does nothing for a cast or fanout.
    pub fn reply(self, reply: Reply) {
        if let Some(tx) = self.reply {
            // The caller may have timed out and gone; nothing to do then.
            let _ = tx.send(reply);
        }
    }
}

/// The messages of one topic for one server, in arrival order.
pub struct Listener {
    rx: mpsc::Receiver<Incoming>,
}

impl Listener {
    pub fn new(rx: mpsc::Receiver<Incoming>) -> Self {
        Listener { rx }
    }

    /// The next message, or `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Incoming> {
        self.rx.recv().await
    }
}

/// What carries messages between processes (or within one).
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn call(&self, target: &Target, msg: Message, timeout: Duration) -> Result<Value, BusError>;
    async fn cast(&self, target: &Target, msg: Message) -> Result<(), BusError>;
    async fn fanout(&self, topic: &str, msg: Message) -> Result<(), BusError>;
    /// Receives, as `server`, the messages for `topic`, for `topic.server`, and the
    /// fanouts of `topic`.
    async fn listen(&self, topic: &str, server: &str) -> Result<Listener, BusError>;
}

/// The handle every service holds. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    transport: Arc<dyn Transport>,
    default_timeout: Duration,
}

impl Bus {
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        // oslo.messaging's rpc_response_timeout default.
        Bus { transport, default_timeout: Duration::from_secs(60) }
    }

    /// A bus that only reaches this process.
    pub fn in_process() -> Self {
        Bus::new(Arc::new(InProcess::default()))
    }

    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    pub async fn call(&self, target: &Target, msg: Message) -> Result<Value, BusError> {
        self.call_with_timeout(target, msg, self.default_timeout).await
    }

    pub async fn call_with_timeout(&self, target: &Target, msg: Message, timeout: Duration) -> Result<Value, BusError> {
        tracing::debug!(%target, method = %msg.method, request_id = ?msg.request_id, "rpc call");
        self.transport.call(target, msg, timeout).await
    }

    pub async fn cast(&self, target: &Target, msg: Message) -> Result<(), BusError> {
        tracing::debug!(%target, method = %msg.method, request_id = ?msg.request_id, "rpc cast");
        self.transport.cast(target, msg).await
    }

    pub async fn fanout(&self, topic: &str, msg: Message) -> Result<(), BusError> {
        tracing::debug!(topic, method = %msg.method, request_id = ?msg.request_id, "rpc fanout");
        self.transport.fanout(topic, msg).await
    }

    pub async fn listen(&self, topic: &str, server: &str) -> Result<Listener, BusError> {
        self.transport.listen(topic, server).await
    }

    /// Serves `topic` as `server`: each message is handled in its own task by
    /// `handler`, whose result answers calls. Runs until the bus goes away.
    pub async fn serve<H, F>(
        &self,
        topic: &str,
        server: &str,
        handler: H,
    ) -> Result<tokio::task::JoinHandle<()>, BusError>
    where
        H: Fn(Message) -> F + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        let mut listener = self.listen(topic, server).await?;
        let handler = Arc::new(handler);
        Ok(tokio::spawn(async move {
            while let Some(incoming) = listener.next().await {
                let handler = Arc::clone(&handler);
                tokio::spawn(async move {
                    let reply = handler(incoming.message.clone()).await;
                    incoming.reply(reply);
                });
            }
        }))
    }
}

#[cfg(test)]
mod tests;
