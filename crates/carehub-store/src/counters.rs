//! Rate-limit counters that every node of a cluster shares, so that a quota or a spike arrest
//! holds across nodes: each check is one atomic statement (an upsert that counts or takes the
//! next slot), so two nodes counting at once can never both take the last request of a window.
//!
//! The arithmetic is the gateway's (`carehub_gateway::limits`): a quota window starts with the
//! first request after the previous one ended; a spike arrest admits a request when the time for
//! the next one has come, and moves it on by the interval.

use sqlx::Row;

use crate::{Result, Store};

impl Store {
    /// Counts a request under `key` at `now_ms` in a window of `window_ms`: the window's start
    /// and how many requests it has counted, this one included (requests past the limit count
    /// too; the caller admits those within it).
    pub async fn count_request(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<(i64, i64)> {
        // In an upsert's SET every column reads the row as it was, so both CASEs see the old
        // window.
        let row = sqlx::query(
            "INSERT INTO rate_counters (key, window_start, count) VALUES ($1, $2, 1) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN rate_counters.window_start + $3 <= $2 THEN 1 ELSE rate_counters.count + 1 END, \
               window_start = CASE WHEN rate_counters.window_start + $3 <= $2 THEN $2 ELSE rate_counters.window_start END \
             RETURNING window_start, count",
        )
        .bind(key)
        .bind(now_ms)
        .bind(window_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Takes the spike-arrest slot of `key` at `now_ms` if its time has come, moving the next one
    /// `interval_ms` on: `Ok(None)` when taken, `Ok(Some(next))` with the time of the next slot
    /// when not.
    pub async fn take_slot(&self, key: &str, now_ms: i64, interval_ms: i64) -> Result<Option<i64>> {
        let taken = sqlx::query(
            "INSERT INTO rate_slots (key, next_at) VALUES ($1, $2 + $3) \
             ON CONFLICT (key) DO UPDATE SET next_at = $2 + $3 WHERE rate_slots.next_at <= $2 \
             RETURNING next_at",
        )
        .bind(key)
        .bind(now_ms)
        .bind(interval_ms)
        .fetch_optional(&self.pool)
        .await?;
        if taken.is_some() {
            return Ok(None);
        }
        let next: i64 = sqlx::query("SELECT next_at FROM rate_slots WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(Some(next))
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use crate::testing::fresh_database;

    #[tokio::test]
    async fn a_window_counts_until_it_ends_then_starts_afresh() {
        let database = fresh_database().await;
        let store = Store::open(&database.config).await.expect("store");
        assert_eq!(
            store.count_request("a", 1_000, 60_000).await.ok(),
            Some((1_000, 1))
        );
        assert_eq!(
            store.count_request("a", 2_000, 60_000).await.ok(),
            Some((1_000, 2))
        );
        assert_eq!(
            store.count_request("b", 2_000, 60_000).await.ok(),
            Some((2_000, 1))
        );
        assert_eq!(
            store.count_request("a", 61_000, 60_000).await.ok(),
            Some((61_000, 1))
        );
    }

    #[tokio::test]
    async fn a_slot_is_taken_once_per_interval() {
        let database = fresh_database().await;
        let store = Store::open(&database.config).await.expect("store");
        assert_eq!(store.take_slot("a", 0, 100).await.ok(), Some(None));
        assert_eq!(store.take_slot("a", 50, 100).await.ok(), Some(Some(100)));
        assert_eq!(store.take_slot("a", 100, 100).await.ok(), Some(None));
        assert_eq!(store.take_slot("b", 100, 100).await.ok(), Some(None));
    }
}
