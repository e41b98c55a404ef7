use crate::scheduler::host_state::{HostState, RequestSpec};
use crate::scheduler::weighers::Weigher;

/// Instances on the host (off by default: multiplier 0).
pub struct NumInstancesWeigher;

impl Weigher for NumInstancesWeigher {
    fn name(&self) -> &'static str {
        "NumInstancesWeigher"
    }
    fn option(&self) -> &'static str {
        "num_instances_weight_multiplier"
    }
    fn weigh(&self, host: &HostState, _: &RequestSpec) -> f64 {
        host.num_instances() as f64
    }
}
