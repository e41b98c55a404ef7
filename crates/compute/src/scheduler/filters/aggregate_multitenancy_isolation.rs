use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// Hosts in an aggregate with `filter_tenant_id*` metadata take only those
/// projects' instances.
pub struct AggregateMultiTenancyIsolation;

impl Filter for AggregateMultiTenancyIsolation {
    fn name(&self) -> &'static str {
        "AggregateMultiTenancyIsolation"
    }
    fn once_per_request(&self) -> bool {
        true
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        let mut allowed = host
            .aggregates
            .iter()
            .flat_map(|a| a.metadata.iter())
            .filter(|(k, _)| k.starts_with("filter_tenant_id"))
            .flat_map(|(_, v)| v.split(','))
            .peekable();
        allowed.peek().is_none() || allowed.any(|p| p.trim() == spec.project_id)
    }
}
