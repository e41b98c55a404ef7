use crate::scheduler::host_state::{HostState, RequestSpec};
use crate::scheduler::weighers::Weigher;

/// `soft-anti-affinity` groups: the fewer members a host has, the better.
pub struct SoftAntiAffinityWeigher;

impl Weigher for SoftAntiAffinityWeigher {
    fn name(&self) -> &'static str {
        "ServerGroupSoftAntiAffinityWeigher"
    }
    fn option(&self) -> &'static str {
        "soft_anti_affinity_weight_multiplier"
    }
    fn weigh(&self, host: &HostState, spec: &RequestSpec) -> f64 {
        match spec.group.as_ref().filter(|g| g.policy == "soft-anti-affinity") {
            Some(g) => -(g.members.iter().filter(|m| host.instances.contains(*m)).count() as f64),
            None => 0.0,
        }
    }
}
