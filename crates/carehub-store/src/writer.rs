//! The writers, each with group commit.
//!
//! Callers send units of work (closures over a [`Tx`]) on a channel. A writer takes whatever is
//! queued (up to [`MAX_BATCH`]), opens one database transaction, runs each unit inside its own
//! savepoint (rolling back only that unit if it fails), commits once, and only then tells each
//! caller its result. Under load many requests share one fsync; with one client it is an ordinary
//! transaction per request. Appends (new records with fresh ids that no unit reads, such as the
//! AuditEvents of reads) skip the savepoints: all those queued for one commit are written
//! together in a few multi-row statements.
//!
//! SQLite allows one writer at a time, so it gets one writer task, which also serialises
//! conflicting writes. PostgreSQL gets several, taking batches from the same queue: while one
//! waits on its commit's round trips and fsync, the next batch is already running, and the
//! server's own group commit shares fsyncs between them. There, as between carehub nodes,
//! correctness rests on row locks, version checks and unique keys: a unit reads a current row
//! `FOR UPDATE`, so two units on one resource take turns (the second sees the first's version),
//! and the version check and unique keys catch what no lock covers (a create racing a create).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use carehub_fhir::search::{IndexEntry, IndexValue, SearchQuery, component_param};
use serde_json::Value;
use sqlx::AnyConnection;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Row};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::cache::ReadCache;
use crate::schema::Dialect;
use crate::{Result, StoreError, Versioned, stamp};

/// How many units of work one commit may carry.
pub(crate) const MAX_BATCH: usize = 256;

/// A boxed future borrowing the transaction.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a unit of work reports to the writer: whether to keep its writes, and how to tell its
/// caller the outcome once the commit has (or has not) happened.
type Finish = Box<dyn FnOnce(Option<StoreError>) + Send>;
type Job = Box<dyn for<'t> FnOnce(&'t mut Tx<'_>) -> BoxFuture<'t, (bool, Finish)> + Send>;

/// What the writer is asked to do.
enum Work {
    /// A unit of work, in its own savepoint.
    Unit(Job),
    /// New resources with fresh ids, per partition, written with the other appends of the
    /// same commit (all of them or none); told what was stored once the commit is durable.
    Append {
        parts: Vec<(String, Vec<NewResource>)>,
        reply: oneshot::Sender<Result<Vec<Vec<Versioned>>>>,
    },
}

/// Sends work to the writer.
#[derive(Debug, Clone)]
pub(crate) struct Handle {
    jobs: mpsc::Sender<Work>,
}

/// The version a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there (or nothing).
    Any,
    /// Nothing live: a create (a deleted resource may be recreated).
    Absent,
    /// Exactly this version (`If-Match`).
    Version(i64),
}

/// A unit of work's view of the open transaction.
pub struct Tx<'c> {
    conn: &'c mut AnyConnection,
    dialect: Dialect,
    /// What this batch wrote, for the read cache once it commits.
    written: &'c mut Vec<(String, Versioned)>,
    /// The last `last_updated` given out, shared by the writers, so timestamps strictly increase
    /// within a store.
    clock: &'c AtomicI64,
}

impl std::fmt::Debug for Tx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("dialect", &self.dialect)
            .finish()
    }
}

impl Handle {
    pub(crate) async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx<'_>) -> BoxFuture<'t, Result<T, E>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |tx| {
            Box::pin(async move {
                let result = work(tx).await;
                let keep = result.is_ok();
                let finish: Finish = Box::new(move |commit_error| {
                    let outcome = match (result, commit_error) {
                        (Ok(_), Some(err)) => Err(E::from(err)),
                        (result, _) => result,
                    };
                    // The caller may have gone away (client disconnected); nothing to do then.
                    let _ = reply.send(outcome);
                });
                (keep, finish)
            })
        });
        self.jobs
            .send(Work::Unit(job))
            .await
            .map_err(|_| E::from(StoreError::Closed))?;
        answer.await.map_err(|_| E::from(StoreError::Unavailable))?
    }

    /// Writes new resources (fresh ids) of one or more partitions in the next commit, batched
    /// with the other appends of that commit; returns what was stored, per part and in order,
    /// once it is durable.
    pub(crate) async fn append(
        &self,
        parts: Vec<(String, Vec<NewResource>)>,
    ) -> Result<Vec<Vec<Versioned>>> {
        let (reply, answer) = oneshot::channel();
        let work = Work::Append { parts, reply };
        self.jobs.send(work).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Unavailable)?
    }

    pub(crate) async fn close(&self) {
        // Dropping the last sender stops the writer once the queue is drained; callers hold
        // clones, so wait for the channel to empty instead.
        while self.jobs.capacity() < self.jobs.max_capacity() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

/// Starts the writers: one on SQLite, `writers` (at least one) on PostgreSQL.
pub(crate) fn spawn(
    pool: AnyPool,
    dialect: Dialect,
    cache: Option<Arc<ReadCache>>,
    writers: u32,
) -> Handle {
    let (jobs, queue) = mpsc::channel::<Work>(4 * MAX_BATCH);
    let queue = Arc::new(Mutex::new(queue));
    let clock = Arc::new(AtomicI64::new(0));
    let writers = match dialect {
        Dialect::Sqlite => 1,
        Dialect::Postgres => writers.max(1),
    };
    for _ in 0..writers {
        tokio::spawn(run_writer(
            pool.clone(),
            dialect,
            cache.clone(),
            Arc::clone(&queue),
            Arc::clone(&clock),
        ));
    }
    Handle { jobs }
}

async fn run_writer(
    pool: AnyPool,
    dialect: Dialect,
    cache: Option<Arc<ReadCache>>,
    queue: Arc<Mutex<mpsc::Receiver<Work>>>,
    clock: Arc<AtomicI64>,
) {
    let mut connection: Option<PoolConnection<Any>> = None;
    let mut batch: Vec<Work> = Vec::with_capacity(MAX_BATCH);
    loop {
        // One writer at a time waits on the queue and takes a batch; the others are running
        // theirs meanwhile, or waiting for their turn at the queue.
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                break;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let conn = match connection.take() {
            Some(conn) => Ok(conn),
            None => pool.acquire().await,
        };
        let mut conn = match conn {
            Ok(conn) => conn,
            Err(err) => {
                tracing::error!(error = %err, "store writer cannot get a connection");
                // Dropping the jobs answers their callers with `Unavailable`.
                batch.clear();
                continue;
            }
        };
        match run_batch(&mut conn, dialect, &clock, cache.as_deref(), &mut batch).await {
            // Keep the connection while work is queued; give it back to the pool when idle, so
            // that closing the pool does not wait on a writer that has nothing to do. (A queue
            // another writer holds is one it is waiting on: empty.)
            Ok(()) if queue.try_lock().is_ok_and(|queue| !queue.is_empty()) => {
                connection = Some(conn);
            }
            Ok(()) => drop(conn),
            // A connection that failed mid-transaction is dropped rather than reused.
            Err(err) => tracing::error!(error = %err, "store commit failed"),
        }
    }
}

async fn run_batch(
    conn: &mut AnyConnection,
    dialect: Dialect,
    clock: &AtomicI64,
    cache: Option<&ReadCache>,
    batch: &mut Vec<Work>,
) -> std::result::Result<(), sqlx::Error> {
    let mut written: Vec<(String, Versioned)> = Vec::new();
    let mut units = Vec::with_capacity(batch.len());
    let mut appends: Vec<AppendWork> = Vec::new();
    for work in batch.drain(..) {
        match work {
            Work::Unit(job) => units.push(job),
            Work::Append { parts, reply } => appends.push(AppendWork {
                stored: parts.iter().map(|_| Vec::new()).collect(),
                parts,
                reply,
            }),
        }
    }
    let begin = match dialect {
        // IMMEDIATE takes the write lock now, so a unit never fails half-way on a lock upgrade.
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    };
    sqlx::raw_sql(begin).execute(&mut *conn).await?;
    let mut finishes: Vec<Finish> = Vec::with_capacity(units.len() + appends.len());
    if !appends.is_empty() {
        // Alone in the commit, the appends need no savepoint: if they fail, nothing else is
        // lost by rolling the transaction back. Beside units, a savepoint keeps a failure of
        // theirs from taking the units down.
        let guarded = !units.is_empty();
        if guarded && let Err(err) = sqlx::raw_sql("SAVEPOINT appends").execute(&mut *conn).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            return Err(err);
        }
        let mut tx = Tx {
            conn: &mut *conn,
            dialect,
            written: &mut written,
            clock,
        };
        let mut outcome = Ok(());
        // One bulk write per partition for all the appends of this commit.
        let mut by_base: Vec<PartitionAppends> = Vec::new();
        for (which, append) in appends.iter_mut().enumerate() {
            for (part, (base, items)) in append.parts.iter_mut().enumerate() {
                let items = std::mem::take(items);
                let owner = (which, part, items.len());
                match by_base.iter_mut().find(|p| &p.base == base) {
                    Some(partition) => {
                        partition.items.extend(items);
                        partition.owners.push(owner);
                    }
                    None => by_base.push(PartitionAppends {
                        base: std::mem::take(base),
                        items,
                        owners: vec![owner],
                    }),
                }
            }
        }
        for PartitionAppends {
            base,
            items,
            owners,
        } in by_base
        {
            match tx.create_many(&base, items).await {
                Ok(stored) => {
                    let mut stored = stored.into_iter();
                    for (which, part, count) in owners {
                        appends[which].stored[part].extend(stored.by_ref().take(count));
                    }
                }
                Err(err) => {
                    outcome = Err(err);
                    break;
                }
            }
        }
        let end = match (&outcome, guarded) {
            (Ok(()), true) => "RELEASE SAVEPOINT appends",
            (Err(_), true) => "ROLLBACK TO SAVEPOINT appends; RELEASE SAVEPOINT appends",
            (Ok(()), false) => "",
            (Err(_), false) => "ROLLBACK",
        };
        // Appends stay out of the read cache: they are seldom read back, and under a load of
        // audited reads they would push out what is read on every request (credentials, hot
        // resources). A read of one finds it in the database.
        written.clear();
        if let Err(err) = outcome {
            for append in appends {
                let _ = append.reply.send(Err(err.clone()));
            }
            if !guarded {
                let _ = sqlx::raw_sql(end).execute(&mut *conn).await;
                return Ok(());
            }
        } else {
            for AppendWork { reply, stored, .. } in appends {
                finishes.push(Box::new(move |commit_error| {
                    let _ = reply.send(commit_error.map_or(Ok(stored), Err));
                }));
            }
        }
        if guarded && let Err(err) = sqlx::raw_sql(end).execute(&mut *conn).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            let error = StoreError::from(err);
            for finish in finishes {
                finish(Some(error.clone()));
            }
            // The units, not run, are dropped: their callers hear the store is unavailable.
            return Err(sqlx::Error::Protocol(
                "appends savepoint release failed".into(),
            ));
        }
    }
    // A batch of one unit needs no savepoint: the transaction itself is the unit.
    let single = units.len() == 1 && finishes.is_empty();
    let mut single_failed = false;
    for job in units {
        if !single && let Err(err) = sqlx::raw_sql("SAVEPOINT unit").execute(&mut *conn).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            let error = StoreError::from(err);
            for finish in finishes {
                finish(Some(error.clone()));
            }
            return Err(sqlx::Error::Protocol("savepoint failed".into()));
        }
        let written_before = written.len();
        let mut tx = Tx {
            conn: &mut *conn,
            dialect,
            written: &mut written,
            clock,
        };
        let (keep, finish) = job(&mut tx).await;
        if !keep {
            written.truncate(written_before);
        }
        if single {
            single_failed = !keep;
            finishes.push(finish);
            continue;
        }
        let end = if keep {
            "RELEASE SAVEPOINT unit"
        } else {
            "ROLLBACK TO SAVEPOINT unit; RELEASE SAVEPOINT unit"
        };
        if let Err(err) = sqlx::raw_sql(end).execute(&mut *conn).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            let error = StoreError::from(err);
            finish(Some(error.clone()));
            for finish in finishes {
                finish(Some(error.clone()));
            }
            return Err(sqlx::Error::Protocol("savepoint release failed".into()));
        }
        finishes.push(finish);
    }
    if single_failed {
        let rollback = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
        for finish in finishes {
            finish(None);
        }
        return rollback.map(|_| ());
    }
    let commit = sqlx::raw_sql("COMMIT").execute(&mut *conn).await;
    if commit.is_ok()
        && let Some(cache) = cache
    {
        cache.committed(&written);
    }
    let error = commit.as_ref().err().map(|err| {
        StoreError::Database(std::sync::Arc::new(sqlx::Error::Protocol(format!(
            "commit failed: {err}"
        ))))
    });
    for finish in finishes {
        finish(error.clone());
    }
    commit.map(|_| ())
}

/// The appends of one partition in a commit, written together, and whose they are: for each
/// run of `items` in order, the append, the part of it and how many.
struct PartitionAppends {
    base: String,
    items: Vec<NewResource>,
    owners: Vec<(usize, usize, usize)>,
}

/// An append waiting for its commit: what it asked to write, and what was stored of each part.
struct AppendWork {
    parts: Vec<(String, Vec<NewResource>)>,
    stored: Vec<Vec<Versioned>>,
    reply: oneshot::Sender<Result<Vec<Vec<Versioned>>>>,
}

/// The current row of a resource, if it has one.
struct CurrentRow {
    rid: i64,
    version: i64,
    deleted: bool,
}

impl Tx<'_> {
    fn now(&mut self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        // Strictly increasing, so `_since` and history order never tie or go backwards.
        let previous = self
            .clock
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(wall.max(last + 1))
            })
            .unwrap_or_else(|last| last);
        wall.max(previous + 1)
    }

    async fn current_row(
        &mut self,
        base: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<CurrentRow>> {
        // On PostgreSQL the row stays locked until the commit: another writer's unit on the same
        // resource waits, then reads what this one wrote instead of failing on the version
        // check. (SQLite has one writer; its transaction locks the whole database.)
        let select = match self.dialect {
            Dialect::Sqlite => {
                "SELECT rid, version, deleted FROM current WHERE base = $1 AND rtype = $2 AND id = $3"
            }
            Dialect::Postgres => {
                "SELECT rid, version, deleted FROM current WHERE base = $1 AND rtype = $2 AND id = $3 \
                 FOR UPDATE"
            }
        };
        let row = sqlx::query(select)
            .bind(base)
            .bind(resource_type)
            .bind(id)
            .fetch_optional(&mut *self.conn)
            .await?;
        Ok(match row {
            Some(row) => Some(CurrentRow {
                rid: row.try_get(0)?,
                version: row.try_get(1)?,
                deleted: row.try_get::<i64, _>(2)? != 0,
            }),
            None => None,
        })
    }

    /// The current version of a resource as this transaction sees it.
    pub async fn read(
        &mut self,
        base: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Versioned>> {
        let row = match self.dialect {
            Dialect::Sqlite => {
                sqlx::query(
                    "SELECT c.version, c.last_updated, h.body FROM current c JOIN history h \
                     ON h.rid = c.rid AND h.version = c.version \
                     WHERE c.base = $1 AND c.rtype = $2 AND c.id = $3",
                )
                .bind(base)
                .bind(resource_type)
                .bind(id)
                .fetch_optional(&mut *self.conn)
                .await?
            }
            // Lock the current row first, then read its version's body in a statement of its
            // own: a locking join that waited on another writer would recheck the new current
            // row against the old history row, find they no longer match and return nothing.
            Dialect::Postgres => {
                let Some(current) = self.current_row(base, resource_type, id).await? else {
                    return Ok(None);
                };
                sqlx::query(
                    "SELECT version, last_updated, body FROM history WHERE rid = $1 AND version = $2",
                )
                .bind(current.rid)
                .bind(current.version)
                .fetch_optional(&mut *self.conn)
                .await?
            }
        };
        row.map(|row| crate::versioned_from_row(&row, resource_type, id, 0))
            .transpose()
    }

    /// Writes a new version of a resource (creating it if needed), with its index entries, and
    /// returns what was stored. `resource` gets its `id` and `meta` stamped.
    pub async fn put(
        &mut self,
        base: &str,
        resource_type: &str,
        id: &str,
        mut resource: Value,
        index: &[IndexEntry],
        expect: Expect,
    ) -> Result<Versioned> {
        let current = self.current_row(base, resource_type, id).await?;
        let previous = current.as_ref().map(|c| c.version).unwrap_or(0);
        match (expect, &current) {
            (Expect::Absent, Some(row)) if !row.deleted => {
                return Err(StoreError::AlreadyExists {
                    resource_type: resource_type.to_owned(),
                    id: id.to_owned(),
                });
            }
            (Expect::Version(expected), _) if expected != previous => {
                return Err(StoreError::VersionConflict {
                    resource_type: resource_type.to_owned(),
                    id: id.to_owned(),
                    expected,
                    current: previous,
                });
            }
            _ => {}
        }
        let version = previous + 1;
        let last_updated = self.now();
        stamp(&mut resource, id, version, last_updated);
        let body = serde_json::to_string(&resource).map_err(|err| {
            StoreError::Database(std::sync::Arc::new(sqlx::Error::Protocol(err.to_string())))
        })?;
        let rid = self
            .write_version(
                base,
                resource_type,
                id,
                current.as_ref(),
                version,
                last_updated,
                Some(&body),
            )
            .await?;
        // Only a live previous version has index rows to remove.
        let had_index = current.as_ref().is_some_and(|c| !c.deleted);
        self.replace_index(rid, had_index, index).await?;
        let stored = Versioned {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            version,
            last_updated,
            body: Some(body),
        };
        self.written.push((base.to_owned(), stored.clone()));
        Ok(stored)
    }

    /// Deletes a resource, leaving a tombstone version. Returns the tombstone, or `None` when
    /// there was nothing live to delete (deleting is idempotent).
    pub async fn delete(
        &mut self,
        base: &str,
        resource_type: &str,
        id: &str,
        expect: Expect,
    ) -> Result<Option<Versioned>> {
        let Some(current) = self.current_row(base, resource_type, id).await? else {
            return Ok(None);
        };
        if let Expect::Version(expected) = expect
            && expected != current.version
        {
            return Err(StoreError::VersionConflict {
                resource_type: resource_type.to_owned(),
                id: id.to_owned(),
                expected,
                current: current.version,
            });
        }
        if current.deleted {
            return Ok(None);
        }
        let version = current.version + 1;
        let last_updated = self.now();
        let rid = self
            .write_version(
                base,
                resource_type,
                id,
                Some(&current),
                version,
                last_updated,
                None,
            )
            .await?;
        self.replace_index(rid, true, &[]).await?;
        let tombstone = Versioned {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            version,
            last_updated,
            body: None,
        };
        self.written.push((base.to_owned(), tombstone.clone()));
        Ok(Some(tombstone))
    }

    /// Replaces the index rows of up to `limit` live resources of a partition after row
    /// `after`, in row order; returns how many it indexed and the last row, if there may be more.
    pub(crate) async fn reindex(
        &mut self,
        base: &str,
        resource_type: Option<&str>,
        after: i64,
        limit: i64,
        index: &(dyn Fn(&Value) -> Vec<IndexEntry> + Send + Sync),
    ) -> Result<(usize, Option<i64>)> {
        let rows = match resource_type {
            None => {
                sqlx::query(
                    "SELECT c.rid, h.body FROM current c JOIN history h ON h.rid = c.rid AND h.version = c.version \
                     WHERE c.base = $1 AND c.rid > $2 AND c.deleted = 0 ORDER BY c.rid LIMIT $3",
                )
                .bind(base)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *self.conn)
                .await?
            }
            Some(resource_type) => {
                sqlx::query(
                    "SELECT c.rid, h.body FROM current c JOIN history h ON h.rid = c.rid AND h.version = c.version \
                     WHERE c.base = $1 AND c.rtype = $2 AND c.rid > $3 AND c.deleted = 0 ORDER BY c.rid LIMIT $4",
                )
                .bind(base)
                .bind(resource_type)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *self.conn)
                .await?
            }
        };
        let mut last = None;
        for row in &rows {
            let rid: i64 = row.try_get(0)?;
            let body: Option<String> = row.try_get(1)?;
            // A body that no longer parses keeps the rows it has rather than losing them.
            if let Some(resource) = body.and_then(|body| serde_json::from_str::<Value>(&body).ok())
            {
                self.replace_index(rid, true, &index(&resource)).await?;
            }
            last = Some(rid);
        }
        let more = rows.len() as i64 == limit;
        Ok((rows.len(), last.filter(|_| more)))
    }

    /// The ids of live resources matching a search (for conditional create, update and delete,
    /// and conditional references in transactions), at most `limit`.
    pub async fn search_ids(
        &mut self,
        base: &str,
        query: &SearchQuery,
        limit: usize,
    ) -> Result<Vec<String>> {
        let mut query = query.clone();
        query.count = limit;
        query.include.clear();
        query.revinclude.clear();
        query.total = carehub_fhir::search::Total::None;
        let page = crate::search::run(&mut *self.conn, self.dialect, base, &query).await?;
        Ok(page.matches.into_iter().map(|m| m.resource.id).collect())
    }

    /// Records a new version: the `current` row (inserted, or moved on from the version this
    /// unit read, which also catches a concurrent writer on another node) and its `history` row.
    #[allow(
        clippy::too_many_arguments,
        reason = "one row's columns; a struct would only rename them"
    )]
    async fn write_version(
        &mut self,
        base: &str,
        resource_type: &str,
        id: &str,
        current: Option<&CurrentRow>,
        version: i64,
        last_updated: i64,
        body: Option<&str>,
    ) -> Result<i64> {
        let deleted = i64::from(body.is_none());
        let conflict = || StoreError::VersionConflict {
            resource_type: resource_type.to_owned(),
            id: id.to_owned(),
            expected: version - 1,
            current: version,
        };
        let rid = match current {
            Some(row) => {
                let updated = sqlx::query(
                    "UPDATE current SET version = $1, last_updated = $2, deleted = $3 \
                     WHERE rid = $4 AND version = $5",
                )
                .bind(version)
                .bind(last_updated)
                .bind(deleted)
                .bind(row.rid)
                .bind(row.version)
                .execute(&mut *self.conn)
                .await?;
                if updated.rows_affected() != 1 {
                    return Err(conflict());
                }
                row.rid
            }
            None => {
                let row = sqlx::query(
                    "INSERT INTO current (base, rtype, id, version, last_updated, deleted) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING rid",
                )
                .bind(base)
                .bind(resource_type)
                .bind(id)
                .bind(version)
                .bind(last_updated)
                .bind(deleted)
                .fetch_one(&mut *self.conn)
                .await
                .map_err(|err| match &err {
                    // Another node created it first (PostgreSQL, several writers).
                    sqlx::Error::Database(db) if db.is_unique_violation() => {
                        StoreError::AlreadyExists {
                            resource_type: resource_type.to_owned(),
                            id: id.to_owned(),
                        }
                    }
                    _ => StoreError::from(err),
                })?;
                row.try_get(0)?
            }
        };
        sqlx::query("INSERT INTO history (rid, version, last_updated, deleted, body) VALUES ($1, $2, $3, $4, $5)")
            .bind(rid)
            .bind(version)
            .bind(last_updated)
            .bind(deleted)
            .bind(body)
            .execute(&mut *self.conn)
            .await
            .map_err(|err| match &err {
                sqlx::Error::Database(db) if db.is_unique_violation() => conflict(),
                _ => StoreError::from(err),
            })?;
        Ok(rid)
    }

    async fn replace_index(
        &mut self,
        rid: i64,
        had_index: bool,
        index: &[IndexEntry],
    ) -> Result<()> {
        if had_index {
            for table in &TABLES {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {} WHERE rid = $1",
                    table.name
                )))
                .bind(rid)
                .execute(&mut *self.conn)
                .await?;
            }
        }
        let rows: Vec<(i64, &IndexEntry)> = index.iter().map(|entry| (rid, entry)).collect();
        self.insert_index(&rows).await
    }

    /// Inserts index rows of one or many resources: one multi-row INSERT per table and chunk,
    /// because per-statement overhead, not row count, dominates the cost of a write.
    async fn insert_index(&mut self, rows: &[(i64, &IndexEntry)]) -> Result<()> {
        let rows = index_rows(rows);
        for table in &TABLES {
            let rows: Vec<&IndexRow<'_>> = rows
                .iter()
                .filter(|row| table_for(row.value) == Some(table.name))
                .collect();
            for chunk in rows.chunks(INSERT_CHUNK) {
                let mut sql = format!("INSERT INTO {} ({}) VALUES ", table.name, table.columns);
                let mut params = Placeholders::new(self.dialect);
                for row in 0..chunk.len() {
                    if row > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('(');
                    for column in 0..table.width {
                        if column > 0 {
                            sql.push_str(", ");
                        }
                        params.push_next(&mut sql);
                    }
                    sql.push(')');
                }
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for row in chunk {
                    query = query
                        .bind(row.rid)
                        .bind(row.param.to_string())
                        .bind(row.group);
                    query = match row.value {
                        IndexValue::Token { system, code, text } => query
                            .bind(system.clone())
                            .bind(code.clone())
                            .bind(text.clone()),
                        IndexValue::String { normalized, exact } => {
                            query.bind(normalized.clone()).bind(exact.clone())
                        }
                        IndexValue::Reference {
                            resource_type,
                            id,
                            url,
                        } => query
                            .bind(resource_type.clone())
                            .bind(id.clone())
                            .bind(url.clone()),
                        IndexValue::Date { low, high } => query.bind(*low).bind(*high),
                        IndexValue::Number { low, high } => query.bind(*low).bind(*high),
                        IndexValue::Quantity {
                            system,
                            code,
                            low,
                            high,
                        } => query
                            .bind(system.clone())
                            .bind(code.clone())
                            .bind(*low)
                            .bind(*high),
                        IndexValue::Uri(uri) => query.bind(uri.clone()),
                        // `index_rows` has split tuples into their parts.
                        IndexValue::Composite(_) => query,
                    };
                }
                query.execute(&mut *self.conn).await?;
            }
        }
        Ok(())
    }

    /// Writes many resources at once, for bulk loads and the creates of a transaction. Resources
    /// that exist already are written one by one with `expect`; new ones (the usual case, with
    /// server-assigned ids) take a few multi-row statements for the whole set instead of several
    /// per resource. The results are in the order of `items`.
    pub async fn put_many(
        &mut self,
        base: &str,
        items: Vec<NewResource>,
        expect: Expect,
    ) -> Result<Vec<Versioned>> {
        self.write_many(base, items, expect, true).await
    }

    /// Creates resources whose ids the server has just made up (random UUIDs), so none can
    /// exist yet: as [`Tx::put_many`] without looking for existing ones, which saves a
    /// statement per unit of work. Should an id exist after all, the store's unique key refuses
    /// the write and the unit fails with [`StoreError::AlreadyExists`].
    pub async fn create_many(
        &mut self,
        base: &str,
        items: Vec<NewResource>,
    ) -> Result<Vec<Versioned>> {
        self.write_many(base, items, Expect::Absent, false).await
    }

    async fn write_many(
        &mut self,
        base: &str,
        items: Vec<NewResource>,
        expect: Expect,
        look_for_existing: bool,
    ) -> Result<Vec<Versioned>> {
        // Which ids exist already: one `id IN (...)` per type and chunk, which the
        // (base, rtype, id) key answers directly.
        let mut existing = std::collections::HashSet::new();
        let mut by_type: std::collections::BTreeMap<&str, Vec<&str>> =
            std::collections::BTreeMap::new();
        for item in &items {
            by_type
                .entry(item.resource_type.as_str())
                .or_default()
                .push(item.id.as_str());
        }
        for (resource_type, ids) in by_type.into_iter().filter(|_| look_for_existing) {
            for chunk in ids.chunks(INSERT_CHUNK) {
                let mut params = Placeholders::new(self.dialect);
                let mut sql = String::from("SELECT id FROM current WHERE base = ");
                params.push_next(&mut sql);
                sql.push_str(" AND rtype = ");
                params.push_next(&mut sql);
                sql.push_str(" AND id IN (");
                for index in 0..chunk.len() {
                    if index > 0 {
                        sql.push_str(", ");
                    }
                    params.push_next(&mut sql);
                }
                sql.push(')');
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(base.to_owned())
                    .bind(resource_type.to_owned());
                for id in chunk {
                    query = query.bind((*id).to_owned());
                }
                for row in query.fetch_all(&mut *self.conn).await? {
                    existing.insert((resource_type.to_owned(), row.try_get::<String, _>(0)?));
                }
            }
        }
        // Results go back in the order the items came, whichever way each was written.
        let mut stored: Vec<Option<Versioned>> = vec![None; items.len()];
        let mut fresh = Vec::with_capacity(items.len());
        let mut fresh_slots = Vec::with_capacity(items.len());
        for (slot, item) in items.into_iter().enumerate() {
            if existing.contains(&(item.resource_type.clone(), item.id.clone())) {
                let version = self
                    .put(
                        base,
                        &item.resource_type,
                        &item.id,
                        item.resource,
                        &item.index,
                        expect,
                    )
                    .await?;
                stored[slot] = Some(version);
            } else {
                fresh.push(item);
                fresh_slots.push(slot);
            }
        }
        // Stamp and serialise each new resource, then write them in bulk.
        let mut bodies = Vec::with_capacity(fresh.len());
        for item in &mut fresh {
            let last_updated = self.now();
            stamp(&mut item.resource, &item.id, 1, last_updated);
            let body = serde_json::to_string(&item.resource).map_err(|err| {
                StoreError::Database(Arc::new(sqlx::Error::Protocol(err.to_string())))
            })?;
            bodies.push((last_updated, body));
        }
        let mut rids = std::collections::HashMap::new();
        for (chunk_index, chunk) in fresh.chunks(INSERT_CHUNK).enumerate() {
            let mut sql = String::from(
                "INSERT INTO current (base, rtype, id, version, last_updated, deleted) VALUES ",
            );
            let mut params = Placeholders::new(self.dialect);
            for index in 0..chunk.len() {
                if index > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                params.push_next(&mut sql);
                sql.push_str(", ");
                params.push_next(&mut sql);
                sql.push_str(", ");
                params.push_next(&mut sql);
                sql.push_str(", 1, ");
                params.push_next(&mut sql);
                sql.push_str(", 0)");
            }
            sql.push_str(" RETURNING rid, rtype, id");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (offset, item) in chunk.iter().enumerate() {
                let (last_updated, _) = &bodies[chunk_index * INSERT_CHUNK + offset];
                query = query
                    .bind(base.to_owned())
                    .bind(item.resource_type.clone())
                    .bind(item.id.clone())
                    .bind(*last_updated);
            }
            let rows = query
                .fetch_all(&mut *self.conn)
                .await
                .map_err(|err| match &err {
                    sqlx::Error::Database(db) if db.is_unique_violation() => {
                        StoreError::AlreadyExists {
                            resource_type: "(bulk)".into(),
                            id: "a resource created concurrently".into(),
                        }
                    }
                    _ => StoreError::from(err),
                })?;
            // RETURNING order is not promised, so match rows by key.
            for row in rows {
                let key: (String, String) = (row.try_get(1)?, row.try_get(2)?);
                rids.insert(key, row.try_get::<i64, _>(0)?);
            }
        }
        let rid_of = |item: &NewResource| {
            rids.get(&(item.resource_type.clone(), item.id.clone()))
                .copied()
                .ok_or_else(|| {
                    StoreError::Database(Arc::new(sqlx::Error::Protocol(
                        "bulk insert lost a row".into(),
                    )))
                })
        };
        for (chunk_index, chunk) in fresh.chunks(INSERT_CHUNK).enumerate() {
            let mut sql = String::from(
                "INSERT INTO history (rid, version, last_updated, deleted, body) VALUES ",
            );
            let mut params = Placeholders::new(self.dialect);
            for index in 0..chunk.len() {
                if index > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                params.push_next(&mut sql);
                sql.push_str(", 1, ");
                params.push_next(&mut sql);
                sql.push_str(", 0, ");
                params.push_next(&mut sql);
                sql.push(')');
            }
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (offset, item) in chunk.iter().enumerate() {
                let (last_updated, body) = &bodies[chunk_index * INSERT_CHUNK + offset];
                query = query
                    .bind(rid_of(item)?)
                    .bind(*last_updated)
                    .bind(body.clone());
            }
            query.execute(&mut *self.conn).await?;
        }
        let mut index_rows = Vec::new();
        for item in &fresh {
            let rid = rid_of(item)?;
            index_rows.extend(item.index.iter().map(|entry| (rid, entry)));
        }
        self.insert_index(&index_rows).await?;
        for ((item, (last_updated, body)), slot) in fresh.into_iter().zip(bodies).zip(fresh_slots) {
            let version = Versioned {
                resource_type: item.resource_type,
                id: item.id,
                version: 1,
                last_updated,
                body: Some(body),
            };
            self.written.push((base.to_owned(), version.clone()));
            stored[slot] = Some(version);
        }
        Ok(stored.into_iter().flatten().collect())
    }
}

/// A resource for [`Tx::put_many`].
#[derive(Debug, Clone)]
pub struct NewResource {
    /// Its type.
    pub resource_type: String,
    /// Its id.
    pub id: String,
    /// The JSON; `id` and `meta` are stamped on write.
    pub resource: Value,
    /// Its search index entries.
    pub index: Vec<IndexEntry>,
}

/// Writes the placeholders of a statement whose values are bound in the order they appear.
/// SQLite gets anonymous `?`: sqlx looks up each numbered parameter's name by a scan of the
/// statement's name list, which made binding a 200-row INSERT quadratic in its parameters.
struct Placeholders {
    dialect: Dialect,
    count: usize,
}

impl Placeholders {
    fn new(dialect: Dialect) -> Placeholders {
        Placeholders { dialect, count: 0 }
    }

    fn push_next(&mut self, sql: &mut String) {
        self.count += 1;
        match self.dialect {
            Dialect::Sqlite => sql.push('?'),
            Dialect::Postgres => {
                use std::fmt::Write;
                let _ = write!(sql, "${}", self.count);
            }
        }
    }
}

/// Rows per multi-row INSERT, well under SQLite's limit on bound values.
const INSERT_CHUNK: usize = 200;

/// An index table: its name, its columns, and how many values a row binds.
struct IndexTable {
    name: &'static str,
    columns: &'static str,
    width: usize,
}

const TABLES: [IndexTable; 7] = [
    IndexTable {
        name: "idx_token",
        columns: "rid, param, grp, system, code, text",
        width: 6,
    },
    IndexTable {
        name: "idx_string",
        columns: "rid, param, grp, norm, exact",
        width: 5,
    },
    IndexTable {
        name: "idx_reference",
        columns: "rid, param, grp, target_type, target_id, url",
        width: 6,
    },
    IndexTable {
        name: "idx_date",
        columns: "rid, param, grp, low, high",
        width: 5,
    },
    IndexTable {
        name: "idx_number",
        columns: "rid, param, grp, low, high",
        width: 5,
    },
    IndexTable {
        name: "idx_quantity",
        columns: "rid, param, grp, system, code, low, high",
        width: 7,
    },
    IndexTable {
        name: "idx_uri",
        columns: "rid, param, grp, uri",
        width: 4,
    },
];

/// The table of an index value; none for a composite tuple, whose parts go to their own tables.
fn table_for(value: &IndexValue) -> Option<&'static str> {
    Some(match value {
        IndexValue::Token { .. } => "idx_token",
        IndexValue::String { .. } => "idx_string",
        IndexValue::Reference { .. } => "idx_reference",
        IndexValue::Date { .. } => "idx_date",
        IndexValue::Number { .. } => "idx_number",
        IndexValue::Quantity { .. } => "idx_quantity",
        IndexValue::Uri(_) => "idx_uri",
        IndexValue::Composite(_) => return None,
    })
}

/// One row of an index table.
struct IndexRow<'a> {
    rid: i64,
    param: Cow<'a, str>,
    /// Which tuple of its resource a composite part belongs to.
    group: Option<i64>,
    value: &'a IndexValue,
}

/// The rows of index entries: an ordinary entry is one row, a composite tuple a row per part,
/// named by [`component_param`] and numbered with a group unique within its resource.
fn index_rows<'a>(entries: &[(i64, &'a IndexEntry)]) -> Vec<IndexRow<'a>> {
    let mut rows = Vec::with_capacity(entries.len());
    let mut group = 0;
    for (rid, entry) in entries {
        match &entry.value {
            IndexValue::Composite(parts) => {
                group += 1;
                for (index, part) in parts.iter().enumerate() {
                    rows.push(IndexRow {
                        rid: *rid,
                        param: Cow::Owned(component_param(&entry.param, index)),
                        group: Some(group),
                        value: part,
                    });
                }
            }
            value => rows.push(IndexRow {
                rid: *rid,
                param: Cow::Borrowed(&entry.param),
                group: None,
                value,
            }),
        }
    }
    rows
}
