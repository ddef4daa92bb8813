//! Tresor's bank server, as a library: the binary (`src/bin/tresor-bank.rs`) and the tests
//! drive it through the same types.
//!
//! * [`tls`]: the outer HTTPS: rustls, TLS 1.3 only, on ring; the accept loop with its
//!   timeouts.
//! * [`channel`]: the secure channel's HTTP endpoints over the IO-free state machines in
//!   `tresor_core::channel`, with sessions in a [`channel::SessionStore`].
//! * [`storage`]: the database (SQLite embedded, or PostgreSQL) and all of the bank's SQL:
//!   typed rows, strict enums, versioned migrations; [`sessions`]: channel sessions kept
//!   there, sealed, so that instances share them.
//! * [`rules`]: the bank's rules as pure decisions (login stage, rights, certificates, the
//!   two-signature rule, sending, IP penalties), with their tables of cases.
//! * [`bank`]: the application: logins, lockout, IP penalties, passwords, TOTP,
//!   certificates; [`orders`]: accounts and payment orders with rights on every request.
//!   Both load, ask [`rules`], and write with their audit record in one transaction.
//! * [`admin`]: what admins do, on the same database and rules, with the [`admin::Actor`]
//!   the audit log names; [`four_eyes`]: admin commands over the channel, their roles, and
//!   the requests that wait for a second admin.
//! * [`audit`]: the hash-chained, anchored audit log.
//! * [`data`]: the data folder (bank CA, server certificate, secrets); [`config`]: the
//!   file and its defaults; [`clock`]: injectable time; [`passwords`]: Argon2id.
//! * [`server`]: assembling it all.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod audit;
pub mod bank;
pub mod binding;
pub mod channel;
pub mod clock;
pub mod config;
pub mod data;
pub mod directory;
mod files;
pub mod four_eyes;
pub mod generations;
pub mod ledger;
pub mod mail;
pub mod mailer;
pub mod metrics;
pub mod notices;
pub mod operations;
pub mod orders;
pub mod passwords;
pub mod profile;
pub mod proxy;
pub mod rules;
pub mod server;
pub mod sessions;
pub mod sms;
pub mod storage;
pub mod tls;
