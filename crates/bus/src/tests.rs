use std::time::Duration;

use serde_json::json;

use super::*;

async fn echo(msg: Message) -> Reply {
    match msg.method.as_str() {
        "echo" => Ok(msg.args),
        "fail" => Err(RemoteError::new("Boom", "asked to fail")),
        _ => Err(RemoteError::new("UnknownMethod", msg.method)),
    }
}

#[tokio::test]
async fn call_returns_the_servers_answer_or_its_error() {
    let bus = Bus::in_process();
    bus.serve("conductor", "host1", echo).await.unwrap();
    let t = Target::topic("conductor");
    let got = bus.call(&t, Message::new("echo", json!({"x": 1}))).await.unwrap();
    assert_eq!(got, json!({"x": 1}));
    match bus.call(&t, Message::new("fail", json!(null))).await {
        Err(BusError::Remote { error, .. }) => assert_eq!(error.kind, "Boom"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn call_without_a_server_fails_and_a_silent_server_times_out() {
    let bus = Bus::in_process();
    let t = Target::topic("nobody");
    assert!(matches!(bus.call(&t, Message::new("echo", json!(null))).await, Err(BusError::NoListener(_))));
    // A listener that never answers.
    let _listener = bus.listen("slow", "h").await.unwrap();
    let r =
        bus.call_with_timeout(&Target::topic("slow"), Message::new("x", json!(null)), Duration::from_millis(20)).await;
    assert!(matches!(r, Err(BusError::Timeout { .. })), "{r:?}");
}

#[tokio::test]
async fn casts_spread_over_servers_and_direct_targets_reach_one() {
    let bus = Bus::in_process();
    let mut a = bus.listen("compute", "a").await.unwrap();
    let mut b = bus.listen("compute", "b").await.unwrap();
    for i in 0..4 {
        bus.cast(&Target::topic("compute"), Message::new("n", json!(i))).await.unwrap();
    }
    for _ in 0..2 {
        assert!(!a.next().await.unwrap().is_call());
        b.next().await.unwrap();
    }
    bus.cast(&Target::server("compute", "b"), Message::new("only-b", json!(null))).await.unwrap();
    assert_eq!(b.next().await.unwrap().message.method, "only-b");
    assert!(matches!(
        bus.cast(&Target::server("compute", "zz"), Message::new("x", json!(null))).await,
        Err(BusError::NoListener(_))
    ));
}

#[tokio::test]
async fn fanout_reaches_every_server_and_carries_the_request_id() {
    let bus = Bus::in_process();
    let mut a = bus.listen("agents", "a").await.unwrap();
    let mut b = bus.listen("agents", "b").await.unwrap();
    let msg = Message::new("port_update", json!({"id": "p"})).with_request_id(Some("req-1".into()));
    bus.fanout("agents", msg.clone()).await.unwrap();
    assert_eq!(a.next().await.unwrap().message, msg);
    assert_eq!(b.next().await.unwrap().message, msg);
    // Fanout to a topic nobody serves is not an error.
    bus.fanout("empty", msg).await.unwrap();
}

#[tokio::test]
async fn a_gone_listener_is_forgotten() {
    let bus = Bus::in_process();
    drop(bus.listen("t", "a").await.unwrap());
    let mut b = bus.listen("t", "b").await.unwrap();
    bus.cast(&Target::topic("t"), Message::new("m", json!(null))).await.unwrap();
    assert_eq!(b.next().await.unwrap().message.method, "m");
}
