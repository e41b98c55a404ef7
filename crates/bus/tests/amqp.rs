//! The AMQP transport against a real RabbitMQ: the same conformance suite
//! as the in-process bus, and two transports (two "processes") talking.
//! `scripts/test` starts the broker and sets FERROSTACK_TEST_TRANSPORT_URL to
//! a virtual host of its own.

use std::sync::Arc;
use std::time::Duration;

use bus::amqp::{Amqp, AmqpOptions};
use bus::{conformance, Bus, Message, Target};
use serde_json::json;

fn broker() -> Option<String> {
    let url = std::env::var("FERROSTACK_TEST_TRANSPORT_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("skipped: FERROSTACK_TEST_TRANSPORT_URL names no RabbitMQ (scripts/test sets it)");
    }
    url
}

fn transport(url: &str, name: &str) -> Amqp {
    let options =
        AmqpOptions { control_exchange: "ferrostack-test".into(), connection_name: name.into(), ..Default::default() };
    Amqp::connect(url, options).expect("a valid transport_url")
}

#[tokio::test]
async fn the_amqp_transport_passes_the_conformance_suite() {
    let Some(url) = broker() else { return };
    conformance::run_all(Arc::new(transport(&url, "conformance"))).await;
}

#[tokio::test]
async fn two_connections_call_cast_and_fan_out_to_each_other() {
    let Some(url) = broker() else { return };
    let server = Bus::new(Arc::new(transport(&url, "server")));
    let client = Bus::new(Arc::new(transport(&url, "client")));
    let topic = format!("two-{}", std::process::id());
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    server
        .serve(&topic, "host-1", move |m: Message| {
            let seen_tx = seen_tx.clone();
            async move {
                let _ = seen_tx.send(m.method.clone());
                Ok(json!({"method": m.method, "args": m.args, "request_id": m.request_id}))
            }
        })
        .await
        .expect("serve");
    let msg = Message::new("ping", json!([1, 2])).with_request_id(Some("req-abc".into()));
    let got =
        client.call_with_timeout(&Target::server(&topic, "host-1"), msg, Duration::from_secs(10)).await.expect("call");
    assert_eq!(got, json!({"method": "ping", "args": [1, 2], "request_id": "req-abc"}));
    client.cast(&Target::topic(&topic), Message::new("cast", json!(null))).await.expect("cast");
    client.fanout(&topic, Message::new("fan", json!(null))).await.expect("fanout");
    let mut methods = Vec::new();
    for _ in 0..3 {
        methods.push(tokio::time::timeout(Duration::from_secs(10), seen.recv()).await.expect("arrives").expect("open"));
    }
    methods.sort();
    assert_eq!(methods, ["cast", "fan", "ping"]);
}

#[tokio::test]
async fn a_broker_that_cannot_be_reached_makes_calls_time_out_not_fail_at_once() {
    // Nothing listens on port 1: the call waits out its timeout.
    let t = transport("rabbit://guest:guest@127.0.0.1:1/", "unreachable");
    let bus = Bus::new(Arc::new(t));
    let started = std::time::Instant::now();
    let r =
        bus.call_with_timeout(&Target::topic("x"), Message::new("m", json!(null)), Duration::from_millis(700)).await;
    assert!(matches!(r, Err(bus::BusError::Timeout { .. })), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(650), "it waited for the broker");
}
