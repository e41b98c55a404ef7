//! Database access shared by every service: one pool per service database, chosen by
//! an oslo.db-style URL (`[database] connection`), and an ordered list of migrations
//! applied at start. Queries are written once with `?` placeholders in the SQL subset
//! SQLite, MariaDB and PostgreSQL share; [`Db::sql`] adapts the placeholders.

mod migrate;
pub mod records;
mod row;

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use tokio::sync::{Mutex, MutexGuard};

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
    #[error("{0:?} databases are recognised but their driver is not built into this ferrostack yet")]
    DriverNotBuilt(Dialect),
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
    /// SQLite allows one writer at a time and fails rather than waits when two
    /// deferred transactions both upgrade to writing; writers queue here instead.
    write_lock: Mutex<()>,
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
        sqlx::any::install_default_drivers();
        let (dialect, url) = normalize_url(url)?;
        // The schema and queries are written for all three; only SQLite's driver
        // is compiled in so far.
        if dialect != Dialect::Sqlite {
            return Err(DbError::DriverNotBuilt(dialect));
        }
        let max = if dialect == Dialect::Sqlite && url.contains(":memory:") { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(if max == 1 { 1 } else { 0 })
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(Db { pool, dialect, write_lock: Mutex::new(()) })
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

    /// Starts a write transaction (serialised among writers on SQLite).
    pub async fn begin_write(&self) -> Result<WriteTx<'_>, DbError> {
        let guard = match self.dialect {
            Dialect::Sqlite => Some(self.write_lock.lock().await),
            _ => None,
        };
        let tx = self.pool.begin().await?;
        Ok(WriteTx { tx, _guard: guard })
    }

    /// Applies the migrations not applied yet, in order; see [`Migration`].
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<(), DbError> {
        migrate::run(self, migrations).await
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
