use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// Enough vCPUs, overcommitted by `cpu_allocation_ratio`; an instance may not
/// have more vCPUs than the host has cores.
pub struct CoreFilter;

impl Filter for CoreFilter {
    fn name(&self) -> &'static str {
        "CoreFilter"
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        if host.vcpus == 0 {
            return true;
        }
        spec.flavor.vcpus <= host.vcpus
            && host.vcpus as f64 * host.cpu_allocation_ratio - host.vcpus_used as f64 >= spec.flavor.vcpus as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::filters::tests::{host, spec};

    #[test]
    fn overcommit_but_not_beyond_the_host() {
        let mut h = host("a");
        h.vcpus_used = 127;
        assert!(CoreFilter.passes(&h, &spec(1, 1, 1)));
        assert!(!CoreFilter.passes(&h, &spec(2, 1, 1)));
        h.vcpus_used = 0;
        assert!(!CoreFilter.passes(&h, &spec(9, 1, 1)), "more vCPUs than the host has");
    }
}
