//! IP penalty points and blocks.

use std::ops::DerefMut;

use sqlx::AnyConnection;

use super::{Conn, StorageError};

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// Until when (Unix seconds) `ip` is blocked, if it is at `now`.
    pub async fn ip_blocked_until(
        &mut self,
        ip: &str,
        now: i64,
    ) -> Result<Option<i64>, StorageError> {
        Ok(
            sqlx::query_scalar("SELECT until FROM ip_blocks WHERE ip = $1 AND until > $2")
                .bind(ip)
                .bind(now)
                .fetch_optional(self.conn())
                .await?,
        )
    }

    /// Every address blocked at `now`, with until when.
    pub async fn blocked_sources(&mut self, now: i64) -> Result<Vec<(String, i64)>, StorageError> {
        Ok(
            sqlx::query_as("SELECT ip, until FROM ip_blocks WHERE until > $1")
                .bind(now)
                .fetch_all(self.conn())
                .await?,
        )
    }

    /// Adds a penalty point for `ip` at `now`, forgetting points older than `window`
    /// seconds; the points `ip` now holds.
    pub async fn add_ip_point(
        &mut self,
        ip: &str,
        now: i64,
        window: i64,
    ) -> Result<i64, StorageError> {
        sqlx::query("DELETE FROM ip_points WHERE at <= $1")
            .bind(now.saturating_sub(window))
            .execute(self.conn())
            .await?;
        sqlx::query("INSERT INTO ip_points (ip, at) VALUES ($1, $2)")
            .bind(ip)
            .bind(now)
            .execute(self.conn())
            .await?;
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM ip_points WHERE ip = $1 AND at > $2")
                .bind(ip)
                .bind(now.saturating_sub(window))
                .fetch_one(self.conn())
                .await?,
        )
    }

    /// Blocks `ip` until `until`; the points that caused it are spent.
    pub async fn block_ip(&mut self, ip: &str, until: i64) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO ip_blocks (ip, until) VALUES ($1, $2) \
             ON CONFLICT (ip) DO UPDATE SET until = $2",
        )
        .bind(ip)
        .bind(until)
        .execute(self.conn())
        .await?;
        sqlx::query("DELETE FROM ip_points WHERE ip = $1")
            .bind(ip)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
