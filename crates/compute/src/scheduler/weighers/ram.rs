use crate::scheduler::host_state::{HostState, RequestSpec};
use crate::scheduler::weighers::Weigher;

/// Free RAM (no overcommit): with a positive multiplier, instances spread.
pub struct RamWeigher;

impl Weigher for RamWeigher {
    fn name(&self) -> &'static str {
        "RAMWeigher"
    }
    fn option(&self) -> &'static str {
        "ram_weight_multiplier"
    }
    fn minval(&self) -> Option<f64> {
        Some(0.0)
    }
    fn weigh(&self, host: &HostState, _: &RequestSpec) -> f64 {
        host.free_ram_mb() as f64
    }
}
