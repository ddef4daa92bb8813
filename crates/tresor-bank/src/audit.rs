//! The audit log: append-only and hash-chained, with its head anchored.
//!
//! Record n stores `hash_n = HMAC-SHA256(audit key, "tresor-audit-v2" ‖ hash_{n-1} ‖ n ‖ time
//! ‖ actor ‖ login ‖ ip ‖ event ‖ outcome ‖ detail)` (each text length-prefixed), under a key
//! from the data folder, so that editing, inserting or deleting a record breaks the chain at
//! that record and a database-only attacker cannot compute a replacement. (Records written
//! before schema version 3 carry the unkeyed SHA-256 of the same input under
//! "tresor-audit-v1", marked `keyed = 0`; `verify` accepts them only before the first keyed
//! record.) Deleting the newest records would leave a shorter valid chain: the head row
//! (`audit_head`: newest seq and hash) is therefore authenticated with an HMAC too, and
//! `verify` checks the chain ends exactly there. The head is updated in the same transaction as each
//! append, and every append takes the head's row lock first, so that records are numbered
//! and chained in one order across instances.
//!
//! What this does not stop: someone holding both the database and the data folder's secret
//! can rewrite history; someone who saved an old head row can truncate back to it. Export
//! `audit head` regularly to a witness outside the bank to close that gap.

use std::time::SystemTime;

use ring::{digest, hmac};

pub use crate::storage::AuditFilter;
use crate::storage::{AuditHead, AuditRow, Conn, StorageError, Store, from_unix, unix};

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Who did it: `user` for a client, `admin:<name>` for the admin CLI, `bank` for the
    /// server itself.
    pub actor: String,
    /// The login concerned (may be a login that does not exist, for a failed attempt).
    pub login: String,
    /// The source address, or `local` for the admin CLI.
    pub ip: String,
    /// What: `login`, `password_change`, `lockout`, …
    pub event: &'static str,
    /// `ok`, or why it was refused.
    pub outcome: String,
    /// More, never a secret.
    pub detail: String,
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
    let mut tx = store.begin().await?;
    tx.init_audit_head(&zero, &head_mac(key, 0, &zero)).await?;
    tx.commit().await
}

/// Appends a record inside the caller's transaction, so that it commits with what it
/// records, or not at all. The head is checked before it is extended: a head edited without
/// the bank's key is not built upon.
pub async fn append<C>(
    conn: &mut Conn<C>,
    key: &[u8; 32],
    at: SystemTime,
    e: &Event,
) -> Result<i64, StorageError>
where
    C: std::ops::DerefMut<Target = sqlx::AnyConnection> + Send,
{
    let head = conn.audit_head_for_update().await?;
    if !head_valid(key, &head) {
        return Err(StorageError::corrupt(
            "the audit log's head was edited without the bank's key; refusing to extend it",
        ));
    }
    let prev: [u8; 32] = head
        .hash
        .as_slice()
        .try_into()
        .map_err(|_| StorageError::corrupt("audit head hash is not 32 bytes"))?;
    let seq = head.seq + 1;
    let at = unix(at);
    let hash = record_hash(key, &prev, seq, at, &fields(e));
    conn.insert_audit(&AuditRow {
        seq,
        at,
        actor: e.actor.clone(),
        login: e.login.clone(),
        ip: e.ip.clone(),
        event: e.event.to_owned(),
        outcome: e.outcome.clone(),
        detail: e.detail.clone(),
        prev_hash: prev.to_vec(),
        hash: hash.to_vec(),
        keyed: true,
    })
    .await?;
    conn.set_audit_head(&AuditHead {
        seq,
        hash: hash.to_vec(),
        mac: head_mac(key, seq, &hash).to_vec(),
    })
    .await?;
    Ok(seq)
}

/// Records newest first, for one login or all, at most `limit`.
pub async fn list(
    store: &Store,
    login: Option<&str>,
    limit: i64,
) -> Result<Vec<Record>, StorageError> {
    let filter = AuditFilter {
        login,
        ..AuditFilter::default()
    };
    search(store, &filter, limit).await
}

/// The records `filter` matches, newest first, at most `limit`.
pub async fn search(
    store: &Store,
    filter: &AuditFilter<'_>,
    limit: i64,
) -> Result<Vec<Record>, StorageError> {
    let rows = store.read().await?.audit_records(filter, limit).await?;
    Ok(rows
        .into_iter()
        .map(|r| Record {
            seq: r.seq,
            at: from_unix(r.at),
            actor: r.actor,
            login: r.login,
            ip: r.ip,
            event: r.event,
            outcome: r.outcome,
            detail: r.detail,
        })
        .collect())
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
    let mut conn = store.read().await?;
    let head = conn.audit_head().await?;
    if !head_valid(key, &head) {
        return Ok(Err(Tampering::ForgedHead));
    }
    let rows = conn.audit_chain().await?;
    let mut prev = [0u8; 32].to_vec();
    let mut expected = 1i64;
    let mut keyed_seen = false;
    for r in &rows {
        let seq = r.seq;
        if seq > head.seq {
            return Ok(Err(Tampering::AfterHead(seq)));
        }
        if seq != expected {
            return Ok(Err(Tampering::Deleted(expected)));
        }
        let Ok(stored_prev) = <[u8; 32]>::try_from(r.prev_hash.as_slice()) else {
            return Ok(Err(Tampering::Altered(seq)));
        };
        let f = [
            r.actor.as_str(),
            r.login.as_str(),
            r.ip.as_str(),
            r.event.as_str(),
            r.outcome.as_str(),
            r.detail.as_str(),
        ];
        // An unkeyed record after a keyed one is a forgery made to look old.
        if keyed_seen && !r.keyed {
            return Ok(Err(Tampering::Altered(seq)));
        }
        keyed_seen |= r.keyed;
        let hash = if r.keyed {
            record_hash(key, &stored_prev, seq, r.at, &f)
        } else {
            legacy_record_hash(&stored_prev, seq, r.at, &f)
        };
        if hash.as_slice() != r.hash {
            return Ok(Err(Tampering::Altered(seq)));
        }
        if r.prev_hash != prev {
            return Ok(Err(Tampering::Unlinked(seq)));
        }
        prev.clone_from(&r.hash);
        expected += 1;
    }
    let last = expected - 1;
    if last < head.seq {
        return Ok(Err(Tampering::Truncated {
            found: last,
            anchored: head.seq,
        }));
    }
    if prev != head.hash {
        return Ok(Err(Tampering::Altered(last)));
    }
    Ok(Ok(last))
}

/// The anchored head: newest seq and hash, and their MAC, to give to an outside witness.
pub async fn head(store: &Store) -> Result<(i64, Vec<u8>), StorageError> {
    let head = store.read().await?.audit_head().await?;
    Ok((head.seq, head.hash))
}

fn fields(e: &Event) -> [&str; 6] {
    [&e.actor, &e.login, &e.ip, e.event, &e.outcome, &e.detail]
}

fn head_valid(key: &[u8; 32], head: &AuditHead) -> bool {
    let tag = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&tag, &head_message(head.seq, &head.hash), &head.mac).is_ok()
}

fn record_input(label: &[u8], prev: &[u8; 32], seq: i64, at: i64, fields: &[&str; 6]) -> Vec<u8> {
    let mut m = label.to_vec();
    m.extend_from_slice(prev);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&at.to_be_bytes());
    for field in fields {
        m.extend_from_slice(&(field.len() as u64).to_be_bytes());
        m.extend_from_slice(field.as_bytes());
    }
    m
}

/// A record's keyed hash.
fn record_hash(key: &[u8; 32], prev: &[u8; 32], seq: i64, at: i64, fields: &[&str; 6]) -> [u8; 32] {
    let input = record_input(b"tresor-audit-v2", prev, seq, at, fields);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), &input);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The unkeyed hash of records written before schema version 3.
fn legacy_record_hash(prev: &[u8; 32], seq: i64, at: i64, fields: &[&str; 6]) -> [u8; 32] {
    let input = record_input(b"tresor-audit-v1", prev, seq, at, fields);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, &input).as_ref());
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
