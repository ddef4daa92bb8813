//! Facts about the bank itself (which CA it belongs to).

use std::ops::DerefMut;

use sqlx::AnyConnection;

use super::{Conn, StorageError};

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// Sets `key` to `value` unless it has a value; the value it then has.
    pub async fn meta_or_insert(&mut self, key: &str, value: &str) -> Result<String, StorageError> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(self.conn())
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_one(self.conn())
            .await?)
    }
}
