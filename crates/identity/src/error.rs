//! Identity's errors, and how each reaches a client (Keystone's status codes and
//! messages).

use api::ApiError;
use db::DbError;

use crate::fernet_keys::KeyError;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("Could not find {kind}: {id}.")]
    NotFound { kind: &'static str, id: String },
    #[error("Conflict occurred attempting to store {kind} - {detail}")]
    Conflict { kind: &'static str, detail: String },
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

impl IdentityError {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        IdentityError::NotFound { kind, id: id.into() }
    }

    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        IdentityError::Conflict { kind, detail: detail.into() }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        IdentityError::Validation(message.into())
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> ApiError {
        match e {
            IdentityError::NotFound { .. } => ApiError::not_found(e.to_string()),
            IdentityError::Conflict { .. } => ApiError::conflict(e.to_string()),
            IdentityError::Validation(m) => ApiError::bad_request(m),
            IdentityError::Unauthorized(m) => ApiError::unauthorized(m),
            IdentityError::Forbidden(m) => ApiError::forbidden(m),
            IdentityError::Db(e) if e.is_unique_violation() => {
                ApiError::conflict(format!("Conflict occurred attempting to store the entity: {e}"))
            }
            IdentityError::Db(e) if e.is_unavailable() => {
                ApiError(common::Fault::unavailable(format!("The database is unavailable; try again later: {e}")))
            }
            IdentityError::Db(e) => ApiError::internal(format!(
                "An unexpected error prevented the server from fulfilling your request: {e}"
            )),
            IdentityError::Keys(e) => ApiError::internal(format!(
                "An unexpected error prevented the server from fulfilling your request: {e}"
            )),
        }
    }
}
