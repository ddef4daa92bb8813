//! A key login's client-side cost with the key on a PKCS#11 token (SoftHSM2) against the
//! key in a key file: unlocking (the token's PIN check against the file's scrypt) and the
//! whole secure-channel handshake the key signs (client and bank state machines in this
//! process, no network), side by side in one run.
//!
//! `cargo bench -p tresor-tests --bench token_login` (it makes its own SoftHSM2 token;
//! `TRESOR_BENCH_ROUNDS` sets the rounds, 30 by default).

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use tresor_client::KeyHome;
use tresor_client::keystore::KeyStore;
use tresor_client::token::{TokenModule, TokenStore};
use tresor_core::channel::client::{self, ClientAuthentication};
use tresor_core::channel::server::{self, SessionParams};
use tresor_core::login::Login;
use tresor_core::pki::{self, DEFAULT_CLIENT_VALIDITY, NoRevocationList};
use tresor_core::secret::Password;
use tresor_core::testkit::TestBank;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::Encode as _;
use tresor_tests::{SOFTHSM_MODULE, SoftHsm};

const CHILD: &str = "TRESOR_TOKEN_BENCH_CHILD";
const PIN: &str = "246810";
const KEY_PASSWORD: &str = "a key password for the bench";

fn main() {
    if std::env::var_os(CHILD).is_none() {
        // SoftHSM2 reads its configuration once per process: run again with a fresh token's.
        let hsm = SoftHsm::new("Bench token", PIN);
        let status = hsm
            .command(std::env::current_exe().unwrap().to_str().unwrap())
            .env(CHILD, "1")
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    let rounds: usize = std::env::var("TRESOR_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let bank = TestBank::new("Bench Bank");
    let login = Login::new("olena").unwrap();
    let certify = |csr_der: &[u8]| -> Certificate {
        let csr = pki::verify_csr(csr_der).unwrap();
        bank.ca
            .issue_client_certificate(&csr, &login, SystemTime::now(), DEFAULT_CLIENT_VALIDITY)
            .unwrap()
    };

    // The key file, with the production scrypt parameters.
    let drive = tempfile::tempdir().unwrap();
    let store = KeyStore::new(drive.path(), &login);
    let pending = store.create_first_key(&KEY_PASSWORD.into()).unwrap();
    store
        .commit_certificate(&pending, &certify(&pending.csr_der))
        .unwrap();
    let file: KeyHome = store.into();

    // The token.
    let module = TokenModule::load(Path::new(SOFTHSM_MODULE)).unwrap();
    let tokens = TokenStore::open(module, "Bench token", &login).unwrap();
    let pending = tokens.create_first_key(&PIN.into()).unwrap();
    tokens
        .commit_certificate(&PIN.into(), &pending, &certify(&pending.csr_der))
        .unwrap();
    let token: KeyHome = tokens.into();

    println!("median of {rounds} rounds, one thread");
    println!(
        "{:<28} {:>14} {:>14} {:>14}",
        "key", "unlock", "handshake", "login"
    );
    for (name, home, secret) in [
        ("key file (scrypt 2^14)", &file, KEY_PASSWORD),
        ("SoftHSM2 token (PIN)", &token, PIN),
    ] {
        let (unlock, handshake) = measure(&bank, home, &secret.into(), rounds);
        println!(
            "{name:<28} {:>11.2} ms {:>11.2} ms {:>11.2} ms",
            ms(unlock),
            ms(handshake),
            ms(unlock + handshake)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Medians of unlocking the key and of one handshake signed by it.
fn measure(
    bank: &TestBank,
    home: &KeyHome,
    secret: &Password,
    rounds: usize,
) -> (Duration, Duration) {
    let (mut unlocks, mut handshakes) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let start = Instant::now();
        let opened = home.unlock_current(secret).unwrap();
        unlocks.push(start.elapsed());
        let certificate = opened.certificate.unwrap().to_der().unwrap();
        let start = Instant::now();
        let now = SystemTime::now();
        let auth = ClientAuthentication::Key {
            login: home.login().clone(),
            certificate,
            signer: Box::new(opened.signer.signer()),
        };
        let (await_hello, hello) = client::start(auth);
        let (pending, server_hello) =
            server::respond(&hello, &bank.server_identity(), now).unwrap();
        let (await_accept, finish) = await_hello
            .receive(&server_hello, bank.ca_cert(), now)
            .unwrap();
        let verified = pending.verify(&finish, bank.ca_cert(), now).unwrap();
        let (_, accept) = verified
            .accept(&NoRevocationList, SessionParams::default(), now)
            .unwrap();
        await_accept.receive(&accept).unwrap();
        handshakes.push(start.elapsed());
    }
    (median(unlocks), median(handshakes))
}
