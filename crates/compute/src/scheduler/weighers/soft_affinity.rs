use crate::scheduler::host_state::{HostState, RequestSpec};
use crate::scheduler::weighers::Weigher;

/// `soft-affinity` groups: the more members a host has, the better.
pub struct SoftAffinityWeigher;

impl Weigher for SoftAffinityWeigher {
    fn name(&self) -> &'static str {
        "ServerGroupSoftAffinityWeigher"
    }
    fn option(&self) -> &'static str {
        "soft_affinity_weight_multiplier"
    }
    fn weigh(&self, host: &HostState, spec: &RequestSpec) -> f64 {
        match spec.group.as_ref().filter(|g| g.policy == "soft-affinity") {
            Some(g) => g.members.iter().filter(|m| host.instances.contains(*m)).count() as f64,
            None => 0.0,
        }
    }
}
