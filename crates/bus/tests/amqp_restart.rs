//! RabbitMQ restarts under a stream of calls: calls made while it is down
//! wait (within their timeout) and succeed once it is back, RPC resumes
//! within seconds, and casts queued before the restart are still delivered.
//! Alone in its test binary because it stops the shared broker's application.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::amqp::{Amqp, AmqpOptions};
use bus::{Bus, Message, Target};
use serde_json::json;

fn rabbitmqctl(args: &[&str]) {
    let ctl = std::env::var("FERROSTACK_TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".into());
    let out = Command::new(&ctl).args(args).output().expect("run rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn transport(url: &str, name: &str) -> Amqp {
    let options = AmqpOptions {
        control_exchange: "ferrostack-test".into(),
        connection_name: name.into(),
        retry_interval: Duration::from_millis(500),
        ..Default::default()
    };
    Amqp::connect(url, options).expect("a valid transport_url")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_survives_a_broker_restart() {
    let Some(url) = std::env::var("FERROSTACK_TEST_TRANSPORT_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: FERROSTACK_TEST_TRANSPORT_URL names no RabbitMQ (scripts/test sets it)");
        return;
    };
    let topic = format!("restart-{}", std::process::id());
    let server = Bus::new(Arc::new(transport(&url, "restart-server")));
    let client = Bus::new(Arc::new(transport(&url, "restart-client")));
    server.serve(&topic, "s1", |m: Message| async move { Ok(m.args) }).await.expect("serve");
    // Casts for a consumer that only comes after the restart.
    let parked = format!("{topic}-parked");
    for i in 0..5 {
        client.cast(&Target::topic(&parked), Message::new("later", json!(i))).await.expect("cast");
    }
    client
        .call_with_timeout(&Target::topic(&topic), Message::new("warm", json!(0)), Duration::from_secs(10))
        .await
        .expect("warm-up call");

    let stream = {
        let client = client.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..60u64 {
                let c = client.clone();
                let t = topic.clone();
                results.push(tokio::spawn(async move {
                    let sent = Instant::now();
                    let r = c
                        .call_with_timeout(&Target::topic(&t), Message::new("n", json!(i)), Duration::from_secs(40))
                        .await;
                    (sent, Instant::now(), r.map(|v| v == json!(i)))
                }));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut out = Vec::new();
            for r in results {
                out.push(r.await.expect("call task"));
            }
            out
        })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let down = Instant::now();
    rabbitmqctl(&["stop_app"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // From here on the broker is coming back.
    let back = Instant::now();
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup", "--timeout", "60"]);
    let ready = Instant::now();
    let results = stream.await.expect("stream");

    let failed: Vec<_> = results.iter().filter(|(_, _, r)| !matches!(r, Ok(true))).collect();
    // Calls that had to wait for the broker (a call normally takes milliseconds).
    let waited = results
        .iter()
        .filter(|(sent, answered, _)| answered.duration_since(*sent) > Duration::from_millis(500))
        .count();
    let first_after =
        results.iter().filter(|(_, answered, r)| *answered >= back && matches!(r, Ok(true))).map(|(_, a, _)| *a).min();
    let resumed = first_after.map(|a| a.duration_since(back));
    println!(
        "broker restart: {} calls, {} failed, {waited} waited for the broker and then succeeded; \
         RPC resumed {resumed:?} after start_app began ({:?} until rabbitmqctl called the broker ready); outage {:?}",
        results.len(),
        failed.len(),
        ready.duration_since(back),
        back.duration_since(down)
    );
    assert!(failed.is_empty(), "every call waits out the restart: {failed:?}");
    assert!(waited > 0, "some calls were made during the outage");
    assert!(resumed.is_some(), "calls are answered after the restart");

    // The casts queued before the restart are still there.
    let mut l = server.listen(&parked, "s1", 8).await.expect("listen");
    let mut got = Vec::new();
    for _ in 0..5 {
        let d = tokio::time::timeout(Duration::from_secs(10), l.next())
            .await
            .expect("a parked cast survives")
            .expect("open");
        got.push(d.message().args.as_i64().unwrap_or(-1));
        d.finish(Ok(json!(null)));
    }
    got.sort();
    assert_eq!(got, [0, 1, 2, 3, 4]);
}
