//! What the login screen fills in for the user, kept in the OS credential store (Secret
//! Service, the macOS Keychain, the Windows Credential Manager): the last login and the drive
//! chosen. Never a password and never a key: [`Remembered`] has no field that could hold one,
//! and the store is written only with it.

use serde::{Deserialize, Serialize};

/// The service name the entry is filed under.
pub const SERVICE: &str = "Tresor";
const ENTRY: &str = "last-login";

/// The remembered login and drive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct Remembered {
    /// The last login that logged in.
    pub login: Option<String>,
    /// The drive (or folder) the key was read from.
    pub drive: Option<String>,
}

/// The OS credential store, under one service name.
#[derive(Debug, Clone)]
pub struct RememberStore {
    service: String,
}

impl Default for RememberStore {
    fn default() -> Self {
        Self::new(SERVICE)
    }
}

impl RememberStore {
    /// The store under `service`.
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_owned(),
        }
    }

    fn entry(&self) -> keyring::Result<keyring::Entry> {
        keyring::Entry::new(&self.service, ENTRY)
    }

    /// What is remembered; nothing if the entry is absent. Blocking: call it off the async
    /// runtime (the Secret Service client must not run on a runtime's worker).
    pub fn load(&self) -> keyring::Result<Remembered> {
        match self.entry()?.get_password() {
            Ok(json) => serde_json::from_str(&json)
                .map_err(|e| keyring::Error::BadEncoding(e.to_string().into_bytes())),
            Err(keyring::Error::NoEntry) => Ok(Remembered::default()),
            Err(e) => Err(e),
        }
    }

    /// Remembers `what`, replacing what was there. Blocking, as [`load`](Self::load).
    pub fn save(&self, what: &Remembered) -> keyring::Result<()> {
        let json = serde_json::to_string(what)
            .map_err(|e| keyring::Error::BadEncoding(e.to_string().into_bytes()))?;
        self.entry()?.set_password(&json)
    }

    /// Forgets everything. Blocking, as [`load`](Self::load).
    pub fn forget(&self) -> keyring::Result<()> {
        match self.entry()?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the real OS store. It runs where `TRESOR_TEST_KEYRING` is set (scripts/test
    /// sets it inside a D-Bus session with gnome-keyring's Secret Service), and fails there
    /// if the store does not work.
    #[test]
    fn remembers_login_and_drive_in_the_os_store() {
        if std::env::var_os("TRESOR_TEST_KEYRING").is_none() {
            eprintln!("TRESOR_TEST_KEYRING not set: the OS credential store test is skipped");
            return;
        }
        let store = RememberStore::new("Tresor test");
        store.forget().expect("forget");
        assert_eq!(store.load().expect("load empty"), Remembered::default());

        let what = Remembered {
            login: Some("olena.koval".into()),
            drive: Some("/media/olena/STICK".into()),
        };
        store.save(&what).expect("save");
        assert_eq!(store.load().expect("load"), what);

        // The stored secret is exactly the two fields, nothing else.
        let raw = store.entry().expect("entry").get_password().expect("raw");
        let value: serde_json::Value = serde_json::from_str(&raw).expect("json");
        let keys: Vec<&String> = value.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["drive", "login"]);

        store.forget().expect("forget");
        assert_eq!(
            store.load().expect("load after forget"),
            Remembered::default()
        );
    }

    #[test]
    fn refuses_a_stored_value_with_other_fields() {
        let err = serde_json::from_str::<Remembered>(r#"{"login":"a","password":"x"}"#);
        assert!(err.is_err());
    }
}
