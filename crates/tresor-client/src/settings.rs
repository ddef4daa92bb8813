//! Connection settings: the bank's address and the bank CA certificate to trust.
//!
//! They live in `client.toml` in the OS's config folder (`~/.config/tresor` on Linux,
//! `~/Library/Application Support/tresor` on macOS, `%APPDATA%\tresor` on Windows). Flags
//! and `TRESOR_SERVER` / `TRESOR_BANK_CA` override the file, value by value.
//!
//! A bank's own installer carries a preset, `bank-client.toml` (the same format, its paths
//! relative to it) installed beside the programs or in `../share/tresor/` from them
//! (`/usr/share/tresor/` for `/usr/bin/tresor`): where the user's file names no bank, the
//! preset's bank is the one, so a user who installs it goes straight to the first login.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tresor_core::api::BankInfo;
use tresor_core::pki;
use tresor_core::x509_cert::Certificate;

use crate::drive_io::{self, StdIo};

/// Name of the settings file in the config folder.
pub const FILE_NAME: &str = "client.toml";

/// Name the bank CA certificate is copied to by [`Settings::save`].
pub const BANK_CA_FILE: &str = "bank-ca.pem";

/// Name of a bank's preset, installed with the programs.
pub const PRESET_FILE: &str = "bank-client.toml";

/// Why the settings could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file could not be read.
    #[error("cannot read the settings file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML, or has an unknown key.
    #[error("invalid settings file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No server address anywhere.
    #[error("no bank address: run `tresor setup`, or set --server or TRESOR_SERVER")]
    NoServer,
    /// No bank CA anywhere.
    #[error("no bank CA certificate: run `tresor setup`, or set --bank-ca or TRESOR_BANK_CA")]
    NoBankCa,
    /// The address is not https.
    #[error("the bank's address must be an https:// URL, not {0:?}")]
    BadServer(String),
    /// The CA file cannot be read or is not a certificate.
    #[error("the bank CA certificate {path} cannot be used: {message}")]
    BadBankCa {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The OS has no config folder (no home directory).
    #[error("the system has no configuration folder for this user")]
    NoConfigDir,
    /// Writing the settings failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The settings file as written. Paths may be relative to the file's folder.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    server: Option<String>,
    bank_ca: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pkcs11_module: Option<PathBuf>,
    /// The bank's name and helpdesk as it last told them, for when it cannot be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    bank: Option<CachedBankInfo>,
}

/// The bank's name and helpdesk as last heard from `server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedBankInfo {
    /// What the bank said.
    pub info: BankInfo,
    /// When, Unix seconds.
    pub fetched: u64,
}

/// Where to reach the bank and whom to trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `https://host:port`.
    pub server: String,
    /// The bank CA certificate, PEM.
    pub bank_ca: PathBuf,
    /// The PKCS#11 module for keys on tokens, where not the default (`--pkcs11-module` and
    /// `TRESOR_PKCS11_MODULE` override it).
    pub pkcs11_module: Option<PathBuf>,
}

/// The PKCS#11 module named in the settings file `file` (the default location if `None`), if
/// any: what saving new settings keeps, and what the token commands use where neither
/// `--pkcs11-module` nor `TRESOR_PKCS11_MODULE` names one.
pub fn stored_pkcs11_module(file: Option<&Path>) -> Option<PathBuf> {
    let path = file.map(Path::to_path_buf).or_else(default_path)?;
    read_file(&path).ok()?.pkcs11_module
}

/// The settings file's default location.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("tresor").join(FILE_NAME))
}

/// The bank's preset installed with this program, if there is one: beside the executable,
/// else in `../share/tresor/` from it.
pub fn preset_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join(PRESET_FILE),
        dir.join("..")
            .join("share")
            .join("tresor")
            .join(PRESET_FILE),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

impl Settings {
    /// Reads `file` (the default location if `None`; a missing file is empty), then lets
    /// `server` and `bank_ca` override it.
    pub fn resolve(
        file: Option<&Path>,
        server: Option<String>,
        bank_ca: Option<PathBuf>,
    ) -> Result<Self, SettingsError> {
        Self::resolve_with_preset(file, preset_path().as_deref(), server, bank_ca)
    }

    /// [`resolve`](Self::resolve) with the bank's preset at `preset`: used where the user's
    /// file names no bank.
    pub fn resolve_with_preset(
        file: Option<&Path>,
        preset: Option<&Path>,
        server: Option<String>,
        bank_ca: Option<PathBuf>,
    ) -> Result<Self, SettingsError> {
        let path = file.map(Path::to_path_buf).or_else(default_path);
        let (mut stored, mut base) = match &path {
            Some(path) => (read_file(path)?, path.parent().map(Path::to_path_buf)),
            None => (SettingsFile::default(), None),
        };
        if stored.server.is_none()
            && let Some(preset) = preset
        {
            let from = read_file(preset)?;
            stored.server = from.server;
            stored.bank_ca = from.bank_ca;
            base = preset.parent().map(Path::to_path_buf);
        }
        let server = server
            .filter(|s| !s.is_empty())
            .or(stored.server)
            .ok_or(SettingsError::NoServer)?;
        let bank_ca = match bank_ca.filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => p,
            None => {
                let p = stored.bank_ca.ok_or(SettingsError::NoBankCa)?;
                match base {
                    Some(base) if p.is_relative() => base.join(p),
                    _ => p,
                }
            }
        };
        let settings = Self {
            server,
            bank_ca,
            pkcs11_module: stored.pkcs11_module,
        };
        settings.check_server()?;
        Ok(settings)
    }

    fn check_server(&self) -> Result<(), SettingsError> {
        if self.server.starts_with("https://") && self.server.len() > "https://".len() {
            Ok(())
        } else {
            Err(SettingsError::BadServer(self.server.clone()))
        }
    }

    /// Reads the bank CA certificate and checks that it is a CA certificate.
    pub fn load_bank_ca(&self) -> Result<Certificate, SettingsError> {
        let bad = |message: String| SettingsError::BadBankCa {
            path: self.bank_ca.clone(),
            message,
        };
        let pem = std::fs::read(&self.bank_ca).map_err(|e| bad(e.to_string()))?;
        let cert = pki::certificate_from_pem(&pem).map_err(|e| bad(e.to_string()))?;
        if !pki::is_ca(&cert) {
            return Err(bad("it is not a CA certificate".into()));
        }
        Ok(cert)
    }

    /// Writes these settings to `file` (the default location if `None`), with a copy of the
    /// bank CA certificate beside it, each atomically. Returns the file's path.
    pub fn save(&self, file: Option<&Path>) -> Result<PathBuf, SettingsError> {
        self.check_server()?;
        let ca = self.load_bank_ca()?;
        let path = match file {
            Some(p) => p.to_path_buf(),
            None => default_path().ok_or(SettingsError::NoConfigDir)?,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SettingsError::Write { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        let ca_pem = pki::certificate_to_pem(&ca).map_err(|e| SettingsError::BadBankCa {
            path: self.bank_ca.clone(),
            message: e.to_string(),
        })?;
        drive_io::write_atomic(&StdIo, &dir, BANK_CA_FILE, ca_pem.as_bytes())
            .map_err(write_err(&dir.join(BANK_CA_FILE)))?;
        // What another bank said about itself is not this bank's helpdesk.
        let bank = read_file(&path)
            .ok()
            .filter(|old| old.server.as_deref() == Some(self.server.as_str()))
            .and_then(|old| old.bank);
        let file = SettingsFile {
            server: Some(self.server.clone()),
            bank_ca: Some(PathBuf::from(BANK_CA_FILE)),
            pkcs11_module: self.pkcs11_module.clone(),
            bank,
        };
        write_file(&path, &file)?;
        Ok(path)
    }
}

/// The bank's name and helpdesk cached in the settings file `file` (the default location if
/// `None`) for `server`, if the bank ever told them.
pub fn cached_bank_info(file: Option<&Path>, server: &str) -> Option<CachedBankInfo> {
    let from = |path: &Path| {
        let stored = read_file(path).ok()?;
        stored.server.filter(|s| s == server).and(stored.bank)
    };
    let path = file.map(Path::to_path_buf).or_else(default_path);
    // The user's cache, else what the bank's installer said of it.
    path.as_deref()
        .and_then(from)
        .or_else(|| preset_path().as_deref().and_then(from))
}

/// Caches what `server` said about itself in the settings file, if the file is that bank's.
/// Returns whether it was cached (settings given by flags or the environment alone, for a
/// bank the file does not name, are not).
pub fn cache_bank_info(
    file: Option<&Path>,
    server: &str,
    info: &BankInfo,
    now: u64,
) -> Result<bool, SettingsError> {
    let path = match file {
        Some(p) => p.to_path_buf(),
        None => default_path().ok_or(SettingsError::NoConfigDir)?,
    };
    let mut stored = read_file(&path)?;
    if stored.server.as_deref() != Some(server) {
        return Ok(false);
    }
    let cached = CachedBankInfo {
        info: info.clone(),
        fetched: now,
    };
    if stored.bank.as_ref().is_some_and(|b| b.info == cached.info) {
        return Ok(true);
    }
    stored.bank = Some(cached);
    write_file(&path, &stored)?;
    Ok(true)
}

fn write_file(path: &Path, file: &SettingsFile) -> Result<(), SettingsError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let text = toml::to_string(file).map_err(|e| SettingsError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| FILE_NAME.to_string());
    drive_io::write_atomic(&StdIo, dir, &name, text.as_bytes()).map_err(|source| {
        SettingsError::Write {
            path: path.to_path_buf(),
            source,
        }
    })?;
    Ok(())
}

fn read_file(path: &Path) -> Result<SettingsFile, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SettingsFile::default()),
        Err(source) => {
            return Err(SettingsError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    toml::from_str(&text).map_err(|e| SettingsError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_core::pki::BankCa;

    #[test]
    fn a_banks_preset_names_the_bank_where_the_users_file_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let share = dir.path().join("share");
        std::fs::create_dir(&share).unwrap();
        let preset = share.join(PRESET_FILE);
        std::fs::write(
            &preset,
            "server = \"https://bank.example:8443\"\nbank_ca = \"bank-ca.pem\"\n\
             [bank]\nfetched = 0\n[bank.info]\nname = \"Bank Example\"\nphone = \"+380 44 000 00 00\"\n",
        )
        .unwrap();
        let user = dir.path().join("user").join(FILE_NAME);
        // No file of the user's: the preset's bank, its CA beside the preset.
        let s = Settings::resolve_with_preset(Some(&user), Some(&preset), None, None).unwrap();
        assert_eq!(s.server, "https://bank.example:8443");
        assert_eq!(s.bank_ca, share.join("bank-ca.pem"));
        // The user's own bank wins; flags win over both.
        std::fs::create_dir_all(user.parent().unwrap()).unwrap();
        std::fs::write(
            &user,
            "server = \"https://other.example\"\nbank_ca = \"/ca.pem\"\n",
        )
        .unwrap();
        let s = Settings::resolve_with_preset(Some(&user), Some(&preset), None, None).unwrap();
        assert_eq!(s.server, "https://other.example");
        let s = Settings::resolve_with_preset(
            Some(&user),
            Some(&preset),
            Some("https://flag.example".into()),
            None,
        )
        .unwrap();
        assert_eq!(s.server, "https://flag.example");
        // A broken preset says where it is.
        std::fs::remove_file(&user).unwrap();
        std::fs::write(&preset, "server = 5\n").unwrap();
        let e = Settings::resolve_with_preset(Some(&user), Some(&preset), None, None).unwrap_err();
        assert!(e.to_string().contains(PRESET_FILE), "{e}");
    }

    fn ca_file(dir: &Path) -> PathBuf {
        let ca = BankCa::generate(
            "Test Bank CA",
            "Test Bank",
            "UA",
            std::time::SystemTime::now(),
            pki::DEFAULT_CA_VALIDITY,
        )
        .expect("ca");
        let path = dir.join("ca.pem");
        std::fs::write(
            &path,
            pki::certificate_to_pem(ca.certificate()).expect("pem"),
        )
        .expect("write");
        path
    }

    #[test]
    fn flags_override_the_file_and_relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ca_file(dir.path());
        let file = dir.path().join("conf").join(FILE_NAME);
        let saved = Settings {
            server: "https://bank.example:8443".into(),
            bank_ca: ca.clone(),
            pkcs11_module: Some("/usr/lib/softhsm/libsofthsm2.so".into()),
        };
        assert_eq!(saved.save(Some(&file)).expect("save"), file);
        let read = Settings::resolve(Some(&file), None, None).expect("resolve");
        assert_eq!(read.server, "https://bank.example:8443");
        assert_eq!(read.bank_ca, dir.path().join("conf").join(BANK_CA_FILE));
        assert_eq!(read.pkcs11_module, saved.pkcs11_module);
        assert_eq!(stored_pkcs11_module(Some(&file)), saved.pkcs11_module);
        read.load_bank_ca().expect("the copied CA loads");

        let over = Settings::resolve(
            Some(&file),
            Some("https://other:1".into()),
            Some(ca.clone()),
        )
        .expect("resolve");
        assert_eq!(
            (over.server.as_str(), over.bank_ca),
            ("https://other:1", ca)
        );
    }

    #[test]
    fn the_banks_helpdesk_is_cached_for_that_bank_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ca_file(dir.path());
        let file = dir.path().join(FILE_NAME);
        let server = "https://bank.example:8443";
        let info = BankInfo {
            name: "Банк Приклад".into(),
            phone: "+380 44 000 00 00".into(),
            ..BankInfo::default()
        };
        // No settings file: nothing to cache into.
        assert!(!cache_bank_info(Some(&file), server, &info, 1).expect("cache"));
        let settings = Settings {
            server: server.into(),
            bank_ca: ca.clone(),
            pkcs11_module: None,
        };
        settings.save(Some(&file)).expect("save");
        assert_eq!(cached_bank_info(Some(&file), server), None);
        assert!(cache_bank_info(Some(&file), server, &info, 7).expect("cache"));
        let cached = cached_bank_info(Some(&file), server).expect("cached");
        assert_eq!((cached.info, cached.fetched), (info.clone(), 7));
        // Another bank's address (a flag): not its helpdesk, and not cached over the file's.
        assert_eq!(cached_bank_info(Some(&file), "https://other:1"), None);
        assert!(!cache_bank_info(Some(&file), "https://other:1", &info, 9).expect("cache"));
        // Saving the same bank's settings again keeps the cache; another bank's drops it.
        settings.save(Some(&file)).expect("save");
        assert!(cached_bank_info(Some(&file), server).is_some());
        Settings::resolve(Some(&file), None, None).expect("the file still reads");
        let other = Settings {
            server: "https://other:1".into(),
            ..settings
        };
        other.save(Some(&file)).expect("save");
        assert_eq!(cached_bank_info(Some(&file), "https://other:1"), None);
    }

    #[test]
    fn missing_and_bad_settings_say_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(FILE_NAME);
        assert!(matches!(
            Settings::resolve(Some(&file), None, None),
            Err(SettingsError::NoServer)
        ));
        assert!(matches!(
            Settings::resolve(Some(&file), Some("https://x".into()), None),
            Err(SettingsError::NoBankCa)
        ));
        assert!(matches!(
            Settings::resolve(Some(&file), Some("http://x".into()), Some("ca.pem".into())),
            Err(SettingsError::BadServer(_))
        ));
        std::fs::write(&file, "server = \"https://x\"\nsurprise = 1\n").expect("write");
        assert!(matches!(
            Settings::resolve(Some(&file), None, None),
            Err(SettingsError::Parse { .. })
        ));
        let not_ca = dir.path().join("not-a-cert.pem");
        std::fs::write(&not_ca, "hello").expect("write");
        let s = Settings {
            server: "https://x".into(),
            bank_ca: not_ca,
            pkcs11_module: None,
        };
        assert!(matches!(
            s.load_bank_ca(),
            Err(SettingsError::BadBankCa { .. })
        ));
    }
}
