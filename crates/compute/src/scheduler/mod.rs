//! The filter scheduler: for each instance, the hosts that pass every filter,
//! weighed, the heaviest (or a random one of the `host_subset_size` heaviest)
//! chosen, and up to `max_attempts - 1` alternates for retries. Within one
//! multi-create each choice consumes the host's resources before the next.
//!
//! [`Scheduler::select`] is pure (host states in, choices out) so the benchmark
//! and the service share it; `service.rs` feeds it from the database and
//! claims the chosen hosts' resources there.

pub mod extra_specs_ops;
pub mod filters;
pub mod host_state;
pub mod rpc;
pub mod service;
pub mod weighers;

use common::{Config, ConfigError, Opt};
use rand::Rng;
use serde::{Deserialize, Serialize};

use filters::{Filter, FilterStep};
pub use host_state::{AggregateInfo, FlavorSpec, GroupSpec, HostState, RequestSpec};
use weighers::Weighing;

const fn opt(section: &'static str, name: &'static str, default: &'static str, help: &'static str) -> Opt {
    Opt { section, name, default, help }
}

pub const ENABLED_FILTERS: Opt = opt(
    "filter_scheduler",
    "enabled_filters",
    "RetryFilter,AvailabilityZoneFilter,RamFilter,DiskFilter,CoreFilter,ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter",
    "Filters applied, in this order. Also available: AggregateInstanceExtraSpecsFilter, AggregateMultiTenancyIsolation, NumInstancesFilter, IoOpsFilter.",
);
pub const HOST_SUBSET_SIZE: Opt =
    opt("filter_scheduler", "host_subset_size", "1", "Pick at random among this many of the best hosts.");
pub const MAX_ATTEMPTS: Opt =
    opt("scheduler", "max_attempts", "3", "Hosts tried for one build: the chosen one and its alternates.");
pub const MAX_IO_OPS_PER_HOST: Opt =
    opt("filter_scheduler", "max_io_ops_per_host", "8", "IoOpsFilter: operations under way per host.");
pub const MAX_INSTANCES_PER_HOST: Opt =
    opt("filter_scheduler", "max_instances_per_host", "50", "NumInstancesFilter: instances per host.");
pub const RAM_WEIGHT: Opt = opt("filter_scheduler", "ram_weight_multiplier", "1.0", "RAMWeigher multiplier.");
pub const DISK_WEIGHT: Opt = opt("filter_scheduler", "disk_weight_multiplier", "1.0", "DiskWeigher multiplier.");
pub const CPU_WEIGHT: Opt = opt("filter_scheduler", "cpu_weight_multiplier", "1.0", "CPUWeigher multiplier.");
pub const IO_OPS_WEIGHT: Opt =
    opt("filter_scheduler", "io_ops_weight_multiplier", "-1.0", "IoOpsWeigher multiplier (negative: quiet hosts).");
pub const NUM_INSTANCES_WEIGHT: Opt =
    opt("filter_scheduler", "num_instances_weight_multiplier", "0.0", "NumInstancesWeigher multiplier.");
pub const BUILD_FAILURE_WEIGHT: Opt = opt(
    "filter_scheduler",
    "build_failure_weight_multiplier",
    "1000000.0",
    "BuildFailureWeigher multiplier: hosts failing builds sink.",
);
pub const SOFT_AFFINITY_WEIGHT: Opt =
    opt("filter_scheduler", "soft_affinity_weight_multiplier", "1.0", "Soft-affinity group weigher multiplier.");
pub const SOFT_ANTI_AFFINITY_WEIGHT: Opt = opt(
    "filter_scheduler",
    "soft_anti_affinity_weight_multiplier",
    "1.0",
    "Soft-anti-affinity group weigher multiplier.",
);
pub const DEFAULT_AVAILABILITY_ZONE: Opt =
    opt("DEFAULT", "default_availability_zone", "nova", "The zone of hosts in no zone aggregate.");

pub const OPTS: &[Opt] = &[
    ENABLED_FILTERS,
    HOST_SUBSET_SIZE,
    MAX_ATTEMPTS,
    MAX_IO_OPS_PER_HOST,
    MAX_INSTANCES_PER_HOST,
    RAM_WEIGHT,
    DISK_WEIGHT,
    CPU_WEIGHT,
    IO_OPS_WEIGHT,
    NUM_INSTANCES_WEIGHT,
    BUILD_FAILURE_WEIGHT,
    SOFT_AFFINITY_WEIGHT,
    SOFT_ANTI_AFFINITY_WEIGHT,
    DEFAULT_AVAILABILITY_ZONE,
];

#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerOptions {
    pub enabled_filters: Vec<String>,
    pub host_subset_size: usize,
    pub max_attempts: usize,
    pub max_io_ops_per_host: i64,
    pub max_instances_per_host: i64,
    pub ram_weight_multiplier: f64,
    pub disk_weight_multiplier: f64,
    pub cpu_weight_multiplier: f64,
    pub io_ops_weight_multiplier: f64,
    pub num_instances_weight_multiplier: f64,
    pub build_failure_weight_multiplier: f64,
    pub soft_affinity_weight_multiplier: f64,
    pub soft_anti_affinity_weight_multiplier: f64,
    pub default_availability_zone: String,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions::from_config(&Config::empty()).unwrap_or_else(|_| unreachable!("the defaults parse"))
    }
}

impl SchedulerOptions {
    pub fn from_config(c: &Config) -> Result<Self, ConfigError> {
        Ok(SchedulerOptions {
            enabled_filters: ENABLED_FILTERS.get_list(c),
            host_subset_size: HOST_SUBSET_SIZE.get::<usize>(c)?.max(1),
            max_attempts: MAX_ATTEMPTS.get::<usize>(c)?.max(1),
            max_io_ops_per_host: MAX_IO_OPS_PER_HOST.get(c)?,
            max_instances_per_host: MAX_INSTANCES_PER_HOST.get(c)?,
            ram_weight_multiplier: RAM_WEIGHT.get(c)?,
            disk_weight_multiplier: DISK_WEIGHT.get(c)?,
            cpu_weight_multiplier: CPU_WEIGHT.get(c)?,
            io_ops_weight_multiplier: IO_OPS_WEIGHT.get(c)?,
            num_instances_weight_multiplier: NUM_INSTANCES_WEIGHT.get(c)?,
            build_failure_weight_multiplier: BUILD_FAILURE_WEIGHT.get(c)?,
            soft_affinity_weight_multiplier: SOFT_AFFINITY_WEIGHT.get(c)?,
            soft_anti_affinity_weight_multiplier: SOFT_ANTI_AFFINITY_WEIGHT.get(c)?,
            default_availability_zone: DEFAULT_AVAILABILITY_ZONE.get(c)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("unknown scheduler filter {0:?} in [filter_scheduler] enabled_filters")]
    UnknownFilter(String),
}

/// Where one instance goes: the chosen host, then alternates in weighed order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub host: String,
    pub node: String,
    pub alternates: Vec<String>,
    /// What each filter did on the way to this choice (for the log).
    #[serde(default)]
    pub steps: Vec<FilterStep>,
}

/// `RamFilter: 4 -> 3, …`: the filter chain in one line.
pub fn describe_steps(steps: &[FilterStep]) -> String {
    steps.iter().map(|s| format!("{}: {} -> {}", s.filter, s.hosts_in, s.hosts_out)).collect::<Vec<_>>().join(", ")
}

/// No host for an instance, with what each filter did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoValidHost {
    pub instance_uuid: String,
    pub steps: Vec<FilterStep>,
}

impl std::fmt::Display for NoValidHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "No valid host was found. There are not enough hosts available.")?;
        if !self.steps.is_empty() {
            write!(f, " Filters: {}", describe_steps(&self.steps))?;
        }
        Ok(())
    }
}

pub struct Scheduler {
    pub options: SchedulerOptions,
    filters: Vec<Box<dyn Filter>>,
    weighers: Vec<Weighing>,
}

impl Scheduler {
    pub fn new(options: SchedulerOptions) -> Result<Scheduler, SchedulerError> {
        let filters = options
            .enabled_filters
            .iter()
            .map(|n| filters::by_name(n, &options).ok_or_else(|| SchedulerError::UnknownFilter(n.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let weighers = weighers::configured(&options);
        Ok(Scheduler { options, filters, weighers })
    }

    /// Hosts able to take `spec`, best first, with what each filter did.
    pub fn rank(&self, hosts: &[HostState], spec: &RequestSpec) -> (Vec<usize>, Vec<FilterStep>) {
        let mut log = Vec::new();
        let candidates: Vec<usize> = match &spec.force_host {
            // An admin's choice of host skips the filters.
            Some(forced) => (0..hosts.len()).filter(|&i| hosts[i].host == *forced).collect(),
            None => {
                let all = (0..hosts.len()).filter(|&i| !spec.ignore_hosts.contains(&hosts[i].host)).collect();
                filters::apply(&self.filters, hosts, all, spec, &mut log)
            }
        };
        let weights = weighers::weigh(&self.weighers, hosts, &candidates, spec);
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        // Stable: equal weights keep the hosts' order.
        order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]));
        let mut ranked: Vec<usize> = order.into_iter().map(|k| candidates[k]).collect();
        let subset = self.options.host_subset_size.min(ranked.len());
        if subset > 1 {
            let pick = rand::thread_rng().gen_range(0..subset);
            let chosen = ranked.remove(pick);
            ranked.insert(0, chosen);
        }
        (ranked, log)
    }

    /// Places every instance of one request, consuming as it goes; all or
    /// none (a multi-create that does not fit entirely fails entirely).
    pub fn select(&self, hosts: &mut [HostState], specs: &[RequestSpec]) -> Result<Vec<Selection>, NoValidHost> {
        let mut chosen = Vec::with_capacity(specs.len());
        let mut group = specs.first().and_then(|s| s.group.clone());
        for spec in specs {
            let mut spec = spec.clone();
            if group.is_some() {
                spec.group = group.clone();
            }
            let (ranked, steps) = self.rank(hosts, &spec);
            let Some(&best) = ranked.first() else {
                return Err(NoValidHost { instance_uuid: spec.instance_uuid.clone(), steps });
            };
            hosts[best].consume(&spec);
            if let Some(g) = group.as_mut() {
                g.members.insert(spec.instance_uuid.clone());
                g.hosts.insert(hosts[best].host.clone());
            }
            let alternates =
                ranked.iter().skip(1).take(self.options.max_attempts - 1).map(|&i| hosts[i].host.clone()).collect();
            chosen.push(Selection {
                host: hosts[best].host.clone(),
                node: hosts[best].node.clone(),
                alternates,
                steps,
            });
        }
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::filters::tests::{host, spec};
    use super::*;

    #[test]
    fn spreads_by_free_ram_and_consumes_within_a_request() {
        let s = Scheduler::new(SchedulerOptions::default()).unwrap();
        let mut hosts = vec![host("a"), host("b"), host("c")];
        hosts[0].memory_mb_used = 1000;
        let specs: Vec<RequestSpec> =
            (0..3).map(|i| RequestSpec { instance_uuid: format!("i{i}"), index: i, ..spec(1, 2048, 10) }).collect();
        let chosen = s.select(&mut hosts, &specs).unwrap();
        let names: Vec<&str> = chosen.iter().map(|c| c.host.as_str()).collect();
        assert_eq!(names, ["b", "c", "a"]);
        assert_eq!(chosen[0].alternates, ["c", "a"]);
        assert_eq!(hosts[1].memory_mb_used, 2048);
    }

    #[test]
    fn anti_affinity_spreads_and_affinity_packs_within_one_request() {
        let s = Scheduler::new(SchedulerOptions::default()).unwrap();
        for (policy, distinct) in [("anti-affinity", 3), ("affinity", 1)] {
            let mut hosts = vec![host("a"), host("b"), host("c")];
            let group = GroupSpec { uuid: "g".into(), policy: policy.into(), ..Default::default() };
            let specs: Vec<RequestSpec> = (0..3)
                .map(|i| RequestSpec {
                    instance_uuid: format!("i{i}"),
                    index: i,
                    group: Some(group.clone()),
                    ..spec(1, 512, 1)
                })
                .collect();
            let chosen = s.select(&mut hosts, &specs).unwrap();
            let set: std::collections::HashSet<_> = chosen.iter().map(|c| c.host.clone()).collect();
            assert_eq!(set.len(), distinct, "{policy}");
        }
        // A fourth anti-affine member has nowhere to go.
        let mut hosts = vec![host("a")];
        let group = GroupSpec { uuid: "g".into(), policy: "anti-affinity".into(), ..Default::default() };
        let specs: Vec<RequestSpec> = (0..2)
            .map(|i| RequestSpec {
                instance_uuid: format!("i{i}"),
                index: i,
                group: Some(group.clone()),
                ..spec(1, 1, 1)
            })
            .collect();
        let err = s.select(&mut hosts, &specs).unwrap_err();
        assert!(err.to_string().contains("ServerGroupAntiAffinityFilter: 1 -> 0"), "{err}");
    }
}
