use crate::scheduler::host_state::{HostState, RequestSpec};
use crate::scheduler::weighers::Weigher;

/// Free vCPUs, with the allocation ratio.
pub struct CpuWeigher;

impl Weigher for CpuWeigher {
    fn name(&self) -> &'static str {
        "CPUWeigher"
    }
    fn option(&self) -> &'static str {
        "cpu_weight_multiplier"
    }
    fn minval(&self) -> Option<f64> {
        Some(0.0)
    }
    fn weigh(&self, host: &HostState, _: &RequestSpec) -> f64 {
        host.vcpus as f64 * host.cpu_allocation_ratio - host.vcpus_used as f64
    }
}
