//! Host filters, one a file, applied in `[filter_scheduler] enabled_filters`
//! order. Each says whether a host can take the instance; the chain stops at
//! the first filter that leaves no host, and records what each one removed.

mod aggregate_instance_extra_specs;
mod aggregate_multitenancy_isolation;
mod availability_zone;
mod compute;
mod compute_capabilities;
mod core;
mod different_host;
mod disk;
mod image_properties;
mod io_ops;
mod num_instances;
mod ram;
mod retry;
mod same_host;
mod server_group_affinity;
mod server_group_anti_affinity;

use super::host_state::{HostState, RequestSpec};
use super::SchedulerOptions;

pub trait Filter: Send + Sync {
    fn name(&self) -> &'static str;
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool;
    /// Filters whose answer cannot change within one multi-create run only for
    /// its first instance.
    fn once_per_request(&self) -> bool {
        false
    }
}

/// The original design's default list.
pub const DEFAULT_FILTERS: &[&str] = &[
    "RetryFilter",
    "AvailabilityZoneFilter",
    "RamFilter",
    "DiskFilter",
    "CoreFilter",
    "ComputeFilter",
    "ComputeCapabilitiesFilter",
    "ImagePropertiesFilter",
    "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
];

/// The filter called `name`, configured from `options`.
pub fn by_name(name: &str, options: &SchedulerOptions) -> Option<Box<dyn Filter>> {
    Some(match name {
        "RetryFilter" => Box::new(retry::RetryFilter),
        "AvailabilityZoneFilter" => Box::new(availability_zone::AvailabilityZoneFilter {
            default_zone: options.default_availability_zone.clone(),
        }),
        "RamFilter" => Box::new(ram::RamFilter),
        "DiskFilter" => Box::new(disk::DiskFilter),
        "CoreFilter" => Box::new(core::CoreFilter),
        "ComputeFilter" => Box::new(compute::ComputeFilter),
        "ComputeCapabilitiesFilter" => Box::new(compute_capabilities::ComputeCapabilitiesFilter),
        "ImagePropertiesFilter" => Box::new(image_properties::ImagePropertiesFilter),
        "ServerGroupAntiAffinityFilter" => Box::new(server_group_anti_affinity::ServerGroupAntiAffinityFilter),
        "ServerGroupAffinityFilter" => Box::new(server_group_affinity::ServerGroupAffinityFilter),
        "SameHostFilter" => Box::new(same_host::SameHostFilter),
        "DifferentHostFilter" => Box::new(different_host::DifferentHostFilter),
        "AggregateInstanceExtraSpecsFilter" => {
            Box::new(aggregate_instance_extra_specs::AggregateInstanceExtraSpecsFilter)
        }
        "AggregateMultiTenancyIsolation" => Box::new(aggregate_multitenancy_isolation::AggregateMultiTenancyIsolation),
        "NumInstancesFilter" => Box::new(num_instances::NumInstancesFilter { max: options.max_instances_per_host }),
        "IoOpsFilter" => Box::new(io_ops::IoOpsFilter { max: options.max_io_ops_per_host }),
        _ => return None,
    })
}

/// What one filter did to one request: hosts in and out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FilterStep {
    pub filter: String,
    pub hosts_in: usize,
    pub hosts_out: usize,
}

/// Runs the chain over `candidates` (indexes into `hosts`), keeping the order.
pub fn apply(
    filters: &[Box<dyn Filter>],
    hosts: &[HostState],
    candidates: Vec<usize>,
    spec: &RequestSpec,
    log: &mut Vec<FilterStep>,
) -> Vec<usize> {
    let mut left = candidates;
    for f in filters {
        if spec.index > 0 && f.once_per_request() {
            continue;
        }
        let before = left.len();
        left.retain(|&i| f.passes(&hosts[i], spec));
        log.push(FilterStep { filter: f.name().to_string(), hosts_in: before, hosts_out: left.len() });
        if left.is_empty() {
            break;
        }
    }
    left
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn host(name: &str) -> HostState {
        HostState {
            host: name.into(),
            node: name.into(),
            vcpus: 8,
            vcpus_used: 0,
            memory_mb: 8192,
            memory_mb_used: 0,
            local_gb: 100,
            local_gb_used: 0,
            up: true,
            disabled: false,
            hypervisor_type: "QEMU".into(),
            hypervisor_version: 8002000,
            supported_instances: vec![["x86_64".into(), "qemu".into(), "hvm".into()]],
            cpu_info: serde_json::json!({"arch": "x86_64", "vendor": "Intel"}).as_object().cloned().unwrap(),
            aggregates: vec![],
            instances: Default::default(),
            num_io_ops: 0,
            failed_builds: 0,
            cpu_allocation_ratio: 16.0,
            ram_allocation_ratio: 1.5,
            disk_allocation_ratio: 1.0,
        }
    }

    pub fn spec(vcpus: i64, memory_mb: i64, root_gb: i64) -> RequestSpec {
        RequestSpec {
            instance_uuid: "i-1".into(),
            flavor: super::super::host_state::FlavorSpec { vcpus, memory_mb, root_gb, ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn chain_stops_at_the_first_empty_step_and_logs_it() {
        let options = SchedulerOptions::default();
        let filters: Vec<_> =
            ["ComputeFilter", "RamFilter", "CoreFilter"].iter().map(|n| by_name(n, &options).unwrap()).collect();
        let mut down = host("b");
        down.up = false;
        let hosts = vec![host("a"), down];
        let mut log = Vec::new();
        let left = apply(&filters, &hosts, vec![0, 1], &spec(1, 100_000, 1), &mut log);
        assert!(left.is_empty());
        assert_eq!(
            log,
            vec![
                FilterStep { filter: "ComputeFilter".into(), hosts_in: 2, hosts_out: 1 },
                FilterStep { filter: "RamFilter".into(), hosts_in: 1, hosts_out: 0 },
            ]
        );
        assert!(by_name("NoSuchFilter", &options).is_none());
    }
}
