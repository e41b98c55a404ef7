use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// An affinity group's members stay together: once the group is on some host,
/// only that host passes.
pub struct ServerGroupAffinityFilter;

impl Filter for ServerGroupAffinityFilter {
    fn name(&self) -> &'static str {
        "ServerGroupAffinityFilter"
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        match spec.group.as_ref().filter(|g| g.policy == "affinity") {
            Some(group) if !group.hosts.is_empty() => group.hosts.contains(&host.host),
            _ => true,
        }
    }
}
