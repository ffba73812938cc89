//! Quotas and spike arrest, as the NHS platform applies them (Apigee's Quota and SpikeArrest):
//! a quota admits `limit` requests per window, a window starting with the first request after
//! the previous one ended (so a client's first window is always whole); a spike arrest
//! admits one request per `period / rate`, so `600pm` is one every 100 ms and a burst beyond that
//! is refused (the Generic Cell Rate Algorithm with no burst allowance).
//!
//! The algorithms are written here rather than taken from `governor` because the same arithmetic
//! has to run inside the shared store for limits that hold across nodes; [`RateLimiter`] is the
//! seam for that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carehub_store::{BoxFuture, Store};

use crate::config::{LimitConfig, parse_rate, unit_length};

/// A compiled limit: what it admits and how to describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// So many per window.
    Quota {
        /// Requests per window.
        limit: u64,
        /// Window length.
        window: Duration,
        /// `1 minute`, for messages.
        label: String,
    },
    /// One per `interval`.
    SpikeArrest {
        /// The configured rate (`600pm`).
        rate: String,
        /// The gap between admitted requests.
        interval: Duration,
    },
}

impl Limit {
    /// The limits a configuration block defines (disabled ones left out).
    pub fn from_config(config: &LimitConfig) -> Vec<Limit> {
        let mut limits = Vec::new();
        if let Some(spike) = &config.spike_arrest
            && spike.enabled
            && let Some((count, period)) = parse_rate(&spike.ratelimit)
        {
            limits.push(Limit::SpikeArrest {
                rate: spike.ratelimit.clone(),
                interval: period / count as u32,
            });
        }
        if let Some(quota) = &config.quota
            && quota.enabled
            && let Some(unit) = unit_length(&quota.timeunit)
        {
            let plural = if quota.interval == 1 { "" } else { "s" };
            limits.push(Limit::Quota {
                limit: quota.limit,
                window: unit * quota.interval as u32,
                label: format!(
                    "{} {}{plural}",
                    quota.interval,
                    quota.timeunit.trim_end_matches('s')
                ),
            });
        }
        limits
    }
}

/// The answer for one request under one limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Admitted; for quotas, how many remain and when the window resets.
    Allowed {
        /// The quota's limit, when the limit is a quota.
        limit: Option<u64>,
        /// Requests left in the window.
        remaining: Option<u64>,
        /// Seconds until the window resets.
        reset: Option<u64>,
    },
    /// Refused; retry after this many seconds (at least 1).
    Throttled {
        /// Seconds to wait.
        retry_after: u64,
    },
}

impl Decision {
    /// Admitted, with nothing to report (a spike arrest, or counters that failed).
    pub const ADMITTED: Decision = Decision::Allowed {
        limit: None,
        remaining: None,
        reset: None,
    };
}

/// Counts requests against limits. Time is milliseconds since the Unix epoch, passed in so that
/// tests and a shared implementation agree on it.
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// Records a request under `key` and says whether `limit` admits it.
    fn check<'a>(&'a self, key: &'a str, limit: &'a Limit, now_ms: u64) -> BoxFuture<'a, Decision>;
}

/// Counters in this process: exact for one node.
#[derive(Debug, Default)]
pub struct LocalLimiter {
    /// Key -> (window start in ms, requests in it).
    quotas: Mutex<HashMap<String, (u64, u64)>>,
    /// Key -> theoretical arrival time of the next request (ms).
    spikes: Mutex<HashMap<String, u64>>,
}

impl RateLimiter for LocalLimiter {
    fn check<'a>(&'a self, key: &'a str, limit: &'a Limit, now_ms: u64) -> BoxFuture<'a, Decision> {
        Box::pin(std::future::ready(self.decide(key, limit, now_ms)))
    }
}

impl LocalLimiter {
    /// Records a request under `key` and says whether `limit` admits it, at once.
    pub fn decide(&self, key: &str, limit: &Limit, now_ms: u64) -> Decision {
        match limit {
            Limit::Quota { limit, window, .. } => {
                let window_ms = (window.as_millis() as u64).max(1);
                let mut quotas = self.quotas.lock().unwrap_or_else(|p| p.into_inner());
                // Looked up by `&str` first: the key is copied only for its first request.
                if !quotas.contains_key(key) {
                    quotas.insert(key.to_owned(), (now_ms, 0));
                }
                let Some(entry) = quotas.get_mut(key) else {
                    unreachable!("inserted above")
                };
                if now_ms >= entry.0 + window_ms {
                    *entry = (now_ms, 0);
                }
                let reset = (entry.0 + window_ms - now_ms).div_ceil(1000);
                if entry.1 >= *limit {
                    return Decision::Throttled {
                        retry_after: reset.max(1),
                    };
                }
                entry.1 += 1;
                Decision::Allowed {
                    limit: Some(*limit),
                    remaining: Some(limit - entry.1),
                    reset: Some(reset),
                }
            }
            Limit::SpikeArrest { interval, .. } => {
                let interval_ms = (interval.as_millis() as u64).max(1);
                let mut spikes = self.spikes.lock().unwrap_or_else(|p| p.into_inner());
                if !spikes.contains_key(key) {
                    spikes.insert(key.to_owned(), 0);
                }
                let Some(next) = spikes.get_mut(key) else {
                    unreachable!("inserted above")
                };
                if now_ms < *next {
                    return Decision::Throttled {
                        retry_after: (*next - now_ms).div_ceil(1000).max(1),
                    };
                }
                *next = now_ms + interval_ms;
                Decision::ADMITTED
            }
        }
    }
}

/// Counters in the shared store, so that a limit holds across every node serving the same
/// PostgreSQL database (with SQLite, where carehub runs as one node, [`LocalLimiter`] does the
/// same without a write per request).
#[derive(Debug, Clone)]
pub struct SharedLimiter {
    store: Store,
}

impl SharedLimiter {
    pub fn new(store: Store) -> SharedLimiter {
        SharedLimiter { store }
    }
}

impl RateLimiter for SharedLimiter {
    fn check<'a>(&'a self, key: &'a str, limit: &'a Limit, now_ms: u64) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let now = now_ms as i64;
            let counted = match limit {
                Limit::Quota { limit, window, .. } => {
                    let window_ms = (window.as_millis() as i64).max(1);
                    self.store
                        .count_request(key, now, window_ms)
                        .await
                        .map(|(start, count)| counted_quota(*limit, window_ms, now, start, count))
                }
                Limit::SpikeArrest { interval, .. } => {
                    let interval_ms = (interval.as_millis() as i64).max(1);
                    self.store
                        .take_slot(key, now, interval_ms)
                        .await
                        .map(|next| spike_slot(now, next))
                }
            };
            // A limit that cannot be counted does not take the API down with it: the request
            // goes through and the failure is logged.
            counted.unwrap_or_else(|error| {
                tracing::error!(%error, key, "the shared rate-limit counters failed; admitting");
                Decision::ADMITTED
            })
        })
    }
}

/// The decision on a request that a shared quota counted as the `count`th of the window that
/// started at `start`.
fn counted_quota(limit: u64, window_ms: i64, now: i64, start: i64, count: i64) -> Decision {
    let reset = ((start + window_ms - now).max(0) as u64).div_ceil(1000);
    let count = count.max(0) as u64;
    if count > limit {
        Decision::Throttled {
            retry_after: reset.max(1),
        }
    } else {
        Decision::Allowed {
            limit: Some(limit),
            remaining: Some(limit - count),
            reset: Some(reset),
        }
    }
}

/// The decision on a spike-arrest slot: taken (`None`), or not before `next`.
fn spike_slot(now: i64, next: Option<i64>) -> Decision {
    match next {
        None => Decision::ADMITTED,
        Some(next) => Decision::Throttled {
            retry_after: ((next - now).max(0) as u64).div_ceil(1000).max(1),
        },
    }
}

/// Counters in Redis, for nodes that share a Redis server (`--redis-url`): each decision is one
/// Lua script, atomic on the server, with the same windows and slots as [`SharedLimiter`]
/// keeps in the database, without a database write per request.
#[derive(Clone)]
pub struct RedisLimiter {
    connection: redis::aio::ConnectionManager,
    /// Prefixes every key, so that several deployments can share one server.
    namespace: String,
    quota: Arc<redis::Script>,
    spike: Arc<redis::Script>,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter").finish_non_exhaustive()
    }
}

/// A fixed window that starts with its first request, as [`LocalLimiter`] counts: the window's
/// start and its count, this request included. The key expires with its window.
const QUOTA_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local start = tonumber(redis.call('HGET', KEYS[1], 'start'))
if (not start) or now >= start + window then
  redis.call('HSET', KEYS[1], 'start', now, 'count', 1)
  redis.call('PEXPIRE', KEYS[1], window)
  return {now, 1}
end
return {start, redis.call('HINCRBY', KEYS[1], 'count', 1)}
";

/// The next slot of a spike arrest: taken (-1) when its time has come, moving it `interval` on;
/// otherwise the time it comes.
const SPIKE_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local next = tonumber(redis.call('GET', KEYS[1]))
if next and now < next then
  return next
end
redis.call('SET', KEYS[1], now + interval, 'PX', interval)
return -1
";

impl RedisLimiter {
    /// Connects to the Redis server at `url` (`redis://host:port/db`), keeping its counters
    /// under `{namespace}:`; the connection is re-established by itself if it drops.
    pub async fn connect(url: &str, namespace: &str) -> Result<RedisLimiter, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let connection = redis::aio::ConnectionManager::new(client).await?;
        Ok(RedisLimiter {
            connection,
            namespace: namespace.to_owned(),
            quota: Arc::new(redis::Script::new(QUOTA_SCRIPT)),
            spike: Arc::new(redis::Script::new(SPIKE_SCRIPT)),
        })
    }

    async fn decide(
        &self,
        key: &str,
        limit: &Limit,
        now_ms: u64,
    ) -> Result<Decision, redis::RedisError> {
        let mut connection = self.connection.clone();
        let now = now_ms as i64;
        match limit {
            Limit::Quota { limit, window, .. } => {
                let window_ms = (window.as_millis() as i64).max(1);
                let (start, count): (i64, i64) = self
                    .quota
                    .key(format!("{}:quota:{key}", self.namespace))
                    .arg(now)
                    .arg(window_ms)
                    .invoke_async(&mut connection)
                    .await?;
                Ok(counted_quota(*limit, window_ms, now, start, count))
            }
            Limit::SpikeArrest { interval, .. } => {
                let interval_ms = (interval.as_millis() as i64).max(1);
                let next: i64 = self
                    .spike
                    .key(format!("{}:spike:{key}", self.namespace))
                    .arg(now)
                    .arg(interval_ms)
                    .invoke_async(&mut connection)
                    .await?;
                Ok(spike_slot(now, (next >= 0).then_some(next)))
            }
        }
    }
}

impl RateLimiter for RedisLimiter {
    fn check<'a>(&'a self, key: &'a str, limit: &'a Limit, now_ms: u64) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            // As with the database's counters, a limit that cannot be counted does not take
            // the API down with it.
            self.decide(key, limit, now_ms)
                .await
                .unwrap_or_else(|error| {
                    tracing::error!(%error, key, "the Redis rate-limit counters failed; admitting");
                    Decision::ADMITTED
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn quota(limit: u64, seconds: u64) -> Limit {
        Limit::Quota {
            limit,
            window: Duration::from_secs(seconds),
            label: format!("{seconds} seconds"),
        }
    }

    #[test]
    fn a_quota_admits_its_limit_per_window_then_resets() {
        let limiter = LocalLimiter::default();
        let limit = quota(3, 60);
        let admitted = (0..10)
            .filter(|_| matches!(limiter.decide("a", &limit, 1_000), Decision::Allowed { .. }))
            .count();
        assert_eq!(admitted, 3);
        assert_eq!(
            limiter.decide("a", &limit, 2_000),
            Decision::Throttled { retry_after: 59 }
        );
        // Another key has its own count; the next window starts afresh.
        assert!(matches!(
            limiter.decide("b", &limit, 1_000),
            Decision::Allowed { .. }
        ));
        assert!(matches!(
            limiter.decide("a", &limit, 61_000),
            Decision::Allowed {
                remaining: Some(2),
                ..
            }
        ));
    }

    #[test]
    fn a_spike_arrest_spaces_requests_evenly() {
        let limiter = LocalLimiter::default();
        let limit = Limit::SpikeArrest {
            rate: "10ps".into(),
            interval: Duration::from_millis(100),
        };
        assert!(matches!(
            limiter.decide("a", &limit, 0),
            Decision::Allowed { .. }
        ));
        assert!(matches!(
            limiter.decide("a", &limit, 50),
            Decision::Throttled { .. }
        ));
        assert!(matches!(
            limiter.decide("a", &limit, 100),
            Decision::Allowed { .. }
        ));
    }

    proptest! {
        /// However requests arrive, no window admits more than the limit, and a window admits
        /// exactly the limit when at least that many arrive in it.
        #[test]
        fn quota_admits_exactly_the_limit(limit in 1u64..50, arrivals in proptest::collection::vec(0u64..180_000, 0..300)) {
            let limiter = LocalLimiter::default();
            let rule = quota(limit, 60);
            let mut arrivals = arrivals;
            arrivals.sort_unstable();
            // Windows as an observer sees them: each starts at the first arrival after the
            // previous one ended.
            let mut window_start: Option<u64> = None;
            let mut counts = (0u64, 0u64);
            for t in arrivals {
                if window_start.is_none_or(|start| t >= start + 60_000) {
                    if window_start.is_some() {
                        prop_assert_eq!(counts.1, counts.0.min(limit));
                    }
                    window_start = Some(t);
                    counts = (0, 0);
                }
                let admitted = matches!(limiter.decide("k", &rule, t), Decision::Allowed { .. });
                counts.0 += 1;
                counts.1 += u64::from(admitted);
            }
            prop_assert_eq!(counts.1, counts.0.min(limit));
        }
    }
}
