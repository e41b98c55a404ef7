//! Migrations: each service lists its schema changes in order; the runner applies the
//! ones a database has not seen, each in its own transaction, and records them.

use sqlx::Executor;

use crate::{Db, DbError};

/// One schema change. Statements use the SQL that SQLite, MariaDB and PostgreSQL
/// share: `VARCHAR(n)` for ids and names (MariaDB cannot index `TEXT`), `TEXT` for
/// blobs, `BIGINT` for integers, booleans and timestamps (microseconds).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub statements: &'static [&'static str],
}

pub(crate) async fn run(db: &Db, migrations: &[Migration]) -> Result<(), DbError> {
    db.pool()
        .execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                description VARCHAR(255) NOT NULL,
                applied_at BIGINT NOT NULL)",
        )
        .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(db.pool()).await?;
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        let fail = |source| DbError::Migration { version: m.version, description: m.description.into(), source };
        let mut w = db.begin_write().await?;
        for stmt in m.statements {
            w.conn().execute(*stmt).await.map_err(fail)?;
        }
        sqlx::query(&db.sql("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)"))
            .bind(m.version)
            .bind(m.description)
            .bind(common::time::now_micros())
            .execute(w.conn())
            .await
            .map_err(fail)?;
        w.commit().await?;
        tracing::info!(version = m.version, description = m.description, "applied migration");
    }
    Ok(())
}
