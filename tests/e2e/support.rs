//! A real bank process and the real CLI, for the end-to-end tests.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tresor_core::payment::Iban;
pub use tresor_tests::{SOFTHSM_MODULE, SoftHsm, fresh_postgres};

/// The password every enrolled test user ends up with.
pub const PASSWORD: &str = "correct horse battery";
/// Their key password.
pub const KEY_PASSWORD: &str = "stick key password";

/// The workspace's binaries: beside this test's `deps` folder.
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, which \
         `cargo test --workspace` does)",
        path.display()
    );
    path
}

/// A Ukrainian IBAN in a test bank, numbered `n`.
pub fn iban(n: &str) -> String {
    Iban::ua_from_parts("305299", &format!("26000{n:0>14}"))
        .unwrap()
        .to_string()
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `tresor-bank serve` on a free port, with its own data folder.
pub struct Bank {
    env: Vec<(String, PathBuf)>,
    child: Child,
    // Kept open: the server may still print.
    _stdout: BufReader<ChildStdout>,
    dir: TempDir,
    /// `https://127.0.0.1:port`.
    pub url: String,
    /// `http://127.0.0.1:port` of the operations listener, where `[operations]` sets one.
    pub operations: Option<String>,
    /// The bank CA certificate.
    pub ca: PathBuf,
}

impl Bank {
    /// Starts a bank whose `[policy]` is `policy` (TOML lines).
    pub fn start(policy: &str) -> Bank {
        Self::start_with(policy, "", Vec::new())
    }

    /// Starts a bank whose `[policy]` is `policy`, with more configuration (`extra`, TOML
    /// sections) and environment (`env`, for it and its admin commands).
    pub fn start_with(policy: &str, extra: &str, env: Vec<(String, PathBuf)>) -> Bank {
        let dir = Self::folder(policy, extra);
        Self::serve(dir, env)
    }

    /// Creates a bank with `tresor-bank init` and its first security officer, then starts
    /// it; returns it and the officer's initial password.
    pub fn init_and_start(policy: &str, officer: &str, name: &str) -> (Bank, String) {
        let dir = Self::folder(policy, "");
        let out = Self::command(dir.path(), &[])
            .args(["init", "--admin", officer, "--name", name])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tresor-bank init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let initial = stdout.lines().last().unwrap().trim().to_string();
        (Self::serve(dir, Vec::new()), initial)
    }

    fn folder(policy: &str, extra: &str) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bank.toml"),
            format!("[policy]\n{policy}\n{extra}"),
        )
        .unwrap();
        dir
    }

    fn serve(dir: TempDir, env: Vec<(String, PathBuf)>) -> Bank {
        let (instance, ca) = Self::spawn(dir.path(), &env, "bank.log", "127.0.0.1:0");
        Bank {
            env,
            child: instance.child,
            _stdout: instance.stdout,
            dir,
            url: instance.url,
            ca,
            operations: instance.operations,
        }
    }

    /// Starts `tresor-bank serve` on the bank in `dir`, logging to `log` there; returns it
    /// once it has said where it listens, and the bank CA certificate's path.
    fn spawn(dir: &Path, env: &[(String, PathBuf)], log: &str, listen: &str) -> (Spawned, PathBuf) {
        let log_path = dir.join(log);
        let mut child = Self::command(dir, env)
            .args(["serve", "--listen", listen])
            .stdout(Stdio::piped())
            .stderr(File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut url, mut ca, mut operations) = (None, None, None);
        let wants_operations = std::fs::read_to_string(dir.join("bank.toml"))
            .unwrap()
            .contains("[operations]");
        while url.is_none() || ca.is_none() || (wants_operations && operations.is_none()) {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let log = std::fs::read_to_string(&log_path).unwrap();
                panic!("the bank did not start:\n{log}");
            }
            if let Some(u) = line.trim().strip_prefix("Tresor bank server: ") {
                url = Some(u.to_string());
            }
            if let Some(c) = line
                .trim()
                .strip_prefix("Clients trust the bank CA certificate: ")
            {
                ca = Some(PathBuf::from(c));
            }
            if let Some(o) = line.trim().strip_prefix("Operations: ") {
                operations = Some(o.to_string());
            }
        }
        let spawned = Spawned {
            child,
            stdout,
            url: url.unwrap(),
            operations,
        };
        (spawned, ca.unwrap())
    }

    /// Another `tresor-bank serve` of this bank: same data folder, configuration and
    /// database, its own port (and operations port), logging to `log` in the bank's folder.
    pub fn another_instance(&self, log: &str) -> Instance {
        self.another_instance_on(log, "127.0.0.1:0")
    }

    /// [`Self::another_instance`], listening on `listen` (to restart one where it was).
    pub fn another_instance_on(&self, log: &str, listen: &str) -> Instance {
        let s = Self::spawn(self.dir.path(), &self.env, log, listen).0;
        Instance {
            child: s.child,
            _stdout: s.stdout,
            url: s.url,
            operations: s.operations,
        }
    }

    fn command(dir: &Path, env: &[(String, PathBuf)]) -> Command {
        let mut cmd = Command::new(bin("tresor-bank"));
        cmd.env("TRESOR_CONFIG", dir.join("bank.toml"))
            .env("TRESOR_DATA", dir.join("data"))
            .env_remove("TRESOR_DATABASE_URL")
            .env_remove("TRESOR_LISTEN")
            .env_remove("TRESOR_CA_PIN")
            .env("TRESOR_LOG", "warn");
        for (var, value) in env {
            cmd.env(var, value);
        }
        cmd
    }

    /// The data folder.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `tresor-bank <args>` on the same data; returns the whole output, succeeded or not.
    pub fn local(&self, args: &[&str]) -> std::process::Output {
        Self::command(self.dir.path(), &self.env)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a local command on the same data; returns its output. Admin commands (`user`,
    /// `account`, `rights`, `cert`, `admin`) run as break-glass, which a test bank (fewer than
    /// two security officers) allows without a window; `tresor-admin` is tested on its own.
    pub fn admin(&self, args: &[&str]) -> String {
        let break_glass = matches!(
            args.first(),
            Some(&("user" | "account" | "rights" | "cert" | "admin"))
        );
        let prefix: &[&str] = if break_glass {
            &["break-glass", "--reason", "test setup"]
        } else {
            &[]
        };
        let out = Self::command(self.dir.path(), &self.env)
            .args(prefix)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tresor-bank {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The last line an admin command printed (a one-time password).
    pub fn admin_last_line(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        out.lines().last().unwrap().trim().to_string()
    }

    /// Creates a user; returns the initial password.
    pub fn add_user(&self, login: &str, name: &str) -> String {
        self.admin_last_line(&["user", "add", login, "--name", name])
    }

    /// A user through the first login, with [`PASSWORD`] and a key under [`KEY_PASSWORD`].
    pub fn enrolled(&self, login: &str, drive: &Path) -> Tresor {
        let initial = self.add_user(login, login);
        let me = Tresor::new(self, login, drive);
        me.run(&["first-login"])
            .secret("TRESOR_PASSWORD", &initial)
            .secret("TRESOR_NEW_PASSWORD", PASSWORD)
            .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
            .json_ok();
        me
    }

    /// `openssl verify` accepts `cert` against the bank CA, strictly, for client auth.
    pub fn openssl_verify(&self, cert: &Path) {
        let out = Command::new("openssl")
            .arg("verify")
            .args(["-x509_strict", "-purpose", "sslclient", "-CAfile"])
            .arg(&self.ca)
            .arg(cert)
            .output()
            .expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.trim_end().ends_with(": OK"),
            "openssl verify: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Bank {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's exit status, once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Kills the server (SIGKILL), wherever it is, and starts it again on the same data
    /// folder and configuration (on another port: `url` changes).
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let env = std::mem::take(&mut self.env);
        *self = Self::serve(dir, env);
    }

    /// Stops the server as systemd does (SIGTERM), waits for its clean exit, and starts it
    /// again on the same data folder and configuration (on another port: `url` changes).
    pub fn stop_and_restart(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "a clean exit: {exit}");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let env = std::mem::take(&mut self.env);
        *self = Self::serve(dir, env);
    }

    /// Stops the server (SIGKILL): the bank is down from here on.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bank {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server process just started.
struct Spawned {
    child: Child,
    stdout: BufReader<ChildStdout>,
    url: String,
    operations: Option<String>,
}

/// A second server process of a [`Bank`]; killed when dropped.
pub struct Instance {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    /// `https://localhost:port`.
    pub url: String,
    /// Its operations listener, where `[operations]` sets one.
    pub operations: Option<String>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `tresor` CLI as one user with one drive (or one token).
pub struct Tresor {
    url: String,
    ca: PathBuf,
    login: String,
    drive: PathBuf,
    token: Option<(String, PathBuf)>,
}

impl Tresor {
    /// `login`'s CLI, with the key on `drive`.
    pub fn new(bank: &Bank, login: &str, drive: &Path) -> Tresor {
        Tresor {
            url: bank.url.clone(),
            ca: bank.ca.clone(),
            login: login.to_string(),
            drive: drive.to_path_buf(),
            token: None,
        }
    }

    /// `login`'s CLI, with the key on the SoftHSM2 token `hsm`.
    pub fn on_token(bank: &Bank, login: &str, hsm: &SoftHsm) -> Tresor {
        Tresor {
            url: bank.url.clone(),
            ca: bank.ca.clone(),
            login: login.to_string(),
            drive: hsm.dir().to_path_buf(),
            token: Some((hsm.label.clone(), hsm.conf())),
        }
    }

    /// `tresor --json <args>`, with the bank, login and drive in the environment and no
    /// secret yet.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(bin("tresor"));
        cmd.arg("--json")
            .args(args)
            .env("TRESOR_SERVER", &self.url)
            .env("TRESOR_BANK_CA", &self.ca)
            .env("TRESOR_CLIENT_CONFIG", self.drive.join("no-settings.toml"))
            .env("TRESOR_LOGIN", &self.login)
            .stdin(Stdio::null());
        for var in [
            "TRESOR_PASSWORD",
            "TRESOR_NEW_PASSWORD",
            "TRESOR_KEY_PASSWORD",
            "TRESOR_TOKEN_PIN",
            "TRESOR_EMERGENCY_PASSWORD",
            "TRESOR_OTP",
            "TRESOR_RESET_CODE",
            "TRESOR_EMAIL_CODE",
            "TRESOR_SMS_CODE",
            "TRESOR_DRIVE",
            "TRESOR_TOKEN",
            "TRESOR_PKCS11_MODULE",
        ] {
            cmd.env_remove(var);
        }
        match &self.token {
            Some((label, conf)) => {
                cmd.env("TRESOR_TOKEN", label)
                    .env("TRESOR_PKCS11_MODULE", SOFTHSM_MODULE)
                    .env("SOFTHSM2_CONF", conf);
            }
            None => {
                cmd.env("TRESOR_DRIVE", &self.drive);
            }
        }
        Run {
            cmd,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// `tresor login` with the key.
    pub fn login(&self, password: &str, key_password: &str) -> Run {
        self.run(&["login"])
            .secret("TRESOR_PASSWORD", password)
            .secret("TRESOR_KEY_PASSWORD", key_password)
    }

    /// `tresor order create` from `payer` to `payee`.
    pub fn order_create(&self, payer: &str, payee: &str, amount: &str) -> Run {
        self.run(&[
            "order",
            "create",
            "--payer",
            payer,
            "--payee-name",
            "Supplier Ltd",
            "--payee-tax-code",
            "12345678",
            "--payee-iban",
            payee,
            "--amount",
            amount,
            "--purpose",
            "Invoice 42, VAT included",
        ])
    }
}

/// `tresor-admin` as one admin with one drive.
pub struct TresorAdmin {
    url: String,
    ca: PathBuf,
    login: String,
    drive: PathBuf,
}

impl TresorAdmin {
    /// `login`'s admin CLI, with the key on `drive`.
    pub fn new(bank: &Bank, login: &str, drive: &Path) -> TresorAdmin {
        TresorAdmin {
            url: bank.url.clone(),
            ca: bank.ca.clone(),
            login: login.to_string(),
            drive: drive.to_path_buf(),
        }
    }

    /// `tresor-admin --json <args>`, with the bank, login and drive in the environment and
    /// no secret yet.
    pub fn bare(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(bin("tresor-admin"));
        cmd.arg("--json")
            .args(args)
            .env("TRESOR_SERVER", &self.url)
            .env("TRESOR_BANK_CA", &self.ca)
            .env("TRESOR_CLIENT_CONFIG", self.drive.join("no-settings.toml"))
            .env("TRESOR_ADMIN_LOGIN", &self.login)
            .env("TRESOR_DRIVE", &self.drive)
            .stdin(Stdio::null());
        for var in [
            "TRESOR_ADMIN_PASSWORD",
            "TRESOR_NEW_PASSWORD",
            "TRESOR_KEY_PASSWORD",
            "TRESOR_EMERGENCY_PASSWORD",
        ] {
            cmd.env_remove(var);
        }
        Run {
            cmd,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// `tresor-admin --json <args>`, logged in with [`PASSWORD`] and [`KEY_PASSWORD`].
    pub fn run(&self, args: &[&str]) -> Run {
        self.bare(args)
            .secret("TRESOR_ADMIN_PASSWORD", PASSWORD)
            .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
    }

    /// The first login with `initial`: [`PASSWORD`], a key under [`KEY_PASSWORD`].
    pub fn first_login(&self, initial: &str) -> serde_json::Value {
        self.bare(&["first-login"])
            .secret("TRESOR_ADMIN_PASSWORD", initial)
            .secret("TRESOR_NEW_PASSWORD", PASSWORD)
            .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
            .json_ok()
    }
}

/// One CLI run being prepared.
pub struct Run {
    cmd: Command,
    args: Vec<String>,
}

impl Run {
    /// Adds a secret, through the environment as a script would.
    pub fn secret(mut self, var: &str, value: &str) -> Run {
        self.cmd.env(var, value);
        self
    }

    /// Sets an environment variable (not a secret).
    pub fn env(mut self, var: &str, value: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.env(var, value);
        self
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: &str) -> Run {
        self.cmd.arg(arg);
        self.args.push(arg.to_string());
        self
    }

    /// Runs; it must succeed; returns its JSON output.
    pub fn json_ok(mut self) -> serde_json::Value {
        let out = self.cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "tresor {:?} failed ({}): {stderr}",
            self.args,
            out.status
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "tresor {:?}: not JSON ({e}): {}",
                self.args,
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Starts it with its standard input a pipe (for what arrives later, as an SMS code)
    /// and its output captured.
    pub fn spawn_piped(mut self) -> std::process::Child {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs; returns its exit code and stderr, whatever they are.
    pub fn outcome(mut self) -> (Option<i32>, String) {
        let out = self.cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs; it must exit with `code` and say `needle` (any case) on stderr, which it returns.
    pub fn fails_with(mut self, code: i32, needle: &str) -> String {
        let out = self.cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "tresor {:?}: {stderr}",
            self.args
        );
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "tresor {:?}: expected {needle:?} in: {stderr}",
            self.args
        );
        stderr
    }

    /// Runs and kills it with SIGKILL after `after`, unless it exits first. Returns whether it
    /// was killed.
    pub fn kill_after(mut self, after: Duration) -> bool {
        let mut child = self
            .cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + after;
        loop {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            if Instant::now() >= deadline {
                // `Child::kill` is SIGKILL on Unix: no chance to clean up.
                child.kill().unwrap();
                child.wait().unwrap();
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
