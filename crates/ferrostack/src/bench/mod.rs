//! `ferrostack bench …`: speed figures with machine-readable output. Timings are
//! measured here, never asserted in tests.

mod scheduler;
mod tokens;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {
    /// Password token issue and token validation through the REST API of a fresh
    /// identity service.
    Tokens(tokens::Args),
    /// The filter scheduler alone on a workload in the shared format
    /// (hosts.json, requests.json): decisions per second and each choice.
    Scheduler(scheduler::Args),
}

pub async fn run(b: Bench) -> anyhow::Result<()> {
    match b {
        Bench::Tokens(args) => tokens::run(args).await,
        Bench::Scheduler(args) => scheduler::run(args),
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
