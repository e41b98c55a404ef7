//! Image errors, as Glance reports them.

use api::ApiError;
use common::Fault;
use db::DbError;

use crate::files::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMedia(String),
    /// A `Range` the data cannot satisfy (416).
    #[error("{0}")]
    RangeNotSatisfiable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
    /// Already in the API's terms (a malformed body, say).
    #[error("{}", .0 .0.message)]
    Api(ApiError),
}

impl From<ApiError> for ImageError {
    fn from(e: ApiError) -> ImageError {
        ImageError::Api(e)
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Handlers return `Result<_, ImageError>`; the answer is the fault it maps to.
impl axum::response::IntoResponse for ImageError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> ApiError {
        let m = e.to_string();
        ApiError(match e {
            ImageError::NotFound(_) => Fault::not_found(m),
            ImageError::BadRequest(_) => Fault::bad_request(m),
            ImageError::Forbidden(_) => Fault::forbidden(m),
            ImageError::Conflict(_) => Fault::conflict(m),
            ImageError::Gone(_) => Fault::new(410, m),
            ImageError::TooLarge(_) | ImageError::Store(StoreError::TooLarge(_)) => Fault::new(413, m),
            ImageError::UnsupportedMedia(_) => Fault::new(415, m),
            ImageError::RangeNotSatisfiable(_) => Fault::new(416, m),
            ImageError::Store(StoreError::Upload(_)) => Fault::bad_request(m),
            ImageError::Db(ref d) if d.is_unavailable() => Fault::unavailable(m),
            ImageError::Store(_) | ImageError::Db(_) => Fault::internal(m),
            ImageError::Api(e) => e.0,
        })
    }
}
