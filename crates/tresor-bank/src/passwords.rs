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

/// The Argon2 queue is full: the caller answers "busy" at once rather than wait behind a
/// flood of guesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bank is busy checking passwords; try again in a moment")]
pub struct Busy;

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(password: &Password) -> Result<String, Busy> {
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

/// [`hash`] for the admin's commands, which wait for room in the queue rather than answer
/// busy: they are few, and a flood of guesses must not stop an admin issuing a password.
pub async fn hash_patiently(password: &Password) -> String {
    loop {
        match hash(password).await {
            Ok(phc) => return phc,
            Err(Busy) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

/// Whether `password` matches the PHC string. A malformed hash matches nothing.
pub async fn verify(phc: &str, password: &Password) -> Result<bool, Busy> {
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
pub async fn verify_nothing(password: &Password) -> Result<(), Busy> {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        #[allow(clippy::expect_used)]
        argon2()
            .hash_password(b"no such user")
            .expect("Argon2id hashing")
            .to_string()
    });
    let dummy = LazyLock::force(&DUMMY).clone();
    verify(&dummy, password).await.map(drop)
}

type Job = Box<dyn FnOnce() + Send>;

/// Jobs that may wait per Argon2 thread: at ~50 ms a hash, under a second of waiting.
pub const QUEUE_PER_THREAD: usize = 16;

/// Argon2id runs on a fixed pool of one thread per core, not on tokio's blocking pool: each
/// hash takes 19 MiB, and the allocator keeps that much per thread that ever ran one, so
/// hundreds of blocking threads after a burst of logins would hold gigabytes. A fixed pool
/// also bounds the CPU that password guesses can take, and its bounded queue the time a
/// request can wait: a full queue answers [`Busy`] at once.
static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Pool::start(threads, threads * QUEUE_PER_THREAD)
});

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
    POOL.run(f).await
}

/// Password jobs waiting for an Argon2 thread, for the operations listener's `/metrics`.
pub fn queue_depth() -> usize {
    POOL.waiting.load(std::sync::atomic::Ordering::Relaxed)
}

/// Threads taking jobs from a bounded queue.
struct Pool {
    queue: std::sync::mpsc::SyncSender<Job>,
    /// Jobs queued and not yet taken by a thread.
    waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Pool {
    fn start(threads: usize, capacity: usize) -> Self {
        let (queue, rx) = std::sync::mpsc::sync_channel::<Job>(capacity);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let waiting = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for i in 0..threads {
            let rx = rx.clone();
            let waiting = waiting.clone();
            // Spawning fails only when the OS refuses a thread at start-up.
            #[allow(clippy::expect_used)]
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => {
                                waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                                job();
                            }
                            Err(_) => return,
                        }
                    }
                })
                .expect("starting the Argon2 threads");
        }
        Self { queue, waiting }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The request gave up (timed out, or its client went away): its hash would be
            // work for nobody.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        });
        // Counted before it is sent, so that a thread's decrement never comes first.
        self.waiting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.queue.try_send(job).is_err() {
            self.waiting
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return Err(Busy);
        }
        // A job is dropped unanswered only when its receiver is gone, which is not this one.
        #[allow(clippy::expect_used)]
        match rx.await.expect("the Argon2 pool answers every job") {
            Ok(v) => Ok(v),
            Err(panic) => std::panic::resume_unwind(panic),
        }
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

/// A one-time code of `digits` decimal digits, for a user to type from a mail or an SMS,
/// uniformly drawn.
pub fn numeric_code(digits: usize) -> Password {
    let mut out = Zeroizing::new(String::with_capacity(digits));
    let mut bytes = Zeroizing::new([0u8; 32]);
    let mut i = 0;
    while out.len() < digits {
        if i % 32 == 0 {
            // Fails only if the OS random number generator does.
            #[allow(clippy::expect_used)]
            getrandom_fill(&mut *bytes).expect("the operating system's random number generator");
        }
        let b = bytes[i % 32];
        i += 1;
        // Rejection sampling keeps the digits uniform: 250 = 25 × 10.
        if b >= 250 {
            continue;
        }
        out.push(char::from(b'0' + b % 10));
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
        let phc = hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(&phc, &pw).await.unwrap());
        assert!(
            !verify(&phc, &Password::from("correct horse battery stapl"))
                .await
                .unwrap()
        );
        assert!(!verify("not a hash", &pw).await.unwrap());
        assert_ne!(hash(&pw).await.unwrap(), phc, "salted");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_answers_busy_at_once_and_abandoned_jobs_are_skipped() {
        let (threads, capacity) = (2, 4);
        let pool = Pool::start(threads, capacity);
        // Hold every thread, then fill the queue.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
        let mut held = Vec::new();
        for _ in 0..threads {
            let gate = gate.clone();
            let mut job = Box::pin(pool.run(move || {
                let _ = gate.lock().unwrap().recv();
            }));
            assert!(poll_once(job.as_mut()).await.is_none());
            held.push(job);
        }
        // Wait until the threads have taken their jobs off the queue.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut queued = Vec::new();
        for _ in 0..capacity {
            let ran = ran.clone();
            let mut job = Box::pin(pool.run(move || {
                ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }));
            // Polling once puts the job in the queue.
            assert!(poll_once(job.as_mut()).await.is_none());
            queued.push(job);
        }
        let started = std::time::Instant::now();
        assert_eq!(
            pool.run(|| ()).await,
            Err(Busy),
            "an over-full queue refuses"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // The waiting requests give up; their jobs are skipped, not run.
        drop(queued);
        for _ in 0..threads {
            release.send(()).unwrap();
        }
        for h in held {
            h.await.unwrap();
        }
        assert_eq!(pool.run(|| 7).await, Ok(7), "the queue drains");
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    /// Polls a future once: `Some` if it completed.
    async fn poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    #[test]
    fn numeric_codes_are_digits_of_the_asked_length() {
        for digits in [6, 8] {
            let a = numeric_code(digits);
            assert_eq!(a.expose().len(), digits);
            assert!(
                a.expose().bytes().all(|b| b.is_ascii_digit()),
                "{}",
                a.expose()
            );
        }
        // Every digit turns up: the draw is not stuck on a few.
        let seen: std::collections::BTreeSet<u8> = (0..50)
            .flat_map(|_| numeric_code(8).expose().bytes().collect::<Vec<_>>())
            .collect();
        assert_eq!(seen.len(), 10);
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
