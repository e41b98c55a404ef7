use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// At most `max_instances_per_host` instances on a host.
pub struct NumInstancesFilter {
    pub max: i64,
}

impl Filter for NumInstancesFilter {
    fn name(&self) -> &'static str {
        "NumInstancesFilter"
    }
    fn passes(&self, host: &HostState, _: &RequestSpec) -> bool {
        host.num_instances() < self.max
    }
}
