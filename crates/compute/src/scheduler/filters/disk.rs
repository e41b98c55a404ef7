use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// Enough disk for root, ephemeral and swap, overcommitted by
/// `disk_allocation_ratio`.
pub struct DiskFilter;

impl Filter for DiskFilter {
    fn name(&self) -> &'static str {
        "DiskFilter"
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        let limit = host.local_gb as f64 * 1024.0 * host.disk_allocation_ratio;
        limit - (host.local_gb_used * 1024) as f64 >= spec.flavor.disk_mb() as f64
    }
}
