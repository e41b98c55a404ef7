//! Consuming: a listener's queues (`topic`, `topic.server`, its own fanout
//! queue) on a channel of its own, set up again on every new connection; each
//! message handed on as a [`Delivery`] acknowledged when its handler finished
//! (after its answer went out) or handed back to the broker when dropped. And
//! the reply queue that answers this transport's calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::channel::{
    BasicAckArguments, BasicQosArguments, BasicRejectArguments, Channel, ConsumerMessage, QueueBindArguments,
    QueueDeclareArguments,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::session::{self, consume_args, Link};
use super::{fanout_exchange, lock, new_id, Inner, Pending, WireReply};
use crate::transport::{Delivery, Listener, ReplyTo, Settle, MAX_DELIVERIES};
use crate::{BusError, Message, RemoteError, Reply};

/// How often each message was handed back unsettled, by message id.
type Requeues = Arc<Mutex<HashMap<String, u32>>>;

/// Declares this transport's reply queue on `link` and routes what arrives
/// there to the calls waiting for it.
pub(crate) async fn consume_replies(link: Arc<Link>, queue: String, pending: Pending) -> Result<(), BusError> {
    let ch = session::open_channel(&link).await?;
    let args = QueueDeclareArguments::new(&queue).exclusive(true).auto_delete(true).finish();
    ch.queue_declare(args).await.map_err(|e| link.failed(e))?;
    let (_, mut replies) = ch.basic_consume_rx(consume_args(&queue, "", false)).await.map_err(|e| link.failed(e))?;
    tokio::spawn(async move {
        let _channel = ch;
        while let Some(m) = replies.recv().await {
            let (Some(props), Some(body)) = (m.basic_properties, m.content) else { continue };
            let Some(id) = props.correlation_id() else { continue };
            let reply: Reply = match serde_json::from_slice::<WireReply>(&body) {
                Ok(WireReply::Result(v)) => Ok(v),
                Ok(WireReply::Failure(e)) => Err(e),
                Err(e) => Err(RemoteError::new("UnreadableReply", e.to_string())),
            };
            // A reply to a call that already timed out finds nobody.
            if let Some(tx) = lock(&pending).remove(id) {
                let _ = tx.send(reply);
            }
        }
    });
    Ok(())
}

/// Starts consuming `topic` as `server`; returns once the queues are bound
/// (so a fanout sent next reaches this listener), or after a while if the
/// broker cannot be reached yet — the listener then starts when it can.
pub(crate) async fn listen(
    inner: Arc<Inner>,
    topic: &str,
    server: &str,
    prefetch: usize,
) -> Result<Listener, BusError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = oneshot::channel();
    let setup = Setup {
        topic: topic.to_string(),
        server: server.to_string(),
        prefetch,
        fanout_queue: format!("{topic}_fanout_{}", new_id()),
    };
    tokio::spawn(run(inner, setup, tx, stop_rx, ready_tx));
    if tokio::time::timeout(Duration::from_secs(10), ready_rx).await.is_err() {
        tracing::warn!(
            topic,
            server,
            "listening before the AMQP broker could be reached; consuming starts when it can"
        );
    }
    Ok(Listener::new(rx, move || {
        let _ = stop_tx.send(true);
    }))
}

struct Setup {
    topic: String,
    server: String,
    prefetch: usize,
    fanout_queue: String,
}

enum Ended {
    Stopped,
    Lost,
}

async fn run(
    inner: Arc<Inner>,
    setup: Setup,
    tx: mpsc::UnboundedSender<Delivery>,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let requeues = Requeues::default();
    let mut links = inner.session.watch();
    loop {
        let link = tokio::select! {
            l = links.wait_for(|l| l.as_ref().is_some_and(|l| l.connection.is_open())) => match l {
                Ok(l) => l.clone(),
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let Some(link) = link else { continue };
        match consume(&inner, &link, &setup, &tx, &mut stop, &mut ready, &requeues).await {
            Ok(Ended::Stopped) => return,
            Ok(Ended::Lost) => tracing::info!(topic = %setup.topic, "consumer lost its channel; consuming again"),
            Err(e) => tracing::warn!(topic = %setup.topic, error = %e, "cannot consume; trying again"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn consume(
    inner: &Arc<Inner>,
    link: &Arc<Link>,
    setup: &Setup,
    tx: &mpsc::UnboundedSender<Delivery>,
    stop: &mut watch::Receiver<bool>,
    ready: &mut Option<oneshot::Sender<()>>,
    requeues: &Requeues,
) -> Result<Ended, BusError> {
    let ch = session::open_channel(link).await?;
    let failed = |e| link.failed(e);
    // `global`: RabbitMQ then counts the channel's three consumers together.
    let prefetch = u16::try_from(setup.prefetch).unwrap_or(u16::MAX);
    ch.basic_qos(BasicQosArguments::new(0, prefetch, true)).await.map_err(failed)?;
    let (exchange, durable) = (inner.exchange(), inner.options.durable_queues);
    let direct = format!("{}.{}", setup.topic, setup.server);
    link.declare_queue(exchange, &setup.topic, durable).await?;
    link.declare_queue(exchange, &direct, durable).await?;
    let fanout = fanout_exchange(&setup.topic);
    link.declare_exchange(&fanout, "fanout", false).await?;
    let q = QueueDeclareArguments::new(&setup.fanout_queue).exclusive(true).auto_delete(true).finish();
    ch.queue_declare(q).await.map_err(failed)?;
    ch.queue_bind(QueueBindArguments::new(&setup.fanout_queue, &fanout, "")).await.map_err(failed)?;
    let (_, mut shared) = ch.basic_consume_rx(consume_args(&setup.topic, "", true)).await.map_err(failed)?;
    let (_, mut own) = ch.basic_consume_rx(consume_args(&direct, "", true)).await.map_err(failed)?;
    let (_, mut fan) = ch.basic_consume_rx(consume_args(&setup.fanout_queue, "", true)).await.map_err(failed)?;
    if let Some(r) = ready.take() {
        let _ = r.send(());
    }
    loop {
        let m = tokio::select! {
            m = shared.recv() => m,
            m = own.recv() => m,
            m = fan.recv() => m,
            _ = stop.changed() => {
                // The broker hands what this channel held unsettled to others.
                let _ = ch.close().await;
                return Ok(Ended::Stopped);
            }
        };
        let Some(m) = m else { return Ok(Ended::Lost) };
        if !deliver(inner, link, &ch, m, tx, requeues) {
            let _ = ch.close().await;
            return Ok(Ended::Stopped);
        }
    }
}

/// Hands one message to the listener; false once the listener is gone.
fn deliver(
    inner: &Arc<Inner>,
    link: &Arc<Link>,
    ch: &Channel,
    m: ConsumerMessage,
    tx: &mpsc::UnboundedSender<Delivery>,
    requeues: &Requeues,
) -> bool {
    let (Some(deliver), Some(props), Some(body)) = (m.deliver, m.basic_properties, m.content) else { return true };
    let tag = deliver.delivery_tag();
    let message: Message = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "dropping an unreadable message");
            let ch = ch.clone();
            spawn(async move {
                let _ = ch.basic_reject(BasicRejectArguments::new(tag, false)).await;
            });
            return true;
        }
    };
    let message_id = props.message_id().cloned().unwrap_or_default();
    let mut redelivered = lock(requeues).get(&message_id).copied().unwrap_or(0);
    if deliver.redelivered() {
        redelivered = redelivered.max(1);
    }
    let answer: Arc<Mutex<Option<Reply>>> = Arc::default();
    let caller = props.reply_to().cloned().zip(props.correlation_id().cloned());
    let reply = caller.as_ref().map(|_| {
        let slot = answer.clone();
        ReplyTo::new(move |r| *lock(&slot) = Some(r))
    });
    let settle = Settlement {
        inner: inner.clone(),
        link: link.clone(),
        channel: ch.clone(),
        tag,
        message_id,
        caller,
        answer,
        requeues: requeues.clone(),
    };
    tx.send(Delivery::new(message, reply, redelivered, Box::new(settle))).is_ok()
}

/// Runs `f` on the current runtime, if there still is one (a delivery can
/// be dropped while the runtime shuts down).
fn spawn(f: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(f);
    }
}

struct Settlement {
    inner: Arc<Inner>,
    link: Arc<Link>,
    channel: Channel,
    tag: u64,
    message_id: String,
    /// The caller's reply queue and correlation id, for a call.
    caller: Option<(String, String)>,
    answer: Arc<Mutex<Option<Reply>>>,
    requeues: Requeues,
}

impl Settlement {
    /// Answers the caller (if any) with `reply`, then acknowledges.
    fn answer_and_ack(self, reply: Option<Reply>) {
        lock(&self.requeues).remove(&self.message_id);
        spawn(async move {
            if let (Some((to, correlation_id)), Some(reply)) = (&self.caller, reply) {
                self.inner.send_reply(Some(self.link.clone()), to, correlation_id, reply).await;
            }
            let _ = self.channel.basic_ack(BasicAckArguments::new(self.tag, false)).await;
        });
    }
}

impl Settle for Settlement {
    fn ack(self: Box<Self>) {
        let reply = lock(&self.answer).take();
        self.answer_and_ack(reply);
    }

    fn requeue(self: Box<Self>, message: Message, _reply: Option<ReplyTo>) {
        let times = {
            let mut r = lock(&self.requeues);
            let n = r.entry(self.message_id.clone()).or_default();
            *n += 1;
            *n
        };
        if times >= MAX_DELIVERIES {
            tracing::error!(method = %message.method, times, "dropping a message that every handler died on");
            let given_up = RemoteError::new(
                "MessageGivenUp",
                format!("the message was handed out {times} times and no handler finished it"),
            );
            self.answer_and_ack(Some(Err(given_up)));
            return;
        }
        let channel = self.channel.clone();
        let tag = self.tag;
        spawn(async move {
            let _ = channel.basic_reject(BasicRejectArguments::new(tag, true)).await;
        });
    }
}
