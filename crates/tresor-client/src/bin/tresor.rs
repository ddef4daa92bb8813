//! `tresor`: the client's command line, for people and for scripts.
//!
//! Secrets are never arguments: the key password comes from `TRESOR_KEY_PASSWORD` or is
//! asked for on the terminal without echo.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use serde::Serialize;
use tresor_client::keystore::{KeyStore, StoreError};
use tresor_client::media::{MediaSource as _, SystemMedia};
use tresor_core::keyfile::{KdfLimits, KeyFileError};
use tresor_core::login::Login;
use tresor_core::pki;
use tresor_core::secret::Password;

/// Exit status for a problem with the key or the drive (wrong key password, no key, …).
const EXIT_KEY: u8 = 4;

#[derive(Parser)]
#[command(name = "tresor", version, about = "Tresor business-banking client")]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Removable drives and disks.
    Media {
        #[command(subcommand)]
        command: MediaCommand,
    },
    /// The key on the drive.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
enum MediaCommand {
    /// List mounted drives, removable ones first.
    List,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Generate a new P-256 key on the drive, encrypted with the key password.
    Generate {
        /// Mount path of the drive (or any folder standing in for it).
        #[arg(long)]
        drive: PathBuf,
        /// The login the key is for.
        #[arg(long)]
        login: String,
    },
    /// Decrypt the key and print its public-key fingerprint.
    Check {
        /// Mount path of the drive.
        #[arg(long)]
        drive: PathBuf,
        /// The login whose key to check.
        #[arg(long)]
        login: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tresor: {err:#}");
            if err
                .chain()
                .any(|e| e.is::<StoreError>() || e.is::<KeyFileError>())
            {
                ExitCode::from(EXIT_KEY)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Media {
            command: MediaCommand::List,
        } => media_list(cli.json),
        Command::Key {
            command: KeyCommand::Generate { drive, login },
        } => key_generate(cli.json, drive, login),
        Command::Key {
            command: KeyCommand::Check { drive, login },
        } => key_check(cli.json, drive, login),
    }
}

fn media_list(json: bool) -> Result<()> {
    let drives = SystemMedia.list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&drives)?);
        return Ok(());
    }
    if drives.is_empty() {
        println!("No drives found.");
    }
    for d in drives {
        println!(
            "{:<9} {:<24} {:<32} {:>10} free of {:>10}  {}{}",
            if d.removable { "removable" } else { "fixed" },
            d.label,
            d.mount_path.display(),
            human_bytes(d.free_bytes),
            human_bytes(d.total_bytes),
            d.file_system,
            if d.read_only { " (read-only)" } else { "" },
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct KeyReport {
    login: String,
    key_path: PathBuf,
    generation: u32,
    fingerprint: String,
    certificate_expires: Option<u64>,
}

fn key_generate(json: bool, drive: &Path, login: &str) -> Result<()> {
    let login = Login::new(login).context("invalid login")?;
    let store = KeyStore::new(drive, &login);
    if let Some(g) = store.latest_key()? {
        bail!(
            "a key for {login} already exists at {}; keys are renewed, never overwritten",
            store.key_path(g.number).display()
        );
    }
    let password = new_key_password()?;
    let pending = store.create_pending_key(&password)?;
    if json {
        let report = KeyReport {
            login: login.to_string(),
            key_path: pending.key_path.clone(),
            generation: pending.generation,
            fingerprint: pending.key.fingerprint(),
            certificate_expires: None,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", pending.key_path.display());
    }
    Ok(())
}

fn key_check(json: bool, drive: &Path, login: &str) -> Result<()> {
    let login = Login::new(login).context("invalid login")?;
    let store = KeyStore::new(drive, &login);
    // Fail on a missing key before asking for a password.
    if store.latest_key()?.is_none() {
        return Err(StoreError::KeyNotFound {
            login: login.to_string(),
            dir: store.dir().to_path_buf(),
        }
        .into());
    }
    let password = key_password("Key password: ")?;
    let unlocked = store.unlock_latest(&password, &KdfLimits::DEFAULT)?;
    let expires = unlocked.certificate.as_ref().map(|c| {
        pki::not_after(c)
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    });
    if json {
        let report = KeyReport {
            login: login.to_string(),
            key_path: unlocked.key_path.clone(),
            generation: unlocked.generation,
            fingerprint: unlocked.key.fingerprint(),
            certificate_expires: expires,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", unlocked.key.fingerprint());
    }
    Ok(())
}

fn key_password(prompt: &str) -> Result<Password> {
    if let Ok(pw) = std::env::var("TRESOR_KEY_PASSWORD") {
        return Ok(Password::new(pw));
    }
    let pw = rpassword::prompt_password(prompt)
        .context("no key password: set TRESOR_KEY_PASSWORD or run in a terminal")?;
    Ok(Password::new(pw))
}

fn new_key_password() -> Result<Password> {
    if let Ok(pw) = std::env::var("TRESOR_KEY_PASSWORD") {
        let pw = Password::new(pw);
        pw.check_new_key_password()?;
        return Ok(pw);
    }
    let first = key_password("New key password: ")?;
    first.check_new_key_password()?;
    let again = key_password("Repeat the key password: ")?;
    if first.expose() != again.expose() {
        bail!("the two key passwords differ");
    }
    Ok(first)
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
