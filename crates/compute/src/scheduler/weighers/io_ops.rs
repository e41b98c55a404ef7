use crate::scheduler::host_state::{HostState, RequestSpec};
use crate::scheduler::weighers::Weigher;

/// Operations under way; the default multiplier (-1) prefers quiet hosts.
pub struct IoOpsWeigher;

impl Weigher for IoOpsWeigher {
    fn name(&self) -> &'static str {
        "IoOpsWeigher"
    }
    fn option(&self) -> &'static str {
        "io_ops_weight_multiplier"
    }
    fn minval(&self) -> Option<f64> {
        Some(0.0)
    }
    fn weigh(&self, host: &HostState, _: &RequestSpec) -> f64 {
        host.num_io_ops as f64
    }
}
