//! Host weighers, one a file. Each gives every host that passed the filters a
//! raw weight; weights are normalised per weigher over those hosts, multiplied
//! (aggregate metadata named like the option may override the multiplier for
//! its hosts: the smallest value wins) and summed. The heaviest host wins.

mod build_failure;
mod cpu;
mod disk;
mod io_ops;
mod num_instances;
mod ram;
mod soft_affinity;
mod soft_anti_affinity;

use super::host_state::{HostState, RequestSpec};
use super::SchedulerOptions;

pub trait Weigher: Send + Sync {
    fn name(&self) -> &'static str;
    /// The `[filter_scheduler]` option holding the multiplier.
    fn option(&self) -> &'static str;
    /// Raw weights below this count as this (free RAM below zero counts as
    /// none), and normalising divides by the largest instead of the range.
    fn minval(&self) -> Option<f64> {
        None
    }
    fn weigh(&self, host: &HostState, spec: &RequestSpec) -> f64;
}

/// A weigher with its configured multiplier.
pub struct Weighing {
    pub weigher: Box<dyn Weigher>,
    pub multiplier: f64,
}

/// Every weigher with its multiplier from `options`, in Nova's order; those
/// whose multiplier is 0 are left out (they cannot change a decision).
pub fn configured(options: &SchedulerOptions) -> Vec<Weighing> {
    let all: Vec<(Box<dyn Weigher>, f64)> = vec![
        (Box::new(ram::RamWeigher), options.ram_weight_multiplier),
        (Box::new(disk::DiskWeigher), options.disk_weight_multiplier),
        (Box::new(cpu::CpuWeigher), options.cpu_weight_multiplier),
        (Box::new(io_ops::IoOpsWeigher), options.io_ops_weight_multiplier),
        (Box::new(num_instances::NumInstancesWeigher), options.num_instances_weight_multiplier),
        (Box::new(build_failure::BuildFailureWeigher), options.build_failure_weight_multiplier),
        (Box::new(soft_affinity::SoftAffinityWeigher), options.soft_affinity_weight_multiplier),
        (Box::new(soft_anti_affinity::SoftAntiAffinityWeigher), options.soft_anti_affinity_weight_multiplier),
    ];
    all.into_iter().filter(|(_, m)| *m != 0.0).map(|(weigher, multiplier)| Weighing { weigher, multiplier }).collect()
}

/// The multiplier for one host: aggregate metadata overrides the option.
fn multiplier(w: &Weighing, host: &HostState) -> f64 {
    host.aggregates
        .iter()
        .filter_map(|a| a.metadata.get(w.weigher.option()).and_then(|v| v.trim().parse::<f64>().ok()))
        .reduce(f64::min)
        .unwrap_or(w.multiplier)
}

/// The total weight of each candidate (indexes into `hosts`), in order.
pub fn weigh(weighings: &[Weighing], hosts: &[HostState], candidates: &[usize], spec: &RequestSpec) -> Vec<f64> {
    let mut totals = vec![0.0f64; candidates.len()];
    if candidates.len() <= 1 {
        return totals;
    }
    let mut raw = Vec::with_capacity(candidates.len());
    for w in weighings {
        raw.clear();
        let floor = w.weigher.minval();
        raw.extend(candidates.iter().map(|&i| {
            let v = w.weigher.weigh(&hosts[i], spec);
            floor.map_or(v, |f| v.max(f))
        }));
        let max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = floor.unwrap_or_else(|| raw.iter().copied().fold(f64::INFINITY, f64::min));
        if max == min {
            continue;
        }
        let range = max - min;
        for (k, &i) in candidates.iter().enumerate() {
            totals[k] += multiplier(w, &hosts[i]) * ((raw[k] - min) / range);
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::filters::tests::{host, spec};
    use crate::scheduler::host_state::AggregateInfo;

    #[test]
    fn most_free_ram_wins_and_aggregates_override_multipliers() {
        let options = SchedulerOptions::default();
        let w = configured(&options);
        let mut a = host("a");
        a.memory_mb_used = 4096;
        let b = host("b");
        let hosts = vec![a, b];
        let t = weigh(&w, &hosts, &[0, 1], &spec(1, 1, 1));
        assert!(t[1] > t[0], "{t:?}");
        // A negative RAM multiplier on b's aggregate packs instead of spreading.
        let mut hosts = hosts;
        hosts[1].aggregates.push(AggregateInfo {
            name: "pack".into(),
            metadata: [("ram_weight_multiplier".into(), "-10".into())].into(),
        });
        let t = weigh(&w, &hosts, &[0, 1], &spec(1, 1, 1));
        assert!(t[0] > t[1], "{t:?}");
    }

    #[test]
    fn normalised_by_the_largest_when_floored() {
        let w = vec![Weighing { weigher: Box::new(ram::RamWeigher), multiplier: 1.0 }];
        let mut a = host("a");
        a.memory_mb_used = 6144; // 2048 free
        let mut b = host("b");
        b.memory_mb_used = 4096; // 4096 free
        let mut c = host("c");
        c.memory_mb_used = 9000; // negative counts as 0
        let t = weigh(&w, &[a, b, c], &[0, 1, 2], &spec(1, 1, 1));
        assert_eq!(t, vec![0.5, 1.0, 0.0]);
    }
}
