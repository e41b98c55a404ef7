use crate::scheduler::extra_specs_ops;
use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// Flavor extra specs `capabilities:<scope…>` must match what the host has:
/// `capabilities:cpu_info:vendor = Intel`, `capabilities:hypervisor_type`, …
/// Keys in other namespaces belong to other filters and are ignored.
pub struct ComputeCapabilitiesFilter;

/// The host's value at `path` (attributes first, then inside `cpu_info`).
fn capability(host: &HostState, path: &[&str]) -> Option<String> {
    let scalar = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    match path {
        ["cpu_info", rest @ ..] if !rest.is_empty() => {
            let mut v = host.cpu_info.get(rest[0])?;
            for key in &rest[1..] {
                v = v.get(key)?;
            }
            scalar(v)
        }
        ["hypervisor_type"] => Some(host.hypervisor_type.clone()),
        ["hypervisor_version"] => Some(host.hypervisor_version.to_string()),
        ["vcpus"] => Some(host.vcpus.to_string()),
        ["memory_mb"] => Some(host.memory_mb.to_string()),
        ["local_gb"] => Some(host.local_gb.to_string()),
        ["host"] => Some(host.host.clone()),
        _ => None,
    }
}

impl Filter for ComputeCapabilitiesFilter {
    fn name(&self) -> &'static str {
        "ComputeCapabilitiesFilter"
    }
    fn once_per_request(&self) -> bool {
        true
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        spec.flavor.extra_specs.iter().all(|(key, wanted)| {
            let Some(path) = key.strip_prefix("capabilities:") else { return true };
            let path: Vec<&str> = path.split(':').collect();
            capability(host, &path).is_some_and(|have| extra_specs_ops::matches(&have, wanted))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::filters::tests::{host, spec};

    #[test]
    fn cpu_info_and_attributes() {
        let h = host("a");
        let mut s = spec(1, 1, 1);
        s.flavor.extra_specs.insert("capabilities:cpu_info:vendor".into(), "Intel".into());
        s.flavor.extra_specs.insert("hw:cpu_policy".into(), "shared".into());
        assert!(ComputeCapabilitiesFilter.passes(&h, &s));
        s.flavor.extra_specs.insert("capabilities:hypervisor_version".into(), ">= 9000000".into());
        assert!(!ComputeCapabilitiesFilter.passes(&h, &s));
        s.flavor.extra_specs.remove("capabilities:hypervisor_version");
        s.flavor.extra_specs.insert("capabilities:cpu_info:features".into(), "avx".into());
        assert!(!ComputeCapabilitiesFilter.passes(&h, &s), "a missing capability fails");
    }
}
