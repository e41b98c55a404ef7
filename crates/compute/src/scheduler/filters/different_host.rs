use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// The `different_host` hint: only hosts holding none of the named instances.
pub struct DifferentHostFilter;

impl Filter for DifferentHostFilter {
    fn name(&self) -> &'static str {
        "DifferentHostFilter"
    }
    fn once_per_request(&self) -> bool {
        true
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        !spec.different_host.iter().any(|i| host.instances.contains(i))
    }
}
