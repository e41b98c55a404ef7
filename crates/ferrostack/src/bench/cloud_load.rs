//! `ferrostack bench cloud-load --state-dir DIR`: what a running multi-host
//! cloud (`scripts/cloud up`) costs while it only keeps itself alive — the
//! hosts heartbeating and reporting, the agents reporting — over a window:
//! the CPU of each of its processes and of the broker, and the broker's
//! traffic (AMQP frames in and out, from `rabbitmqctl list_connections`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The cloud's state directory (its `pids/` name the processes).
    #[arg(long)]
    state_dir: PathBuf,
    /// Seconds to measure over.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

/// User plus system CPU of `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The cloud's processes by name, from `DIR/pids/NAME.pid`.
fn processes(state: &Path) -> anyhow::Result<BTreeMap<String, u32>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(state.join("pids")).with_context(|| format!("{}/pids", state.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().trim_end_matches(".pid").to_string();
        if let Ok(pid) = std::fs::read_to_string(e.path())?.trim().parse() {
            out.insert(name, pid);
        }
    }
    if out.is_empty() {
        bail!("no processes in {}/pids: is the cloud up?", state.display());
    }
    Ok(out)
}

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("rabbitmqctl").args(args).output().context("running rabbitmqctl")?;
    if !out.status.success() {
        bail!("rabbitmqctl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The broker's OS process.
fn broker_pid() -> anyhow::Result<u32> {
    let out = rabbitmqctl(&["-q", "eval", "os:getpid()."])?;
    out.trim().trim_matches('"').parse().context("the broker's pid")
}

/// AMQP frames the broker has received and sent on every open connection.
fn broker_frames() -> anyhow::Result<(u64, u64)> {
    let out = rabbitmqctl(&["-q", "list_connections", "recv_cnt", "send_cnt"])?;
    let mut totals = (0, 0);
    for line in out.lines() {
        let mut cols = line.split_whitespace().filter_map(|c| c.parse::<u64>().ok());
        if let (Some(r), Some(s)) = (cols.next(), cols.next()) {
            totals.0 += r;
            totals.1 += s;
        }
    }
    Ok(totals)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let procs = processes(&args.state_dir)?;
    let broker = broker_pid()?;
    let ticks = clock_ticks_per_second();
    let sample = || -> BTreeMap<String, Option<u64>> {
        let mut m: BTreeMap<String, Option<u64>> = procs.iter().map(|(n, p)| (n.clone(), cpu_ticks(*p))).collect();
        m.insert("rabbitmq".into(), cpu_ticks(broker));
        m
    };
    let (before, frames_before, started) = (sample(), broker_frames()?, Instant::now());
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let (after, frames_after) = (sample(), broker_frames()?);
    let secs = started.elapsed().as_secs_f64();

    // CPU as a share of one core; the compute hosts and agents also summed.
    let mut cpu = serde_json::Map::new();
    let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
    for (name, b) in &before {
        let (Some(b), Some(Some(a))) = (b, after.get(name)) else { continue };
        let share = (a.saturating_sub(*b)) as f64 / ticks / secs * 100.0;
        cpu.insert(name.clone(), json!((share * 10.0).round() / 10.0));
        let group = if name.ends_with("-compute") {
            "all compute processes"
        } else if name.ends_with("-agent") {
            "all agents"
        } else {
            continue;
        };
        *sums.entry(group).or_default() += share;
    }
    for (group, share) in sums {
        cpu.insert(group.into(), json!((share * 10.0).round() / 10.0));
    }
    let out = json!({
        "benchmark": "cloud-load",
        "seconds": secs,
        "processes": procs.len(),
        "cpu_percent_of_one_core": cpu,
        "broker_frames_per_second": {
            "received": (frames_after.0.saturating_sub(frames_before.0)) as f64 / secs,
            "sent": (frames_after.1.saturating_sub(frames_before.1)) as f64 / secs,
        },
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
