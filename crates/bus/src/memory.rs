//! The in-process transport: every listener is a channel in a shared table. Calls
//! and casts to a topic go round-robin over its servers; to `topic.server`, to that
//! server; fanouts to all servers of the topic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::{BusError, Incoming, Listener, Message, Target, Transport};

/// Messages a slow server may have queued before senders wait.
const QUEUE_DEPTH: usize = 1024;

#[derive(Default)]
pub struct InProcess {
    topics: Mutex<HashMap<String, TopicServers>>,
}

#[derive(Default)]
struct TopicServers {
    servers: Vec<(String, mpsc::Sender<Incoming>)>,
    next: usize,
}

impl InProcess {
    /// The channel for `target`, dropping servers whose listener has gone.
    fn route(&self, target: &Target) -> Result<mpsc::Sender<Incoming>, BusError> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let none = || BusError::NoListener(target.to_string());
        let entry = topics.get_mut(&target.topic).ok_or_else(none)?;
        entry.servers.retain(|(_, tx)| !tx.is_closed());
        match &target.server {
            Some(name) => entry.servers.iter().find(|(s, _)| s == name).map(|(_, tx)| tx.clone()).ok_or_else(none),
            None => {
                if entry.servers.is_empty() {
                    return Err(none());
                }
                entry.next = (entry.next + 1) % entry.servers.len();
                Ok(entry.servers[entry.next].1.clone())
            }
        }
    }

    fn all(&self, topic: &str) -> Vec<mpsc::Sender<Incoming>> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        match topics.get_mut(topic) {
            Some(entry) => {
                entry.servers.retain(|(_, tx)| !tx.is_closed());
                entry.servers.iter().map(|(_, tx)| tx.clone()).collect()
            }
            None => Vec::new(),
        }
    }
}

#[async_trait::async_trait]
impl Transport for InProcess {
    async fn call(&self, target: &Target, msg: Message, timeout: Duration) -> Result<Value, BusError> {
        let tx = self.route(target)?;
        let (reply_tx, reply_rx) = oneshot::channel();
        tx.send(Incoming::new(msg, Some(reply_tx))).await.map_err(|_| BusError::NoListener(target.to_string()))?;
        match tokio::time::timeout(timeout, reply_rx).await {
            Err(_) => Err(BusError::Timeout { target: target.to_string(), timeout }),
            Ok(Err(_)) => Err(BusError::NoReply { target: target.to_string() }),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(error))) => Err(BusError::Remote { target: target.to_string(), error }),
        }
    }

    async fn cast(&self, target: &Target, msg: Message) -> Result<(), BusError> {
        let tx = self.route(target)?;
        tx.send(Incoming::new(msg, None)).await.map_err(|_| BusError::NoListener(target.to_string()))
    }

    async fn fanout(&self, topic: &str, msg: Message) -> Result<(), BusError> {
        // Like an AMQP fanout exchange: nobody listening is not an error.
        for tx in self.all(topic) {
            let _ = tx.send(Incoming::new(msg.clone(), None)).await;
        }
        Ok(())
    }

    async fn listen(&self, topic: &str, server: &str) -> Result<Listener, BusError> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        let entry = topics.entry(topic.to_string()).or_default();
        entry.servers.retain(|(s, t)| !t.is_closed() && s != server);
        entry.servers.push((server.to_string(), tx));
        Ok(Listener::new(rx))
    }
}
