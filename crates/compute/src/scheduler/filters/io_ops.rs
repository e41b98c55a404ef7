use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// At most `max_io_ops_per_host` builds, resizes and migrations at once.
pub struct IoOpsFilter {
    pub max: i64,
}

impl Filter for IoOpsFilter {
    fn name(&self) -> &'static str {
        "IoOpsFilter"
    }
    fn passes(&self, host: &HostState, _: &RequestSpec) -> bool {
        host.num_io_ops < self.max
    }
}
