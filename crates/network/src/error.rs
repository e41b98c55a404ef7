//! Networking's errors. Neutron names every error (`NetworkNotFound`,
//! `IpAddressAlreadyAllocated`, …) and clients read the name from
//! `NeutronError.type`, so each error carries it to the HTTP edge.

use api::ApiError;
use common::Fault;
use db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// 404 — `kind` is Neutron's error name, e.g. `NetworkNotFound`.
    #[error("{message}")]
    NotFound { kind: &'static str, message: String },
    /// 409 — e.g. `NetworkInUse`, `IpAddressAlreadyAllocated`, `OverQuota`.
    #[error("{message}")]
    Conflict { kind: &'static str, message: String },
    /// 400 — e.g. `BadRequest`, `InvalidInput`, `InvalidAllocationPool`.
    #[error("{message}")]
    BadRequest { kind: &'static str, message: String },
    /// 403 — e.g. `PolicyNotAuthorized`.
    #[error("{message}")]
    Forbidden { kind: &'static str, message: String },
    /// 503 — e.g. `NoNetworkAvailable`: nothing left to allocate from.
    #[error("{message}")]
    Unavailable { kind: &'static str, message: String },
    /// 412 — a revision precondition (`If-Match`) did not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

impl NetworkError {
    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        NetworkError::NotFound { kind, message: message.into() }
    }

    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        NetworkError::Conflict { kind, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        NetworkError::BadRequest { kind: "BadRequest", message: message.into() }
    }

    pub fn invalid(kind: &'static str, message: impl Into<String>) -> Self {
        NetworkError::BadRequest { kind, message: message.into() }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        NetworkError::Forbidden { kind: "PolicyNotAuthorized", message: message.into() }
    }
}

impl From<NetworkError> for ApiError {
    fn from(e: NetworkError) -> ApiError {
        let message = e.to_string();
        let fault = match e {
            NetworkError::NotFound { kind, .. } => Fault::not_found(message).with_kind(kind),
            NetworkError::Conflict { kind, .. } => Fault::conflict(message).with_kind(kind),
            NetworkError::BadRequest { kind, .. } => Fault::bad_request(message).with_kind(kind),
            NetworkError::Forbidden { kind, .. } => Fault::forbidden(message).with_kind(kind),
            NetworkError::Unavailable { kind, .. } => Fault::new(503, message).with_kind(kind),
            NetworkError::PreconditionFailed(_) => Fault::new(412, message).with_kind("RevisionNumberConstraintFailed"),
            NetworkError::Db(db) if db.is_unique_violation() => {
                Fault::conflict(format!("Conflict: {db}")).with_kind("Conflict")
            }
            NetworkError::Db(db) if db.is_unavailable() => {
                Fault::unavailable(format!("The database is unavailable; try again later: {db}"))
                    .with_kind("ServiceUnavailable")
            }
            NetworkError::Db(_) => Fault::internal(format!("Request Failed: internal server error: {message}")),
        };
        ApiError(fault)
    }
}
