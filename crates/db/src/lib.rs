//! Database access shared by every service: one pool per service database, chosen by
//! an oslo.db-style URL (`[database] connection`), and an ordered list of migrations
//! applied at start. Queries are written once with `?` placeholders in the SQL subset
//! SQLite, MariaDB and PostgreSQL share; [`Db::sql`] adapts the placeholders.

mod connection;
mod migrate;
pub mod records;
mod row;

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use tokio::sync::{Mutex, MutexGuard};

pub use connection::{Connection, OPTS as DATABASE_OPTS};
pub use migrate::Migration;
pub use row::RowExt;
pub use sqlx::any::{AnyArguments, AnyRow};
pub use sqlx::{query, query_scalar, Any, AnyConnection, Row, Transaction};

/// A connection borrowed from a pool.
pub type PoolConnection = sqlx::pool::PoolConnection<Any>;

/// A statement with its arguments bound, ready to run on any of our databases.
pub type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: expected sqlite://, mysql:// or postgresql://")]
    UnsupportedUrl(String),
    #[error("database name {0:?}: only letters, digits and underscores")]
    BadName(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration {version} ({description}) failed: {source}")]
    Migration { version: i64, description: String, source: sqlx::Error },
    #[error("column {column}: {reason}")]
    Column { column: String, reason: String },
}

impl DbError {
    /// Whether the statement broke a unique constraint (a duplicate name, say).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlx(sqlx::Error::Database(e)) => {
                e.is_unique_violation() || e.message().contains("UNIQUE constraint failed")
            }
            _ => false,
        }
    }

    /// Whether the database could not be reached (down, restarting, or every
    /// connection busy past the pool's timeout) rather than refused the statement:
    /// an API answers 503 for these, and the same request later succeeds.
    pub fn is_unavailable(&self) -> bool {
        let DbError::Sqlx(e) = self else { return false };
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => true,
            sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
            // SQLSTATE class 08 is a connection exception on every engine; 57P0x
            // is PostgreSQL shutting down or starting; MariaDB says the rest
            // (shutdown in progress, connection killed) only in the message.
            // 55P03: PostgreSQL's lock_timeout, the twin of MariaDB's lock wait
            // timeout (another writer held the database too long).
            sqlx::Error::Database(d) => {
                let code = d.code().unwrap_or_default();
                code.starts_with("08") || code.starts_with("57P0") || code == "55P03" || is_lost_server(d.message())
            }
            _ => false,
        }
    }
}

fn is_lost_server(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "shutdown in progress",
        "server has gone away",
        "lost connection",
        "connection was killed",
        "too many connections",
        "lock wait timeout exceeded",
    ]
    .iter()
    .any(|s| m.contains(s))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    MySql,
    Postgres,
}

/// A service's database.
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
    /// This process's writers queue here; see [`Db::begin_write`].
    write_lock: Mutex<()>,
    /// How long a writer waits for its turn or a connection.
    pool_timeout: Duration,
}

/// A write transaction; commits with [`WriteTx::commit`], rolls back on drop.
pub struct WriteTx<'a> {
    pub tx: Transaction<'static, Any>,
    _guard: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await?;
        Ok(())
    }

    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Db {
    /// Connects to an oslo.db-style URL: `sqlite:////abs/path.db`, `sqlite:///rel.db`,
    /// `sqlite://` (in memory), `mysql+pymysql://u:p@host/db`, `postgresql://…`.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        Db::connect_with_timeout(url, Duration::from_secs(30)).await
    }

    /// [`Db::connect`], a statement waiting at most `pool_timeout` for a connection.
    pub async fn connect_with_timeout(url: &str, pool_timeout: Duration) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = normalize_url(url)?;
        let max = if dialect == Dialect::Sqlite && url.contains(":memory:") { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(if max == 1 { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(pool_timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    if dialect == Dialect::MySql {
                        // ANSI: double quotes name identifiers (`"blob"`) and `||`
                        // concatenates, as in SQLite and PostgreSQL; strict: a value
                        // that does not fit is an error, not a silent truncation.
                        conn.execute("SET SESSION sql_mode = 'ANSI,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'").await?;
                        // Each statement sees what others committed before it, as on
                        // PostgreSQL: a writer that waited its turn (`begin_write`)
                        // then reads sees every write made before its turn.
                        conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED").await?;
                    }
                    // A writer waits for its turn (the row lock of `begin_write`)
                    // as long as for a connection, then answers 503.
                    let wait = pool_timeout.as_secs().max(1);
                    if dialect == Dialect::MySql {
                        conn.execute(format!("SET SESSION innodb_lock_wait_timeout = {wait}").as_str()).await?;
                    }
                    if dialect == Dialect::Postgres {
                        conn.execute(format!("SET lock_timeout = '{wait}s'").as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(Db { pool, dialect, write_lock: Mutex::new(()), pool_timeout })
    }

    /// Creates the database `name` on the server `server_url` names (an oslo.db
    /// URL of a user allowed to create databases, without a database) unless it
    /// exists; returns the URL of the new database for the same user.
    pub async fn ensure_database(server_url: &str, name: &str) -> Result<String, DbError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(DbError::BadName(name.into()));
        }
        sqlx::any::install_default_drivers();
        let base = server_url.trim_end_matches('/');
        let (dialect, url) = normalize_url(base)?;
        // PostgreSQL always connects to some database: its maintenance one.
        let url = if dialect == Dialect::Postgres { format!("{url}/postgres") } else { url };
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await?;
        match dialect {
            Dialect::Sqlite => return Err(DbError::UnsupportedUrl(server_url.into())),
            Dialect::MySql => {
                conn.execute(
                    format!("CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").as_str(),
                )
                .await?;
            }
            Dialect::Postgres => {
                let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                    .bind(name)
                    .fetch_optional(&mut conn)
                    .await?;
                if exists.is_none() {
                    conn.execute(format!("CREATE DATABASE {name}").as_str()).await?;
                }
            }
        }
        Ok(format!("{base}/{name}"))
    }

    /// A SQLite database in a file, created if absent.
    pub async fn open_sqlite_file(path: &Path) -> Result<Db, DbError> {
        Db::connect(&format!("sqlite:///{}", path.display())).await
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The statement with `?` placeholders rewritten for this database.
    pub fn sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        match self.dialect {
            Dialect::Postgres => Cow::Owned(numbered_placeholders(sql)),
            _ => Cow::Borrowed(sql),
        }
    }

    /// A query for a fixed statement, placeholders adapted for this database.
    pub fn q<'q>(&self, sql: &'static str) -> Query<'q> {
        sqlx::query(self.static_sql(sql))
    }

    /// `sql` adapted for this database. Statements are string literals, a finite
    /// set, so the PostgreSQL forms are made once and kept.
    pub fn static_sql(&self, sql: &'static str) -> &'static str {
        if self.dialect != Dialect::Postgres {
            return sql;
        }
        static CACHE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<&'static str, &'static str>>> =
            std::sync::OnceLock::new();
        let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        cache.entry(sql).or_insert_with(|| Box::leak(numbered_placeholders(sql).into_boxed_str()))
    }

    /// Starts a write transaction. Writers take turns, one at a time per
    /// database, as SQLite makes them: in this process they queue on a mutex
    /// (SQLite would fail, not wait, when two deferred transactions both start
    /// writing); across processes sharing a MariaDB or PostgreSQL database they
    /// queue on the lock of `write_serial`'s one row, released when the
    /// transaction ends, even by a crash. The services' read-then-write steps
    /// (a free address, a host with room) rely on this; with READ COMMITTED,
    /// each sees every write committed before its turn.
    pub async fn begin_write(&self) -> Result<WriteTx<'_>, DbError> {
        // Bounded like a connection: with the database down, the writers
        // queued behind the one waiting for it answer 503 in time too.
        let guard = tokio::time::timeout(self.pool_timeout, self.write_lock.lock())
            .await
            .map_err(|_| DbError::Sqlx(sqlx::Error::PoolTimedOut))?;
        let mut tx = self.pool.begin().await?;
        if self.dialect != Dialect::Sqlite {
            tx.execute("SELECT n FROM write_serial WHERE id = 1 FOR UPDATE").await?;
        }
        Ok(WriteTx { tx, _guard: Some(guard) })
    }

    /// Applies the migrations not applied yet, in order; see [`Migration`].
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<(), DbError> {
        migrate::run(self, migrations).await
    }

    /// Runs an insert inside a transaction on `conn`; `Ok(false)` if a unique
    /// key refused it, and the transaction goes on either way. (PostgreSQL
    /// aborts a transaction at its first error, so there the insert runs in a
    /// savepoint that a refusal rolls back.)
    pub async fn insert_unless_duplicate(&self, conn: &mut AnyConnection, q: Query<'_>) -> Result<bool, DbError> {
        let guarded = self.dialect == Dialect::Postgres;
        if guarded {
            conn.execute("SAVEPOINT insert_unless_duplicate").await?;
        }
        match q.execute(&mut *conn).await.map_err(DbError::from) {
            Ok(_) => {
                if guarded {
                    conn.execute("RELEASE SAVEPOINT insert_unless_duplicate").await?;
                }
                Ok(true)
            }
            Err(e) if e.is_unique_violation() => {
                if guarded {
                    conn.execute("ROLLBACK TO SAVEPOINT insert_unless_duplicate").await?;
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn fetch_all(&self, q: Query<'_>) -> Result<Vec<AnyRow>, DbError> {
        Ok(q.fetch_all(&self.pool).await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn normalize_url(url: &str) -> Result<(Dialect, String), DbError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| DbError::UnsupportedUrl(url.into()))?;
    // oslo.db names the Python driver after a `+`; sqlx picks its own.
    let scheme = scheme.split('+').next().unwrap_or(scheme);
    match scheme {
        "sqlite" => {
            // oslo.db: `sqlite:///rel.db` is relative, `sqlite:////abs.db` absolute,
            // `sqlite://` is in memory.
            let path = rest.strip_prefix('/').unwrap_or(rest);
            if path.is_empty() || path == ":memory:" {
                Ok((Dialect::Sqlite, "sqlite::memory:".into()))
            } else {
                let (path, _query) = path.split_once('?').unwrap_or((path, ""));
                Ok((Dialect::Sqlite, format!("sqlite://{path}?mode=rwc")))
            }
        }
        "mysql" | "mariadb" => Ok((Dialect::MySql, format!("mysql://{rest}"))),
        "postgres" | "postgresql" => Ok((Dialect::Postgres, format!("postgres://{rest}"))),
        _ => Err(DbError::UnsupportedUrl(url.into())),
    }
}

/// `a = ? AND b = ?` → `a = $1 AND b = $2`, leaving quoted text alone.
fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oslo_urls_map_to_sqlx_urls() {
        let (d, u) = normalize_url("sqlite:////var/lib/k.db").unwrap();
        assert_eq!((d, u.as_str()), (Dialect::Sqlite, "sqlite:///var/lib/k.db?mode=rwc"));
        let (_, u) = normalize_url("sqlite:///rel.db").unwrap();
        assert_eq!(u, "sqlite://rel.db?mode=rwc");
        let (_, u) = normalize_url("sqlite://").unwrap();
        assert_eq!(u, "sqlite::memory:");
        let (d, u) = normalize_url("mysql+pymysql://k:pw@db/keystone").unwrap();
        assert_eq!((d, u.as_str()), (Dialect::MySql, "mysql://k:pw@db/keystone"));
        assert!(normalize_url("oracle://x").is_err());
        assert!(normalize_url("nonsense").is_err());
    }

    #[test]
    fn postgres_placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered_placeholders("SELECT '?' FROM t WHERE a = ? AND b = ?"),
            "SELECT '?' FROM t WHERE a = $1 AND b = $2"
        );
    }

    #[tokio::test]
    async fn write_transactions_commit_and_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite_file(&dir.path().join("t.db")).await.unwrap();
        db.migrate(&[Migration {
            version: 1,
            description: "t",
            statements: &["CREATE TABLE t (id VARCHAR(64) PRIMARY KEY, n BIGINT NOT NULL)"],
        }])
        .await
        .unwrap();

        let mut w = db.begin_write().await.unwrap();
        query(&db.sql("INSERT INTO t (id, n) VALUES (?, ?)")).bind("a").bind(1i64).execute(w.conn()).await.unwrap();
        w.commit().await.unwrap();

        let mut w = db.begin_write().await.unwrap();
        query(&db.sql("INSERT INTO t (id, n) VALUES (?, ?)")).bind("b").bind(2i64).execute(w.conn()).await.unwrap();
        drop(w); // rolled back

        let dup = query(&db.sql("INSERT INTO t (id, n) VALUES (?, ?)"))
            .bind("a")
            .bind(3i64)
            .execute(db.pool())
            .await
            .map_err(DbError::from)
            .unwrap_err();
        assert!(dup.is_unique_violation(), "{dup}");

        let rows = db.fetch_all(query("SELECT id, n FROM t")).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].str("id").unwrap(), "a");
        assert_eq!(rows[0].int("n").unwrap(), 1);
    }
}
