//! Text messages: the login's second step, where the bank's policy asks for one
//! (`login_second_step = "sms"`). A message is rendered here (pure functions), sealed and
//! queued in the outbox beside the mail (`channel = 'sms'`) in the transaction of the login
//! it completes; [`Gateway`] posts what is due to the bank's HTTP gateway (`[sms]`: URL,
//! method, a JSON or form template, an authentication header whose value comes from the
//! environment or a file) and marks it sent or failed, as the mailer does.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};
use tresor_core::api::BankInfo;
use zeroize::Zeroize as _;

use crate::binding::Vault;
use crate::clock::Clock;
use crate::config::{ConfigError, SmsBody, SmsConfig};
use crate::data::{self, BankSecrets};
use crate::storage::mail::{Channel, DueMail};
use crate::storage::{StorageError, Store};

/// The environment variable that holds the gateway's authentication header value.
pub const SMS_AUTH_ENV: &str = "TRESOR_SMS_AUTH";

/// How long a login's SMS code may be used, seconds.
pub const LOGIN_CODE_SECONDS: i64 = 5 * 60;

/// Digits in a login's SMS code.
pub const LOGIN_CODE_DIGITS: usize = 6;

/// How long a claim on a message lasts.
const LEASE_SECONDS: i64 = 60;

/// One text message.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sms {
    /// The mobile number, international format.
    pub to: String,
    /// The text: it carries a code.
    pub text: String,
}

/// Only the recipient: the text carries a code.
impl std::fmt::Debug for Sms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sms")
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl Drop for Sms {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

/// The login's code, short enough for one message, in both languages (an SMS has no room for
/// a preference).
pub fn login_code(info: &BankInfo, to: &str, code: &str) -> Sms {
    Sms {
        to: to.to_owned(),
        text: format!(
            "{}: код входу {code}, 5 хв. / login code {code}, 5 min. Нікому не кажіть / tell no one.",
            info.name
        ),
    }
}

/// Whether `phone` is a mobile number as the bank stores them: `+` and 8 to 15 digits
/// (ITU E.164).
pub fn plausible_phone(phone: &str) -> bool {
    phone
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// A number as an admin and the audit log see it: the last three digits.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().collect();
    let tail: String = digits[digits.len().saturating_sub(3)..].iter().collect();
    format!("•••{tail}")
}

/// The gateway's request body: `template` with `{to}` and `{text}` filled in, as the
/// contents of JSON strings or as form values.
pub fn render(body: SmsBody, template: &str, to: &str, text: &str) -> String {
    let fill = |v: &str| match body {
        SmsBody::Json => {
            // A JSON string's contents: the value serialized, without its quotes.
            let quoted = serde_json::to_string(v).unwrap_or_default();
            quoted[1..quoted.len().saturating_sub(1).max(1)].to_owned()
        }
        SmsBody::Form => form_encode(v),
    };
    template
        .replace("{to}", &fill(to))
        .replace("{text}", &fill(text))
}

/// `application/x-www-form-urlencoded`, as the WHATWG URL standard writes a value.
fn form_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Checks `[sms]`: a URL the bank may post a code to, a template that says where the number
/// and the text go, a header name that is one.
pub fn check(config: &SmsConfig) -> Result<(), ConfigError> {
    let Some(url) = &config.url else {
        return Ok(());
    };
    let parsed =
        reqwest::Url::parse(url).map_err(|_| ConfigError::Invalid("[sms] url is not a URL"))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !(parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback)) {
        return Err(ConfigError::Invalid(
            "[sms] url must be https (http only for a gateway on this host)",
        ));
    }
    if !matches!(config.method.as_deref(), None | Some("POST" | "PUT")) {
        return Err(ConfigError::Invalid("[sms] method is POST or PUT"));
    }
    if !config.template.contains("{to}") || !config.template.contains("{text}") {
        return Err(ConfigError::Invalid(
            "[sms] template must hold {to} and {text}",
        ));
    }
    if config
        .auth_header
        .as_deref()
        .is_some_and(|h| reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err())
    {
        return Err(ConfigError::Invalid(
            "[sms] auth_header is not a header name",
        ));
    }
    Ok(())
}

fn aad(id: &str) -> Vec<u8> {
    [b"tresor sms v1 ".as_slice(), id.as_bytes()].concat()
}

/// `sms` sealed for the outbox under `id`.
pub fn seal(vault: &Vault, id: &str, sms: &Sms) -> Option<Vec<u8>> {
    let mut plain = serde_json::to_vec(sms).ok()?;
    let sealed = vault.seal(&aad(id), &plain);
    plain.zeroize();
    sealed
}

/// The message sealed under `id`; `None` if this bank did not seal it for that id.
pub fn open(vault: &Vault, id: &str, sealed: &[u8]) -> Option<Sms> {
    let plain = vault.open(&aad(id), sealed)?;
    serde_json::from_slice(&plain).ok()
}

/// Why `[sms]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The configuration names something unusable.
    #[error("[sms]: {0}")]
    Config(String),
    /// The authentication file.
    #[error(transparent)]
    Secret(#[from] data::DataError),
}

/// The bank's SMS gateway client and its outbox.
pub struct Gateway {
    http: reqwest::Client,
    url: String,
    method: reqwest::Method,
    body: SmsBody,
    template: String,
    auth: Option<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    store: Store,
    vault: Vault,
    clock: Arc<dyn Clock>,
}

impl Gateway {
    /// The gateway `config` describes, over the outbox in `store`; `None` if the bank sends
    /// no SMS.
    pub fn new(
        config: &SmsConfig,
        store: Store,
        secrets: &BankSecrets,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, SmsError> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        let bad = |e: &dyn std::fmt::Display| SmsError::Config(e.to_string());
        let mut roots = rustls::RootCertStore::empty();
        match &config.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| SmsError::Config(format!("{}: {e}", path.display())))?;
                for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                    roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| bad(&e))?;
        let auth = match &config.auth_header {
            Some(name) => {
                let value =
                    data::secret(SMS_AUTH_ENV, config.auth_file.as_deref())?.ok_or_else(|| {
                        SmsError::Config(format!(
                            "auth_header is set but no value: set {SMS_AUTH_ENV} or auth_file"
                        ))
                    })?;
                let mut value =
                    reqwest::header::HeaderValue::from_str(value.expose()).map_err(|e| bad(&e))?;
                value.set_sensitive(true);
                Some((
                    reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|e| bad(&e))?,
                    value,
                ))
            }
            None => None,
        };
        let method = match config.method.as_deref() {
            Some("PUT") => reqwest::Method::PUT,
            _ => reqwest::Method::POST,
        };
        Ok(Some(Self {
            http,
            url: url.clone(),
            method,
            body: config.body,
            template: config.template.clone(),
            auth,
            store,
            vault: crate::mailer::vault(secrets),
            clock,
        }))
    }

    /// Sends the messages due now; how many the gateway took.
    pub async fn send_due(&self) -> Result<usize, StorageError> {
        crate::mailer::drain_outbox(
            &self.store,
            &*self.clock,
            Channel::Sms,
            LEASE_SECONDS,
            retry_after,
            |due| self.send(due),
        )
        .await
    }

    async fn send(&self, due: DueMail) -> Result<(), String> {
        let sms = open(&self.vault, &due.id, &due.sealed)
            .ok_or("the queued SMS was not sealed by this bank")?;
        let mut body = render(self.body, &self.template, &sms.to, &sms.text);
        let content_type = match self.body {
            SmsBody::Json => "application/json",
            SmsBody::Form => "application/x-www-form-urlencoded",
        };
        let mut request = self
            .http
            .request(self.method.clone(), &self.url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.clone());
        body.zeroize();
        if let Some((name, value)) = &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the gateway answered {}", response.status()))
        }
    }
}

/// Seconds to wait after a message's `attempts`-th failure: a login's code lives five
/// minutes, so 10 s doubling to 5 min.
pub fn retry_after(attempts: i64) -> i64 {
    (5_i64 << attempts.clamp(1, 6)).min(300)
}

/// Sends the SMS outbox every `every`, for as long as the process runs.
pub fn spawn(gateway: Gateway, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = gateway.send_due().await {
                tracing::error!(error = %e, "the SMS outbox could not be read");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_as_json_strings_or_form_values() {
        let cases = [
            (
                SmsBody::Json,
                r#"{"to":"{to}","message":"{text}"}"#,
                "+380441234567",
                "код 123456 \"quoted\" \\ done",
                r#"{"to":"+380441234567","message":"код 123456 \"quoted\" \\ done"}"#,
            ),
            (
                SmsBody::Form,
                "to={to}&text={text}&from=Bank",
                "+380441234567",
                "code 123456 & more=yes",
                "to=%2B380441234567&text=code+123456+%26+more%3Dyes&from=Bank",
            ),
            (SmsBody::Json, "{text}", "+1", "", ""),
        ];
        for (body, template, to, text, want) in cases {
            let got = render(body, template, to, text);
            assert_eq!(got, want, "{body:?} {template}");
            if body == SmsBody::Json && template.starts_with('{') && template.len() > 6 {
                // What a JSON reader makes of it: the very values.
                let v: serde_json::Value = serde_json::from_str(&got).unwrap();
                assert_eq!(v["message"], text);
            }
        }
    }

    #[test]
    fn phones_are_international_numbers() {
        assert_eq!(mask_phone("+380441234567"), "•••567");
        let cases = [
            ("+380441234567", true),
            ("+12025550123", true),
            ("380441234567", false),
            ("+38044123456789012", false),
            ("+380 44 123", false),
            ("+1234567", false),
        ];
        for (phone, want) in cases {
            assert_eq!(plausible_phone(phone), want, "{phone}");
        }
    }

    #[test]
    fn a_gateway_config_says_what_is_wrong() {
        let ok = SmsConfig {
            url: Some("https://sms.example/send".into()),
            template: r#"{"to":"{to}","text":"{text}"}"#.into(),
            ..Default::default()
        };
        assert!(check(&ok).is_ok());
        assert!(check(&SmsConfig::default()).is_ok(), "no gateway, no check");
        let cases: [(SmsConfig, &str); 5] = [
            (
                SmsConfig {
                    url: Some("http://sms.example/send".into()),
                    ..ok.clone()
                },
                "https",
            ),
            (
                SmsConfig {
                    url: Some("not a url".into()),
                    ..ok.clone()
                },
                "not a URL",
            ),
            (
                SmsConfig {
                    template: "{to}".into(),
                    ..ok.clone()
                },
                "{text}",
            ),
            (
                SmsConfig {
                    method: Some("GET".into()),
                    ..ok.clone()
                },
                "POST or PUT",
            ),
            (
                SmsConfig {
                    auth_header: Some("bad header".into()),
                    ..ok.clone()
                },
                "header name",
            ),
        ];
        for (config, needle) in cases {
            let e = check(&config).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
        let local = SmsConfig {
            url: Some("http://127.0.0.1:9000/sms".into()),
            ..ok
        };
        assert!(check(&local).is_ok(), "plain http on loopback");
    }

    #[test]
    fn a_sealed_message_opens_only_under_its_id_and_debug_hides_the_code() {
        let vault = Vault::new(&[5; 32]);
        let sms = login_code(&BankInfo::default(), "+380440000000", "123456");
        assert!(!format!("{sms:?}").contains("123456"));
        let sealed = seal(&vault, "a", &sms).unwrap();
        assert_eq!(open(&vault, "a", &sealed), Some(sms.clone()));
        assert_eq!(open(&vault, "b", &sealed), None);
        // Not a mail's seal either: the AADs differ.
        assert!(crate::mail::open(&vault, "a", &sealed).is_none());
        assert!(sms.text.chars().count() <= 160, "{}", sms.text);
    }
}
