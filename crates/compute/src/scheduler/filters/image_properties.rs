use crate::scheduler::filters::Filter;
use crate::scheduler::host_state::{HostState, RequestSpec};

/// The image's `hw_architecture`, `img_hv_type` and `hw_vm_mode` must all be
/// met by one of the host's supported `[arch, hv_type, vm_mode]` triples.
pub struct ImagePropertiesFilter;

/// Nova's canonical spellings of architectures, hypervisor types and modes.
fn canonical(kind: usize, value: &str) -> String {
    let v = value.to_ascii_lowercase();
    match (kind, v.as_str()) {
        (0, "amd64" | "x64") => "x86_64".into(),
        (0, "i386" | "i486" | "i586" | "x86") => "i686".into(),
        (0, "arm64") => "aarch64".into(),
        (1, "xapi") => "xen".into(),
        (2, "hv") => "xen".into(),
        (2, "baremetal") => "hvm".into(),
        _ => v,
    }
}

impl Filter for ImagePropertiesFilter {
    fn name(&self) -> &'static str {
        "ImagePropertiesFilter"
    }
    fn once_per_request(&self) -> bool {
        true
    }
    fn passes(&self, host: &HostState, spec: &RequestSpec) -> bool {
        let wanted: Vec<(usize, String)> = ["hw_architecture", "img_hv_type", "hw_vm_mode"]
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let v = spec
                    .image_properties
                    .get(*k)
                    .or_else(|| (i == 0).then(|| spec.image_properties.get("architecture")).flatten())?;
                Some((i, canonical(i, v)))
            })
            .collect();
        if wanted.is_empty() {
            return true;
        }
        host.supported_instances.iter().any(|triple| wanted.iter().all(|(i, v)| canonical(*i, &triple[*i]) == *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::filters::tests::{host, spec};

    #[test]
    fn architecture_and_hypervisor() {
        let h = host("a");
        let mut s = spec(1, 1, 1);
        assert!(ImagePropertiesFilter.passes(&h, &s));
        s.image_properties.insert("hw_architecture".into(), "amd64".into());
        assert!(ImagePropertiesFilter.passes(&h, &s));
        s.image_properties.insert("img_hv_type".into(), "xen".into());
        assert!(!ImagePropertiesFilter.passes(&h, &s));
        s.image_properties.insert("img_hv_type".into(), "qemu".into());
        s.image_properties.insert("hw_architecture".into(), "aarch64".into());
        assert!(!ImagePropertiesFilter.passes(&h, &s));
    }
}
