//! Compute's errors as they travel between the controller and the hosts:
//! each keeps its kind across the bus, so the API answers with the status
//! the conductor or a host meant. (The controller's own error adds the
//! database's and the API's.)

use bus::{BusError, RemoteError};

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Conflict(String),
    /// Over a quota: Nova answers 403 for servers and most resources.
    #[error("{0}")]
    OverQuota(String),
    /// Over a quota where Nova answers 413 (metadata items, personality).
    #[error("{0}")]
    OverLimit(String),
    #[error("{0}")]
    NoValidHost(String),
    /// Another service (network, image, identity) failed us.
    #[error("{0}")]
    Upstream(String),
    /// Another service, or its database, is down for now (it answered 503
    /// or could not be reached): a saga step tries again.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// The driver cannot do this at all (501).
    #[error("{0}")]
    NotImplemented(String),
    /// A port could not be bound on the host: no agent there can wire it
    /// (another host may).
    #[error("{0}")]
    PortBindingFailed(String),
    #[error(transparent)]
    Bus(BusError),
}

/// The kind of a failure that passes when a dependency returns (the saga
/// executor's `saga::UNAVAILABLE`).
pub const UNAVAILABLE: &str = "Unavailable";

pub type Result<T, E = ComputeError> = std::result::Result<T, E>;

impl ComputeError {
    /// The kind name it travels under.
    pub fn kind(&self) -> &'static str {
        match self {
            ComputeError::NotFound(_) => "NotFound",
            ComputeError::BadRequest(_) => "BadRequest",
            ComputeError::Forbidden(_) => "Forbidden",
            ComputeError::Unauthorized(_) => "Unauthorized",
            ComputeError::Conflict(_) => "Conflict",
            ComputeError::OverQuota(_) => "OverQuota",
            ComputeError::OverLimit(_) => "OverLimit",
            ComputeError::NoValidHost(_) => "NoValidHost",
            ComputeError::Upstream(_) => "Upstream",
            ComputeError::Unavailable(_) => UNAVAILABLE,
            ComputeError::NotImplemented(_) => "NotImplemented",
            ComputeError::PortBindingFailed(_) => "PortBindingFailed",
            ComputeError::Internal(_) => "Internal",
            ComputeError::Bus(BusError::Timeout { .. }) => "Timeout",
            ComputeError::Bus(_) => "Bus",
        }
    }

    /// Rebuilds an error from its kind and message.
    pub fn from_kind(kind: &str, message: String) -> ComputeError {
        match kind {
            "NotFound" => ComputeError::NotFound(message),
            "BadRequest" => ComputeError::BadRequest(message),
            "Forbidden" => ComputeError::Forbidden(message),
            "Unauthorized" => ComputeError::Unauthorized(message),
            "Conflict" => ComputeError::Conflict(message),
            "OverQuota" => ComputeError::OverQuota(message),
            "OverLimit" => ComputeError::OverLimit(message),
            "NoValidHost" => ComputeError::NoValidHost(message),
            "Upstream" => ComputeError::Upstream(message),
            // A dependency of the other side was down.
            UNAVAILABLE => ComputeError::Unavailable(message),
            "NotImplemented" => ComputeError::NotImplemented(message),
            "PortBindingFailed" => ComputeError::PortBindingFailed(message),
            _ => ComputeError::Internal(message),
        }
    }
}

impl From<ComputeError> for RemoteError {
    fn from(e: ComputeError) -> RemoteError {
        RemoteError::new(e.kind(), e.to_string())
    }
}

/// A bus failure as a compute error: remote errors keep their kind.
impl From<BusError> for ComputeError {
    fn from(e: BusError) -> ComputeError {
        match e {
            BusError::Remote { error, .. } => ComputeError::from_kind(&error.kind, error.message),
            other => ComputeError::Bus(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::remote_error;
    use reqwest::StatusCode;
    use serde_json::json;

    #[test]
    fn a_service_answering_503_is_unavailable_and_stays_so_across_the_bus() {
        let body = json!({"NeutronError": {"type": "ServiceUnavailable", "message": "The database is unavailable"}});
        let e = remote_error("network", StatusCode::SERVICE_UNAVAILABLE, &body);
        assert!(matches!(e, ComputeError::Unavailable(_)), "{e:?}");
        let sent = RemoteError::from(e);
        assert_eq!(sent.kind, UNAVAILABLE);
        let back = ComputeError::from_kind(&sent.kind, sent.message);
        assert!(matches!(back, ComputeError::Unavailable(ref m) if m.contains("database is unavailable")), "{back:?}");
    }

    #[test]
    fn other_failures_of_a_service_keep_their_kinds() {
        let body = json!({"message": "boom"});
        assert!(matches!(remote_error("image", StatusCode::INTERNAL_SERVER_ERROR, &body), ComputeError::Upstream(_)));
        assert!(matches!(remote_error("image", StatusCode::NOT_FOUND, &body), ComputeError::NotFound(_)));
        assert!(matches!(remote_error("image", StatusCode::CONFLICT, &body), ComputeError::Conflict(_)));
    }
}
