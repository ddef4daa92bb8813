//! Tresor's core: everything both the client and the bank server need that can be done
//! without touching a disk, a socket or a clock.
//!
//! * [`login`]: the validated user name that ties a key folder, a certificate and an account.
//! * [`secret`]: passwords that wipe themselves and never print.
//! * [`keyfile`]: P-256 keys as encrypted PKCS#8 PEM, with caps on hostile KDF parameters.
//! * [`pki`]: certificate requests, the bank CA, issuance and validation of client
//!   certificates.
//! * [`signer`]: a P-256 key that signs wherever it lives (in memory, on a token).
//! * [`channel`]: the secure channel's wire format and handshake and session state machines.
//! * [`api`]: the requests and replies inside the channel, clients' and admins'; [`text`]:
//!   user-typed text made safe for a terminal.
//!
//! The caller brings the bytes and the time; nothing here reads the system clock except where
//! a function says so in its name (`*_now`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod channel;
pub mod date;
pub mod keyfile;
pub mod login;
pub mod payment;
pub mod pki;
pub mod secret;
pub mod signer;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod text;
pub mod totp;

pub use keyfile::{KdfLimits, KeyFileError, PrivateKey};
pub use login::{Login, LoginError};
pub use secret::Password;

/// Fills `buf` from the operating system's CSPRNG.
///
/// Running out of entropy is not an error the caller could recover from, so this panics with
/// a clear message, as `getrandom`-backed generators in the RustCrypto crates do.
pub(crate) fn fill_random(buf: &mut [u8]) {
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// Checks an ECDSA P-256 SHA-256 DER signature with ring, against an uncompressed SEC1 key.
/// Certificate signatures and handshake signatures both go through here: ring is about five
/// times faster than the p256 crate, and the server checks two of them per handshake.
pub(crate) fn verify_p256_sha256(public_key_sec1: &[u8], message: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        public_key_sec1,
    )
    .verify(message, sig)
    .is_ok()
}

/// The X.509 types this crate's API speaks, re-exported so that users need not pin the same
/// version themselves.
pub use x509_cert;

/// The P-256 types keys are made of (a token hands back a public key; the client checks it).
pub use p256;
