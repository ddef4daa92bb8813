//! Tresor's bank server.
//!
//! * [`tls`]: the outer HTTPS: rustls, TLS 1.3 only, on ring; the accept loop with its
//!   timeouts.
//! * [`channel`]: the secure channel's HTTP endpoints over the IO-free state machines in
//!   `tresor_core::channel`: pending handshakes and sessions in memory, bounded request
//!   sizes, and an application [`channel::Handler`] that sees only opened requests.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod channel;
pub mod tls;
