use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// The `same_host` hint: only hosts holding one of the named instances.
pub struct SameHostFilter;

impl Filter for SameHostFilter {
    fn name(&self) -> &'static str {
        "SameHostFilter"
    }
    fn once_per_request(&self) -> bool {
        true
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        spec.same_host.is_empty() || spec.same_host.iter().any(|i| host.instances.contains(i))
    }
}
