//! What every [`Transport`] must do, as checks any transport's tests run:
//! the in-process one here, the AMQP one against a real RabbitMQ. Each check
//! uses topics of its own, so one transport can run them all, in any order.
//!
//! - a call gets its server's answer or its error, and times out when nobody answers;
//! - a cast waits in its queue until a consumer comes, and reaches one consumer;
//! - a fanout reaches every consumer of the topic;
//! - a message whose handler died (its delivery dropped unsettled) is delivered
//!   again, to the same consumer or another;
//! - one server receives its messages in the order they were sent, and never
//!   more unsettled at once than it asked for.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{Bus, BusError, Message, RemoteError, Reply, ServeOptions, Target, Transport};

/// Long enough for a real broker on a loaded machine; checks that expect
/// nothing to arrive wait this long.
const QUIET: Duration = Duration::from_millis(300);
const PATIENCE: Duration = Duration::from_secs(10);

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A topic no other check uses.
fn topic(name: &str) -> String {
    format!("conformance-{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn echo(msg: Message) -> Reply {
    match msg.method.as_str() {
        "echo" => Ok(msg.args),
        "fail" => Err(RemoteError::new("Boom", "asked to fail")),
        _ => Err(RemoteError::new("UnknownMethod", msg.method)),
    }
}

/// Every check, one after the other.
pub async fn run_all(transport: Arc<dyn Transport>) {
    call_answers_and_carries_errors(transport.clone()).await;
    call_times_out_when_nobody_answers(transport.clone()).await;
    cast_waits_for_a_consumer(transport.clone()).await;
    casts_spread_over_servers_and_direct_ones_reach_one(transport.clone()).await;
    fanout_reaches_every_consumer(transport.clone()).await;
    a_dropped_delivery_is_delivered_again(transport.clone()).await;
    a_call_whose_handler_panics_is_answered_by_the_retry(transport.clone()).await;
    a_gone_consumer_hands_its_messages_on(transport.clone()).await;
    one_server_gets_its_messages_in_order(transport.clone()).await;
    prefetch_bounds_what_a_consumer_holds(transport).await;
}

pub async fn call_answers_and_carries_errors(transport: Arc<dyn Transport>) {
    let bus = Bus::new(transport);
    let t = topic("call");
    bus.serve(&t, "s1", echo).await.expect("serve");
    let target = Target::topic(&t);
    let got = bus.call_with_timeout(&target, Message::new("echo", json!({"x": 1})), PATIENCE).await.expect("call");
    assert_eq!(got, json!({"x": 1}));
    match bus.call_with_timeout(&target, Message::new("fail", Value::Null), PATIENCE).await {
        Err(BusError::Remote { error, .. }) => assert_eq!(error.kind, "Boom"),
        other => panic!("a failing handler's error should come back, not {other:?}"),
    }
}

pub async fn call_times_out_when_nobody_answers(transport: Arc<dyn Transport>) {
    let bus = Bus::new(transport);
    let nobody = Target::topic(topic("nobody"));
    let r = bus.call_with_timeout(&nobody, Message::new("echo", Value::Null), QUIET).await;
    assert!(matches!(r, Err(BusError::Timeout { .. })), "a call nobody consumes times out: {r:?}");
    // A consumer that takes the call and never answers.
    let t = topic("silent");
    let mut silent = bus.listen(&t, "s1", 1).await.expect("listen");
    let held = tokio::spawn(async move {
        let d = silent.next().await;
        tokio::time::sleep(QUIET * 3).await;
        drop((d, silent));
    });
    let r = bus.call_with_timeout(&Target::topic(&t), Message::new("x", Value::Null), QUIET).await;
    assert!(matches!(r, Err(BusError::Timeout { .. })), "{r:?}");
    let _ = held.await;
}

pub async fn cast_waits_for_a_consumer(transport: Arc<dyn Transport>) {
    let bus = Bus::new(transport);
    let t = topic("early");
    // Sent before anyone listens, as a conductor resumed before its hosts.
    bus.cast(&Target::server(&t, "late"), Message::new("first", json!(1))).await.expect("cast");
    bus.cast(&Target::topic(&t), Message::new("second", json!(2))).await.expect("cast");
    let mut late = bus.listen(&t, "late", 8).await.expect("listen");
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = tokio::time::timeout(PATIENCE, late.next()).await.expect("queued casts arrive").expect("delivery");
        got.push(d.message().method.clone());
        d.finish(Ok(Value::Null));
    }
    got.sort();
    assert_eq!(got, ["first", "second"]);
}

pub async fn casts_spread_over_servers_and_direct_ones_reach_one(transport: Arc<dyn Transport>) {
    let bus = Bus::new(transport);
    let t = topic("spread");
    let counts: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    for (i, name) in ["a", "b"].iter().enumerate() {
        let counts = counts.clone();
        bus.serve(&t, name, move |m: Message| {
            let counts = counts.clone();
            async move {
                counts[i].fetch_add(1, Ordering::SeqCst);
                Ok(json!({"server": i, "method": m.method}))
            }
        })
        .await
        .expect("serve");
    }
    for _ in 0..10 {
        bus.call_with_timeout(&Target::topic(&t), Message::new("n", Value::Null), PATIENCE).await.expect("call");
    }
    let (a, b) = (counts[0].load(Ordering::SeqCst), counts[1].load(Ordering::SeqCst));
    assert_eq!(a + b, 10);
    assert!(a > 0 && b > 0, "both servers of the topic take work: {a} and {b}");
    for _ in 0..3 {
        let got = bus
            .call_with_timeout(&Target::server(&t, "b"), Message::new("n", Value::Null), PATIENCE)
            .await
            .expect("call");
        assert_eq!(got["server"], 1, "a direct call reaches its server only");
    }
}

pub async fn fanout_reaches_every_consumer(transport: Arc<dyn Transport>) {
    let bus = Bus::new(transport);
    let t = topic("fanout");
    let mut a = bus.listen(&t, "a", 8).await.expect("listen");
    let mut b = bus.listen(&t, "b", 8).await.expect("listen");
    let msg = Message::new("port_update", json!({"id": "p"})).with_request_id(Some("req-1".into()));
    bus.fanout(&t, msg.clone()).await.expect("fanout");
    for l in [&mut a, &mut b] {
        let d = tokio::time::timeout(PATIENCE, l.next()).await.expect("fanout arrives").expect("delivery");
        assert_eq!(d.message().method, msg.method);
        assert_eq!(d.message().request_id, msg.request_id, "the request id travels with the message");
        d.finish(Ok(Value::Null));
    }
    bus.fanout(&topic("empty"), msg).await.expect("a fanout nobody hears is not an error");
}

pub async fn a_dropped_delivery_is_delivered_again(transport: Arc<dyn Transport>) {
    let bus = Bus::new(transport);
    let t = topic("redeliver");
    let mut l = bus.listen(&t, "s1", 1).await.expect("listen");
    bus.cast(&Target::topic(&t), Message::new("work", json!(7))).await.expect("cast");
    let first = tokio::time::timeout(PATIENCE, l.next()).await.expect("delivered").expect("delivery");
    assert_eq!(first.redelivered(), 0);
    // The handler dies: the delivery is dropped without being settled.
    drop(first);
    let again = tokio::time::timeout(PATIENCE, l.next()).await.expect("delivered again").expect("delivery");
    assert_eq!(again.message().args, json!(7));
    assert!(again.redelivered() >= 1, "the second delivery knows it is one");
    again.finish(Ok(Value::Null));
    let none = tokio::time::timeout(QUIET, l.next()).await;
    assert!(none.is_err(), "a settled message is not delivered again");
}

pub async fn a_call_whose_handler_panics_is_answered_by_the_retry(transport: Arc<dyn Transport>) {
    let bus = Bus::new(transport);
    let t = topic("panic");
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    bus.serve(&t, "s1", move |_m: Message| {
        let seen = seen.clone();
        async move {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a handler that dies on its first try");
            }
            Ok(json!("done"))
        }
    })
    .await
    .expect("serve");
    let got = bus.call_with_timeout(&Target::topic(&t), Message::new("x", Value::Null), PATIENCE).await;
    assert_eq!(got.expect("the retried call answers"), json!("done"));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}

pub async fn a_gone_consumer_hands_its_messages_on(transport: Arc<dyn Transport>) {
    let bus = Bus::new(transport);
    let t = topic("handover");
    let mut a = bus.listen(&t, "a", 4).await.expect("listen");
    for i in 0..3 {
        bus.cast(&Target::topic(&t), Message::new("m", json!(i))).await.expect("cast");
    }
    // `a` holds what it was given without settling any of it, then goes.
    let d = tokio::time::timeout(PATIENCE, a.next()).await.expect("delivered").expect("delivery");
    drop(a);
    drop(d);
    let mut b = bus.listen(&t, "b", 4).await.expect("listen");
    let mut got = Vec::new();
    for _ in 0..3 {
        let d = tokio::time::timeout(PATIENCE, b.next()).await.expect("handed on").expect("delivery");
        got.push(d.message().args.as_i64().unwrap_or(-1));
        d.finish(Ok(Value::Null));
    }
    got.sort();
    assert_eq!(got, [0, 1, 2]);
}

pub async fn one_server_gets_its_messages_in_order(transport: Arc<dyn Transport>) {
    let bus = Bus::new(transport);
    let t = topic("order");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    bus.serve_with(&t, "s1", ServeOptions { concurrency: 1 }, move |m: Message| {
        let log = log.clone();
        async move {
            log.lock().unwrap_or_else(|p| p.into_inner()).push(m.args.as_i64().unwrap_or(-1));
            Ok(Value::Null)
        }
    })
    .await
    .expect("serve");
    for i in 0..50 {
        bus.cast(&Target::server(&t, "s1"), Message::new("n", json!(i))).await.expect("cast");
    }
    let done = bus.call_with_timeout(&Target::server(&t, "s1"), Message::new("n", json!(50)), PATIENCE).await;
    done.expect("the last call is answered after the casts before it");
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(seen, (0..=50).collect::<Vec<i64>>());
}

pub async fn prefetch_bounds_what_a_consumer_holds(transport: Arc<dyn Transport>) {
    let bus = Bus::new(transport);
    let t = topic("prefetch");
    let mut l = bus.listen(&t, "s1", 2).await.expect("listen");
    for i in 0..4 {
        bus.cast(&Target::topic(&t), Message::new("m", json!(i))).await.expect("cast");
    }
    let one = tokio::time::timeout(PATIENCE, l.next()).await.expect("first").expect("delivery");
    let two = tokio::time::timeout(PATIENCE, l.next()).await.expect("second").expect("delivery");
    assert!(tokio::time::timeout(QUIET, l.next()).await.is_err(), "no third before one is settled");
    one.finish(Ok(Value::Null));
    let three = tokio::time::timeout(PATIENCE, l.next()).await.expect("third once there is room").expect("delivery");
    two.finish(Ok(Value::Null));
    three.finish(Ok(Value::Null));
}
