//! ML2 type drivers: *what* a network is. Each owns the segments of its type —
//! which physical networks and ids are valid, which are free — and the MTU such a
//! segment carries. Only type drivers allocate segments.

mod flat;
mod local;
mod tunnel;
mod vlan;

use std::collections::BTreeSet;

use db::AnyConnection;

pub use flat::Flat;
pub use local::Local;
pub use tunnel::Tunnel;
pub use vlan::Vlan;

use crate::error::{NetworkError, Result};
use crate::store::{Segment, Store};

/// A segment as requested: by an admin's provider attributes (all optional
/// but the type), or built by a type driver for a project network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentRequest {
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<i64>,
}

#[async_trait::async_trait]
pub trait TypeDriver: Send + Sync {
    fn network_type(&self) -> &'static str;

    /// Checks an admin's request for a segment of this type (400 when wrong).
    fn validate(&self, request: &SegmentRequest) -> Result<()>;

    /// Reserves the requested segment, allocating an id when none is named.
    async fn reserve(
        &self,
        store: &Store,
        conn: &mut AnyConnection,
        request: &SegmentRequest,
        network_id: &str,
    ) -> Result<Segment>;

    /// A free segment for a project network, or `None` when this type has none
    /// to give (not configured, or exhausted).
    async fn allocate(&self, store: &Store, conn: &mut AnyConnection, network_id: &str) -> Result<Option<Segment>>;

    /// The MTU a segment of this type carries.
    fn mtu(&self, physical_network: Option<&str>) -> u32;
}

pub(crate) fn invalid(message: impl Into<String>) -> NetworkError {
    NetworkError::invalid("InvalidInput", format!("Invalid input for operation: {}.", message.into()))
}

/// `min:max` ranges (after an optional `physnet:` prefix), validated against the
/// type's id space.
pub(crate) fn parse_range(text: &str, what: &str, max_id: i64) -> std::result::Result<(i64, i64), String> {
    let (a, b) = text.split_once(':').ok_or_else(|| format!("{what} range {text:?} is not min:max"))?;
    let (min, max): (i64, i64) = (
        a.trim().parse().map_err(|_| format!("{what} range {text:?} is not numeric"))?,
        b.trim().parse().map_err(|_| format!("{what} range {text:?} is not numeric"))?,
    );
    if min < 1 || max > max_id || min > max {
        return Err(format!("{what} range {text:?} is outside 1..{max_id} or reversed"));
    }
    Ok((min, max))
}

/// The lowest id of `ranges` not in `taken`.
pub(crate) fn lowest_free(ranges: &[(i64, i64)], taken: &[i64]) -> Option<i64> {
    let taken: BTreeSet<i64> = taken.iter().copied().collect();
    ranges.iter().flat_map(|(a, b)| *a..=*b).find(|id| !taken.contains(id))
}

/// Reads `physnet:mtu` pairs.
pub(crate) fn physnet_mtus(pairs: &[String]) -> Vec<(String, u32)> {
    pairs
        .iter()
        .filter_map(|p| p.split_once(':'))
        .filter_map(|(n, m)| m.trim().parse().ok().map(|m| (n.trim().to_string(), m)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_lowest_free_skips_taken_ids() {
        assert_eq!(parse_range("10:20", "VNI", 100), Ok((10, 20)));
        assert!(parse_range("20:10", "VNI", 100).is_err());
        assert!(parse_range("0:10", "VNI", 100).is_err());
        assert!(parse_range("x", "VNI", 100).is_err());
        assert_eq!(lowest_free(&[(1, 3), (10, 11)], &[1, 2, 3, 10]), Some(11));
        assert_eq!(lowest_free(&[(1, 2)], &[1, 2]), None);
    }
}
