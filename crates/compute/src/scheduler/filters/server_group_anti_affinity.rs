use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// An anti-affinity group's members stay apart: a host passes while it holds
/// fewer of them than the group's `max_server_per_host` (1 by default).
pub struct ServerGroupAntiAffinityFilter;

impl Filter for ServerGroupAntiAffinityFilter {
    fn name(&self) -> &'static str {
        "ServerGroupAntiAffinityFilter"
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        let Some(group) = spec.group.as_ref().filter(|g| g.policy == "anti-affinity") else { return true };
        if host.instances.contains(&spec.instance_uuid) {
            return true;
        }
        let here = group.members.iter().filter(|m| host.instances.contains(*m)).count() as i64;
        here < group.max_server_per_host.unwrap_or(1)
    }
}
