//! Typed column access that reports which column was wrong instead of panicking.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::DbError;

pub trait RowExt {
    fn str(&self, column: &str) -> Result<String, DbError>;
    fn opt_str(&self, column: &str) -> Result<Option<String>, DbError>;
    fn int(&self, column: &str) -> Result<i64, DbError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, DbError>;
    /// Booleans are stored as 0/1 integers, the form all three databases share.
    fn flag(&self, column: &str) -> Result<bool, DbError>;
}

fn column_error(column: &str, e: sqlx::Error) -> DbError {
    DbError::Column { column: column.into(), reason: e.to_string() }
}

impl RowExt for AnyRow {
    fn str(&self, column: &str) -> Result<String, DbError> {
        self.opt_str(column)?.ok_or_else(|| DbError::Column { column: column.into(), reason: "is NULL".into() })
    }

    fn opt_str(&self, column: &str) -> Result<Option<String>, DbError> {
        match self.try_get::<Option<String>, _>(column) {
            Ok(s) => Ok(s),
            // MariaDB marks text in a binary collation (utf8mb4_bin, which keeps
            // names case-sensitive as on SQLite and PostgreSQL) as binary, and
            // sqlx then hands it over as bytes.
            Err(sqlx::Error::ColumnDecode { .. }) => {
                let bytes: Option<Vec<u8>> = self.try_get(column).map_err(|e| column_error(column, e))?;
                bytes
                    .map(String::from_utf8)
                    .transpose()
                    .map_err(|e| DbError::Column { column: column.into(), reason: e.to_string() })
            }
            Err(e) => Err(column_error(column, e)),
        }
    }

    fn int(&self, column: &str) -> Result<i64, DbError> {
        self.try_get(column).map_err(|e| column_error(column, e))
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, DbError> {
        self.try_get(column).map_err(|e| column_error(column, e))
    }

    fn flag(&self, column: &str) -> Result<bool, DbError> {
        Ok(self.int(column)? != 0)
    }
}
