//! `ferrostack bench scheduler --hosts H.json --requests R.json`: the filter
//! scheduler alone on a shared workload (`../shared/bench/scheduler.md`), one
//! decision per request in file order, printing the format's JSON.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use compute::scheduler::{FlavorSpec, GroupSpec, HostState, RequestSpec, Scheduler, SchedulerOptions};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// hosts.json: the inventory and the scheduler configuration.
    #[arg(long)]
    hosts: PathBuf,
    /// requests.json: server groups and the request stream.
    #[arg(long)]
    requests: PathBuf,
}

#[derive(Deserialize)]
struct HostsFile {
    config: WorkloadConfig,
    hosts: Vec<HostState>,
}

#[derive(Deserialize)]
struct WorkloadConfig {
    enabled_filters: Vec<String>,
    #[serde(default)]
    weighers: HashMap<String, f64>,
    cpu_allocation_ratio: f64,
    ram_allocation_ratio: f64,
    disk_allocation_ratio: f64,
    #[serde(default = "one")]
    host_subset_size: usize,
}

fn one() -> usize {
    1
}

#[derive(Deserialize)]
struct RequestsFile {
    #[serde(default)]
    groups: Vec<GroupSpec>,
    requests: Vec<Request>,
}

#[derive(Deserialize)]
struct Request {
    instance_uuid: String,
    flavor: FlavorSpec,
    #[serde(default)]
    image: ImageSpec,
    availability_zone: Option<String>,
    group: Option<String>,
}

#[derive(Deserialize, Default)]
struct ImageSpec {
    #[serde(default)]
    properties: HashMap<String, Value>,
}

fn read<T: serde::de::DeserializeOwned>(path: &PathBuf) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let HostsFile { config, mut hosts } = read(&args.hosts)?;
    let RequestsFile { groups, requests } = read(&args.requests)?;
    // Only the weighers the workload names, with its multipliers.
    let multiplier = |name: &str| config.weighers.get(name).copied().unwrap_or(0.0);
    let options = SchedulerOptions {
        enabled_filters: config.enabled_filters.clone(),
        host_subset_size: config.host_subset_size.max(1),
        ram_weight_multiplier: multiplier("ram_weight_multiplier"),
        disk_weight_multiplier: multiplier("disk_weight_multiplier"),
        cpu_weight_multiplier: multiplier("cpu_weight_multiplier"),
        io_ops_weight_multiplier: 0.0,
        num_instances_weight_multiplier: 0.0,
        build_failure_weight_multiplier: 0.0,
        soft_affinity_weight_multiplier: 0.0,
        soft_anti_affinity_weight_multiplier: 0.0,
        ..SchedulerOptions::default()
    };
    let scheduler = Scheduler::new(options)?;
    for h in &mut hosts {
        h.cpu_allocation_ratio = config.cpu_allocation_ratio;
        h.ram_allocation_ratio = config.ram_allocation_ratio;
        h.disk_allocation_ratio = config.disk_allocation_ratio;
    }
    let mut groups: HashMap<String, GroupSpec> = groups.into_iter().map(|g| (g.uuid.clone(), g)).collect();
    let specs: Vec<RequestSpec> = requests
        .into_iter()
        .map(|r| RequestSpec {
            instance_uuid: r.instance_uuid,
            flavor: r.flavor,
            image_properties: r
                .image
                .properties
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
                .collect(),
            availability_zone: r.availability_zone,
            group: r.group.map(|uuid| GroupSpec { uuid, ..Default::default() }),
            ..Default::default()
        })
        .collect();

    let started = Instant::now();
    let mut choices = Vec::with_capacity(specs.len());
    for mut spec in specs {
        if let Some(g) = spec.group.as_ref().and_then(|g| groups.get(&g.uuid)) {
            spec.group = Some(g.clone());
        }
        match scheduler.select(&mut hosts, std::slice::from_ref(&spec)) {
            Ok(selected) => {
                let host = selected[0].host.clone();
                if let Some(g) = spec.group.as_ref().and_then(|g| groups.get_mut(&g.uuid)) {
                    g.members.insert(spec.instance_uuid.clone());
                    g.hosts.insert(host.clone());
                }
                choices.push(Some(host));
            }
            Err(_) => choices.push(None),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let placed = choices.iter().filter(|c| c.is_some()).count();
    let out = json!({
        "hosts": hosts.len(),
        "decisions": choices.len(),
        "placed": placed,
        "novalidhost": choices.len() - placed,
        "seconds": (seconds * 1e6).round() / 1e6,
        "decisions_per_second": ((choices.len() as f64 / seconds.max(1e-9)) * 10.0).round() / 10.0,
        "choices": choices,
    });
    println!("{out}");
    Ok(())
}
