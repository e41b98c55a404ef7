use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// Enough memory, overcommitted by `ram_allocation_ratio`:
/// `memory_mb * ratio - memory_mb_used >= flavor.memory_mb`.
pub struct RamFilter;

impl Filter for RamFilter {
    fn name(&self) -> &'static str {
        "RamFilter"
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        host.memory_mb as f64 * host.ram_allocation_ratio - host.memory_mb_used as f64 >= spec.flavor.memory_mb as f64
    }
}
