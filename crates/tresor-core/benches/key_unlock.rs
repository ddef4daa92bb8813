//! Key-unlock time: Tresor opening its key file (scrypt N=2^14, r=8, p=5, AES-256-CBC)
//! beside `openssl pkey` decrypting the same file, in the same run. `openssl version` is
//! measured too, so the process start-up inside the OpenSSL figure can be subtracted.
//!
//! Run: `cargo bench -p tresor-core --bench key_unlock`

use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tresor_core::keyfile::{KdfLimits, PrivateKey};
use tresor_core::secret::Password;

const PW: &str = "benchmark key password";

fn key_unlock(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = PrivateKey::generate();
    let pem = key.to_encrypted_pem(&Password::from(PW)).expect("encrypt");
    let path = dir.path().join("key.pem");
    std::fs::write(&path, pem.as_bytes()).expect("write key");
    let password = Password::from(PW);

    let mut group = c.benchmark_group("key_unlock");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    group.bench_function("tresor (scrypt 2^14,8,5 + AES-256-CBC)", |b| {
        b.iter(|| {
            PrivateKey::from_encrypted_pem(pem.as_bytes(), &password, &KdfLimits::DEFAULT)
                .expect("open")
        })
    });
    group.bench_function("openssl pkey, same file (incl. process start)", |b| {
        b.iter(|| {
            let status = Command::new("openssl")
                .args(["pkey", "-noout", "-passin", "env:TRESOR_BENCH_PW", "-in"])
                .arg(&path)
                .env("TRESOR_BENCH_PW", PW)
                .status()
                .expect("run openssl");
            assert!(status.success());
        })
    });
    group.bench_function("openssl version (process start only)", |b| {
        b.iter(|| {
            let status = Command::new("openssl")
                .arg("version")
                .stdout(std::process::Stdio::null())
                .status()
                .expect("run openssl");
            assert!(status.success());
        })
    });
    group.finish();
}

criterion_group!(benches, key_unlock);
criterion_main!(benches);
