//! The message bus: how the parts of a service talk (compute-api → conductor →
//! scheduler → compute@host; the network server ↔ its agents). The model is
//! oslo.messaging's: a *topic* names a service (`conductor`, `compute`), a *server*
//! names one host serving it, and a message is a method name, JSON arguments, the
//! interface version the sender speaks and the request id that caused it.
//!
//! - [`Bus::call`] sends to one server of a topic and waits for its answer, up to a timeout;
//! - [`Bus::cast`] sends to one server and does not wait;
//! - [`Bus::fanout`] sends to every server of a topic;
//! - [`Bus::serve`] handles a topic's messages as one server, a bounded number at a
//!   time, each inside a tracing span carrying its request id.
//!
//! The contract every transport keeps (and `conformance` checks): messages to a
//! queue nobody consumes yet wait for a consumer; a message is gone only once its
//! handler acknowledged it, so one handed to a handler that died is delivered
//! again; one server receives its messages in the order they were sent.
//!
//! Callers see only [`Bus`]; a [`Transport`] carries the messages. Services speak
//! through typed interfaces ([`interface!`]) that name every method and its
//! argument type in one place.

pub mod amqp;
pub mod conformance;
mod interface;
mod memory;
mod transport;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

pub use interface::{CallContext, Version};
pub use memory::InProcess;
pub use transport::{Delivery, Listener, ReplyTo, Settle, Transport};

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

    /// The queue this target's messages wait in: `topic` or `topic.server`.
    pub fn queue(&self) -> String {
        self.to_string()
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
    /// The version of the interface the sender speaks (`major.minor`); a
    /// server refuses a major it does not speak or a minor newer than its own.
    #[serde(default)]
    pub version: String,
    /// The `x-openstack-request-id` of the API request that caused this message,
    /// so its log lines can be followed across services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Message {
    pub fn new(method: impl Into<String>, args: Value) -> Self {
        Message { method: method.into(), args, version: String::new(), request_id: None }
    }

    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    pub fn with_version(mut self, version: Version) -> Self {
        self.version = version.to_string();
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
    #[error("timed out after {timeout:?} waiting for a reply from {target}")]
    Timeout { target: String, timeout: Duration },
    #[error("{target} dropped the call without replying")]
    NoReply { target: String },
    #[error("remote error from {target}: {error}")]
    Remote { target: String, error: RemoteError },
    #[error("transport error: {0}")]
    Transport(String),
    #[error("unreadable message: {0}")]
    Codec(String),
}

impl BusError {
    /// Whether the broker (or the service called) could not be reached in time,
    /// as opposed to an answer that was an error: an API answers 503 for these.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, BusError::Timeout { .. } | BusError::Transport(_))
    }
}

pub type Reply = Result<Value, RemoteError>;

/// How a server handles its messages.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Messages handled at once; more wait in the queue (oslo.messaging's
    /// `executor_thread_pool_size`).
    pub concurrency: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { concurrency: 64 }
    }
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

    /// The bus `[DEFAULT] transport_url` names: empty or `in-process://` for
    /// this process only; `rabbit://user:pass@host:5672/vhost` (several hosts
    /// comma-separated) for RabbitMQ, with `options`. Connecting to a broker
    /// happens in the background: sends wait for it.
    pub fn from_url(url: &str, options: amqp::AmqpOptions) -> Result<Self, BusError> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or(url).trim();
        match scheme {
            "" | "in-process" | "memory" => Ok(Bus::in_process()),
            "rabbit" | "amqp" => Ok(Bus::new(Arc::new(amqp::Amqp::connect(url, options)?))),
            other => Err(BusError::Transport(format!("unknown transport_url scheme {other}://"))),
        }
    }

    /// Whether only this process can be reached (no broker).
    pub fn is_in_process(&self) -> bool {
        self.transport.is_in_process()
    }

    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    pub fn default_timeout(&self) -> Duration {
        self.default_timeout
    }

    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
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

    /// Consumes `topic`'s messages as `server`, at most `prefetch` of them
    /// unacknowledged at a time.
    pub async fn listen(&self, topic: &str, server: &str, prefetch: usize) -> Result<Listener, BusError> {
        self.transport.listen(topic, server, prefetch.max(1)).await
    }

    /// Serves `topic` as `server` with the default options.
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
        self.serve_with(topic, server, ServeOptions::default(), handler).await
    }

    /// Serves `topic` as `server`: each message is handled in its own task
    /// by `handler`, at most `options.concurrency` at once, inside a span
    /// that carries the message's request id. The answer goes back to a
    /// caller, and the message is acknowledged, only when the handler has
    /// finished; a handler that panics leaves its message to be delivered
    /// again. Runs until the bus goes away.
    pub async fn serve_with<H, F>(
        &self,
        topic: &str,
        server: &str,
        options: ServeOptions,
        handler: H,
    ) -> Result<tokio::task::JoinHandle<()>, BusError>
    where
        H: Fn(Message) -> F + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        let concurrency = options.concurrency.max(1);
        let mut listener = self.listen(topic, server, concurrency).await?;
        let handler = Arc::new(handler);
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let topic = topic.to_string();
        Ok(tokio::spawn(async move {
            while let Some(delivery) = listener.next().await {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let handler = Arc::clone(&handler);
                let message = delivery.message().clone();
                let span = tracing::info_span!(
                    "rpc",
                    topic = %topic,
                    method = %message.method,
                    request_id = message.request_id.as_deref().unwrap_or("-"),
                );
                tokio::spawn(
                    async move {
                        if delivery.redelivered() > 0 {
                            tracing::info!(times = delivery.redelivered(), "handling a redelivered message");
                        }
                        let reply = handler(message).await;
                        delivery.finish(reply);
                        drop(slot);
                    }
                    .instrument(span),
                );
            }
        }))
    }
}

/// What the `interface!` macro's expansion uses; not for direct use.
#[doc(hidden)]
pub mod __private {
    pub use crate::interface::{check_version, decode_args, decode_reply, encode_args, encode_reply, unknown_method};
    pub use serde_json::Value;
    pub use tokio::task::JoinHandle;
}

#[cfg(test)]
mod tests;
