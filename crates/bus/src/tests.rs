use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::*;

#[tokio::test]
async fn the_in_process_transport_passes_the_conformance_suite() {
    conformance::run_all(Arc::new(InProcess::default())).await;
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Add {
    pub a: i64,
    pub b: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Note {
    pub text: String,
}

interface! {
    /// A small interface to test the macro with.
    pub interface Calculator {
        topic: "calculator",
        version: (1, 2),
        client: CalculatorClient,
        handler: CalculatorHandler,
        methods: {
            /// Adds two numbers.
            call add(Add) -> i64;
            cast note(Note) -> ();
            fanout announce(Note) -> ();
        }
    }
}

struct Adder {
    notes: tokio::sync::mpsc::UnboundedSender<(String, Option<String>)>,
}

impl CalculatorHandler for Adder {
    async fn add(&self, _ctx: &CallContext, args: Add) -> Result<i64, RemoteError> {
        args.a.checked_add(args.b).ok_or_else(|| RemoteError::new("Overflow", "too big"))
    }

    async fn note(&self, ctx: &CallContext, args: Note) -> Result<(), RemoteError> {
        let _ = self.notes.send((args.text, ctx.request_id.clone()));
        Ok(())
    }

    async fn announce(&self, ctx: &CallContext, args: Note) -> Result<(), RemoteError> {
        let _ = self.notes.send((format!("announced {}", args.text), ctx.request_id.clone()));
        Ok(())
    }
}

async fn calculator() -> (Bus, tokio::sync::mpsc::UnboundedReceiver<(String, Option<String>)>) {
    let bus = Bus::in_process();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    Calculator::serve(&bus, "c1", Arc::new(Adder { notes: tx }), ServeOptions::default()).await.unwrap();
    (bus, rx)
}

#[tokio::test]
async fn typed_interfaces_call_cast_and_fanout_with_the_request_id() {
    let (bus, mut notes) = calculator().await;
    let client = CalculatorClient::new(&bus).for_request(Some("req-7".to_string()));
    assert_eq!(client.add(&Add { a: 2, b: 3 }).await.unwrap(), 5);
    match client.add(&Add { a: i64::MAX, b: 1 }).await {
        Err(BusError::Remote { error, .. }) => assert_eq!(error.kind, "Overflow"),
        other => panic!("{other:?}"),
    }
    client.note(&Note { text: "hello".into() }).await.unwrap();
    assert_eq!(notes.recv().await.unwrap(), ("hello".to_string(), Some("req-7".to_string())));
    CalculatorClient::to_server(&bus, "c1").announce(&Note { text: "all".into() }).await.unwrap();
    assert_eq!(notes.recv().await.unwrap().0, "announced all");
    assert_eq!(Calculator::METHODS, ["add", "note", "announce"]);
}

#[tokio::test]
async fn unknown_methods_bad_arguments_and_newer_versions_are_errors_the_caller_sees() {
    let (bus, _notes) = calculator().await;
    let target = Target::topic(Calculator::TOPIC);
    let ask = |m: Message| {
        let bus = bus.clone();
        let target = target.clone();
        async move { bus.call_with_timeout(&target, m, Duration::from_secs(5)).await }
    };
    let kind = |r: Result<serde_json::Value, BusError>| match r {
        Err(BusError::Remote { error, .. }) => error.kind,
        other => format!("not a remote error: {other:?}"),
    };
    let v = Version::new(1, 0);
    assert_eq!(kind(ask(Message::new("multiply", json!({})).with_version(v)).await), "UnknownMethod");
    assert_eq!(kind(ask(Message::new("add", json!({"a": "x"})).with_version(v)).await), "BadArguments");
    let newer = Message::new("add", json!({"a": 1, "b": 1})).with_version(Version::new(1, 3));
    assert_eq!(kind(ask(newer).await), "UnsupportedVersion");
    let other_major = Message::new("add", json!({"a": 1, "b": 1})).with_version(Version::new(2, 0));
    assert_eq!(kind(ask(other_major).await), "UnsupportedVersion");
    let older = Message::new("add", json!({"a": 1, "b": 1})).with_version(Version::new(1, 1));
    assert_eq!(ask(older).await.unwrap(), json!(2));
}

#[tokio::test]
async fn serving_is_bounded_by_its_concurrency() {
    let bus = Bus::in_process();
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (b, p) = (busy.clone(), peak.clone());
    bus.serve_with("slow", "s1", ServeOptions { concurrency: 3 }, move |_m: Message| {
        let (b, p) = (b.clone(), p.clone());
        async move {
            let now = b.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            p.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            b.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            Ok(serde_json::Value::Null)
        }
    })
    .await
    .unwrap();
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let bus = bus.clone();
            tokio::spawn(async move { bus.call(&Target::topic("slow"), Message::new("x", json!(null))).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn transport_urls_choose_the_transport() {
    let options = amqp::AmqpOptions::default;
    assert!(Bus::from_url("", options()).is_ok());
    assert!(Bus::from_url("in-process://", options()).is_ok());
    assert!(Bus::from_url("kafka://x", options()).is_err());
    assert!(Bus::from_url("rabbit://", options()).is_err(), "a rabbit:// URL names a broker");
}
