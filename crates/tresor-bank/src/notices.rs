//! What the bank tells its users by e-mail unasked: a login from a new address, a lockout,
//! a password reset or an address change (security notices, which no one can turn off), a
//! certificate about to expire, a rejected order, money in. Each is queued in the
//! transaction of the event it tells of (`crate::mail`), to the user's verified address
//! only (its MAC holds: an address written into the database alone gets nothing), in their
//! language. Expiry reminders are found by a periodic job on the bank's clock; each
//! (certificate, day) is marked sent in the transaction that queues it, so that of several
//! instances one sends it, once.

use std::sync::Arc;
use std::time::Duration;

use tresor_core::api::profile::Language;

use crate::admin::format_time;
use crate::bank::Bank;
use crate::mail::{self, Notice};
use crate::rules::voice as rules;
use crate::storage::mail::{ContactRow, SeenAddress};
use crate::storage::{StorageError, Tx};

/// A user's verified address and what they want, read from their row.
pub(crate) struct Contact {
    /// The verified address, if any.
    pub(crate) email: Option<String>,
    /// The login.
    pub(crate) login: String,
    /// Their language; none: both.
    pub(crate) language: Option<Language>,
    /// Kinds turned off.
    pub(crate) quiet: Vec<tresor_core::api::profile::NoticeKind>,
    /// The mobile number, if its MAC holds.
    pub(crate) phone: Option<String>,
}

impl Bank {
    /// `user_id`'s address, if its MAC holds, and their preferences.
    pub(crate) fn contact_of(&self, user_id: i64, row: ContactRow) -> Contact {
        let email = match (row.email, row.email_tag) {
            (Some(email), Some(tag))
                if self.binding.email_holds(user_id, &row.login, &email, &tag) =>
            {
                Some(email)
            }
            (Some(_), _) => {
                tracing::warn!(
                    user = row.login,
                    "a stored e-mail address is not bound to the user; no mail goes to it"
                );
                None
            }
            (None, _) => None,
        };
        let phone = match (row.phone, row.phone_tag) {
            (Some(phone), Some(tag))
                if self.binding.phone_holds(user_id, &row.login, &phone, &tag) =>
            {
                Some(phone)
            }
            (Some(_), _) => {
                tracing::warn!(
                    user = row.login,
                    "a stored mobile number is not bound to the user; no code goes to it"
                );
                None
            }
            (None, _) => None,
        };
        Contact {
            email,
            phone,
            login: row.login,
            language: row.language.as_deref().and_then(Language::parse),
            quiet: rules::parse_quiet(&row.quiet),
        }
    }

    /// Reads `user_id`'s contact in `tx`.
    pub(crate) async fn contact_in(
        &self,
        tx: &mut Tx,
        user_id: i64,
    ) -> Result<Option<Contact>, StorageError> {
        Ok(tx
            .contact(user_id)
            .await?
            .map(|row| self.contact_of(user_id, row)))
    }

    /// Queues `notice` for `user_id` in `tx`, if the bank sends mail, the user has a verified
    /// address and wants this kind; the address as the audit log shows it, if queued.
    pub(crate) async fn notify(
        &self,
        tx: &mut Tx,
        user_id: i64,
        notice: &Notice<'_>,
    ) -> Result<Option<String>, StorageError> {
        let Some(contact) = self.contact_in(tx, user_id).await? else {
            return Ok(None);
        };
        let Some(to) = contact.email.as_deref() else {
            return Ok(None);
        };
        if !rules::wanted(notice.kind(), &contact.quiet) {
            return Ok(None);
        }
        self.queue_to(tx, to, &contact, notice).await
    }

    /// Queues `notice` to `to` in `tx` (an address being verified is not yet the user's);
    /// the address masked, if the bank sends mail.
    pub(crate) async fn queue_to(
        &self,
        tx: &mut Tx,
        to: &str,
        contact: &Contact,
        notice: &Notice<'_>,
    ) -> Result<Option<String>, StorageError> {
        let Some(vault) = &self.mail else {
            return Ok(None);
        };
        let message = mail::notice(&self.info, to, &contact.login, contact.language, notice);
        let id = mail::new_id().ok_or_else(|| StorageError::corrupt("no randomness"))?;
        let sealed = mail::seal(vault, &id, &message)
            .ok_or_else(|| StorageError::corrupt("a mail could not be sealed"))?;
        tx.enqueue_mail(&id, &sealed, self.unix_now()).await?;
        Ok(Some(mail::mask(to)))
    }

    /// Records that the user logged in from `ctx`'s address, and tells them when it is new
    /// to them (not on their first login).
    pub(crate) async fn note_address(
        &self,
        tx: &mut Tx,
        ctx: &crate::bank::Ctx<'_>,
        user_id: i64,
        now: i64,
    ) -> Result<(), StorageError> {
        if tx.saw_address(user_id, &ctx.source, now).await? == SeenAddress::New {
            let at = format_time(now);
            self.notify(
                tx,
                user_id,
                &Notice::NewAddress {
                    ip: &ctx.ip,
                    at: &at,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Queues `notice` for every user who may view `iban`.
    pub(crate) async fn notify_viewers(
        &self,
        tx: &mut Tx,
        iban: &str,
        notice: &Notice<'_>,
    ) -> Result<(), StorageError> {
        for user in tx.viewers_of(iban).await? {
            self.notify(tx, user, notice).await?;
        }
        Ok(())
    }

    /// Queues the certificate expiry reminders due now: one per certificate and reminder
    /// day, whichever instance finds it first. How many were newly due.
    pub async fn remind_expiring(&self) -> Result<usize, StorageError> {
        if self.mail.is_none() {
            return Ok(0);
        }
        let now = self.unix_now();
        let horizon = now + i64::from(rules::REMINDER_DAYS[0]) * 86_400;
        let expiring = self
            .store
            .read()
            .await?
            .certificates_expiring(now, horizon)
            .await?;
        let mut due = 0;
        for c in expiring {
            let Some(days) = rules::reminder_due(c.not_after, now) else {
                continue;
            };
            let mut work = self.begin().await?;
            if !work
                .note_notice(&format!("expiry:{}:{days}", c.serial), now)
                .await?
            {
                continue;
            }
            let expires = format_time(c.not_after);
            let to = self
                .notify(
                    &mut work,
                    c.user_id,
                    &Notice::CertificateExpiry {
                        serial: &c.serial,
                        expires: &expires,
                        days,
                    },
                )
                .await?;
            if let Some(to) = to {
                let login = work
                    .user_by_id(c.user_id)
                    .await?
                    .map(|u| u.login)
                    .unwrap_or_default();
                work.record(crate::audit::Event {
                    actor: "bank".into(),
                    login,
                    ip: String::new(),
                    event: "notice",
                    outcome: "queued".into(),
                    detail: format!(
                        "certificate {} expires in {days} day(s); reminder to {to}",
                        c.serial
                    ),
                });
            }
            self.commit(work).await?;
            due += 1;
        }
        Ok(due)
    }
}

/// Looks for due expiry reminders every `every`, for as long as the process runs.
pub fn spawn_reminders(channel: Arc<crate::server::BankChannel>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = channel.handler().remind_expiring().await {
                tracing::error!(error = %e, "expiry reminders could not be queued");
            }
        }
    });
}
