use crate::scheduler::host_state::{HostState, RequestSpec};
use crate::scheduler::weighers::Weigher;

/// Hosts that recently failed builds sink (the multiplier is large, 1e6).
pub struct BuildFailureWeigher;

impl Weigher for BuildFailureWeigher {
    fn name(&self) -> &'static str {
        "BuildFailureWeigher"
    }
    fn option(&self) -> &'static str {
        "build_failure_weight_multiplier"
    }
    fn weigh(&self, host: &HostState, _: &RequestSpec) -> f64 {
        -(host.failed_builds as f64)
    }
}
