//! Compute errors, as Nova reports them.

use api::ApiError;
use common::Fault;
use db::DbError;

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
    /// Another service or this one's database is down for now: the API
    /// answers 503, a saga step tries again.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// The driver cannot do this at all (501).
    #[error("{0}")]
    NotImplemented(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Bus(bus::BusError),
    /// Already in the API's terms (a malformed body, say).
    #[error("{}", .0 .0.message)]
    Api(ApiError),
}

pub type Result<T, E = ComputeError> = std::result::Result<T, E>;

impl From<ApiError> for ComputeError {
    fn from(e: ApiError) -> ComputeError {
        ComputeError::Api(e)
    }
}

impl From<ComputeError> for ApiError {
    fn from(e: ComputeError) -> ApiError {
        let m = e.to_string();
        ApiError(match e {
            ComputeError::NotFound(_) => Fault::not_found(m),
            ComputeError::BadRequest(_) => Fault::bad_request(m),
            ComputeError::Forbidden(_) | ComputeError::OverQuota(_) => Fault::forbidden(m),
            ComputeError::Unauthorized(_) => Fault::unauthorized(m),
            ComputeError::Conflict(_) => Fault::conflict(m),
            ComputeError::OverLimit(_) => Fault::new(413, m),
            ComputeError::NoValidHost(_) => Fault::bad_request(m),
            ComputeError::Upstream(_) => Fault::new(503, m),
            ComputeError::Unavailable(_) => Fault::unavailable(m),
            ComputeError::NotImplemented(_) => Fault::new(501, m),
            ComputeError::Db(ref d) if d.is_unavailable() => Fault::unavailable(m),
            ComputeError::Bus(ref b) if b.is_unavailable() => Fault::unavailable(m),
            ComputeError::Internal(_) | ComputeError::Db(_) | ComputeError::Bus(_) => Fault::internal(m),
            ComputeError::Api(e) => e.0,
        })
    }
}

/// Handlers return `Result<_, ComputeError>`; the answer is the fault it maps to.
impl axum::response::IntoResponse for ComputeError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}

/// Errors carried over the bus keep their kind, so the API can answer with
/// the status the conductor or a host meant.
impl From<ComputeError> for bus::RemoteError {
    fn from(e: ComputeError) -> bus::RemoteError {
        let kind = match &e {
            ComputeError::NotFound(_) => "NotFound",
            ComputeError::BadRequest(_) => "BadRequest",
            ComputeError::Forbidden(_) => "Forbidden",
            ComputeError::Conflict(_) => "Conflict",
            ComputeError::OverQuota(_) => "OverQuota",
            ComputeError::OverLimit(_) => "OverLimit",
            ComputeError::NoValidHost(_) => "NoValidHost",
            ComputeError::Upstream(_) => "Upstream",
            ComputeError::Unavailable(_) => saga::UNAVAILABLE,
            // The conductor's database or broker is down: the API answers 503,
            // a saga step tries again.
            ComputeError::Db(d) if d.is_unavailable() => saga::UNAVAILABLE,
            ComputeError::Bus(b) if b.is_unavailable() => saga::UNAVAILABLE,
            _ => "Internal",
        };
        bus::RemoteError::new(kind, e.to_string())
    }
}

/// What the hosts and the clients of other services report keeps its kind.
impl From<compute_rpc::ComputeError> for ComputeError {
    fn from(e: compute_rpc::ComputeError) -> ComputeError {
        use compute_rpc::ComputeError as Shared;
        match e {
            Shared::NotFound(m) => ComputeError::NotFound(m),
            Shared::BadRequest(m) => ComputeError::BadRequest(m),
            Shared::Forbidden(m) => ComputeError::Forbidden(m),
            Shared::Unauthorized(m) => ComputeError::Unauthorized(m),
            Shared::Conflict(m) => ComputeError::Conflict(m),
            Shared::OverQuota(m) => ComputeError::OverQuota(m),
            Shared::OverLimit(m) => ComputeError::OverLimit(m),
            Shared::NoValidHost(m) => ComputeError::NoValidHost(m),
            Shared::Upstream(m) => ComputeError::Upstream(m),
            Shared::Unavailable(m) => ComputeError::Unavailable(m),
            Shared::Internal(m) | Shared::PortBindingFailed(m) => ComputeError::Internal(m),
            Shared::NotImplemented(m) => ComputeError::NotImplemented(m),
            Shared::Bus(e) => ComputeError::Bus(e),
        }
    }
}

/// A bus failure as a compute error: remote errors keep their kind.
pub fn from_bus(e: bus::BusError) -> ComputeError {
    compute_rpc::ComputeError::from(e).into()
}

impl From<bus::BusError> for ComputeError {
    fn from(e: bus::BusError) -> ComputeError {
        from_bus(e)
    }
}
