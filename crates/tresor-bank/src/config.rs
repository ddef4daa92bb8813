//! The bank's configuration: a TOML file and `TRESOR_*` environment variables (read by the
//! binary), with the bank's figures as defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tresor_core::api::{BankInfo, MAX_BANK_FIELD};

/// What the server needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where to listen for HTTPS.
    pub listen: SocketAddr,
    /// The data folder: bank CA, server certificate, secrets, and the embedded database.
    pub data: PathBuf,
    /// A PostgreSQL URL; the embedded SQLite database in `data` if absent. May hold a
    /// password: give it in the file or the environment rather than on the command line.
    pub database_url: Option<String>,
    /// Host names in the server's certificate, besides `localhost` and the listen address.
    pub hostnames: Vec<String>,
    /// The bank's name, in certificates and TOTP enrollment (`[bank] name` overrides it).
    pub bank_name: String,
    /// Who the bank is to its users: name and helpdesk, shown before login.
    pub bank: BankSection,
    /// The rules.
    pub policy: Policy,
    /// Where the bank CA's key lives: the data folder (default) or an HSM.
    pub ca: CaConfig,
    /// The operations listener (metrics, health) and how long a stop waits for requests.
    pub operations: OperationsConfig,
    /// The load balancers in front of the bank, which alone may say who a client is.
    pub proxy: crate::proxy::ProxyConfig,
    /// The SMTP server the bank sends its mail through.
    pub mail: MailConfig,
    /// The HTTP gateway the bank sends text messages through.
    pub sms: SmsConfig,
}

/// `[sms]`: the HTTP gateway the bank sends text messages (the login's second step)
/// through; none unless `url` is set. `template` is the request body with `{to}` and `{text}`
/// in it, filled in as JSON strings' contents or form values as `body` says. The value of
/// the `auth_header` comes from `TRESOR_SMS_AUTH` or `auth_file`, never from this file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// The gateway's URL (https, or http on loopback).
    pub url: Option<String>,
    /// `POST` (default) or `PUT`.
    pub method: Option<String>,
    /// How `template` is filled in.
    pub body: SmsBody,
    /// The request body, with `{to}` and `{text}`.
    pub template: String,
    /// A header that authenticates the bank to the gateway (`Authorization`, `X-Api-Key`).
    pub auth_header: Option<String>,
    /// A file holding that header's value (mode 0600), where `TRESOR_SMS_AUTH` is not set.
    pub auth_file: Option<PathBuf>,
    /// A PEM CA certificate to trust for the gateway instead of the public roots.
    pub ca_file: Option<PathBuf>,
}

/// How an SMS gateway's request body is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmsBody {
    /// JSON (`Content-Type: application/json`): `{to}` and `{text}` inside JSON strings.
    #[default]
    Json,
    /// A form (`application/x-www-form-urlencoded`): `{to}` and `{text}` as values.
    Form,
}

/// What a key login needs besides the key and the password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondStep {
    /// Nothing.
    #[default]
    None,
    /// A 6-digit code the bank sends by SMS to the user's mobile number.
    Sms,
}

/// `[mail]`: the SMTP server the bank sends its mail through; no mail unless `smtp` is set.
/// The password comes from `TRESOR_SMTP_PASSWORD` or `password_file`, never from this file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The SMTP server's host name.
    pub smtp: Option<String>,
    /// Its port: 587 (STARTTLS) unless `security` says otherwise (465 for TLS, 25 for none).
    pub port: Option<u16>,
    /// How the connection is protected.
    pub security: MailSecurity,
    /// The sender: an address, or `Name <address>`.
    pub from: String,
    /// The bank's login on the SMTP server, if it asks for one.
    pub username: Option<String>,
    /// A file holding the SMTP password (mode 0600), where `TRESOR_SMTP_PASSWORD` is not set.
    pub password_file: Option<PathBuf>,
    /// A PEM CA certificate to trust for the SMTP server instead of the public roots (a mail
    /// server with an internal CA's certificate).
    pub ca_file: Option<PathBuf>,
}

/// How the bank's connection to its SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailSecurity {
    /// STARTTLS, required: the server must offer it and its certificate must verify.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// None: only for a server on this host (loopback), such as a local relay.
    None,
}

impl MailConfig {
    /// The port: `port`, else the usual one for `security`.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            MailSecurity::Starttls => 587,
            MailSecurity::Tls => 465,
            MailSecurity::None => 25,
        })
    }

    /// The sender's address, from `from` (`Name <address>` or an address).
    pub fn from_address(&self) -> &str {
        let from = self.from.trim();
        match (from.rfind('<'), from.strip_suffix('>')) {
            (Some(open), Some(inner)) => &inner[open + 1..],
            _ => from,
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let Some(host) = &self.smtp else {
            return Ok(());
        };
        if host.trim().is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::Invalid("[mail] smtp is not a host name"));
        }
        if !tresor_core::text::plausible_email(self.from_address()) {
            return Err(ConfigError::Invalid(
                "[mail] from must be an e-mail address, or Name <address>",
            ));
        }
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if self.security == MailSecurity::None && !loopback {
            return Err(ConfigError::Invalid(
                "[mail] security = \"none\" is only for a server on this host (localhost): \
                 use starttls or tls",
            ));
        }
        Ok(())
    }
}

/// `[operations]`: `/metrics`, `/healthz` and `/readyz` on a loopback address of their own
/// (off unless `listen` is set; the port may be 0), and the drain on SIGTERM or Ctrl-C.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperationsConfig {
    /// Where to serve them: a loopback address only (put a proxy in front to scrape from
    /// another host). Unset: not served.
    pub listen: Option<SocketAddr>,
    /// How long a stopping server lets the requests in flight finish, seconds.
    pub drain_seconds: u64,
}

impl Default for OperationsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            drain_seconds: 30,
        }
    }
}

/// `[bank]`: the bank's name and helpdesk, served to any client before login and shown on
/// the login screen and in every message that sends the user to the bank.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BankSection {
    /// The bank's name; `bank_name` if absent.
    pub name: Option<String>,
    /// The helpdesk's phone number, as users dial it.
    pub phone: String,
    /// The helpdesk's e-mail address.
    pub email: String,
    /// When the helpdesk answers, as the bank writes it ("Mon–Fri 9:00–18:00").
    pub hours: String,
    /// The bank's website.
    pub website: String,
}

/// The bank CA's key in a PKCS#11 token or HSM instead of the data folder. The PIN comes
/// from `TRESOR_CA_PIN` or from `pin_file`, readable by the bank's user alone; never from
/// this file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaConfig {
    /// The token's label or serial. Set, `init` creates the CA key on it.
    pub token: Option<String>,
    /// The PKCS#11 module (default: `TRESOR_PKCS11_MODULE`, then OpenSC's and SoftHSM2's).
    pub pkcs11_module: Option<PathBuf>,
    /// A file holding the PIN (mode 0600 or stricter), where `TRESOR_CA_PIN` is not set.
    pub pin_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data: PathBuf::from("tresor-data"),
            database_url: None,
            hostnames: Vec::new(),
            bank_name: "Tresor Bank".to_string(),
            bank: BankSection::default(),
            operations: OperationsConfig::default(),
            proxy: crate::proxy::ProxyConfig::default(),
            mail: MailConfig::default(),
            sms: SmsConfig::default(),
            policy: Policy::default(),
            ca: CaConfig::default(),
        }
    }
}

/// When a new certificate may open sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// At once.
    Immediate,
    /// Once a security officer activates it from the signed key letter
    /// (`tresor-admin cert activate`).
    Letter,
}

/// The bank's rules. Each has the bank's figure as default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Consecutive wrong passwords that lock an account.
    pub lockout_threshold: u32,
    /// Consecutive wrong OTP codes that stop OTP logins until an admin unlocks.
    pub otp_lockout_threshold: u32,
    /// An address with more valid penalty points than this is refused.
    pub ip_max_points: u32,
    /// How long a penalty point stays valid, seconds.
    pub ip_point_seconds: u64,
    /// How long a penalized address is refused, seconds.
    pub ip_block_seconds: u64,
    /// Validity of an initial password, seconds.
    pub initial_password_seconds: u64,
    /// Validity of a temporary password, seconds.
    pub temporary_password_seconds: u64,
    /// How long a four-eyes request may wait for its second admin, seconds.
    pub approval_seconds: u64,
    /// Validity of an emergency password, seconds.
    pub emergency_password_seconds: u64,
    /// Validity of a client certificate, days.
    pub certificate_days: u64,
    /// Renewal is accepted this many days before expiry; equal to `certificate_days`, at
    /// any time.
    pub renewal_window_days: u64,
    /// A session ends after this long without a request, seconds.
    pub session_idle_seconds: u64,
    /// A session ends this long after its handshake, however active, seconds.
    pub session_max_seconds: u64,
    /// Password checks on anonymous sessions (no key) per account within
    /// `anonymous_guess_seconds`; more are refused unchecked. They never lock the account.
    pub anonymous_guesses: u32,
    /// The window of `anonymous_guesses`, seconds.
    pub anonymous_guess_seconds: u64,
    /// Whether a new certificate opens sessions at once, or only once a security officer
    /// has activated it from its signed key letter.
    pub activation: Activation,
    /// After a key login, a code by SMS (`sms`), or nothing more (`none`).
    pub login_second_step: SecondStep,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            lockout_threshold: 5,
            otp_lockout_threshold: 5,
            ip_max_points: 5,
            ip_point_seconds: 10 * 60,
            ip_block_seconds: 15 * 60,
            initial_password_seconds: 7 * 24 * 3600,
            approval_seconds: 24 * 3600,
            temporary_password_seconds: 3 * 24 * 3600,
            emergency_password_seconds: 24 * 3600,
            certificate_days: 365,
            renewal_window_days: 30,
            session_idle_seconds: 5 * 60,
            session_max_seconds: 12 * 3600,
            anonymous_guesses: 10,
            anonymous_guess_seconds: 15 * 60,
            activation: Activation::Immediate,
            login_second_step: SecondStep::None,
        }
    }
}

impl Policy {
    /// Validity of a client certificate.
    pub fn certificate_validity(&self) -> Duration {
        Duration::from_secs(self.certificate_days * 24 * 3600)
    }

    /// How long before expiry renewal opens.
    pub fn renewal_window(&self) -> Duration {
        Duration::from_secs(self.renewal_window_days * 24 * 3600)
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
    /// `[proxy]` is not valid.
    #[error("invalid configuration: {0}")]
    Proxy(#[from] crate::proxy::ProxyError),
}

impl Config {
    /// Reads a TOML file; missing keys take their defaults, unknown keys are errors.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.check()?;
        Ok(config)
    }

    /// The bank's name: `[bank] name`, else `bank_name`.
    pub fn name(&self) -> &str {
        self.bank.name.as_deref().unwrap_or(&self.bank_name)
    }

    /// What the bank tells clients about itself.
    pub fn bank_info(&self) -> BankInfo {
        let b = &self.bank;
        BankInfo {
            name: self.name().to_owned(),
            phone: b.phone.clone(),
            email: b.email.clone(),
            hours: b.hours.clone(),
            website: b.website.clone(),
        }
    }

    /// Checks the ranges a typo could break.
    pub fn check(&self) -> Result<(), ConfigError> {
        let info = self.bank_info();
        for field in [
            &info.name,
            &info.phone,
            &info.email,
            &info.hours,
            &info.website,
        ] {
            if field.chars().count() > MAX_BANK_FIELD || field.chars().any(char::is_control) {
                return Err(ConfigError::Invalid(
                    "[bank] fields are one line of at most 120 characters each",
                ));
            }
        }
        if self
            .operations
            .listen
            .is_some_and(|a| !a.ip().is_loopback())
        {
            return Err(ConfigError::Invalid(
                "[operations] listen must be a loopback address (127.0.0.1 or ::1)",
            ));
        }
        crate::proxy::Proxies::new(&self.proxy)?;
        self.mail.check()?;
        crate::sms::check(&self.sms)?;
        if self.policy.login_second_step == SecondStep::Sms && self.sms.url.is_none() {
            return Err(ConfigError::Invalid(
                "login_second_step = \"sms\" needs an [sms] gateway url",
            ));
        }
        if info.name.trim().is_empty() {
            return Err(ConfigError::Invalid("the bank's name is empty"));
        }
        if !info.email.is_empty() && !tresor_core::text::plausible_email(&info.email) {
            return Err(ConfigError::Invalid(
                "[bank] email is not an e-mail address",
            ));
        }
        let p = &self.policy;
        if p.lockout_threshold == 0 || p.otp_lockout_threshold == 0 {
            return Err(ConfigError::Invalid(
                "lockout thresholds must be at least 1",
            ));
        }
        if p.certificate_days == 0 || p.renewal_window_days > p.certificate_days {
            return Err(ConfigError::Invalid(
                "certificate_days must be positive and at least renewal_window_days",
            ));
        }
        if p.session_idle_seconds == 0 || p.session_max_seconds < p.session_idle_seconds {
            return Err(ConfigError::Invalid(
                "session_idle_seconds must be positive and at most session_max_seconds",
            ));
        }
        if p.anonymous_guesses == 0 || p.anonymous_guess_seconds == 0 {
            return Err(ConfigError::Invalid(
                "anonymous_guesses and anonymous_guess_seconds must be positive",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_banks_figures_and_files_override_them() {
        let p = Policy::default();
        assert_eq!(p.lockout_threshold, 5);
        assert_eq!(
            (p.ip_max_points, p.ip_point_seconds, p.ip_block_seconds),
            (5, 600, 900)
        );
        assert_eq!(p.emergency_password_seconds, 24 * 3600);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9443\"\n[policy]\nlockout_threshold = 3\n",
        )
        .unwrap();
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c.listen.port(), 9443);
        assert_eq!(c.policy.lockout_threshold, 3);
        assert_eq!(c.policy.ip_max_points, 5);
    }

    #[test]
    fn the_bank_section_names_the_helpdesk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.toml");
        assert_eq!(Config::default().bank_info().name, "Tresor Bank");
        std::fs::write(&path, "bank_name = \"Old Name\"\n").unwrap();
        assert_eq!(Config::from_file(&path).unwrap().name(), "Old Name");
        std::fs::write(
            &path,
            "bank_name = \"Old Name\"\n[bank]\nname = \"Банк Приклад\"\n\
             phone = \"+380 44 000 00 00\"\nemail = \"help@bank.example\"\n\
             hours = \"Пн–Пт 9:00–18:00\"\nwebsite = \"https://bank.example\"\n",
        )
        .unwrap();
        let info = Config::from_file(&path).unwrap().bank_info();
        assert_eq!(info.name, "Банк Приклад");
        assert_eq!(info.phone, "+380 44 000 00 00");
        assert_eq!(info.email, "help@bank.example");
        assert_eq!(info.hours, "Пн–Пт 9:00–18:00");
        assert_eq!(info.website, "https://bank.example");
        for bad in [
            "[bank]\nemail = \"not an address\"\n",
            "[bank]\nphone = \"+380\\n44\"\n",
            "[bank]\nname = \" \"\n",
            "[bank]\nfax = \"1\"\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(Config::from_file(&path).is_err(), "{bad}");
        }
        std::fs::write(&path, format!("[bank]\nhours = \"{}\"\n", "x".repeat(121))).unwrap();
        assert!(Config::from_file(&path).is_err());
    }

    #[test]
    fn the_operations_listener_is_loopback_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.toml");
        assert_eq!(Config::default().operations.listen, None);
        let cases = [
            ("", true),
            ("[operations]\nlisten = \"127.0.0.1:9100\"\n", true),
            (
                "[operations]\nlisten = \"[::1]:0\"\ndrain_seconds = 5\n",
                true,
            ),
            ("[operations]\nlisten = \"0.0.0.0:9100\"\n", false),
            ("[operations]\nlisten = \"192.0.2.1:9100\"\n", false),
        ];
        for (text, ok) in cases {
            std::fs::write(&path, text).unwrap();
            assert_eq!(Config::from_file(&path).is_ok(), ok, "{text}");
        }
    }

    #[test]
    fn a_proxy_section_is_read_and_a_bad_one_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.toml");
        let cases = [
            ("", Ok(())),
            (
                "[proxy]\ntrusted = [\"127.0.0.1\", \"10.0.0.0/8\"]\nheader = \"proxy-v2\"\n",
                Ok(()),
            ),
            (
                "[proxy]\ntrusted = [\"::1\"]\nheader = \"forwarded-for\"\n",
                Ok(()),
            ),
            ("[proxy]\ntrusted = [\"10.0.0.1\"]\n", Err("header must be")),
            (
                "[proxy]\ntrusted = [\"lb.bank.example\"]\nheader = \"proxy-v2\"\n",
                Err("\"lb.bank.example\" is not an IP address"),
            ),
            (
                "[proxy]\ntrusted = [\"10.0.0.1\"]\nheader = \"x-real-ip\"\n",
                Err("x-real-ip"),
            ),
        ];
        for (text, want) in cases {
            std::fs::write(&path, text).unwrap();
            match (Config::from_file(&path), want) {
                (Ok(_), Ok(())) => {}
                (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn a_mail_section_is_read_and_a_bad_one_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.toml");
        let cases = [
            ("", Ok(587)),
            (
                "[mail]\nsmtp = \"mail.bank.example\"\nfrom = \"Bank <noreply@bank.example>\"\n",
                Ok(587),
            ),
            (
                "[mail]\nsmtp = \"mail.bank.example\"\nsecurity = \"tls\"\nfrom = \"noreply@bank.example\"\n",
                Ok(465),
            ),
            (
                "[mail]\nsmtp = \"127.0.0.1\"\nport = 2525\nsecurity = \"none\"\nfrom = \"n@bank.example\"\n",
                Ok(2525),
            ),
            (
                "[mail]\nsmtp = \"mail.bank.example\"\nsecurity = \"none\"\nfrom = \"n@bank.example\"\n",
                Err("only for a server on this host"),
            ),
            (
                "[mail]\nsmtp = \"mail.bank.example\"\nfrom = \"Bank\"\n",
                Err("from must be an e-mail address"),
            ),
            (
                "[mail]\nsmtp = \"mail.bank.example\"\nfrom = \"n@bank.example\"\npassword = \"x\"\n",
                Err("unknown field `password`"),
            ),
        ];
        for (text, want) in cases {
            std::fs::write(&path, text).unwrap();
            match (Config::from_file(&path), want) {
                (Ok(c), Ok(port)) => assert_eq!(c.mail.port(), port, "{text}"),
                (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.toml");
        std::fs::write(&path, "[policy]\nlockout_treshold = 3\n").unwrap();
        let e = Config::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("lockout_treshold"), "{e}");
        std::fs::write(&path, "[policy]\nlockout_threshold = 0\n").unwrap();
        assert!(matches!(
            Config::from_file(&path),
            Err(ConfigError::Invalid(_))
        ));
    }
}
