//! Helpers for Tresor's cross-crate tests: running the `openssl` command line as an
//! independent implementation to check our files against.

#![forbid(unsafe_code)]

pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Name of the environment variable through which passwords reach `openssl` (never argv).
pub const PASS_VAR: &str = "TRESOR_TEST_PASS";

/// Runs `openssl` with `args` in `dir`, with `password` in [`PASS_VAR`].
pub fn openssl(dir: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir);
    if let Some(pw) = password {
        cmd.env(PASS_VAR, pw);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("openssl {args:?}: {e} (is openssl installed?)"))
}

/// Like [`openssl`], and panics with its stderr if it fails.
pub fn openssl_ok(dir: &Path, args: &[&str], password: Option<&str>) -> Output {
    let out = openssl(dir, args, password);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `-passin`/`-passout` value that reads [`PASS_VAR`].
pub fn pass_env() -> String {
    format!("env:{PASS_VAR}")
}

/// SoftHSM2's PKCS#11 module, as Debian installs it.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 token in its own folder and configuration: a real PKCS#11 token for tests.
pub struct SoftHsm {
    dir: TempDir,
    /// The token's label.
    pub label: String,
}

impl SoftHsm {
    /// A fresh token labelled `label`, with user PIN `pin`.
    pub fn new(label: &str, pin: &str) -> SoftHsm {
        let dir = tempfile::tempdir().expect("temporary folder");
        std::fs::create_dir(dir.path().join("tokens")).expect("tokens folder");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\n",
                dir.path().join("tokens").display()
            ),
        )
        .expect("SoftHSM2 configuration");
        let hsm = SoftHsm {
            dir,
            label: label.to_string(),
        };
        let out = hsm
            .command("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                "so-pin-0000",
            ])
            .args(["--pin", pin])
            .output()
            .expect("softhsm2-util (Debian package softhsm2)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        hsm
    }

    /// The token's own temporary folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file, for `SOFTHSM2_CONF`.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The folder SoftHSM2 keeps the token's objects in.
    pub fn token_dir(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// A command that sees this token (its `SOFTHSM2_CONF`).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SOFTHSM2_CONF", self.conf());
        cmd
    }

    /// `pkcs11-tool` (OpenSC), the independent implementation, on this token; `login` with
    /// the PIN. Returns its status, stdout and stderr.
    pub fn pkcs11_tool(&self, pin: Option<&str>, args: &[&str]) -> (bool, String, String) {
        let mut cmd = self.command("pkcs11-tool");
        cmd.args(["--module", SOFTHSM_MODULE, "--token-label", &self.label]);
        if let Some(pin) = pin {
            cmd.args(["--login", "--pin", pin]);
        }
        let out = cmd
            .args(args)
            .output()
            .expect("pkcs11-tool (Debian package opensc)");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A new, empty PostgreSQL database named `prefix` plus this process and the time, on the
/// server `TRESOR_TEST_POSTGRES` names (which scripts/test starts; it drops `tresor_test_*`
/// and `tresor_bench_*` databases of earlier runs), made with `psql`; its URL.
pub fn fresh_postgres(prefix: &str) -> String {
    let server = std::env::var("TRESOR_TEST_POSTGRES").expect(
        "TRESOR_TEST_POSTGRES must name a PostgreSQL server (postgres://tresor:tresor@127.0.0.1:5432); \
         scripts/test sets it",
    );
    let server = server.trim_end_matches('/');
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let out = Command::new("psql")
        .arg(format!("{server}/postgres"))
        .args(["-qAtc", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql (postgresql-client, which scripts/test installs)");
    assert!(
        out.status.success(),
        "CREATE DATABASE: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{server}/{name}")
}
