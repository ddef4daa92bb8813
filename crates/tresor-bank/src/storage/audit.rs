//! The audit log's rows and its anchored head. The chain's hashing and MACs are the audit
//! module's (`crate::audit`); this file only stores and reads.

use std::ops::DerefMut;

use sqlx::{AnyConnection, Row as _};

use super::rows::{AuditHead, AuditRow};
use super::{Conn, StorageError};

const AUDIT_COLUMNS: &str =
    "seq, at, actor, login, ip, event, outcome, detail, prev_hash, hash, keyed";

fn decode_head(r: &sqlx::any::AnyRow) -> Result<AuditHead, StorageError> {
    Ok(AuditHead {
        seq: r.try_get("seq")?,
        hash: r.try_get("hash")?,
        mac: r.try_get("mac")?,
    })
}

/// Which audit records to list; `None` matches all.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFilter<'a> {
    /// About this login.
    pub login: Option<&'a str>,
    /// This event.
    pub event: Option<&'a str>,
    /// At or after, Unix seconds.
    pub from: Option<i64>,
    /// At or before, Unix seconds.
    pub until: Option<i64>,
}

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// Creates the head of an empty log, if there is none.
    pub async fn init_audit_head(&mut self, hash: &[u8], mac: &[u8]) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, 0, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(hash.to_vec())
        .bind(mac.to_vec())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The head, locked until the transaction ends: appends on every instance take it in
    /// turn, so records are numbered and chained in one order.
    pub async fn audit_head_for_update(&mut self) -> Result<AuditHead, StorageError> {
        // A write that changes nothing takes the row lock on PostgreSQL and, inside
        // BEGIN IMMEDIATE, SQLite's write lock is held already.
        let row =
            sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash, mac")
                .fetch_optional(self.conn())
                .await?
                .ok_or_else(|| StorageError::corrupt("the audit log has no head"))?;
        decode_head(&row)
    }

    /// The head, as stored.
    pub async fn audit_head(&mut self) -> Result<AuditHead, StorageError> {
        let row = sqlx::query("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
            .fetch_optional(self.conn())
            .await?
            .ok_or_else(|| StorageError::corrupt("the audit log has no head"))?;
        decode_head(&row)
    }

    /// Moves the head.
    pub async fn set_audit_head(&mut self, head: &AuditHead) -> Result<(), StorageError> {
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, mac = $3 WHERE id = 1")
            .bind(head.seq)
            .bind(head.hash.clone())
            .bind(head.mac.clone())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Stores a record.
    pub async fn insert_audit(&mut self, r: &AuditRow) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO audit (seq, at, actor, login, ip, event, outcome, detail, prev_hash, \
             hash, keyed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(r.seq)
        .bind(r.at)
        .bind(&r.actor)
        .bind(&r.login)
        .bind(&r.ip)
        .bind(&r.event)
        .bind(&r.outcome)
        .bind(&r.detail)
        .bind(r.prev_hash.clone())
        .bind(r.hash.clone())
        .bind(i64::from(r.keyed))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Records newest first, of one login or all, at most `limit`.
    pub async fn audit_records(
        &mut self,
        filter: &AuditFilter<'_>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StorageError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit WHERE ($1 = '' OR login = $1) \
             AND ($2 = '' OR event = $2) AND at >= $3 AND at <= $4 \
             ORDER BY seq DESC LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.login.unwrap_or(""))
            .bind(filter.event.unwrap_or(""))
            .bind(filter.from.unwrap_or(i64::MIN))
            .bind(filter.until.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(AuditRow::decode).collect()
    }

    /// The whole chain, oldest first.
    pub async fn audit_chain(&mut self) -> Result<Vec<AuditRow>, StorageError> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(AuditRow::decode).collect()
    }
}
