//! Identifiers. Keystone uses 32 lowercase hex digits (a UUID without dashes); Nova,
//! Neutron and Glance use dashed UUIDs.

use uuid::Uuid;

/// A new Keystone-style id: 32 lowercase hex digits.
pub fn new_hex_id() -> String {
    Uuid::new_v4().simple().to_string()
}

/// A new dashed UUID, as Nova, Neutron and Glance use.
pub fn new_uuid() -> String {
    Uuid::new_v4().to_string()
}

/// A request id in the form every OpenStack service returns in `x-openstack-request-id`.
pub fn new_request_id() -> String {
    format!("req-{}", Uuid::new_v4())
}

/// Whether `s` reads as a UUID, dashed or not (oslo's `is_uuid_like`).
pub fn is_uuid_like(s: &str) -> bool {
    Uuid::parse_str(s).is_ok()
}

/// Whether `s` has the shape of a request id we would accept from a caller.
pub fn is_request_id(s: &str) -> bool {
    s.strip_prefix("req-").is_some_and(|rest| Uuid::parse_str(rest).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_32_lowercase_hex_digits() {
        let id = new_hex_id();
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(id, new_hex_id());
    }

    #[test]
    fn request_ids_round_trip() {
        let id = new_request_id();
        assert!(is_request_id(&id));
        assert!(!is_request_id("req-nope"));
        assert!(!is_request_id(&new_uuid()));
    }
}
