//! The Tresor client library: everything that touches drives, files and the network.
//!
//! * [`connection`]: the secure channel to the bank over HTTPS (reqwest on rustls, TLS 1.3
//!   only, trusting the bank CA).
//! * [`media`]: which drives are plugged in, and which of them are removable.
//! * [`drive_io`]: the file operations key storage needs, with atomic writes, behind a trait
//!   so that tests can make any one of them fail.
//! * [`keystore`]: the per-login key folder on a drive, and key rotation that never leaves the
//!   user without a working key.
//! * [`token`]: keys generated inside a PKCS#11 token, with the same generations.
//! * [`key_home`]: a drive or a token behind one interface, which every flow uses.
//! * [`settings`]: the bank's address and CA, from the config folder, flags or environment.
//! * [`session`]: a session with the bank and its typed requests; the idle timeout; signing
//!   exactly the order that was shown.
//! * [`flows`]: first login, login with the key or an OTP code, renewal, recovery.
//! * [`reminder`]: when to remind the user to renew.
//! * [`prompt`]: secrets for the command lines, from the environment or an echo-less prompt.
//! * [`letter`]: the key letter, a PDF the bank activates a new certificate from.
//! * [`error`]: what went wrong, with the kinds the CLI's exit codes and the app's screens use.
//!
//! The core formats (key file, certificates) live in `tresor-core`; this crate does the IO.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod connection;
pub mod drive_io;
pub mod error;
pub mod exchange;
pub mod flows;
pub mod key_home;
pub mod keystore;
pub mod letter;
pub mod media;
mod pdf;
pub mod prompt;
pub mod reminder;
pub mod session;
pub mod settings;
pub mod statements;
pub mod token;

pub use error::{ClientError, ErrorKind};
pub use flows::Client;
pub use key_home::KeyHome;
pub use keystore::{KeyStore, StoreError, Unlocked};
pub use media::{Drive, MediaSource, SystemMedia};
pub use session::BankSession;
pub use settings::Settings;

/// A time as RFC 3339 UTC (`2026-11-21T10:00:00Z`), for messages.
pub fn format_time(t: std::time::SystemTime) -> String {
    tresor_core::x509_cert::der::DateTime::from_system_time(t)
        .map_or_else(|_| format!("{t:?}"), |d| d.to_string())
}

/// Seconds since the Unix epoch (0 before it), as the bank's API and `--json` give times.
pub fn unix_seconds(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
