//! The in-process transport: a small broker in memory with the semantics of the
//! queues oslo.messaging declares on RabbitMQ. A queue per `topic` (shared by
//! its servers, round-robin), one per `topic.server`, and one per listener for
//! fanouts; queues exist from the first message or listener on, and hold
//! messages until a consumer with room takes them. A call expires with its
//! timeout. An unsettled delivery returns to the front of its queue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::transport::{Delivery, Listener, ReplyTo, Settle, Transport, MAX_DELIVERIES};
use crate::{BusError, Message, RemoteError, Target};

#[derive(Default)]
pub struct InProcess {
    broker: Arc<Broker>,
}

#[derive(Default)]
struct Broker {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, Queue>,
    consumers: HashMap<u64, Consumer>,
    /// The fanout queue of every listener of a topic.
    fanouts: HashMap<String, Vec<String>>,
    next_id: u64,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Envelope>,
    consumers: Vec<u64>,
    next: usize,
}

struct Envelope {
    message: Message,
    reply: Option<ReplyTo>,
    expires: Option<Instant>,
    delivered: u32,
}

struct Consumer {
    tx: mpsc::UnboundedSender<Delivery>,
    queues: Vec<String>,
    unsettled: usize,
    prefetch: usize,
}

/// Settles a delivery with the broker it came from (if it still exists).
struct Settlement {
    broker: Weak<Broker>,
    consumer: u64,
    queue: String,
    expires: Option<Instant>,
    /// Deliveries of the message before this one.
    delivered: u32,
}

impl Broker {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(self: &Arc<Self>, queue: &str, envelope: Envelope) {
        let mut state = self.lock();
        state.queues.entry(queue.to_string()).or_default().pending.push_back(envelope);
        self.dispatch(&mut state, queue);
    }

    /// Hands the queue's messages to its consumers with room, round-robin.
    fn dispatch(self: &Arc<Self>, state: &mut State, queue: &str) {
        loop {
            let State { queues, consumers, .. } = &mut *state;
            let Some(q) = queues.get_mut(queue) else { return };
            q.consumers.retain(|c| consumers.get(c).is_some_and(|c| !c.tx.is_closed()));
            // Calls whose caller gave up are dropped, as RabbitMQ drops a
            // message past its TTL.
            while q.pending.front().is_some_and(|e| e.expires.is_some_and(|t| t <= Instant::now())) {
                q.pending.pop_front();
            }
            if q.pending.is_empty() || q.consumers.is_empty() {
                return;
            }
            let n = q.consumers.len();
            let Some(pick) = (0..n)
                .map(|i| (q.next + i) % n)
                .find(|i| consumers.get(&q.consumers[*i]).is_some_and(|c| c.unsettled < c.prefetch))
            else {
                return;
            };
            q.next = (pick + 1) % n;
            let id = q.consumers[pick];
            let Some(envelope) = q.pending.pop_front() else { return };
            let Some(consumer) = consumers.get_mut(&id) else { return };
            let settle = Settlement {
                broker: Arc::downgrade(self),
                consumer: id,
                queue: queue.to_string(),
                expires: envelope.expires,
                delivered: envelope.delivered,
            };
            let failed_expires = envelope.expires;
            let delivery = Delivery::new(envelope.message, envelope.reply, envelope.delivered, Box::new(settle));
            match consumer.tx.send(delivery) {
                Ok(()) => consumer.unsettled += 1,
                Err(failed) => {
                    // The consumer is going; keep the message for another.
                    let (message, reply, delivered) = failed.0.into_parts();
                    let expires = failed_expires;
                    if let Some(q) = state.queues.get_mut(queue) {
                        q.pending.push_front(Envelope { message, reply, expires, delivered });
                    }
                    state.consumers.remove(&id);
                }
            }
        }
    }

    /// A consumer has room again (or is gone): its queues may move.
    fn settled(self: &Arc<Self>, consumer: u64, requeue: Option<(String, Envelope)>) {
        let mut state = self.lock();
        let queues = match state.consumers.get_mut(&consumer) {
            Some(c) => {
                c.unsettled = c.unsettled.saturating_sub(1);
                c.queues.clone()
            }
            None => Vec::new(),
        };
        if let Some((queue, envelope)) = requeue {
            state.queues.entry(queue.clone()).or_default().pending.push_front(envelope);
            self.dispatch(&mut state, &queue);
        }
        for q in queues {
            self.dispatch(&mut state, &q);
        }
    }
}

impl Settle for Settlement {
    fn ack(self: Box<Self>) {
        if let Some(broker) = self.broker.upgrade() {
            broker.settled(self.consumer, None);
        }
    }

    fn requeue(self: Box<Self>, message: Message, reply: Option<ReplyTo>) {
        let Some(broker) = self.broker.upgrade() else { return };
        let delivered = self.delivered + 1;
        if delivered >= MAX_DELIVERIES {
            tracing::error!(queue = %self.queue, method = %message.method, delivered, "dropping a message that every handler died on");
            if let Some(r) = reply {
                r.send(Err(RemoteError::new(
                    "MessageGivenUp",
                    format!("the message was handed out {delivered} times and no handler finished it"),
                )));
            }
            broker.settled(self.consumer, None);
            return;
        }
        let envelope = Envelope { message, reply, expires: self.expires, delivered };
        broker.settled(self.consumer, Some((self.queue.clone(), envelope)));
    }
}

impl InProcess {
    fn envelope(message: Message, reply: Option<ReplyTo>, expires: Option<Instant>) -> Envelope {
        Envelope { message, reply, expires, delivered: 0 }
    }
}

#[async_trait::async_trait]
impl Transport for InProcess {
    fn is_in_process(&self) -> bool {
        true
    }

    async fn call(&self, target: &Target, msg: Message, timeout: Duration) -> Result<Value, BusError> {
        let (tx, rx) = oneshot::channel();
        let reply = ReplyTo::new(move |r| {
            // The caller may have timed out and gone; nothing to do then.
            let _ = tx.send(r);
        });
        let expires = Instant::now() + timeout;
        self.broker.publish(&target.queue(), Self::envelope(msg, Some(reply), Some(expires)));
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(BusError::Timeout { target: target.to_string(), timeout }),
            Ok(Err(_)) => Err(BusError::NoReply { target: target.to_string() }),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(error))) => Err(BusError::Remote { target: target.to_string(), error }),
        }
    }

    async fn cast(&self, target: &Target, msg: Message) -> Result<(), BusError> {
        self.broker.publish(&target.queue(), Self::envelope(msg, None, None));
        Ok(())
    }

    async fn fanout(&self, topic: &str, msg: Message) -> Result<(), BusError> {
        let queues = self.broker.lock().fanouts.get(topic).cloned().unwrap_or_default();
        for q in queues {
            self.broker.publish(&q, Self::envelope(msg.clone(), None, None));
        }
        Ok(())
    }

    async fn listen(&self, topic: &str, server: &str, prefetch: usize) -> Result<Listener, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.broker.lock();
        state.next_id += 1;
        let id = state.next_id;
        let fanout = format!("{topic}_fanout_{id}");
        let queues = vec![topic.to_string(), Target::server(topic, server).queue(), fanout.clone()];
        for q in &queues {
            state.queues.entry(q.clone()).or_default().consumers.push(id);
        }
        state.fanouts.entry(topic.to_string()).or_default().push(fanout.clone());
        state.consumers.insert(id, Consumer { tx, queues: queues.clone(), unsettled: 0, prefetch });
        for q in &queues {
            self.broker.dispatch(&mut state, q);
        }
        drop(state);
        let broker = Arc::downgrade(&self.broker);
        let topic = topic.to_string();
        Ok(Listener::new(rx, move || {
            let Some(broker) = broker.upgrade() else { return };
            let mut state = broker.lock();
            state.consumers.remove(&id);
            // The listener's own fanout queue goes with it (exclusive and
            // auto-deleted, as oslo declares them).
            state.queues.remove(&fanout);
            if let Some(f) = state.fanouts.get_mut(&topic) {
                f.retain(|q| *q != fanout);
            }
        }))
    }
}
