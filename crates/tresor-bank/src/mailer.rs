//! Sends the outbox (`crate::mail`) through the bank's SMTP server (`[mail]`), with lettre
//! on rustls and ring: STARTTLS required by default, the server's certificate verified
//! against the public roots or the configured CA. Every few seconds an instance claims the
//! mails that are due (a conditioned update per mail, so that of several instances one
//! sends each), sends them, and marks each sent (forgetting what it said) or failed (tried
//! again later, 10 s doubling to an hour). A mail is sent at least once: an instance that
//! dies between the server's acceptance and the mark sends it again when its claim lapses.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::binding::Vault;
use crate::clock::Clock;
use crate::config::{MailConfig, MailSecurity};
use crate::data::{self, BankSecrets};
use crate::mail;
use crate::storage::mail::{Channel, DueMail};
use crate::storage::{StorageError, Store, unix};

/// The environment variable that holds the SMTP password.
pub const SMTP_PASSWORD_ENV: &str = "TRESOR_SMTP_PASSWORD";

/// Mails claimed at a time.
const BATCH: i64 = 20;
/// How long a claim lasts: longer than sending a batch takes.
const LEASE_SECONDS: i64 = 300;

/// Why the mail configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The configuration names something unusable.
    #[error("[mail]: {0}")]
    Config(String),
    /// The password file.
    #[error(transparent)]
    Secret(#[from] data::DataError),
}

/// The bank's SMTP client and its outbox.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    store: Store,
    vault: Vault,
    clock: Arc<dyn Clock>,
}

/// The vault that seals the outbox: the TOTP secrets' key, under AADs of its own
/// (`crate::mail`).
pub fn vault(secrets: &BankSecrets) -> Vault {
    Vault::new(&secrets.vault_key)
}

impl Mailer {
    /// The mailer `config` describes, over the outbox in `store`; `None` if the bank sends
    /// no mail.
    pub fn new(
        config: &MailConfig,
        store: Store,
        secrets: &BankSecrets,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, MailerError> {
        let Some(host) = &config.smtp else {
            return Ok(None);
        };
        let bad = |e: &dyn std::fmt::Display| MailerError::Config(e.to_string());
        let tls = || -> Result<TlsParameters, MailerError> {
            let mut builder = TlsParameters::builder(host.clone());
            builder = match &config.ca_file {
                Some(path) => {
                    let pem = std::fs::read(path)
                        .map_err(|e| MailerError::Config(format!("{}: {e}", path.display())))?;
                    builder
                        .certificate_store(CertificateStore::None)
                        .add_root_certificate(Certificate::from_pem(&pem).map_err(|e| bad(&e))?)
                }
                None => builder.certificate_store(CertificateStore::WebpkiRoots),
            };
            builder.build_rustls().map_err(|e| bad(&e))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port())
            .timeout(Some(Duration::from_secs(30)));
        builder = match config.security {
            MailSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
            MailSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
            MailSecurity::None => builder.tls(Tls::None),
        };
        let password = data::secret(SMTP_PASSWORD_ENV, config.password_file.as_deref())?;
        builder = match (&config.username, password) {
            (Some(user), Some(password)) => {
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()))
            }
            (Some(_), None) => {
                return Err(MailerError::Config(format!(
                    "username is set but no password: set {SMTP_PASSWORD_ENV} or password_file"
                )));
            }
            (None, _) => builder,
        };
        let from = config.from.trim().parse::<Mailbox>().map_err(|e| bad(&e))?;
        Ok(Some(Self {
            transport: builder.build(),
            from,
            store,
            vault: vault(secrets),
            clock,
        }))
    }

    /// Sends the mails due now; how many the server took.
    pub async fn send_due(&self) -> Result<usize, StorageError> {
        drain_outbox(
            &self.store,
            &*self.clock,
            Channel::Mail,
            LEASE_SECONDS,
            retry_after,
            |due| self.send(due),
        )
        .await
    }

    async fn send(&self, due: DueMail) -> Result<(), String> {
        let mail = mail::open(&self.vault, &due.id, &due.sealed)
            .ok_or("the queued mail was not sealed by this bank")?;
        let to = mail
            .to
            .parse::<Mailbox>()
            .map_err(|e| format!("recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// The outbox loop the mailer and the SMS gateway share: claims up to a batch of `channel`'s
/// messages due now until `lease` seconds from now, hands each to `send`, and marks it sent
/// (its body dropped) or failed, due again `retry_after(attempts)` seconds later. How many
/// went out.
pub(crate) async fn drain_outbox<F, Fut>(
    store: &Store,
    clock: &dyn Clock,
    channel: Channel,
    lease: i64,
    retry_after: fn(i64) -> i64,
    send: F,
) -> Result<usize, StorageError>
where
    F: Fn(DueMail) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let now = unix(clock.now());
    let due = store
        .read()
        .await?
        .claim_mail(channel, now, now + lease, BATCH)
        .await?;
    let mut sent = 0;
    for m in due {
        let (id, attempts) = (m.id.clone(), m.attempts + 1);
        let outcome = send(m).await;
        let mut conn = store.read().await?;
        match outcome {
            Ok(()) => {
                conn.mail_sent(&id, unix(clock.now())).await?;
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(?channel, id, attempts, error = %e, "not sent; it will be tried again");
                let next = unix(clock.now()) + retry_after(attempts);
                conn.mail_failed(&id, attempts, next, &e).await?;
            }
        }
    }
    Ok(sent)
}

/// Seconds to wait after a mail's `attempts`-th failure: 10 s, doubling, at most an hour.
pub fn retry_after(attempts: i64) -> i64 {
    (10_i64 << attempts.clamp(1, 10).saturating_sub(1)).min(3600)
}

/// Sends the outbox every `every`, for as long as the process runs.
pub fn spawn(mailer: Mailer, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = mailer.send_due().await {
                tracing::error!(error = %e, "the outbox could not be read");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_mail_waits_longer_each_time_up_to_an_hour() {
        let cases = [
            (0, 10),
            (1, 10),
            (2, 20),
            (3, 40),
            (6, 320),
            (9, 2560),
            (10, 3600),
            (50, 3600),
        ];
        for (attempts, want) in cases {
            assert_eq!(retry_after(attempts), want, "{attempts}");
        }
    }
}
