use crate::scheduler::host_state::{HostState, RequestSpec};
use crate::scheduler::weighers::Weigher;

/// Free disk in MiB (no overcommit).
pub struct DiskWeigher;

impl Weigher for DiskWeigher {
    fn name(&self) -> &'static str {
        "DiskWeigher"
    }
    fn option(&self) -> &'static str {
        "disk_weight_multiplier"
    }
    fn minval(&self) -> Option<f64> {
        Some(0.0)
    }
    fn weigh(&self, host: &HostState, _: &RequestSpec) -> f64 {
        host.free_disk_mb() as f64
    }
}
