use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// A request for a zone passes the hosts in that zone. A host's zones come from
/// its aggregates' `availability_zone` metadata; a host in none is in the
/// default zone.
pub struct AvailabilityZoneFilter {
    pub default_zone: String,
}

impl Filter for AvailabilityZoneFilter {
    fn name(&self) -> &'static str {
        "AvailabilityZoneFilter"
    }
    fn once_per_request(&self) -> bool {
        true
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        let Some(zone) = spec.availability_zone.as_deref() else { return true };
        let mut zones = host.availability_zones().peekable();
        if zones.peek().is_none() {
            return zone == self.default_zone;
        }
        zones.any(|z| z == zone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::filters::tests::{host, spec};
    use crate::scheduler::host_state::AggregateInfo;

    #[test]
    fn zones_come_from_aggregates() {
        let f = AvailabilityZoneFilter { default_zone: "nova".into() };
        let mut h = host("a");
        let mut s = spec(1, 1, 1);
        assert!(f.passes(&h, &s));
        s.availability_zone = Some("nova".into());
        assert!(f.passes(&h, &s));
        h.aggregates
            .push(AggregateInfo { name: "x".into(), metadata: [("availability_zone".into(), "az1".into())].into() });
        assert!(!f.passes(&h, &s));
        s.availability_zone = Some("az1".into());
        assert!(f.passes(&h, &s));
    }
}
