//! The audit log: append-only and hash-chained, with its head anchored.
//!
//! Record n stores `hash_n = SHA-256("tresor-audit-v1" ‖ hash_{n-1} ‖ n ‖ time ‖ actor ‖
//! login ‖ ip ‖ event ‖ outcome ‖ detail)` (each text length-prefixed), so that editing,
//! inserting or deleting a record breaks the chain at that record. Editing the newest records
//! and recomputing their hashes, or deleting them, would leave a shorter valid chain: the
//! head row (`audit_head`: newest seq and hash) is therefore authenticated with an HMAC under
//! a key from the data folder, which a database-only attacker does not have, and `verify`
//! checks the chain ends exactly there. The head is updated in the same transaction as each
//! append, and every append takes the head's row lock first, so that records are numbered
//! and chained in one order across instances.
//!
//! What this does not stop: someone holding both the database and the data folder's secret
//! can rewrite history; someone who saved an old head row can truncate back to it. Export
//! `audit head` regularly to a witness outside the bank to close that gap.

use std::time::SystemTime;

use ring::{digest, hmac};
use sqlx::{AnyConnection, Row as _};

use crate::store::{StorageError, Store, from_unix, unix};

/// One thing that happened.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Who did it: `user` for a client, `admin:<name>` for the admin CLI, `bank` for the
    /// server itself.
    pub actor: &'a str,
    /// The login concerned (may be a login that does not exist, for a failed attempt).
    pub login: &'a str,
    /// The source address, or `local` for the admin CLI.
    pub ip: &'a str,
    /// What: `login`, `password_change`, `lockout`, …
    pub event: &'a str,
    /// `ok`, or why it was refused.
    pub outcome: &'a str,
    /// More, never a secret.
    pub detail: &'a str,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When.
    pub at: SystemTime,
    /// Who did it.
    pub actor: String,
    /// The login concerned.
    pub login: String,
    /// Source address.
    pub ip: String,
    /// What.
    pub event: String,
    /// How it ended.
    pub outcome: String,
    /// More.
    pub detail: String,
}

/// Creates the head row of an empty log, if there is none.
pub async fn init(store: &Store, key: &[u8; 32]) -> Result<(), StorageError> {
    let zero = [0u8; 32];
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, 0, $1, $2) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(zero.to_vec())
    .bind(head_mac(key, 0, &zero).to_vec())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Appends a record inside the caller's transaction, so that it commits with what it
/// records, or not at all.
pub async fn append(
    conn: &mut AnyConnection,
    key: &[u8; 32],
    at: SystemTime,
    e: &Event<'_>,
) -> Result<i64, StorageError> {
    // The head's row lock orders every append, on every instance.
    let row = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut *conn)
        .await?;
    let seq: i64 = row.try_get("seq")?;
    let prev: Vec<u8> = row.try_get("hash")?;
    let prev: [u8; 32] = prev
        .try_into()
        .map_err(|_| StorageError::Corrupt("audit head hash is not 32 bytes".into()))?;
    let at = unix(at);
    let hash = record_hash(&prev, seq, at, e);
    sqlx::query(
        "INSERT INTO audit (seq, at, actor, login, ip, event, outcome, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(at)
    .bind(e.actor)
    .bind(e.login)
    .bind(e.ip)
    .bind(e.event)
    .bind(e.outcome)
    .bind(e.detail)
    .bind(prev.to_vec())
    .bind(hash.to_vec())
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1, mac = $2 WHERE id = 1")
        .bind(hash.to_vec())
        .bind(head_mac(key, seq, &hash).to_vec())
        .execute(&mut *conn)
        .await?;
    Ok(seq)
}

/// Records newest first, for one login or all, at most `limit`.
pub async fn list(
    store: &Store,
    login: Option<&str>,
    limit: i64,
) -> Result<Vec<Record>, StorageError> {
    let rows = match login {
        Some(login) => {
            sqlx::query(
                "SELECT seq, at, actor, login, ip, event, outcome, detail FROM audit \
                 WHERE login = $1 ORDER BY seq DESC LIMIT $2",
            )
            .bind(login)
            .bind(limit)
            .fetch_all(store.pool())
            .await?
        }
        None => {
            sqlx::query(
                "SELECT seq, at, actor, login, ip, event, outcome, detail FROM audit \
                 ORDER BY seq DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(store.pool())
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            Ok(Record {
                seq: r.try_get("seq")?,
                at: from_unix(r.try_get("at")?),
                actor: r.try_get("actor")?,
                login: r.try_get("login")?,
                ip: r.try_get("ip")?,
                event: r.try_get("event")?,
                outcome: r.try_get("outcome")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

/// What `verify` found wrong, at the first record concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tampering {
    /// The record's content no longer matches its hash.
    #[error("record {0} was altered")]
    Altered(i64),
    /// A record is missing from the middle of the chain.
    #[error("record {0} was deleted")]
    Deleted(i64),
    /// The record does not link to the one before it: it, or the one before, was replaced
    /// or inserted.
    #[error("record {0} was inserted or replaced (it does not link to record {prev})", prev = .0 - 1)]
    Unlinked(i64),
    /// Records after the anchored head.
    #[error("record {0} was inserted after the anchored head of the log")]
    AfterHead(i64),
    /// The newest records, up to the anchored head, are missing.
    #[error("the newest records were deleted: the log ends at {found}, its anchor says {anchored}")]
    Truncated {
        /// The last record found.
        found: i64,
        /// The last record anchored.
        anchored: i64,
    },
    /// The head row's MAC is wrong: it was edited without the bank's key.
    #[error("the log's anchored head was forged")]
    ForgedHead,
}

/// Checks the whole chain and its anchor. `Ok(n)` with the number of records when intact.
pub async fn verify(store: &Store, key: &[u8; 32]) -> Result<Result<i64, Tampering>, StorageError> {
    let head = sqlx::query("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
        .fetch_one(store.pool())
        .await?;
    let head_seq: i64 = head.try_get("seq")?;
    let head_hash: Vec<u8> = head.try_get("hash")?;
    let mac: Vec<u8> = head.try_get("mac")?;
    let tag = hmac::Key::new(hmac::HMAC_SHA256, key);
    if hmac::verify(&tag, &head_message(head_seq, &head_hash), &mac).is_err() {
        return Ok(Err(Tampering::ForgedHead));
    }

    let rows = sqlx::query(
        "SELECT seq, at, actor, login, ip, event, outcome, detail, prev_hash, hash FROM audit \
         ORDER BY seq",
    )
    .fetch_all(store.pool())
    .await?;
    let mut prev = [0u8; 32].to_vec();
    let mut expected = 1i64;
    for r in &rows {
        let seq: i64 = r.try_get("seq")?;
        if seq > head_seq {
            return Ok(Err(Tampering::AfterHead(seq)));
        }
        if seq != expected {
            return Ok(Err(Tampering::Deleted(expected)));
        }
        let stored_prev: Vec<u8> = r.try_get("prev_hash")?;
        let stored: Vec<u8> = r.try_get("hash")?;
        let actor: String = r.try_get("actor")?;
        let login: String = r.try_get("login")?;
        let ip: String = r.try_get("ip")?;
        let event: String = r.try_get("event")?;
        let outcome: String = r.try_get("outcome")?;
        let detail: String = r.try_get("detail")?;
        let e = Event {
            actor: &actor,
            login: &login,
            ip: &ip,
            event: &event,
            outcome: &outcome,
            detail: &detail,
        };
        let Ok(stored_prev_arr) = <[u8; 32]>::try_from(stored_prev.as_slice()) else {
            return Ok(Err(Tampering::Altered(seq)));
        };
        if record_hash(&stored_prev_arr, seq, r.try_get("at")?, &e).as_slice() != stored {
            return Ok(Err(Tampering::Altered(seq)));
        }
        if stored_prev != prev {
            return Ok(Err(Tampering::Unlinked(seq)));
        }
        prev = stored;
        expected += 1;
    }
    let last = expected - 1;
    if last < head_seq {
        return Ok(Err(Tampering::Truncated {
            found: last,
            anchored: head_seq,
        }));
    }
    if prev != head_hash {
        return Ok(Err(Tampering::Altered(last)));
    }
    Ok(Ok(last))
}

/// The anchored head: newest seq and hash, and their MAC, to give to an outside witness.
pub async fn head(store: &Store) -> Result<(i64, Vec<u8>), StorageError> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(store.pool())
        .await?;
    Ok((head.try_get("seq")?, head.try_get("hash")?))
}

fn record_hash(prev: &[u8; 32], seq: i64, at: i64, e: &Event<'_>) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"tresor-audit-v1");
    ctx.update(prev);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&at.to_be_bytes());
    for field in [e.actor, e.login, e.ip, e.event, e.outcome, e.detail] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn head_message(seq: i64, hash: &[u8]) -> Vec<u8> {
    let mut m = b"tresor-audit-head-v1".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

fn head_mac(key: &[u8; 32], seq: i64, hash: &[u8; 32]) -> [u8; 32] {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        &head_message(seq, hash),
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}
