//! What a transport provides, and the delivery of one message to a consumer:
//! it is settled exactly once — acknowledged when its handler finished, or
//! handed back to its queue when the delivery is dropped unsettled (the
//! handler's task died, the consumer went away), so it reaches a consumer again.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::{BusError, Message, Reply, Target};

/// Deliveries of one message before it is given up as one that kills every
/// handler it reaches.
pub(crate) const MAX_DELIVERIES: u32 = 5;

/// What carries messages between processes (or within one).
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends to one consumer of `target` and waits up to `timeout` for its
    /// answer. A queue nobody consumes holds the call until it expires.
    async fn call(&self, target: &Target, msg: Message, timeout: Duration) -> Result<Value, BusError>;
    /// Sends to one consumer of `target`; the message waits in the queue
    /// until there is one.
    async fn cast(&self, target: &Target, msg: Message) -> Result<(), BusError>;
    /// Sends to every consumer of `topic` listening now (nobody is fine).
    async fn fanout(&self, topic: &str, msg: Message) -> Result<(), BusError>;
    /// Consumes, as `server`, the queues `topic` and `topic.server` and the
    /// fanouts of `topic`, with at most `prefetch` messages unsettled.
    async fn listen(&self, topic: &str, server: &str, prefetch: usize) -> Result<Listener, BusError>;
    /// Whether only this process can be reached (no broker).
    fn is_in_process(&self) -> bool {
        false
    }
}

/// Where a call's answer goes.
pub struct ReplyTo(Box<dyn FnOnce(Reply) + Send>);

impl ReplyTo {
    pub fn new(send: impl FnOnce(Reply) + Send + 'static) -> Self {
        ReplyTo(Box::new(send))
    }

    pub fn send(self, reply: Reply) {
        (self.0)(reply)
    }
}

impl std::fmt::Debug for ReplyTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyTo")
    }
}

/// How a transport learns what became of a delivery.
pub trait Settle: Send {
    /// The handler finished: the message is gone for good.
    fn ack(self: Box<Self>);
    /// The message was not handled: it goes back to its queue, with its
    /// reply address.
    fn requeue(self: Box<Self>, message: Message, reply: Option<ReplyTo>);
}

/// One message handed to one consumer.
pub struct Delivery {
    message: Option<Message>,
    reply: Option<ReplyTo>,
    redelivered: u32,
    settle: Option<Box<dyn Settle>>,
}

impl Delivery {
    pub fn new(message: Message, reply: Option<ReplyTo>, redelivered: u32, settle: Box<dyn Settle>) -> Self {
        Delivery { message: Some(message), reply, redelivered, settle: Some(settle) }
    }

    pub fn message(&self) -> &Message {
        // Only `finish` and `into_parts` take the message, and both consume self.
        self.message.as_ref().expect("a delivery holds its message until settled")
    }

    /// Whether the sender waits for an answer.
    pub fn is_call(&self) -> bool {
        self.reply.is_some()
    }

    /// How many times this message was delivered before.
    pub fn redelivered(&self) -> u32 {
        self.redelivered
    }

    /// Answers a call (a cast's answer is dropped) and acknowledges.
    pub fn finish(mut self, reply: Reply) {
        if let Some(to) = self.reply.take() {
            to.send(reply);
        }
        self.message = None;
        if let Some(s) = self.settle.take() {
            s.ack();
        }
    }

    /// Disarms the delivery and gives back what it carries (for a transport
    /// that could not hand it over after all).
    pub fn into_parts(mut self) -> (Message, Option<ReplyTo>, u32) {
        self.settle = None;
        let message = self.message.take().expect("an unsettled delivery holds its message");
        (message, self.reply.take(), self.redelivered)
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let (Some(settle), Some(message)) = (self.settle.take(), self.message.take()) {
            settle.requeue(message, self.reply.take());
        }
    }
}

/// The deliveries of one consumer, in arrival order.
pub struct Listener {
    rx: mpsc::UnboundedReceiver<Delivery>,
    /// Runs when the listener goes: the transport forgets the consumer
    /// before its undelivered messages are handed back.
    on_drop: Option<Box<dyn FnOnce() + Send>>,
}

impl Listener {
    pub fn new(rx: mpsc::UnboundedReceiver<Delivery>, on_drop: impl FnOnce() + Send + 'static) -> Self {
        Listener { rx, on_drop: Some(Box::new(on_drop)) }
    }

    /// The next delivery, or `None` once the transport is gone.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
        // What is still buffered goes back to its queues as `rx` drops.
        self.rx.close();
        while let Ok(d) = self.rx.try_recv() {
            drop(d);
        }
    }
}
