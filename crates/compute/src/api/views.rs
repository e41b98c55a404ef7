//! How a server looks at a given microversion, to a given caller.

use std::collections::HashMap;

use api::{BaseUrl, Microversion};
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha224};

use super::links;
use crate::model::Instance;

/// Who asks, at which version, and what they may see.
pub struct ServerView<'a> {
    pub base: &'a BaseUrl,
    pub v: Microversion,
    pub admin: bool,
    /// Each host's service status (`UP`, `DOWN`, `MAINTENANCE`).
    pub host_status: &'a HashMap<String, &'static str>,
}

/// Nova's `hostId`: the host, hashed with the project so projects cannot
/// compare hosts.
pub fn host_id(i: &Instance) -> String {
    match &i.host {
        Some(h) if !h.is_empty() => {
            let digest = Sha224::digest(format!("{}{}", i.project_id, h).as_bytes());
            digest.iter().map(|b| format!("{b:02x}")).collect()
        }
        _ => String::new(),
    }
}

/// `addresses`: interfaces grouped by network name.
pub fn addresses(i: &Instance) -> Value {
    let mut out: Map<String, Value> = Map::new();
    for vif in &i.network_info {
        let entry = out.entry(vif.network_label.clone()).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            for ip in &vif.fixed_ips {
                list.push(json!({"version": ip.version, "addr": ip.ip_address, "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": vif.mac_address}));
                for fip in &ip.floating_ips {
                    list.push(json!({"version": 4, "addr": fip, "OS-EXT-IPS:type": "floating",
                        "OS-EXT-IPS-MAC:mac_addr": vif.mac_address}));
                }
            }
        }
    }
    Value::Object(out)
}

pub fn instance_name(i: &Instance) -> String {
    i.name()
}

impl ServerView<'_> {
    pub fn brief(&self, i: &Instance) -> Value {
        json!({"id": i.uuid, "name": i.display_name, "links": links(self.base, "servers", &i.uuid)})
    }

    fn flavor(&self, i: &Instance) -> Value {
        let f = &i.flavor;
        if self.v.at_least(2, 47) {
            json!({"vcpus": f.vcpus, "ram": f.memory_mb, "disk": f.root_gb, "ephemeral": f.ephemeral_gb,
                "swap": f.swap, "original_name": f.name, "extra_specs": f.extra_specs})
        } else {
            json!({"id": f.flavorid, "links": [{"rel": "bookmark", "href": format!("{}/flavors/{}", self.base.0, f.flavorid)}]})
        }
    }

    fn image(&self, i: &Instance) -> Value {
        if i.image_ref.is_empty() {
            return json!("");
        }
        json!({"id": i.image_ref, "links": [{"rel": "bookmark", "href": format!("{}/images/{}", self.base.0, i.image_ref)}]})
    }

    pub fn full(&self, i: &Instance) -> Value {
        let status = i.status();
        let mut s = json!({
            "id": i.uuid,
            "name": i.display_name,
            "status": status,
            "tenant_id": i.project_id,
            "user_id": i.user_id,
            "metadata": i.metadata,
            "hostId": host_id(i),
            "image": self.image(i),
            "flavor": self.flavor(i),
            "created": common::time::iso_seconds(i.created_at),
            "updated": common::time::iso_seconds(i.updated_at),
            "addresses": addresses(i),
            "accessIPv4": i.access_ip_v4.clone().unwrap_or_default(),
            "accessIPv6": i.access_ip_v6.clone().unwrap_or_default(),
            "links": links(self.base, "servers", &i.uuid),
            "OS-DCF:diskConfig": if i.disk_config.is_empty() { "MANUAL" } else { i.disk_config.as_str() },
            "OS-EXT-AZ:availability_zone": i.availability_zone.clone().unwrap_or_default(),
            "config_drive": i.config_drive,
            "key_name": i.key_name,
            "OS-SRV-USG:launched_at": i.launched_at.map(common::time::naive_micros),
            "OS-SRV-USG:terminated_at": i.terminated_at.map(common::time::naive_micros),
            "OS-EXT-STS:task_state": i.task_state,
            "OS-EXT-STS:vm_state": i.vm_state,
            "OS-EXT-STS:power_state": i.power_state,
            "os-extended-volumes:volumes_attached": [],
        });
        if ["ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"].contains(&status) {
            s["progress"] = json!(i.progress);
        }
        // Absent when the server has no interface, or every group was removed.
        if !i.network_info.is_empty() && !i.security_groups.is_empty() {
            let groups: Vec<Value> = i.security_groups.iter().map(|g| json!({"name": g})).collect();
            s["security_groups"] = json!(groups);
        }
        if self.admin {
            s["OS-EXT-SRV-ATTR:host"] = json!(i.host);
            s["OS-EXT-SRV-ATTR:hypervisor_hostname"] = json!(i.node);
            s["OS-EXT-SRV-ATTR:instance_name"] = json!(instance_name(i));
            if self.v.at_least(2, 3) {
                s["OS-EXT-SRV-ATTR:reservation_id"] = json!(i.reservation_id);
                s["OS-EXT-SRV-ATTR:launch_index"] = json!(i.launch_index);
                s["OS-EXT-SRV-ATTR:hostname"] = json!(i.hostname);
                s["OS-EXT-SRV-ATTR:kernel_id"] = json!("");
                s["OS-EXT-SRV-ATTR:ramdisk_id"] = json!("");
                s["OS-EXT-SRV-ATTR:root_device_name"] = json!("/dev/vda");
                s["OS-EXT-SRV-ATTR:user_data"] = json!(i.user_data);
            }
        } else if self.v.at_least(2, 90) {
            s["OS-EXT-SRV-ATTR:hostname"] = json!(i.hostname);
        }
        if self.v.at_least(2, 3) {
            s["os-extended-volumes:volumes_attached"] = json!([]);
        }
        if let Some(f) = &i.fault {
            if matches!(status, "ERROR" | "DELETED") {
                let mut fault =
                    json!({"code": f.code, "created": common::time::iso_seconds(f.created), "message": f.message});
                if self.admin || f.code != 500 {
                    fault["details"] = json!(f.details);
                }
                s["fault"] = fault;
            }
        }
        if self.v.at_least(2, 9) {
            s["locked"] = json!(i.locked);
        }
        if self.v.at_least(2, 16) && self.admin {
            let hs = i.host.as_ref().and_then(|h| self.host_status.get(h)).copied().unwrap_or("");
            s["host_status"] = json!(hs);
        }
        if self.v.at_least(2, 19) {
            s["description"] = json!(i.display_description);
        }
        if self.v.at_least(2, 26) {
            s["tags"] = json!(i.tags);
        }
        if self.v.at_least(2, 63) {
            s["trusted_image_certificates"] = Value::Null;
        }
        if self.v.at_least(2, 73) {
            s["locked_reason"] = json!(i.locked_reason);
        }
        if self.v.at_least(2, 96) {
            s["pinned_availability_zone"] = json!(i
                .requested_availability_zone
                .as_ref()
                .map(|z| z.split(':').next().unwrap_or_default().to_string())
                .filter(|z| !z.is_empty()));
        }
        s
    }
}

impl ServerView<'_> {
    /// `GET /servers/{id}`: the detail view, and from 2.71 the server's group.
    pub fn show(&self, i: &Instance) -> Value {
        let mut s = self.full(i);
        if self.v.at_least(2, 71) {
            s["server_groups"] = json!(i.server_group.iter().collect::<Vec<_>>());
        }
        s
    }

    /// The answer to `PUT /servers/{id}` and to a rebuild: from 2.75 all that
    /// `show` has; before, Nova's basic view without the extension attributes.
    pub fn after_change(&self, i: &Instance, rebuild: bool) -> Value {
        let mut s = self.show(i);
        if let Some(m) = s.as_object_mut() {
            m.remove("OS-EXT-SRV-ATTR:user_data");
            if !self.v.at_least(2, 75) {
                m.retain(|k, _| {
                    !(k.starts_with("OS-EXT-")
                        || k.starts_with("OS-SRV-USG:")
                        || k.starts_with("os-extended-volumes:")
                        || matches!(k.as_str(), "config_drive" | "security_groups" | "host_status" | "key_name"))
                });
                if let Some(addrs) = m.get_mut("addresses").and_then(Value::as_object_mut) {
                    for list in addrs.values_mut().filter_map(Value::as_array_mut) {
                        for a in list.iter_mut().filter_map(Value::as_object_mut) {
                            a.retain(|k, _| k == "addr" || k == "version");
                        }
                    }
                }
                if rebuild && self.v.at_least(2, 54) {
                    m.insert("key_name".into(), json!(i.key_name));
                }
            }
            if rebuild && self.v.at_least(2, 57) {
                m.insert("user_data".into(), json!(i.user_data));
            }
        }
        s
    }
}

/// User data as given: base64 text, checked.
pub fn check_user_data(s: &str) -> bool {
    base64::engine::general_purpose::STANDARD.decode(s.trim()).is_ok()
}
