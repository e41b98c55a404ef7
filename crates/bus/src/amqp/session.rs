//! One connection to RabbitMQ, kept up: the supervisor connects (trying the
//! brokers of the URL in turn, backing off between rounds), sets up the
//! publishing channel and the reply queue, publishes the [`Link`] for everyone
//! to use, and when the connection is lost withdraws it and starts over.
//! Consumers watch the link and set themselves up again on each new one.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::{
    BasicConsumeArguments, BasicPublishArguments, Channel, ConfirmSelectArguments, ExchangeDeclareArguments,
    QueueBindArguments, QueueDeclareArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, Close, CloseChannel, Nack, Return};
use tokio::sync::{oneshot, watch, Notify};
use tokio::time::Instant;

use super::url::TransportUrl;
use super::AmqpOptions;
use crate::BusError;

/// A live connection and what was set up on it.
pub(crate) struct Link {
    pub connection: Connection,
    publisher: Channel,
    /// Publisher confirms awaited, by delivery tag.
    confirms: Arc<Mutex<Confirms>>,
    /// Serialises what goes over the publisher channel: a publish with the
    /// confirm tag it takes, and declarations, whose answers the broker sends
    /// in order on the channel (two at once would each take the other's).
    publish_lock: tokio::sync::Mutex<()>,
    /// Queues and exchanges known to exist (declared through this link).
    declared: Mutex<HashSet<String>>,
    /// Notified when something on this link failed, so the supervisor
    /// replaces it.
    broken: Arc<Notify>,
}

#[derive(Default)]
struct Confirms {
    next: u64,
    waiting: BTreeMap<u64, oneshot::Sender<bool>>,
}

/// How long a declaration may wait for the broker's answer. A broker that
/// stops answering without closing the connection would otherwise hold the
/// publisher channel's turn until the heartbeats notice.
const DECLARE_WITHIN: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a publish needs to exist first, so that a message sent before its
/// consumer ever listened waits in its queue instead of being dropped.
#[derive(Clone, Copy)]
pub(crate) enum Route<'a> {
    /// A queue of this name bound to the exchange with its name as key.
    Queue { exchange: &'a str, durable: bool },
    /// A fanout exchange.
    Fanout,
    /// Nothing (a reply to a queue its caller declared).
    Direct,
}

impl Link {
    /// Publishes and waits for the broker to confirm it holds the message.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        route: Route<'_>,
        properties: &BasicProperties,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<(), BusError> {
        match route {
            Route::Queue { exchange: x, durable } => self.declare_queue(x, routing_key, durable).await?,
            Route::Fanout => self.declare_exchange(exchange, "fanout", false).await?,
            Route::Direct => {}
        }
        let confirmed = {
            let _turn = self.publish_lock.lock().await;
            let (tx, rx) = oneshot::channel();
            {
                let mut c = lock(&self.confirms);
                c.next += 1;
                let tag = c.next;
                c.waiting.insert(tag, tx);
            }
            let args = BasicPublishArguments::new(exchange, routing_key);
            // Bounded (a stalled write), but never short: a publish given up
            // on leaves the confirm tags out of step, and the link with them.
            let sent = self.publisher.basic_publish(properties.clone(), body, args);
            self.within(deadline.max(Instant::now() + DECLARE_WITHIN), "a publish", sent).await?;
            rx
        };
        match tokio::time::timeout_at(deadline, confirmed).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(BusError::Transport(format!("the broker refused a message for {routing_key}"))),
            Ok(Err(_)) => Err(BusError::Transport("the connection to the broker was lost".into())),
            Err(_) => Err(BusError::Transport(format!("the broker did not confirm a message for {routing_key}"))),
        }
    }

    /// Declares `queue`, bound to the topic exchange `exchange` by its own
    /// name, once per link.
    pub async fn declare_queue(&self, exchange: &str, queue: &str, durable: bool) -> Result<(), BusError> {
        if lock(&self.declared).contains(queue) {
            return Ok(());
        }
        self.declare_exchange(exchange, "topic", durable).await?;
        let _turn = self.publish_lock.lock().await;
        if lock(&self.declared).contains(queue) {
            return Ok(());
        }
        let (ch, by) = (&self.publisher, Instant::now() + DECLARE_WITHIN);
        let declared = ch.queue_declare(QueueDeclareArguments::new(queue).durable(durable).finish());
        self.within(by, "a queue declaration", declared).await?;
        self.within(by, "a queue binding", ch.queue_bind(QueueBindArguments::new(queue, exchange, queue))).await?;
        lock(&self.declared).insert(queue.to_string());
        Ok(())
    }

    pub async fn declare_exchange(&self, exchange: &str, kind: &str, durable: bool) -> Result<(), BusError> {
        let key = format!("exchange:{exchange}");
        if lock(&self.declared).contains(&key) {
            return Ok(());
        }
        let _turn = self.publish_lock.lock().await;
        if lock(&self.declared).contains(&key) {
            return Ok(());
        }
        let args = ExchangeDeclareArguments::new(exchange, kind).durable(durable).finish();
        let declared = self.publisher.exchange_declare(args);
        self.within(Instant::now() + DECLARE_WITHIN, "an exchange declaration", declared).await?;
        lock(&self.declared).insert(key);
        Ok(())
    }

    /// `op` on this link, answered by `deadline`; a broker that fails it or
    /// does not answer in time leaves the link to be replaced.
    async fn within<T>(
        &self,
        deadline: Instant,
        what: &str,
        op: impl std::future::Future<Output = Result<T, amqprs::error::Error>>,
    ) -> Result<T, BusError> {
        match tokio::time::timeout_at(deadline, op).await {
            Ok(done) => done.map_err(|e| self.failed(e)),
            Err(_) => {
                tracing::warn!(what, "the broker did not answer in time; replacing the connection");
                self.broken.notify_one();
                Err(BusError::Transport(format!("the broker did not answer {what} in time")))
            }
        }
    }

    /// Notes that the link is unusable and says why.
    pub fn failed(&self, e: amqprs::error::Error) -> BusError {
        tracing::warn!(error = %e, "an AMQP operation failed; replacing the connection");
        self.broken.notify_one();
        BusError::Transport(format!("amqp: {e}"))
    }
}

/// Keeps one connection up and says which [`Link`] is current.
pub(crate) struct Session {
    current: watch::Receiver<Option<Arc<Link>>>,
}

impl Session {
    /// Starts the supervisor; `on_link` runs on every new link before it is
    /// published (the transport declares its reply queue there).
    pub fn start<F, Fut>(url: TransportUrl, options: AmqpOptions, on_link: F) -> Session
    where
        F: Fn(Arc<Link>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), BusError>> + Send + 'static,
    {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(supervise(url, options, tx, on_link));
        Session { current: rx }
    }

    /// The current link, waiting for one until `deadline`.
    pub async fn link(&self, deadline: Instant) -> Option<Arc<Link>> {
        let mut rx = self.current.clone();
        let wait = async move {
            rx.wait_for(|l| l.as_ref().is_some_and(|l| l.connection.is_open())).await.ok().and_then(|l| l.clone())
        };
        tokio::time::timeout_at(deadline, wait).await.ok().flatten()
    }

    /// A receiver that sees every change of link.
    pub fn watch(&self) -> watch::Receiver<Option<Arc<Link>>> {
        self.current.clone()
    }
}

async fn supervise<F, Fut>(
    url: TransportUrl,
    options: AmqpOptions,
    current: watch::Sender<Option<Arc<Link>>>,
    on_link: F,
) where
    F: Fn(Arc<Link>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), BusError>> + Send + 'static,
{
    let mut attempt: u32 = 0;
    let mut next_host = 0usize;
    loop {
        let broker = &url.hosts[next_host % url.hosts.len()];
        next_host += 1;
        let connected = tokio::time::timeout(Duration::from_secs(10), connect(&url, broker, &options)).await;
        let link = match connected {
            Ok(Ok(link)) => Arc::new(link),
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connecting timed out".into(),
                };
                // Back off after each round over every broker, as oslo.messaging does:
                // rabbit_retry_interval, growing by rabbit_retry_backoff up to rabbit_interval_max.
                if next_host.is_multiple_of(url.hosts.len()) {
                    let wait = backoff(&options, attempt);
                    attempt += 1;
                    tracing::warn!(broker = %broker.host, port = broker.port, error = %why, retry_in = ?wait, "cannot reach the AMQP broker");
                    tokio::time::sleep(wait).await;
                }
                continue;
            }
        };
        if let Err(e) = on_link(link.clone()).await {
            tracing::warn!(error = %e, "setting up a new AMQP connection failed; reconnecting");
            let _ = link.connection.clone().close().await;
            tokio::time::sleep(backoff(&options, attempt)).await;
            attempt += 1;
            continue;
        }
        if attempt > 0 {
            tracing::info!(broker = %broker.host, port = broker.port, "reconnected to the AMQP broker");
        } else {
            tracing::info!(broker = %broker.host, port = broker.port, "connected to the AMQP broker");
        }
        attempt = 0;
        let _ = current.send(Some(link.clone()));
        // Until the connection goes (or something on it broke).
        let conn = link.connection.clone();
        tokio::select! {
            _ = conn.listen_network_io_failure() => {}
            _ = link.broken.notified() => {}
            _ = async { while conn.is_open() { tokio::time::sleep(Duration::from_millis(500)).await } } => {}
        }
        let _ = current.send(None);
        tracing::warn!(broker = %broker.host, "lost the connection to the AMQP broker; reconnecting");
        // Whoever waits for a confirm on the old link learns it is gone.
        lock(&link.confirms).waiting.clear();
        let _ = link.connection.clone().close().await;
        next_host -= 1; // try the same broker first
    }
}

fn backoff(options: &AmqpOptions, attempt: u32) -> Duration {
    let wait = options.retry_interval + options.retry_backoff * attempt;
    wait.min(options.interval_max)
}

async fn connect(
    url: &TransportUrl,
    broker: &super::url::BrokerAddress,
    options: &AmqpOptions,
) -> Result<Link, BusError> {
    let err = |e: amqprs::error::Error| BusError::Transport(format!("amqp: {e}"));
    let mut args = OpenConnectionArguments::new(&broker.host, broker.port, &broker.username, &broker.password);
    args.virtual_host(&url.virtual_host).heartbeat(options.heartbeat).connection_name(&options.connection_name);
    let connection = Connection::open(&args).await.map_err(err)?;
    let broken = Arc::new(Notify::new());
    connection.register_callback(OnConnection { broken: broken.clone() }).await.map_err(err)?;
    let publisher = connection.open_channel(None).await.map_err(err)?;
    let confirms = Arc::new(Mutex::new(Confirms::default()));
    publisher
        .register_callback(OnChannel { confirms: Some(confirms.clone()), broken: broken.clone() })
        .await
        .map_err(err)?;
    publisher.confirm_select(ConfirmSelectArguments::new(false)).await.map_err(err)?;
    Ok(Link {
        connection,
        publisher,
        confirms,
        publish_lock: tokio::sync::Mutex::new(()),
        declared: Mutex::new(HashSet::new()),
        broken,
    })
}

/// Opens a channel on `link` whose closing breaks the link (a consumer's).
pub(crate) async fn open_channel(link: &Link) -> Result<Channel, BusError> {
    let ch = link.connection.open_channel(None).await.map_err(|e| link.failed(e))?;
    ch.register_callback(OnChannel { confirms: None, broken: link.broken.clone() })
        .await
        .map_err(|e| link.failed(e))?;
    Ok(ch)
}

pub(crate) fn consume_args(queue: &str, tag: &str, manual_ack: bool) -> BasicConsumeArguments {
    BasicConsumeArguments::new(queue, tag).manual_ack(manual_ack).finish()
}

struct OnConnection {
    broken: Arc<Notify>,
}

#[async_trait::async_trait]
impl ConnectionCallback for OnConnection {
    async fn close(&mut self, _connection: &Connection, close: Close) -> Result<(), amqprs::error::Error> {
        tracing::warn!(reason = %close, "the AMQP broker closed the connection");
        self.broken.notify_one();
        Ok(())
    }
    async fn blocked(&mut self, _connection: &Connection, reason: String) {
        tracing::warn!(%reason, "the AMQP broker blocks publishing (resource alarm)");
    }
    async fn unblocked(&mut self, _connection: &Connection) {
        tracing::info!("the AMQP broker unblocked publishing");
    }
    async fn secret_updated(&mut self, _connection: &Connection) {}
}

struct OnChannel {
    confirms: Option<Arc<Mutex<Confirms>>>,
    broken: Arc<Notify>,
}

impl OnChannel {
    fn settle(&self, tag: u64, multiple: bool, ok: bool) {
        let Some(confirms) = &self.confirms else { return };
        let mut c = lock(confirms);
        let tags: Vec<u64> = if multiple { c.waiting.range(..=tag).map(|(t, _)| *t).collect() } else { vec![tag] };
        for t in tags {
            if let Some(tx) = c.waiting.remove(&t) {
                let _ = tx.send(ok);
            }
        }
    }
}

#[async_trait::async_trait]
impl ChannelCallback for OnChannel {
    async fn close(&mut self, _channel: &Channel, close: CloseChannel) -> Result<(), amqprs::error::Error> {
        tracing::warn!(reason = %close, "the AMQP broker closed a channel");
        self.broken.notify_one();
        Ok(())
    }
    async fn cancel(&mut self, _channel: &Channel, _cancel: Cancel) -> Result<(), amqprs::error::Error> {
        // The broker cancels a consumer whose queue went away: start over.
        self.broken.notify_one();
        Ok(())
    }
    async fn flow(&mut self, _channel: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _channel: &Channel, ack: Ack) {
        self.settle(ack.delivery_tag(), ack.mutiple(), true);
    }
    async fn publish_nack(&mut self, _channel: &Channel, nack: Nack) {
        self.settle(nack.delivery_tag(), nack.multiple(), false);
    }
    async fn publish_return(&mut self, _channel: &Channel, _ret: Return, _props: BasicProperties, _content: Vec<u8>) {}
}
