//! A session with the bank, with typed requests: the [`api`](tresor_core::api) protocol over
//! the secure channel, plus what the client must enforce itself (the idle timeout, signing
//! only what it has shown).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tresor_core::api::admin::AdminAction;
use tresor_core::api::directory::{Counterparty, CounterpartyContent, Template, TemplateContent};
use tresor_core::api::ledger::{ImportOutcome, ImportedOrder, StatementPage};
use tresor_core::api::profile::{Language, NoticeKind, Profile};
use tresor_core::api::{
    ApiError, LoginInfo, MAX_SIGN_BATCH, OrderSignature, OrderView, Overview, QUEUE_PAGE, Reply,
    Request, Response, SignResult, Stage,
};
use tresor_core::channel::Mode;
use tresor_core::date::Day;
use tresor_core::payment::{self, PaymentOrder};
use tresor_core::secret::Password;
use tresor_core::x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::connection::Session;
use crate::error::ClientError;
use crate::key_home::{KeyHome, KeySignerHandle};
use crate::media::{MediaSource, removable_drive_present};

/// The key a session was signed with, and where it came from.
pub struct SessionKey {
    /// The drive's key folder or the token it was read from (renewal puts the new key there).
    pub home: KeyHome,
    /// Its generation.
    pub generation: u32,
    /// The key, unlocked.
    pub signer: KeySignerHandle,
    /// Its certificate.
    pub certificate: Certificate,
}

impl SessionKey {
    /// The drive's mount path, for a key on a drive.
    pub fn drive(&self) -> Option<&Path> {
        self.home.drive()
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("home", &self.home.describe())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// What the user sees before signing an order: computed here from the order's content, not
/// taken from the bank.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SigningSummary {
    /// The order's id.
    pub id: u64,
    /// The version that will be signed.
    pub version: u32,
    /// Amount, formatted (`1234.50`).
    pub amount: String,
    /// Currency code.
    pub currency: String,
    /// Who is paid.
    pub payee_name: String,
    /// Their IBAN.
    pub payee_iban: String,
    /// The payer's account.
    pub payer_iban: String,
    /// The short digest of what is signed ([`payment::short_digest`]).
    pub digest: String,
}

/// What a batch signature would sign: each order, the count, the total per currency, and
/// one digest over them all ([`payment::batch_digest`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct BatchSummary {
    /// Each order, in the order asked.
    pub orders: Vec<SigningSummary>,
    /// Totals per currency: (currency, amount formatted), by currency.
    pub totals: Vec<(String, String)>,
    /// The batch digest.
    pub digest: String,
}

impl BatchSummary {
    /// The summary of orders `ids`, each of which must be in `queue` (waiting for this
    /// user's signature).
    pub fn of(queue: &[OrderView], ids: &[u64]) -> Result<Self, ClientError> {
        if ids.is_empty() {
            return Err(ClientError::NotPossible("no orders to sign".into()));
        }
        let mut seen = std::collections::HashSet::new();
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            if !seen.insert(*id) {
                return Err(ClientError::NotPossible(format!(
                    "order {id} is listed twice"
                )));
            }
            let view = queue.iter().find(|o| o.id == *id).ok_or_else(|| {
                ClientError::NotPossible(format!(
                    "order {id} is not waiting for your signature (signed already, sent, or not \
                     on an account you sign for)"
                ))
            })?;
            views.push(view);
        }
        let mut totals = std::collections::BTreeMap::<String, u64>::new();
        for v in &views {
            *totals.entry(v.order.currency.clone()).or_default() += v.order.amount;
        }
        let digest = payment::batch_digest(
            &views
                .iter()
                .map(|v| (v.id, v.version, &v.order))
                .collect::<Vec<_>>(),
        );
        Ok(Self {
            orders: views
                .into_iter()
                .map(SigningSummary::of)
                .collect::<Result<_, _>>()?,
            totals: totals
                .into_iter()
                .map(|(c, a)| (c, payment::format_amount(a)))
                .collect(),
            digest,
        })
    }
}

impl SigningSummary {
    /// The summary of `view`, checking that the bank's digest is the one computed here.
    pub fn of(view: &OrderView) -> Result<Self, ClientError> {
        let digest = payment::short_digest(view.id, view.version, &view.order);
        if digest != view.short_digest {
            return Err(ClientError::Protocol(format!(
                "the bank shows digest {} for order {}, but its content gives {digest}",
                view.short_digest, view.id
            )));
        }
        Ok(Self {
            id: view.id,
            version: view.version,
            amount: payment::format_amount(view.order.amount),
            currency: view.order.currency.clone(),
            payee_name: view.order.payee_name.clone(),
            payee_iban: view.order.payee_iban.clone(),
            payer_iban: view.order.payer_iban.clone(),
            digest,
        })
    }
}

/// TOTP enrollment, to show the user.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    /// The otpauth:// URI (it holds the secret).
    pub uri: Zeroizing<String>,
    /// The URI as a QR code, SVG.
    pub qr_svg: Zeroizing<String>,
}

/// What logging out found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutReport {
    /// The removable drive holding the key, if it is still plugged in: remind the user to pull
    /// it out.
    pub remove_drive: Option<PathBuf>,
}

/// A session with the bank: anonymous, or signed by the key.
pub struct BankSession {
    inner: Option<Session>,
    key: Option<SessionKey>,
    info: Option<LoginInfo>,
    idle: Duration,
    last_activity: Instant,
}

impl std::fmt::Debug for BankSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankSession")
            .field("key", &self.key)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl BankSession {
    pub(crate) fn new(inner: Session, key: Option<SessionKey>) -> Self {
        let idle = Duration::from_secs(inner.channel().idle_timeout_seconds());
        Self {
            inner: Some(inner),
            key,
            info: None,
            idle,
            last_activity: Instant::now(),
        }
    }

    /// Whether the handshake was signed by the key.
    pub fn is_key_session(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|s| s.channel().mode() == Mode::Authenticated)
    }

    /// The key that signed the session.
    pub fn key(&self) -> Option<&SessionKey> {
        self.key.as_ref()
    }

    /// The login, once logged in.
    pub fn info(&self) -> Option<&LoginInfo> {
        self.info.as_ref()
    }

    /// The stage the bank last gave.
    pub fn stage(&self) -> Option<Stage> {
        self.info.as_ref().map(|i| i.stage)
    }

    /// The bank's idle timeout for this session.
    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    /// Whether the session has been idle for longer than the bank allows, as of `now`: the
    /// app locks itself then. The bank ends the session on its side at the same time.
    pub fn is_idle(&self, now: Instant) -> bool {
        self.inner.is_none() || now.saturating_duration_since(self.last_activity) >= self.idle
    }

    /// Sends one request. An idle or failed session is not used again.
    pub async fn call(&mut self, request: &Request) -> Result<Reply, ClientError> {
        if self.is_idle(Instant::now()) {
            self.inner = None;
            return Err(ClientError::SessionExpired(self.idle.as_secs()));
        }
        let session = self
            .inner
            .as_mut()
            .ok_or(ClientError::SessionExpired(self.idle.as_secs()))?;
        let body = Zeroizing::new(
            serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?,
        );
        let reply = match session.request(&body).await {
            Ok(reply) => reply,
            Err(e) => {
                self.inner = None;
                return Err(e.into());
            }
        };
        self.last_activity = Instant::now();
        let response: Response =
            serde_json::from_slice(&reply).map_err(|e| ClientError::Protocol(e.to_string()))?;
        response.map_err(|e: ApiError| e.into())
    }

    /// A bank admin's command (the bank refuses it unless this session is signed by an
    /// admin's key and the admin's roles allow it).
    pub async fn admin(&mut self, action: AdminAction) -> Result<Reply, ClientError> {
        self.call(&Request::Admin { action }).await
    }

    /// Logs in. On a key session, the password alone; anonymous, with an OTP code, an
    /// emergency password, or an initial or temporary password alone.
    pub async fn login(
        &mut self,
        login: &str,
        password: &Password,
        otp: Option<&str>,
        emergency_password: Option<&Password>,
    ) -> Result<LoginInfo, ClientError> {
        let request = Request::Login {
            login: login.to_string(),
            password: password.clone(),
            otp: otp.map(str::to_string),
            emergency_password: emergency_password.cloned(),
        };
        match self.call(&request).await? {
            Reply::LoggedIn(info) => {
                self.info = Some(info.clone());
                Ok(info)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The second step of a key login where the bank asks for one: the code it sent by SMS.
    pub async fn confirm_login(&mut self, code: &Password) -> Result<LoginInfo, ClientError> {
        let request = Request::ConfirmLogin { code: code.clone() };
        match self.call(&request).await? {
            Reply::LoggedIn(info) => {
                self.info = Some(info.clone());
                Ok(info)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// "Forgot my password", on a session signed by the login's key and not logged in: the
    /// bank mails a one-time code to the verified address; where it went, masked.
    pub async fn forgot_password(&mut self, login: &str) -> Result<String, ClientError> {
        let request = Request::ForgotPassword {
            login: login.to_string(),
        };
        match self.call(&request).await? {
            Reply::Mailed { to, .. } => Ok(to),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets a new password with the mailed code (checked against the policy here first); the
    /// session is logged in.
    pub async fn reset_password(
        &mut self,
        login: &str,
        code: &Password,
        new: &Password,
    ) -> Result<LoginInfo, ClientError> {
        let checked = tresor_core::login::Login::new(login)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        new.check_new_login_password(&checked)?;
        let request = Request::ResetPassword {
            login: login.to_string(),
            code: code.clone(),
            new: new.clone(),
        };
        match self.call(&request).await? {
            Reply::LoggedIn(info) => {
                self.info = Some(info.clone());
                Ok(info)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// The user's profile: verified address, language, notices turned off.
    pub async fn profile(&mut self) -> Result<Profile, ClientError> {
        match self.call(&Request::Profile {}).await? {
            Reply::Profile(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Asks to move the bank's mail to `email`: a code goes there; where, masked.
    pub async fn set_email(&mut self, email: &str) -> Result<String, ClientError> {
        let request = Request::SetEmail {
            email: email.to_string(),
        };
        match self.call(&request).await? {
            Reply::Mailed { to, .. } => Ok(to),
            other => Err(unexpected(&other)),
        }
    }

    /// Confirms the new address with the mailed code.
    pub async fn confirm_email(&mut self, code: &Password) -> Result<Profile, ClientError> {
        let request = Request::ConfirmEmail { code: code.clone() };
        match self.call(&request).await? {
            Reply::Profile(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets the language of the bank's mail and the notices not wanted.
    pub async fn set_preferences(
        &mut self,
        language: Option<Language>,
        quiet: Vec<NoticeKind>,
    ) -> Result<Profile, ClientError> {
        match self
            .call(&Request::SetPreferences { language, quiet })
            .await?
        {
            Reply::Profile(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Changes the password, checking the policy here first. Returns what the session may
    /// do next.
    pub async fn change_password(
        &mut self,
        current: &Password,
        new: &Password,
    ) -> Result<Stage, ClientError> {
        if let Some(info) = &self.info {
            let login = tresor_core::login::Login::new(&info.login)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            new.check_new_login_password(&login)?;
        }
        let request = Request::ChangePassword {
            current: current.clone(),
            new: new.clone(),
        };
        match self.call(&request).await? {
            Reply::PasswordChanged { next } => {
                if let Some(info) = &mut self.info {
                    info.stage = next;
                }
                Ok(next)
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Asks for a certificate for the key whose request this is. Returns it, DER-decoded.
    pub async fn request_certificate(&mut self, csr: &[u8]) -> Result<Certificate, ClientError> {
        use tresor_core::x509_cert::der::Decode as _;
        let request = Request::RequestCertificate { csr: csr.to_vec() };
        match self.call(&request).await? {
            Reply::Certificate { certificate, .. } => Certificate::from_der(&certificate)
                .map_err(|e| ClientError::Protocol(format!("certificate: {e}"))),
            other => Err(unexpected(&other)),
        }
    }

    /// The user, accounts and rights.
    pub async fn overview(&mut self) -> Result<Overview, ClientError> {
        match self.call(&Request::Overview {}).await? {
            Reply::Overview(o) => Ok(o),
            other => Err(unexpected(&other)),
        }
    }

    /// Starts TOTP enrollment: the URI and its QR code.
    pub async fn totp_enroll(&mut self) -> Result<TotpEnrollment, ClientError> {
        match self.call(&Request::TotpEnroll {}).await? {
            Reply::TotpEnrollment { uri } => {
                let uri = Zeroizing::new(uri);
                let qr_svg = Zeroizing::new(qr_svg(&uri)?);
                Ok(TotpEnrollment { uri, qr_svg })
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Confirms TOTP enrollment with a first code.
    pub async fn totp_confirm(&mut self, code: &str) -> Result<(), ClientError> {
        let request = Request::TotpConfirm {
            code: code.to_string(),
        };
        match self.call(&request).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Orders of the accounts the user may view, newest first.
    pub async fn list_orders(
        &mut self,
        account: Option<&str>,
    ) -> Result<Vec<OrderView>, ClientError> {
        let request = Request::ListOrders {
            account: account.map(str::to_string),
        };
        match self.call(&request).await? {
            Reply::Orders { orders } => Ok(orders),
            other => Err(unexpected(&other)),
        }
    }

    /// One order.
    pub async fn get_order(&mut self, id: u64) -> Result<OrderView, ClientError> {
        order_of(self.call(&Request::GetOrder { id }).await?)
    }

    /// Prepares a draft, validated here first.
    pub async fn prepare_order(&mut self, order: &PaymentOrder) -> Result<OrderView, ClientError> {
        let order = order.normalized()?;
        order_of(self.call(&Request::PrepareOrder { order }).await?)
    }

    /// A page of a statement of `account` for the days `from` to `to`.
    pub async fn statement_page(
        &mut self,
        account: &str,
        (from, to): (Day, Day),
        cursor: Option<String>,
        limit: u32,
    ) -> Result<StatementPage, ClientError> {
        let request = Request::Statement {
            account: account.to_owned(),
            from,
            to,
            cursor,
            limit: Some(limit),
        };
        match self.call(&request).await? {
            Reply::Statement(page) => Ok(page),
            other => Err(unexpected(&other)),
        }
    }

    /// Prepares drafts from imported orders (at most
    /// [`MAX_IMPORT_BATCH`](tresor_core::api::ledger::MAX_IMPORT_BATCH)): all or none.
    pub async fn import_orders(
        &mut self,
        orders: Vec<ImportedOrder>,
    ) -> Result<Vec<ImportOutcome>, ClientError> {
        match self.call(&Request::ImportOrders { orders }).await? {
            Reply::Imported { outcomes } => Ok(outcomes),
            other => Err(unexpected(&other)),
        }
    }

    /// What signing order `id` would sign, to show before [`Self::sign_order`].
    pub async fn signing_summary(&mut self, id: u64) -> Result<SigningSummary, ClientError> {
        let view = self.get_order(id).await?;
        SigningSummary::of(&view)
    }

    /// The key that signs orders: only a session signed by it has one.
    fn order_signer(&self) -> Result<KeySignerHandle, ClientError> {
        match &self.key {
            Some(k) if self.is_key_session() => Ok(k.signer.clone()),
            _ => Err(ClientError::NotPossible(
                "signing needs a login with the key; an OTP login can view and prepare only".into(),
            )),
        }
    }

    /// The orders waiting for this user's signature, oldest first: every page, or only as
    /// many as it takes to find `wanted` (all of them if it is empty).
    async fn queue_holding(&mut self, wanted: &[u64]) -> Result<Vec<OrderView>, ClientError> {
        let mut all: Vec<OrderView> = Vec::new();
        let mut missing: std::collections::HashSet<u64> = wanted.iter().copied().collect();
        loop {
            let after = all.last().map(|o| o.id);
            let page = match self.call(&Request::SignatureQueue { after }).await? {
                Reply::Orders { orders } => orders,
                other => return Err(unexpected(&other)),
            };
            let last = page.len() < QUEUE_PAGE;
            for o in &page {
                missing.remove(&o.id);
            }
            all.extend(page);
            if last || (!wanted.is_empty() && missing.is_empty()) {
                return Ok(all);
            }
        }
    }

    /// The orders waiting for this user's signature, oldest first.
    pub async fn signature_queue(&mut self) -> Result<Vec<OrderView>, ClientError> {
        self.queue_holding(&[]).await
    }

    /// What signing orders `ids` together would sign, to show before
    /// [`Self::sign_batch`]; each must be waiting for this user's signature.
    pub async fn batch_summary(&mut self, ids: &[u64]) -> Result<BatchSummary, ClientError> {
        let queue = self.queue_holding(ids).await?;
        BatchSummary::of(&queue, ids)
    }

    /// Signs every order `shown` summarised, each with its own signature over its own
    /// canonical encoding, with one unlocked key and as few requests as the batch limit
    /// allows; refused unless every order is still the version shown. The bank takes or
    /// refuses each alone: the results say which.
    pub async fn sign_batch(
        &mut self,
        shown: &BatchSummary,
    ) -> Result<Vec<SignResult>, ClientError> {
        let key = self.order_signer()?;
        let ids: Vec<u64> = shown.orders.iter().map(|o| o.id).collect();
        let queue = self.queue_holding(&ids).await?;
        let now = BatchSummary::of(&queue, &ids)?;
        if now.digest != shown.digest {
            return Err(ClientError::NotPossible(format!(
                "the orders changed since they were shown (batch digest {} → {}); review them again",
                shown.digest, now.digest
            )));
        }
        let mut signatures = Vec::with_capacity(ids.len());
        for view in ids
            .iter()
            .filter_map(|id| queue.iter().find(|o| o.id == *id))
        {
            let signature =
                payment::sign_with(key.signer().as_ref(), view.id, view.version, &view.order)
                    .map_err(|e| match key.failure() {
                        Some(token) => ClientError::Token(token),
                        None => ClientError::BrokenKey(e.to_string()),
                    })?;
            signatures.push(OrderSignature {
                id: view.id,
                version: view.version,
                signature,
            });
        }
        let mut results = Vec::with_capacity(signatures.len());
        for chunk in signatures.chunks(MAX_SIGN_BATCH) {
            let request = Request::SignOrders {
                signatures: chunk.to_vec(),
            };
            match self.call(&request).await? {
                Reply::Signed { results: r } => results.extend(r),
                other => return Err(unexpected(&other)),
            }
        }
        Ok(results)
    }

    /// Saves a template on its payer account (replacing one of the same name).
    pub async fn save_template(&mut self, t: TemplateContent) -> Result<Template, ClientError> {
        match self.call(&Request::SaveTemplate { template: t }).await? {
            Reply::Template(t) => Ok(t),
            other => Err(unexpected(&other)),
        }
    }

    /// The templates of the accounts the user may prepare orders on (or of one).
    pub async fn templates(&mut self, account: Option<&str>) -> Result<Vec<Template>, ClientError> {
        let request = Request::ListTemplates {
            account: account.map(str::to_owned),
        };
        match self.call(&request).await? {
            Reply::Templates { templates } => Ok(templates),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes a template.
    pub async fn delete_template(&mut self, id: u64) -> Result<(), ClientError> {
        match self.call(&Request::DeleteTemplate { id }).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Prepares a draft from template `id`, with `amount` where the template has none (or to
    /// replace its own).
    pub async fn prepare_from_template(
        &mut self,
        id: u64,
        amount: Option<u64>,
    ) -> Result<OrderView, ClientError> {
        let t = self
            .templates(None)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| ClientError::NotPossible(format!("no template {id}")))?
            .content;
        let amount = amount.or(t.amount).ok_or_else(|| {
            ClientError::NotPossible(format!("template {:?} has no amount: give one", t.name))
        })?;
        self.prepare_order(&PaymentOrder {
            payer_iban: t.payer_iban,
            payee_name: t.payee_name,
            payee_tax_code: t.payee_tax_code,
            payee_iban: t.payee_iban,
            amount,
            currency: t.currency,
            purpose: t.purpose,
        })
        .await
    }

    /// Saves a counterparty in its account's directory (replacing the entry with its IBAN).
    pub async fn save_counterparty(
        &mut self,
        c: CounterpartyContent,
    ) -> Result<Counterparty, ClientError> {
        match self
            .call(&Request::SaveCounterparty { counterparty: c })
            .await?
        {
            Reply::Counterparty(c) => Ok(c),
            other => Err(unexpected(&other)),
        }
    }

    /// The directories of the accounts the user may prepare orders on (or of one).
    pub async fn counterparties(
        &mut self,
        account: Option<&str>,
    ) -> Result<Vec<Counterparty>, ClientError> {
        let request = Request::ListCounterparties {
            account: account.map(str::to_owned),
        };
        match self.call(&request).await? {
            Reply::Counterparties { counterparties } => Ok(counterparties),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes a counterparty from its directory.
    pub async fn delete_counterparty(&mut self, id: u64) -> Result<(), ClientError> {
        match self.call(&Request::DeleteCounterparty { id }).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Deletes an order that was never sent, at the version shown.
    pub async fn delete_order(&mut self, id: u64, version: u32) -> Result<(), ClientError> {
        match self.call(&Request::DeleteOrder { id, version }).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Signs the version of order `id` that `shown` summarised, with the session's key. The
    /// bank refuses if the order changed since (its version binds the signature).
    pub async fn sign_order(&mut self, shown: &SigningSummary) -> Result<OrderView, ClientError> {
        let key = self.order_signer()?;
        // Sign what was shown: the content is fetched again and must give the same digest.
        let view = self.get_order(shown.id).await?;
        let now = SigningSummary::of(&view)?;
        if &now != shown {
            return Err(ClientError::NotPossible(format!(
                "order {} changed since it was shown (digest {} → {}); review it again",
                shown.id, shown.digest, now.digest
            )));
        }
        let signature =
            payment::sign_with(key.signer().as_ref(), view.id, view.version, &view.order).map_err(
                |e| match key.failure() {
                    Some(token) => ClientError::Token(token),
                    None => ClientError::BrokenKey(e.to_string()),
                },
            )?;
        let request = Request::SignOrder {
            id: view.id,
            version: view.version,
            signature,
        };
        order_of(self.call(&request).await?)
    }

    /// Sends a fully signed order.
    pub async fn send_order(&mut self, id: u64) -> Result<OrderView, ClientError> {
        order_of(self.call(&Request::SendOrder { id }).await?)
    }

    /// Logs out and closes the session (best effort: an expired session is already closed on
    /// the bank's side), then checks whether the key's drive is still plugged in.
    pub async fn logout(mut self, media: &dyn MediaSource) -> LogoutReport {
        if self.info.is_some() && !self.is_idle(Instant::now()) {
            let _ = self.call(&Request::Logout {}).await;
        }
        if let Some(session) = self.inner.take() {
            let _ = session.close().await;
        }
        LogoutReport {
            remove_drive: self
                .key
                .as_ref()
                .and_then(|k| k.drive())
                .and_then(|drive| removable_drive_present(media, drive)),
        }
    }
}

fn order_of(reply: Reply) -> Result<OrderView, ClientError> {
    match reply {
        Reply::Order(view) => Ok(view),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(reply: &Reply) -> ClientError {
    let name = match reply {
        Reply::LoggedIn(_) => "logged_in",
        Reply::PasswordChanged { .. } => "password_changed",
        Reply::Certificate { .. } => "certificate",
        Reply::Overview(_) => "overview",
        Reply::TotpEnrollment { .. } => "totp_enrollment",
        Reply::Order(_) => "order",
        Reply::Orders { .. } => "orders",
        Reply::Done => "done",
        Reply::Statement(_) => "statement",
        Reply::Imported { .. } => "imported",
        Reply::Signed { .. } => "signed",
        Reply::Template(_) => "template",
        Reply::Templates { .. } => "templates",
        Reply::Counterparty(_) => "counterparty",
        Reply::Counterparties { .. } => "counterparties",
        // Reply::Unknown, or a reply added to the protocol after this client.
        _ => "a reply this client does not know",
    };
    ClientError::Protocol(format!("the bank replied {name}"))
}

/// An otpauth URI as a QR code, SVG, for authenticator apps to scan.
pub fn qr_svg(uri: &str) -> Result<String, ClientError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| ClientError::Protocol(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_an_svg_of_the_uri() {
        let svg =
            qr_svg("otpauth://totp/Bank:olena?secret=JBSWY3DPEHPK3PXP&issuer=Bank").expect("qr");
        assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"));
    }
}
