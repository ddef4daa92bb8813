//! The Tresor client library: everything that touches drives, files and the network.
//!
//! * [`connection`]: the secure channel to the bank over HTTPS (reqwest on rustls, TLS 1.3
//!   only, trusting the bank CA).
//! * [`media`]: which drives are plugged in, and which of them are removable.
//! * [`drive_io`]: the file operations key storage needs, with atomic writes, behind a trait
//!   so that tests can make any one of them fail.
//! * [`keystore`]: the per-login key folder on a drive, and key rotation that never leaves the
//!   user without a working key.
//!
//! The core formats (key file, certificates) live in `tresor-core`; this crate does the IO.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod connection;
pub mod drive_io;
pub mod keystore;
pub mod media;

pub use keystore::{KeyStore, StoreError, Unlocked};
pub use media::{Drive, MediaSource, SystemMedia};
