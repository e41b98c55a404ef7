use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// The host's compute service is up (heartbeats within `service_down_time`,
/// not forced down) and enabled.
pub struct ComputeFilter;

impl Filter for ComputeFilter {
    fn name(&self) -> &'static str {
        "ComputeFilter"
    }
    fn once_per_request(&self) -> bool {
        true
    }
    fn passes(&self, host: &HostState, _: &RequestSpec) -> bool {
        host.up && !host.disabled
    }
}
