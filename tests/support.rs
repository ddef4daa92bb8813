//! Helpers for Tresor's cross-crate tests: running the `openssl` command line as an
//! independent implementation to check our files against.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::{Command, Output};

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
