use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// Skips hosts that already failed to build this instance.
pub struct RetryFilter;

impl Filter for RetryFilter {
    fn name(&self) -> &'static str {
        "RetryFilter"
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        !spec.tried_hosts.contains(&host.host)
    }
}
