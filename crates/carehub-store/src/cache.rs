//! A cache of current versions.
//!
//! With SQLite, carehub is the only process writing the file, and every write passes through the
//! one writer, so the writer can keep an in-memory copy of what it committed exact. A read that
//! hits the cache costs a hash lookup instead of a database round trip. Exact reads do not use it
//! on PostgreSQL, where other nodes write too.
//!
//! Each entry also remembers when it was last taken from the database or written by this
//! process, which serves reads that accept a copy up to some age ([`crate::Store::read_recent`]):
//! credentials, which another process (the command line, another node) may revoke, on both
//! databases.
//!
//! The race to avoid: a reader fetches version N from the database, a write commits version
//! N+1, and the reader then caches N over it. Every commit bumps an epoch before it touches the
//! cache, and a reader caches what it read only if the epoch did not move while it read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::Versioned;

const SHARDS: usize = 16;

/// A cached version and when it was known to be current.
type Entry = (Arc<Versioned>, Instant);

/// Current versions by (base, type, id).
#[derive(Debug)]
pub(crate) struct ReadCache {
    shards: Vec<RwLock<HashMap<String, Entry>>>,
    per_shard: usize,
    epoch: AtomicU64,
}

fn key(base: &str, resource_type: &str, id: &str) -> String {
    // The separator cannot occur in a base key, a type name or an id.
    format!("{base}\u{1f}{resource_type}\u{1f}{id}")
}

impl ReadCache {
    /// A cache holding about `capacity` resources.
    pub(crate) fn new(capacity: usize) -> ReadCache {
        ReadCache {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            per_shard: (capacity / SHARDS).max(1),
            epoch: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &str) -> &RwLock<HashMap<String, Entry>> {
        // FNV-1a: cheap, and good enough to spread keys over a few shards.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in key.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        &self.shards[(hash as usize) % SHARDS]
    }

    pub(crate) fn get(&self, base: &str, resource_type: &str, id: &str) -> Option<Arc<Versioned>> {
        let key = key(base, resource_type, id);
        let map = self.shard(&key).read().ok()?;
        map.get(&key).map(|(version, _)| Arc::clone(version))
    }

    /// The cached version, if it was known to be current no longer than `max_age` ago.
    pub(crate) fn get_recent(
        &self,
        base: &str,
        resource_type: &str,
        id: &str,
        max_age: Duration,
    ) -> Option<Arc<Versioned>> {
        let key = key(base, resource_type, id);
        let map = self.shard(&key).read().ok()?;
        let (version, known) = map.get(&key)?;
        (known.elapsed() <= max_age).then(|| Arc::clone(version))
    }

    /// The epoch to pass to [`ReadCache::fill`] after reading the database.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches what a reader found, unless a commit happened since `epoch`.
    pub(crate) fn fill(&self, epoch: u64, base: &str, version: &Versioned) {
        let key = key(base, &version.resource_type, &version.id);
        let shard = self.shard(&key);
        let Ok(mut map) = shard.write() else { return };
        // Checked under the shard lock, which the writer also takes after bumping the epoch.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if map.len() >= self.per_shard {
            // Crude but bounded: start the shard afresh rather than track recency.
            map.clear();
        }
        // Replacing what is there refreshes when the version was last known to be current.
        map.insert(key, (Arc::new(version.clone()), Instant::now()));
    }

    /// Records what a commit wrote; called by the writer after the commit, before it answers.
    pub(crate) fn committed(&self, writes: &[(String, Versioned)]) {
        if writes.is_empty() {
            return;
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for (base, version) in writes {
            let key = key(base, &version.resource_type, &version.id);
            let Ok(mut map) = self.shard(&key).write() else {
                continue;
            };
            // Writers on PostgreSQL may report their commits out of order; a newer version of
            // this resource already here stays.
            if map
                .get(&key)
                .is_some_and(|(held, _)| held.version > version.version)
            {
                continue;
            }
            if map.len() >= self.per_shard {
                map.clear();
            }
            map.insert(key, (Arc::new(version.clone()), Instant::now()));
        }
    }
}
