//! Login passwords on the bank's side: Argon2id PHC strings, checked off the async threads,
//! and the one-time passwords admins hand out.

use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tresor_core::Password;
use zeroize::Zeroizing;

/// Argon2id at OWASP's first recommended setting: 19 MiB, 2 passes, 1 lane.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Passes.
pub const ARGON2_PASSES: u32 = 2;
/// Lanes.
pub const ARGON2_LANES: u32 = 1;

fn argon2() -> Argon2<'static> {
    // Constant, valid parameters.
    #[allow(clippy::expect_used)]
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, None)
        .expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(password: &Password) -> String {
    let password = Zeroizing::new(password.as_bytes().to_vec());
    blocking(move || {
        // Hashing fails only on parameter errors, which are constant and valid.
        #[allow(clippy::expect_used)]
        argon2()
            .hash_password(&password)
            .expect("Argon2id hashing")
            .to_string()
    })
    .await
}

/// Whether `password` matches the PHC string. A malformed hash matches nothing.
pub async fn verify(phc: &str, password: &Password) -> bool {
    let phc = phc.to_owned();
    let password = Zeroizing::new(password.as_bytes().to_vec());
    blocking(move || {
        PasswordHash::new(&phc)
            .is_ok_and(|parsed| argon2().verify_password(&password, &parsed).is_ok())
    })
    .await
}

/// Spends the same time as [`verify`] for a login that does not exist, so that timing does
/// not tell which logins do.
pub async fn verify_nothing(password: &Password) {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        #[allow(clippy::expect_used)]
        argon2()
            .hash_password(b"no such user")
            .expect("Argon2id hashing")
            .to_string()
    });
    let dummy = LazyLock::force(&DUMMY).clone();
    let _ = verify(&dummy, password).await;
}

type Job = Box<dyn FnOnce() + Send>;

/// Argon2id runs on a fixed pool of one thread per core, not on tokio's blocking pool: each
/// hash takes 19 MiB, and the allocator keeps that much per thread that ever ran one, so
/// hundreds of blocking threads after a burst of logins would hold gigabytes. A fixed pool
/// also bounds the CPU that password guesses can take.
static POOL: LazyLock<std::sync::mpsc::Sender<Job>> = LazyLock::new(|| {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for i in 0..threads {
        let rx = rx.clone();
        // Spawning fails only when the OS refuses a thread at start-up.
        #[allow(clippy::expect_used)]
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })
            .expect("starting the Argon2 threads");
    }
    tx
});

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    // The pool's threads live as long as the process, so the channel is never closed.
    #[allow(clippy::expect_used)]
    POOL.send(job).expect("the Argon2 pool is running");
    #[allow(clippy::expect_used)]
    match rx.await.expect("the Argon2 pool answers every job") {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Alphabet of one-time passwords: no 0/o, 1/l/i, so that they can be read out on the phone.
const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// A one-time password for an admin to hand out: 16 characters in four groups (about 79
/// bits), e.g. `k7mq-3xbn-w9pe-r2ta`.
pub fn one_time() -> Password {
    let mut out = Zeroizing::new(String::with_capacity(19));
    let mut bytes = Zeroizing::new([0u8; 64]);
    let mut i = 0;
    while out.len() < 19 {
        if i % 64 == 0 {
            // Fails only if the OS random number generator does.
            #[allow(clippy::expect_used)]
            getrandom_fill(&mut *bytes).expect("the operating system's random number generator");
        }
        let b = bytes[i % 64];
        i += 1;
        // Rejection sampling keeps the choice uniform: 248 = 8 × 31.
        if usize::from(b) >= (256 / ALPHABET.len()) * ALPHABET.len() {
            continue;
        }
        if out.len() % 5 == 4 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
    }
    Password::new(std::mem::take(&mut *out))
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), ring::error::Unspecified> {
    use ring::rand::SecureRandom as _;
    ring::rand::SystemRandom::new().fill(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_phc_at_owasp_parameters_and_verify() {
        let pw = Password::from("correct horse battery staple");
        let phc = hash(&pw).await;
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(&phc, &pw).await);
        assert!(!verify(&phc, &Password::from("correct horse battery stapl")).await);
        assert!(!verify("not a hash", &pw).await);
        assert_ne!(hash(&pw).await, phc, "salted");
    }

    #[test]
    fn one_time_passwords_have_the_documented_shape() {
        let a = one_time();
        let b = one_time();
        assert_ne!(a.expose(), b.expose());
        let s = a.expose();
        assert_eq!(s.len(), 19);
        for (i, c) in s.chars().enumerate() {
            if i % 5 == 4 {
                assert_eq!(c, '-');
            } else {
                assert!(ALPHABET.contains(&(c as u8)), "{c}");
            }
        }
    }
}
