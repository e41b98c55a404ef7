//! Migrations: each service lists its schema changes in order; the runner applies the
//! ones a database has not seen, each in its own transaction, and records them.

use std::borrow::Cow;

use sqlx::Executor;

use crate::{Db, DbError, Dialect};

/// One schema change. Statements use the SQL that SQLite, MariaDB and PostgreSQL
/// share: `VARCHAR(n)` for ids and names (MariaDB cannot index `TEXT`), `TEXT` for
/// blobs, `BIGINT` for integers, booleans and timestamps (microseconds). One
/// phrase differs: `id INTEGER PRIMARY KEY`, a generated id (SQLite's rowid),
/// is written `AUTO_INCREMENT` or `BIGSERIAL` for the other two (see [`ddl`]).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub statements: &'static [&'static str],
}

pub(crate) async fn run(db: &Db, migrations: &[Migration]) -> Result<(), DbError> {
    // Processes starting together on one server take turns: the first applies
    // what is missing, the others then find it applied. The lock belongs to
    // this connection and goes with it.
    // (SQLite needs none: one process opens a file, and an in-memory pool
    // has a single connection, which `apply` needs.)
    if db.dialect() == Dialect::Sqlite {
        return apply(db, migrations).await;
    }
    let mut lock = db.pool().acquire().await?;
    if db.dialect() == Dialect::MySql {
        let got: Option<i64> =
            sqlx::query_scalar("SELECT GET_LOCK('ferrostack_migrate', 600)").fetch_one(&mut *lock).await?;
        if got != Some(1) {
            return Err(DbError::Sqlx(sqlx::Error::PoolTimedOut));
        }
    } else {
        lock.execute("SELECT pg_advisory_lock(7300733)").await?;
    }
    let result = apply(db, migrations).await;
    let release = if db.dialect() == Dialect::MySql {
        "DO RELEASE_LOCK('ferrostack_migrate')"
    } else {
        "SELECT pg_advisory_unlock(7300733)"
    };
    if let Err(e) = lock.execute(release).await {
        // The lock goes with its connection: do not hand that one back.
        tracing::warn!(error = %e, "could not release the migration lock; closing its connection");
        lock.detach();
    }
    result
}

async fn apply(db: &Db, migrations: &[Migration]) -> Result<(), DbError> {
    db.pool()
        .execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                description VARCHAR(255) NOT NULL,
                applied_at BIGINT NOT NULL)",
        )
        .await?;
    // The row every write transaction locks on MariaDB and PostgreSQL (see
    // `Db::begin_write`); SQLite has no use for it but keeps the schema alike.
    db.pool().execute("CREATE TABLE IF NOT EXISTS write_serial (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)").await?;
    let rows: Vec<i64> = sqlx::query_scalar("SELECT id FROM write_serial").fetch_all(db.pool()).await?;
    if rows.is_empty() {
        db.pool().execute("INSERT INTO write_serial (id, n) VALUES (1, 0)").await?;
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(db.pool()).await?;
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        let fail = |source| DbError::Migration { version: m.version, description: m.description.into(), source };
        let mut w = db.begin_write().await?;
        for stmt in m.statements {
            match w.conn().execute(ddl(db.dialect(), stmt).as_ref()).await {
                Ok(_) => {}
                Err(e) if db.dialect() == Dialect::MySql && already_made(&e) => {
                    tracing::warn!(version = m.version, error = %e, "a statement an interrupted migration applied; going on");
                }
                Err(e) => return Err(fail(e)),
            }
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

/// MariaDB commits each DDL statement by itself, so a migration a crash
/// interrupted may have made some of its tables, columns and indexes: when it
/// runs again, those statements answer that what they make exists (1050,
/// 1060, 1061), and the rest goes on. (Its other statements are updates that
/// can run twice.)
fn already_made(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(e) = e else { return false };
    e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().is_some_and(|e| matches!(e.number(), 1050 | 1060 | 1061))
}

/// `stmt` in the dialect of `dialect`: SQLite's `INTEGER PRIMARY KEY` (a rowid,
/// generated when an insert leaves it out) becomes the others' generated id.
fn ddl(dialect: Dialect, stmt: &str) -> Cow<'_, str> {
    const ROWID: &str = "INTEGER PRIMARY KEY";
    match dialect {
        Dialect::Sqlite => Cow::Borrowed(stmt),
        Dialect::MySql => Cow::Owned(stmt.replace(ROWID, "BIGINT AUTO_INCREMENT PRIMARY KEY")),
        Dialect::Postgres => Cow::Owned(stmt.replace(ROWID, "BIGSERIAL PRIMARY KEY")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the MariaDB of FERROSTACK_TEST_DATABASE_SERVER (scripts/test), if set.
    #[tokio::test]
    async fn a_migration_a_crash_interrupted_on_mariadb_finishes_when_run_again() {
        let Some(server) = std::env::var("FERROSTACK_TEST_DATABASE_SERVER").ok().filter(|s| s.starts_with("mysql"))
        else {
            return;
        };
        let url = Db::ensure_database(&server, "fst_migrate_interrupted").await.unwrap();
        let db = Db::connect(&url).await.unwrap();
        db.pool().execute("DROP TABLE IF EXISTS b").await.unwrap();
        db.pool().execute("DROP TABLE IF EXISTS a").await.unwrap();
        db.pool().execute("DROP TABLE IF EXISTS schema_migrations").await.unwrap();
        const M: &[Migration] = &[Migration {
            version: 1,
            description: "two tables and an index",
            statements: &[
                "CREATE TABLE a (id VARCHAR(64) PRIMARY KEY, n BIGINT NOT NULL)",
                "CREATE INDEX a_n ON a (n)",
                "CREATE TABLE b (id VARCHAR(64) PRIMARY KEY)",
            ],
        }];
        // What a crash after the first two statements leaves: their DDL committed.
        db.pool().execute(M[0].statements[0]).await.unwrap();
        db.pool().execute(M[0].statements[1]).await.unwrap();
        db.migrate(M).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(db.pool()).await.unwrap();
        assert_eq!(versions, vec![1]);
        db.pool().execute("INSERT INTO b (id) VALUES ('x')").await.unwrap();
        db.pool().execute("DROP DATABASE fst_migrate_interrupted").await.unwrap();
    }

    #[test]
    fn generated_ids_are_written_per_dialect() {
        let t = "CREATE TABLE t (id INTEGER PRIMARY KEY, n BIGINT)";
        assert_eq!(ddl(Dialect::Sqlite, t), t);
        assert_eq!(ddl(Dialect::MySql, t), "CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, n BIGINT)");
        assert_eq!(ddl(Dialect::Postgres, t), "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, n BIGINT)");
    }
}
