//! `ferrostack bench …`: speed figures with machine-readable output. Timings are
//! measured here, never asserted in tests.

mod boot;
mod client;
mod cloud_load;
mod datapath;
mod dhcp;
mod rpc;
mod scheduler;
mod tokens;

use std::sync::Arc;
use std::time::Instant;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {
    /// Password token issue and token validation through the REST API of a fresh
    /// identity service.
    Tokens(tokens::Args),
    /// The filter scheduler alone on a workload in the shared format
    /// (hosts.json, requests.json): decisions per second and each choice.
    Scheduler(scheduler::Args),
    /// Servers booted through the REST API of a fresh all-in-one on fake
    /// hosts: submission latency, time to ACTIVE, deletes, and leaks.
    Boot(boot::Args),
    /// RPC calls and casts per second with latency percentiles, in-process
    /// and over RabbitMQ (--transport-url) in the same run.
    Rpc(rpc::Args),
    /// What a running multi-host cloud (scripts/cloud) costs to keep alive:
    /// each process's CPU and the broker's, and the broker's traffic.
    CloudLoad(cloud_load::Args),
    /// The Linux bridge datapath of a running netns cloud (`scripts/cloud up
    /// --compute-driver netns`): throughput and latency between instances
    /// on two hosts next to a hand-built path, port wiring latency, and
    /// security group update to enforcement.
    Datapath(datapath::Args),
    /// netns instances booted one after another on a running netns cloud:
    /// create to ACTIVE with their first DHCP lease, and whether each holds
    /// its port's address.
    Dhcp(dhcp::Args),
}

pub async fn run(b: Bench) -> anyhow::Result<()> {
    match b {
        Bench::Tokens(args) => tokens::run(args).await,
        Bench::Scheduler(args) => scheduler::run(args),
        Bench::Boot(args) => boot::run(args).await,
        Bench::Rpc(args) => rpc::run(args).await,
        Bench::CloudLoad(args) => cloud_load::run(args).await,
        Bench::Datapath(args) => datapath::run(args).await,
        Bench::Dhcp(args) => dhcp::run(args).await,
    }
}

/// Percentiles of latencies in microseconds, as milliseconds.
pub fn percentiles(mut micros: Vec<u64>) -> serde_json::Value {
    micros.sort_unstable();
    let at = |p: f64| -> f64 {
        if micros.is_empty() {
            return 0.0;
        }
        let i = ((micros.len() as f64 - 1.0) * p).round() as usize;
        micros[i] as f64 / 1000.0
    };
    serde_json::json!({"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0)})
}

/// Runs `n` requests, `concurrency` at a time; returns each result with its
/// latency in microseconds.
pub async fn run_concurrently<F, Fut>(n: usize, concurrency: usize, make: F) -> anyhow::Result<Vec<(String, u64)>>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<String>> + Send + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (make, next) = (make.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                let v = make(i).await?;
                out.push((i, v, t.elapsed().as_micros() as u64));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await??);
    }
    all.sort_by_key(|(i, _, _)| *i);
    Ok(all.into_iter().map(|(_, v, l)| (v, l)).collect())
}
