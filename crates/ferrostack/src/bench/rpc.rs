//! `ferrostack bench rpc`: calls and casts per second, with latency
//! percentiles, over the in-process bus and (given a transport_url) over
//! RabbitMQ, in the same run. The server and the client hold separate
//! connections, as two processes would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::amqp::{Amqp, AmqpOptions};
use bus::{Bus, InProcess, Message, Target, Transport};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A RabbitMQ to measure beside the in-process bus, e.g.
    /// rabbit://ferrostack:secret@127.0.0.1:5672/
    #[arg(long)]
    pub transport_url: Option<String>,
    /// Calls to make (and as many casts).
    #[arg(long, default_value_t = 20000)]
    pub messages: usize,
    /// Calls or casts in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut results = serde_json::Map::new();
    let memory: Arc<dyn Transport> = Arc::new(InProcess::default());
    results.insert("in_process".into(), measure(memory.clone(), memory, &args).await?);
    if let Some(url) = &args.transport_url {
        let options = |name: &str| AmqpOptions {
            control_exchange: "ferrostack-bench".into(),
            connection_name: format!("ferrostack-bench-{name}"),
            ..Default::default()
        };
        let server: Arc<dyn Transport> = Arc::new(Amqp::connect(url, options("server"))?);
        let client: Arc<dyn Transport> = Arc::new(Amqp::connect(url, options("client"))?);
        results.insert("rabbitmq".into(), measure(server, client, &args).await?);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({"bench": "rpc", "messages": args.messages, "concurrency": args.concurrency, "results": results})
        )?
    );
    Ok(())
}

async fn measure(
    server: Arc<dyn Transport>,
    client: Arc<dyn Transport>,
    args: &Args,
) -> anyhow::Result<serde_json::Value> {
    let topic = format!("bench-rpc-{}", std::process::id());
    let server = Bus::new(server);
    let client = Bus::new(client).with_default_timeout(Duration::from_secs(60));
    let casts_seen = Arc::new(AtomicUsize::new(0));
    let seen = casts_seen.clone();
    server
        .serve(&topic, "bench", move |m: Message| {
            let seen = seen.clone();
            async move {
                if m.method == "cast" {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                Ok(m.args)
            }
        })
        .await?;
    // Warm up: the queues are declared and the connections up.
    client.call(&Target::topic(&topic), Message::new("call", json!(0))).await?;

    let target = Target::topic(&topic);
    let started = Instant::now();
    let calls = {
        let (client, target) = (client.clone(), target.clone());
        super::run_concurrently(args.messages, args.concurrency, move |i| {
            let (client, target) = (client.clone(), target.clone());
            async move {
                let payload = json!({"instance_uuid": "8c4cb6b8-4c5d-4e3c-9d0f-8f3c2b7f2a11", "n": i});
                client.call(&target, Message::new("call", payload)).await?;
                Ok(String::new())
            }
        })
        .await?
    };
    let call_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let casts = {
        let (client, target) = (client.clone(), target.clone());
        super::run_concurrently(args.messages, args.concurrency, move |i| {
            let (client, target) = (client.clone(), target.clone());
            async move {
                client.cast(&target, Message::new("cast", json!({"n": i}))).await?;
                Ok(String::new())
            }
        })
        .await?
    };
    let sent_seconds = started.elapsed().as_secs_f64();
    while casts_seen.load(Ordering::Relaxed) < args.messages {
        if started.elapsed() > Duration::from_secs(300) {
            anyhow::bail!("only {} of {} casts arrived", casts_seen.load(Ordering::Relaxed), args.messages);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let delivered_seconds = started.elapsed().as_secs_f64();
    let n = args.messages as f64;
    Ok(json!({
        "calls_per_s": (n / call_seconds).round(),
        "call_latency_ms": super::percentiles(calls.into_iter().map(|(_, l)| l).collect()),
        "casts_sent_per_s": (n / sent_seconds).round(),
        "casts_delivered_per_s": (n / delivered_seconds).round(),
        "cast_send_latency_ms": super::percentiles(casts.into_iter().map(|(_, l)| l).collect()),
    }))
}
