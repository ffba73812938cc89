//! carehub's durable store: versioned FHIR resources with full history, tombstones for deletes,
//! optimistic locking, search indexes and atomic multi-resource writes, on SQLite (embedded) or
//! PostgreSQL, through one code path on sqlx's `Any` driver.
//!
//! **Architecture Invariant:** this crate is the only one that speaks SQL. It receives resources
//! as JSON values and their search index entries already extracted; it knows FHIR only as far as
//! ids, versions and the search data model of `carehub_fhir::search`.
//!
//! Writes go through writer tasks ([`writer`]: one on SQLite, several on PostgreSQL), each of
//! which runs many callers' units of work in one database transaction, each inside its own
//! savepoint, and commits them together:
//! group commit, so durable throughput is bounded by the disk's fsync rate divided by the batch,
//! not by one fsync per request. A caller hears back only after the commit.

mod cache;
mod counters;
mod schema;
mod search;
mod writer;

use std::str::FromStr;
use std::sync::Arc;

use serde_json::Value;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

pub use schema::Dialect;
pub use search::{SearchPage, SearchResult, decode_cursor};
pub use writer::{BoxFuture, Expect, NewResource, Tx};

pub mod testing;

/// What went wrong in the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The resource does not exist (never did).
    #[error("{resource_type}/{id} is not known")]
    NotFound {
        /// The resource type.
        resource_type: String,
        /// The id.
        id: String,
    },
    /// The resource was deleted; `version` is the tombstone's version.
    #[error("{resource_type}/{id} was deleted")]
    Gone {
        /// The resource type.
        resource_type: String,
        /// The id.
        id: String,
        /// The version of the deletion.
        version: i64,
    },
    /// An `If-Match` precondition failed: the resource has another version now.
    #[error(
        "version conflict on {resource_type}/{id}: expected version {expected}, current is {current}"
    )]
    VersionConflict {
        /// The resource type.
        resource_type: String,
        /// The id.
        id: String,
        /// What the client expected.
        expected: i64,
        /// What is stored.
        current: i64,
    },
    /// A create named an id that exists already.
    #[error("{resource_type}/{id} already exists")]
    AlreadyExists {
        /// The resource type.
        resource_type: String,
        /// The id.
        id: String,
    },
    /// The write met a concurrent one on the same resources and the database gave up on it
    /// (PostgreSQL: a deadlock between two writers' transactions, or a serialization failure);
    /// nothing of it was written, and the same request may be sent again.
    #[error("the write met a concurrent write of the same resources; nothing was written")]
    Contended,
    /// A paging cursor could not be read.
    #[error("the paging cursor is not valid: {0}")]
    BadCursor(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),
    /// The writer task has stopped (the store is shutting down).
    #[error("the store is shutting down")]
    Closed,
    /// The database could not be reached for a write; nothing was written.
    #[error("the database is not available; nothing was written")]
    Unavailable,
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> StoreError {
        // SQLSTATE 40P01 deadlock_detected, 40001 serialization_failure.
        let contended = matches!(&err, sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("40P01" | "40001")));
        if contended {
            return StoreError::Contended;
        }
        StoreError::Database(Arc::new(err))
    }
}

/// Result alias for store calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One stored version of a resource.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The resource type.
    pub resource_type: String,
    /// The id.
    pub id: String,
    /// The version number, from 1.
    pub version: i64,
    /// When it was written, in microseconds since the epoch.
    pub last_updated: i64,
    /// The JSON as stored (with `id` and `meta` set), or `None` for a deletion.
    pub body: Option<String>,
}

impl Versioned {
    /// Whether this version is a deletion.
    pub fn is_deleted(&self) -> bool {
        self.body.is_none()
    }
}

/// Where a store lives and how many connections it may use.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` or `postgres://user@host/db`.
    pub url: String,
    /// Pool size for reads (the writers hold theirs on top).
    pub max_connections: u32,
    /// Writer tasks, each committing its own batches (PostgreSQL; SQLite always has one).
    pub writers: u32,
    /// Current versions kept in memory: for every read on SQLite, and for reads that accept a
    /// recent copy ([`Store::read_recent`]) on both databases; 0 turns the cache off.
    pub cache_capacity: usize,
}

impl StoreConfig {
    /// A configuration with the default pool and cache sizes.
    pub fn new(url: impl Into<String>) -> StoreConfig {
        StoreConfig {
            url: url.into(),
            max_connections: 8,
            writers: 4,
            cache_capacity: 20_000,
        }
    }
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    writer: writer::Handle,
    cache: Option<Arc<cache::ReadCache>>,
    /// Whether the cache follows every write to the database (SQLite: one process, one
    /// writer), so that plain reads may trust it.
    cache_is_exact: bool,
    /// The schema version the database had before this open migrated it (0: a new database).
    schema_on_open: i64,
}

/// The schema version from which index rows include composite parameters' tuples; a database
/// that predates it needs its FHIR resources indexed again ([`Store::reindex`]).
pub const COMPOSITE_INDEX_SCHEMA: i64 = 3;

/// Index entries for a resource, as the partition's indexer computes them.
pub type IndexFn = Arc<dyn Fn(&Value) -> Vec<carehub_fhir::search::IndexEntry> + Send + Sync>;

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub async fn open(config: &StoreConfig) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if config.url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        };
        let options = AnyConnectOptions::from_str(&config.url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections.max(2) + config.writers.max(1))
            .min_connections(1)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers run beside the writer; FULL syncs the WAL on every
                        // commit, so an acknowledged write survives a crash or power cut.
                        // Reads go through a memory map of the whole file instead of a read call
                        // per page (search 20-30% more throughput at 16 connections); the build
                        // raises SQLite's 2 GiB ceiling on the map (`.cargo/config.toml`).
                        sqlx::raw_sql(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = 10000; PRAGMA cache_size = -8192; \
                             PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 274877906944;",
                        )
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let schema_on_open = migrate(&pool, dialect).await?;
        // Only SQLite has a single writer whose commits the cache can follow exactly; on
        // PostgreSQL the cache serves only reads that accept a recent copy.
        let cache_is_exact = dialect == Dialect::Sqlite;
        let cache = (config.cache_capacity > 0)
            .then(|| Arc::new(cache::ReadCache::new(config.cache_capacity)));
        let writer = writer::spawn(pool.clone(), dialect, cache.clone(), config.writers);
        Ok(Store {
            pool,
            dialect,
            writer,
            cache,
            cache_is_exact,
            schema_on_open,
        })
    }

    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Whether the database existed before this open at a schema older than `schema`: its
    /// data then lacks what that schema added (see [`COMPOSITE_INDEX_SCHEMA`]).
    pub fn predates(&self, schema: i64) -> bool {
        self.schema_on_open > 0 && self.schema_on_open < schema
    }

    /// Computes the index rows of every live resource of a partition again, a few hundred per
    /// unit of work, and returns how many were indexed. Bodies and versions do not change.
    pub async fn reindex(&self, base: &str, index: IndexFn) -> Result<usize> {
        self.reindex_where(base, None, index).await
    }

    /// As [`Store::reindex`], for the resources of one type only.
    pub async fn reindex_type(
        &self,
        base: &str,
        resource_type: &str,
        index: IndexFn,
    ) -> Result<usize> {
        self.reindex_where(base, Some(resource_type), index).await
    }

    async fn reindex_where(
        &self,
        base: &str,
        resource_type: Option<&str>,
        index: IndexFn,
    ) -> Result<usize> {
        const CHUNK: i64 = 500;
        let mut after = 0;
        let mut total = 0;
        loop {
            let base = base.to_owned();
            let resource_type = resource_type.map(str::to_owned);
            let index = index.clone();
            let (count, last) = self
                .write(move |tx| {
                    Box::pin(async move {
                        tx.reindex(&base, resource_type.as_deref(), after, CHUNK, &*index)
                            .await
                    })
                })
                .await?;
            total += count;
            match last {
                Some(rid) => after = rid,
                None => return Ok(total),
            }
        }
    }

    /// Runs a unit of work atomically through the group-committing writer. The closure runs inside
    /// a savepoint: if it returns an error, everything it wrote is undone and the error returned;
    /// if it returns `Ok`, its writes are committed (with others') before this call returns.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx<'_>) -> writer::BoxFuture<'t, Result<T, E>> + Send + 'static,
    {
        self.writer.run(work).await
    }

    /// Adds new resources whose ids the caller has just made up (random UUIDs) to `base`,
    /// outside any unit of work: append-only records such as the AuditEvents of reads. All the
    /// appends queued for one commit are written together in a few multi-row statements, so
    /// under load they cost the writer little more than one. Returns once they are durable.
    pub async fn append(&self, base: &str, items: Vec<NewResource>) -> Result<()> {
        self.writer
            .append(vec![(base.to_owned(), items)])
            .await
            .map(|_| ())
    }

    /// As [`Store::append`], for new resources of several partitions that must be stored
    /// together or not at all (a transaction of plain creates and its AuditEvent): they go into
    /// one commit with the other appends queued for it, without a unit of work of their own.
    /// Returns what was stored, per part and in the order given, once it is durable.
    pub async fn append_all(
        &self,
        parts: Vec<(String, Vec<NewResource>)>,
    ) -> Result<Vec<Vec<Versioned>>> {
        self.writer.append(parts).await
    }

    /// The current version of a resource, including a tombstone if it was deleted.
    pub async fn read(
        &self,
        base: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Versioned>> {
        let exact_cache = self.cache.as_ref().filter(|_| self.cache_is_exact);
        let epoch = match exact_cache {
            Some(cache) => {
                if let Some(hit) = cache.get(base, resource_type, id) {
                    return Ok(Some((*hit).clone()));
                }
                Some(cache.epoch())
            }
            None => None,
        };
        let found = self.read_row(base, resource_type, id).await?;
        if let (Some(cache), Some(epoch), Some(version)) = (exact_cache, epoch, &found) {
            cache.fill(epoch, base, version);
        }
        Ok(found)
    }

    /// The current version of a resource as this process knew it at most `max_age` ago: for
    /// records read on every request that another process may change under this one
    /// (credentials revoked from the command line or on another node). A change made through
    /// this store is seen at once; one made elsewhere within `max_age`. Absent records are not
    /// cached, so a newly registered credential works at once everywhere.
    pub async fn read_recent(
        &self,
        base: &str,
        resource_type: &str,
        id: &str,
        max_age: std::time::Duration,
    ) -> Result<Option<Versioned>> {
        let Some(cache) = &self.cache else {
            return self.read_row(base, resource_type, id).await;
        };
        if let Some(hit) = cache.get_recent(base, resource_type, id, max_age) {
            return Ok(Some((*hit).clone()));
        }
        let epoch = cache.epoch();
        let found = self.read_row(base, resource_type, id).await?;
        if let Some(version) = &found {
            cache.fill(epoch, base, version);
        }
        Ok(found)
    }

    /// As [`Store::read`], always from the database: for records that another process may
    /// change under this one and that must never be stale (signing keys, object-store
    /// secrets), where [`Store::read_recent`] does not fit.
    pub async fn read_fresh(
        &self,
        base: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Versioned>> {
        self.read_row(base, resource_type, id).await
    }

    async fn read_row(
        &self,
        base: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Versioned>> {
        let row = sqlx::query(
            "SELECT c.version, c.last_updated, h.body FROM current c \
             JOIN history h ON h.rid = c.rid AND h.version = c.version \
             WHERE c.base = $1 AND c.rtype = $2 AND c.id = $3",
        )
        .bind(base)
        .bind(resource_type)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| versioned_from_row(&row, resource_type, id, 0))
            .transpose()
    }

    /// One version of a resource.
    pub async fn vread(
        &self,
        base: &str,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<Versioned>> {
        let row = sqlx::query(
            "SELECT h.version, h.last_updated, h.body FROM current c \
             JOIN history h ON h.rid = c.rid \
             WHERE c.base = $1 AND c.rtype = $2 AND c.id = $3 AND h.version = $4",
        )
        .bind(base)
        .bind(resource_type)
        .bind(id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| versioned_from_row(&row, resource_type, id, 0))
            .transpose()
    }

    /// History, newest first: of one resource (type and id), of a type (type only), or of the
    /// whole base. `since` keeps versions written at or after it (microseconds); `before_seq`
    /// continues a page; at most `limit` entries, plus the `seq` to continue from.
    pub async fn history(
        &self,
        request: &HistoryRequest<'_>,
    ) -> Result<(Vec<Versioned>, Option<i64>)> {
        let mut sql = String::from(
            "SELECT h.version, h.last_updated, h.body, c.rtype, c.id, h.seq FROM history h \
             JOIN current c ON c.rid = h.rid WHERE c.base = $1",
        );
        let mut next = 2;
        let mut push = |clause: &str, sql: &mut String| {
            sql.push_str(&clause.replace('?', &format!("${next}")));
            next += 1;
        };
        if request.resource_type.is_some() {
            push(" AND c.rtype = ?", &mut sql);
        }
        if request.id.is_some() {
            push(" AND c.id = ?", &mut sql);
        }
        if request.since.is_some() {
            push(" AND h.last_updated >= ?", &mut sql);
        }
        if request.before_seq.is_some() {
            push(" AND h.seq < ?", &mut sql);
        }
        sql.push_str(" ORDER BY h.seq DESC LIMIT ");
        sql.push_str(&(request.limit + 1).to_string());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(request.base);
        if let Some(resource_type) = request.resource_type {
            query = query.bind(resource_type);
        }
        if let Some(id) = request.id {
            query = query.bind(id);
        }
        if let Some(since) = request.since {
            query = query.bind(since);
        }
        if let Some(before) = request.before_seq {
            query = query.bind(before);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut entries = Vec::with_capacity(rows.len());
        let mut next_seq = None;
        for (index, row) in rows.iter().enumerate() {
            if index == request.limit {
                next_seq = entries.last().map(|(_, seq)| *seq);
                break;
            }
            let resource_type: String = row.try_get(3)?;
            let id: String = row.try_get(4)?;
            let seq: i64 = row.try_get(5)?;
            entries.push((versioned_from_row(row, &resource_type, &id, 0)?, seq));
        }
        Ok((entries.into_iter().map(|(v, _)| v).collect(), next_seq))
    }

    /// Runs a search; see [`search`] for the SQL it becomes.
    pub async fn search(
        &self,
        base: &str,
        query: &carehub_fhir::search::SearchQuery,
    ) -> Result<SearchPage> {
        let mut conn = self.pool.acquire().await?;
        search::run(&mut conn, self.dialect, base, query).await
    }

    /// Counts the live resources of a type (for `_summary=count` on an unfiltered search and for
    /// start-up reporting).
    pub async fn count(&self, base: &str, resource_type: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM current WHERE base = $1 AND rtype = $2 AND deleted = 0",
        )
        .bind(base)
        .bind(resource_type)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Checks that the database answers (for health endpoints).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// Waits for queued writes and closes the connections.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Which history to list.
#[derive(Debug, Clone, Default)]
pub struct HistoryRequest<'a> {
    /// The FHIR base.
    pub base: &'a str,
    /// Restrict to a type.
    pub resource_type: Option<&'a str>,
    /// Restrict to one resource (with `resource_type`).
    pub id: Option<&'a str>,
    /// Only versions written at or after this instant (microseconds).
    pub since: Option<i64>,
    /// Continue below this history position.
    pub before_seq: Option<i64>,
    /// Page size.
    pub limit: usize,
}

/// Builds a [`Versioned`] from columns `version, last_updated, body` starting at `offset`.
pub(crate) fn versioned_from_row(
    row: &sqlx::any::AnyRow,
    resource_type: &str,
    id: &str,
    offset: usize,
) -> Result<Versioned> {
    Ok(Versioned {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        version: row.try_get(offset)?,
        last_updated: row.try_get(offset + 1)?,
        body: row.try_get(offset + 2)?,
    })
}

/// Applies the migrations not yet applied; returns the version the database had before.
async fn migrate(pool: &AnyPool, dialect: Dialect) -> Result<i64> {
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS carehub_schema (version BIGINT NOT NULL)")
        .execute(&mut *conn)
        .await?;
    let applied: Option<i64> = sqlx::query("SELECT MAX(version) FROM carehub_schema")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let applied = applied.unwrap_or(0);
    for (index, migration) in dialect.migrations().iter().enumerate() {
        let version = index as i64 + 1;
        if version <= applied {
            continue;
        }
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
        let result = async {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*migration))
                .execute(&mut *conn)
                .await?;
            sqlx::query("INSERT INTO carehub_schema (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *conn)
                .await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
            }
            Err(err) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
                return Err(err.into());
            }
        }
    }
    Ok(applied)
}

/// The JSON of a resource with `id`, `meta.versionId` and `meta.lastUpdated` set as stored.
pub fn stamp(resource: &mut Value, id: &str, version: i64, last_updated: i64) {
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    // Rebuild so that resourceType, id and meta come first, as readers expect.
    let mut stamped = serde_json::Map::with_capacity(object.len() + 2);
    if let Some(resource_type) = object.remove("resourceType") {
        stamped.insert("resourceType".into(), resource_type);
    }
    object.remove("id");
    stamped.insert("id".into(), Value::String(id.to_owned()));
    let mut meta = match object.remove("meta") {
        Some(Value::Object(meta)) => meta,
        _ => serde_json::Map::new(),
    };
    meta.insert("versionId".into(), Value::String(version.to_string()));
    meta.insert(
        "lastUpdated".into(),
        Value::String(carehub_fhir::datetime::format_instant(last_updated)),
    );
    stamped.insert("meta".into(), Value::Object(meta));
    for (key, value) in std::mem::take(object) {
        stamped.insert(key, value);
    }
    *object = stamped;
}
