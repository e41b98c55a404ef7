use crate::scheduler::extra_specs_ops;
use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// Flavor extra specs without a namespace, or in
/// `aggregate_instance_extra_specs:`, must match the metadata of one of the
/// host's aggregates.
pub struct AggregateInstanceExtraSpecsFilter;

impl Filter for AggregateInstanceExtraSpecsFilter {
    fn name(&self) -> &'static str {
        "AggregateInstanceExtraSpecsFilter"
    }
    fn once_per_request(&self) -> bool {
        true
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        spec.flavor.extra_specs.iter().all(|(key, wanted)| {
            let key = match key.split_once(':') {
                None => key.as_str(),
                Some(("aggregate_instance_extra_specs", k)) => k,
                Some(_) => return true,
            };
            let mut values = host.aggregates.iter().filter_map(|a| a.metadata.get(key)).peekable();
            values.peek().is_some()
                && values.any(|v| v.split(',').any(|one| extra_specs_ops::matches(one.trim(), wanted)))
        })
    }
}
