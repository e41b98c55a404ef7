//! The AMQP 0-9-1 transport (RabbitMQ), with oslo.messaging's layout:
//!
//! - a topic exchange per control exchange (`nova`, `neutron`); a shared queue
//!   per topic (`conductor`) and one per server (`compute.host-1`), each bound
//!   by its own name;
//! - a fanout exchange per topic (`q-agent-notifier-port-update_fanout`) with
//!   a queue per listener;
//! - replies to the caller's own queue (`reply_<uuid>`), matched by correlation id.
//!
//! Nothing acknowledged is lost: every send waits for the broker's publisher
//! confirm; a consumer acknowledges a message only when its handler finished,
//! so the broker hands a message whose consumer died to another; topic queues
//! are durable and their messages persistent (`amqp_durable_queues`), so they
//! outlive a broker restart. A sender queues its message for a consumer that
//! has not listened yet by declaring the queue first. When the connection goes,
//! sends wait (within their timeout) for the next one, and consumers declare
//! and consume again on it.

mod consumer;
mod session;
pub mod url;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::BasicProperties;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::transport::{Listener, Transport};
use crate::{BusError, Message, RemoteError, Reply, Target};
use session::{Link, Route, Session};
pub use url::TransportUrl;

/// oslo.messaging's options for the RabbitMQ driver (`[oslo_messaging_rabbit]`
/// and `[DEFAULT] control_exchange`).
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// The topic exchange this service's topics live in (`nova`, `neutron`).
    pub control_exchange: String,
    /// Durable topic queues and persistent messages, so queued work survives
    /// a broker restart.
    pub durable_queues: bool,
    /// Seconds of silence after which a connection counts as dead.
    pub heartbeat: u16,
    /// How long a cast or fanout waits for the broker to come back.
    pub send_timeout: Duration,
    pub retry_interval: Duration,
    pub retry_backoff: Duration,
    pub interval_max: Duration,
    /// Shown in the broker's connection list: the service and host.
    pub connection_name: String,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        AmqpOptions {
            control_exchange: "openstack".into(),
            durable_queues: true,
            heartbeat: 60,
            send_timeout: Duration::from_secs(60),
            retry_interval: Duration::from_secs(1),
            retry_backoff: Duration::from_secs(2),
            interval_max: Duration::from_secs(5),
            connection_name: "ferrostack".into(),
        }
    }
}

/// What travels back to a caller.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireReply {
    Result(Value),
    Failure(RemoteError),
}

impl From<Reply> for WireReply {
    fn from(r: Reply) -> Self {
        match r {
            Ok(v) => WireReply::Result(v),
            Err(e) => WireReply::Failure(e),
        }
    }
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>;

pub struct Amqp {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    session: Session,
    options: AmqpOptions,
    reply_queue: String,
    pending: Pending,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Amqp {
    /// Starts connecting to the brokers of `url` in the background; sends
    /// wait for the connection.
    pub fn connect(url: &str, options: AmqpOptions) -> Result<Amqp, BusError> {
        let url = TransportUrl::parse(url)?;
        let reply_queue = format!("reply_{}", new_id());
        let pending: Pending = Arc::default();
        let (queue, answers) = (reply_queue.clone(), pending.clone());
        let session = Session::start(url, options.clone(), move |link| {
            let (queue, answers) = (queue.clone(), answers.clone());
            async move { consumer::consume_replies(link, queue, answers).await }
        });
        Ok(Amqp { inner: Arc::new(Inner { session, options, reply_queue, pending }) })
    }
}

impl Inner {
    fn exchange(&self) -> &str {
        &self.options.control_exchange
    }

    fn properties(&self, persistent: bool) -> BasicProperties {
        let mut p = BasicProperties::default();
        p.with_content_type("application/json").with_message_id(&new_id()).with_persistence(persistent);
        p
    }

    /// Publishes, retrying on the next connection until `deadline`.
    async fn send(
        &self,
        exchange: &str,
        routing_key: &str,
        route: Route<'_>,
        properties: &BasicProperties,
        body: &[u8],
        deadline: Instant,
    ) -> Result<(), BusError> {
        let mut last = None;
        loop {
            let Some(link) = self.session.link(deadline).await else {
                return Err(last.unwrap_or_else(|| {
                    BusError::Transport("no connection to the AMQP broker before the deadline".into())
                }));
            };
            match link.publish(exchange, routing_key, route, properties, body.to_vec(), deadline).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::debug!(routing_key, error = %e, "publish failed; retrying on the next connection");
                    last = Some(e);
                    if Instant::now() >= deadline {
                        return Err(last.unwrap_or_else(|| BusError::Transport("publish failed".into())));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn topic_route(&self) -> Route<'_> {
        Route::Queue { exchange: self.exchange(), durable: self.options.durable_queues }
    }

    /// Sends a call's answer to the caller's reply queue. Not confirmed: a
    /// lost answer is a call that times out, as with oslo.messaging.
    pub(crate) async fn send_reply(&self, link: Option<Arc<Link>>, to: &str, correlation_id: &str, reply: Reply) {
        let body = match serde_json::to_vec(&WireReply::from(reply)) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a reply");
                return;
            }
        };
        let mut props = self.properties(false);
        props.with_correlation_id(correlation_id);
        let deadline = Instant::now() + Duration::from_secs(10);
        let link = match link {
            Some(l) if l.connection.is_open() => l,
            _ => match self.session.link(deadline).await {
                Some(l) => l,
                None => return,
            },
        };
        if let Err(e) = link.publish("", to, Route::Direct, &props, body, deadline).await {
            tracing::warn!(error = %e, "could not send a reply");
        }
    }
}

#[async_trait::async_trait]
impl Transport for Amqp {
    async fn call(&self, target: &Target, msg: Message, timeout: Duration) -> Result<Value, BusError> {
        let inner = &self.inner;
        let deadline = Instant::now() + timeout;
        let correlation_id = new_id();
        let (tx, rx) = oneshot::channel();
        lock(&inner.pending).insert(correlation_id.clone(), tx);
        let _forget = Forget { pending: &inner.pending, id: &correlation_id };
        let body = serde_json::to_vec(&msg).map_err(|e| BusError::Codec(e.to_string()))?;
        let mut props = inner.properties(inner.options.durable_queues);
        // A call nobody took before it timed out is dropped by the broker.
        props
            .with_correlation_id(&correlation_id)
            .with_reply_to(&inner.reply_queue)
            .with_expiration(&timeout.as_millis().max(1).to_string());
        let queue = target.queue();
        let timed_out = || BusError::Timeout { target: target.to_string(), timeout };
        if let Err(e) = inner.send(inner.exchange(), &queue, inner.topic_route(), &props, &body, deadline).await {
            tracing::debug!(%target, error = %e, "call not sent before its deadline");
            return Err(timed_out());
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(error))) => Err(BusError::Remote { target: target.to_string(), error }),
            Ok(Err(_)) => Err(BusError::NoReply { target: target.to_string() }),
            Err(_) => Err(timed_out()),
        }
    }

    async fn cast(&self, target: &Target, msg: Message) -> Result<(), BusError> {
        let inner = &self.inner;
        let body = serde_json::to_vec(&msg).map_err(|e| BusError::Codec(e.to_string()))?;
        let props = inner.properties(inner.options.durable_queues);
        let deadline = Instant::now() + inner.options.send_timeout;
        inner.send(inner.exchange(), &target.queue(), inner.topic_route(), &props, &body, deadline).await
    }

    async fn fanout(&self, topic: &str, msg: Message) -> Result<(), BusError> {
        let inner = &self.inner;
        let body = serde_json::to_vec(&msg).map_err(|e| BusError::Codec(e.to_string()))?;
        let props = inner.properties(false);
        let deadline = Instant::now() + inner.options.send_timeout;
        inner.send(&fanout_exchange(topic), "", Route::Fanout, &props, &body, deadline).await
    }

    async fn listen(&self, topic: &str, server: &str, prefetch: usize) -> Result<Listener, BusError> {
        consumer::listen(self.inner.clone(), topic, server, prefetch).await
    }
}

pub(crate) fn fanout_exchange(topic: &str) -> String {
    format!("{topic}_fanout")
}

/// Forgets a call's reply slot however the call ends.
struct Forget<'a> {
    pending: &'a Pending,
    id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(self.id);
    }
}
