//! Accounts and payment orders, with the user's rights checked on every request.
//!
//! A session's rights on an account are the admin's grant narrowed by the session
//! ([`rules::session_rights`]). Every write reads what it decides on inside its transaction:
//! signing and sending lock the order's row ([`crate::storage::Tx::order_for_update`]), so an
//! edit, a second signature or a second send that races them sees their outcome.

use std::ops::DerefMut;

use sqlx::AnyConnection;
use tresor_core::api::ledger::{
    Direction, ImportOutcome, ImportedOrder, MAX_IMPORT_BATCH, MovementKind,
};
use tresor_core::api::{
    AccountView, ApiError, ErrorCode, OrderStatus, OrderView, Overview, Reply, Rights,
    SignatureView, Stage,
};
use tresor_core::api::{MAX_SIGN_BATCH, OrderSignature, QUEUE_PAGE, SignResult};
use tresor_core::payment::{self, PaymentOrder};
use tresor_core::pki;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::Decode as _;

use crate::bank::{Answer, Bank, Ctx, Refusal, conflict, not_allowed};
use crate::ledger::Posting;
use crate::mail::Notice;
use crate::rules::ledger::BookingRefusal;
use crate::rules::{self, SendStep, SignRefusal};
use crate::storage::orders::NewSignature;
use crate::storage::{Conn, OrderRow, SessionLogin, StorageError, Tx, UserRow};

pub(crate) fn forbidden(what: &str) -> Refusal {
    Refusal(ApiError::new(ErrorCode::Forbidden, what))
}

fn not_found() -> Refusal {
    Refusal(ApiError::new(ErrorCode::NotFound, "no such order"))
}

/// What the user may not see answers as missing; anything else (the database failing, a
/// session that may not use accounts) is told as it is, so that a client retries what can
/// be retried. Found by the load test: a rights check cut off by a restarting database
/// answered "no such order".
pub(crate) fn unseen_as_missing(refusal: Refusal, missing: Refusal) -> Refusal {
    if refusal.0.code == ErrorCode::Forbidden {
        missing
    } else {
        refusal
    }
}

fn changed() -> Refusal {
    conflict("the order changed since you opened it; reload it")
}

/// What `session` may do on `iban`.
pub(crate) async fn rights<C: DerefMut<Target = AnyConnection> + Send>(
    conn: &mut Conn<C>,
    session: &SessionLogin,
    user: &UserRow,
    iban: &str,
) -> Result<Rights, StorageError> {
    let granted = conn.rights(user.id, iban).await?;
    Ok(rules::session_rights(
        granted,
        session.stage,
        user.menus,
        user.recovery_pending,
    ))
}

/// Refuses unless the session has `right` on `iban`.
pub(crate) async fn require<C: DerefMut<Target = AnyConnection> + Send>(
    conn: &mut Conn<C>,
    session: &SessionLogin,
    user: &UserRow,
    iban: &str,
    right: fn(&Rights) -> bool,
    what: &str,
) -> Result<(), Refusal> {
    if !rules::may_use_accounts(session.stage) {
        return Err(not_allowed("log in first"));
    }
    if right(&rights(conn, session, user, iban).await?) {
        Ok(())
    } else {
        Err(forbidden(&format!("you may not {what} on account {iban}")))
    }
}

/// The order's content is valid and its payer account holds its currency.
async fn check_content<C: DerefMut<Target = AnyConnection> + Send>(
    conn: &mut Conn<C>,
    order: &PaymentOrder,
) -> Result<(), Refusal> {
    order
        .validate()
        .map_err(|e| ApiError::new(ErrorCode::Invalid, e.to_string()))?;
    match conn.account(&order.payer_iban).await? {
        None => Err(forbidden(&format!(
            "you may not prepare orders on account {}",
            order.payer_iban
        ))),
        Some(a) if a.currency != order.currency => Err(ApiError::new(
            ErrorCode::Invalid,
            format!(
                "account {} holds {}, not {}",
                order.payer_iban, a.currency, order.currency
            ),
        )
        .into()),
        Some(_) => Ok(()),
    }
}

/// An order as the client sees it.
async fn view<C: DerefMut<Target = AnyConnection> + Send>(
    conn: &mut Conn<C>,
    o: OrderRow,
) -> Result<OrderView, StorageError> {
    let signatures = conn
        .signatures(o.id)
        .await?
        .into_iter()
        .map(|s| SignatureView {
            login: s.login,
            certificate: s.cert_serial,
            signed_at: u64::try_from(s.signed_at).unwrap_or(0),
        })
        .collect();
    let account = conn
        .account(&o.order.payer_iban)
        .await?
        .ok_or_else(|| StorageError::corrupt("an order's payer account does not exist"))?;
    Ok(OrderView {
        id: o.id,
        version: o.version,
        short_digest: payment::short_digest(o.id, o.version, &o.order),
        order: o.order,
        status: o.status,
        signatures,
        signatures_required: account.signatures_required,
        reject_reason: o.reject_reason,
    })
}

impl Bank {
    /// The order as it now is, as the answer to a request that changed it.
    async fn order_reply(&self, id: u64) -> Answer {
        let mut conn = self.store.read().await?;
        let o = conn.order(id).await?.ok_or_else(not_found)?;
        Ok(Reply::Order(view(&mut conn, o).await?))
    }

    pub(crate) async fn overview(&self, session: &SessionLogin, user: &UserRow) -> Answer {
        if !rules::may_use_accounts(session.stage) {
            return Err(not_allowed("log in first"));
        }
        let rows = self.store.read().await?.viewable_accounts(user.id).await?;
        let accounts = rows
            .into_iter()
            .map(|(a, granted)| AccountView {
                rights: rules::session_rights(
                    granted,
                    session.stage,
                    user.menus,
                    user.recovery_pending,
                ),
                iban: a.iban,
                holder: a.holder,
                currency: a.currency,
                balance: a.balance,
                signatures_required: a.signatures_required,
            })
            .collect();
        Ok(Reply::Overview(Overview {
            login: user.login.clone(),
            name: user.name.clone(),
            stage: session.stage,
            menus: user.menus,
            restricted: user.recovery_pending,
            totp_enrolled: user.totp_secret.is_some(),
            accounts,
        }))
    }

    pub(crate) async fn list_orders(
        &self,
        session: &SessionLogin,
        user: &UserRow,
        account: Option<&str>,
    ) -> Answer {
        if !rules::may_use_accounts(session.stage) {
            return Err(not_allowed("log in first"));
        }
        let mut conn = self.store.read().await?;
        if let Some(iban) = account {
            require(&mut conn, session, user, iban, |r| r.view, "view orders").await?;
        }
        let rows = conn.orders_visible_to(user.id, account).await?;
        let mut orders = Vec::with_capacity(rows.len());
        for o in rows {
            orders.push(view(&mut conn, o).await?);
        }
        Ok(Reply::Orders { orders })
    }

    pub(crate) async fn get_order(
        &self,
        session: &SessionLogin,
        user: &UserRow,
        id: u64,
    ) -> Answer {
        let mut conn = self.store.read().await?;
        let o = conn.order(id).await?.ok_or_else(not_found)?;
        // Not visible is the same answer as not there.
        require(
            &mut conn,
            session,
            user,
            &o.order.payer_iban,
            |r| r.view,
            "view orders",
        )
        .await
        .map_err(|e| unseen_as_missing(e, not_found()))?;
        Ok(Reply::Order(view(&mut conn, o).await?))
    }

    pub(crate) async fn prepare_order(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        order: PaymentOrder,
    ) -> Answer {
        let mut work = self.begin().await?;
        require(
            &mut *work,
            session,
            user,
            &order.payer_iban,
            |r| r.prepare,
            "prepare orders",
        )
        .await?;
        check_content(&mut *work, &order).await?;
        let id = work.insert_order(&order, user.id, self.unix_now()).await?;
        let detail = format!(
            "order {id}: {} {} to {}",
            payment::format_amount(order.amount),
            order.currency,
            order.payee_iban
        );
        work.record(ctx.event(&user.login, "order_prepare", "ok", &detail));
        self.commit(work).await?;
        self.order_reply(id).await
    }

    pub(crate) async fn edit_order(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        id: u64,
        version: u32,
        order: PaymentOrder,
    ) -> Answer {
        let mut work = self.begin().await?;
        let old = work.order_for_update(id).await?.ok_or_else(not_found)?;
        require(
            &mut *work,
            session,
            user,
            &old.order.payer_iban,
            |r| r.prepare,
            "edit orders",
        )
        .await?;
        require(
            &mut *work,
            session,
            user,
            &order.payer_iban,
            |r| r.prepare,
            "prepare orders",
        )
        .await?;
        if !rules::editable(old.status) {
            return Err(not_allowed("a sent order cannot be edited"));
        }
        check_content(&mut *work, &order).await?;
        if !work
            .update_order_content(id, version, &order, self.unix_now())
            .await?
        {
            return Err(changed());
        }
        let dropped = work.delete_signatures(id).await?;
        let detail = format!(
            "order {id}: version {}, {dropped} signatures dropped",
            version + 1
        );
        work.record(ctx.event(&user.login, "order_edit", "ok", &detail));
        self.commit(work).await?;
        self.order_reply(id).await
    }

    pub(crate) async fn sign_order(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        id: u64,
        version: u32,
        signature: &[u8],
    ) -> Answer {
        let mut conn = self.store.read().await?;
        let o = conn.order(id).await?.ok_or_else(not_found)?;
        if session.stage != Stage::Key {
            drop(conn);
            self.audit_alone(ctx.event(
                &user.login,
                "order_sign",
                "refused: session without the key",
                &format!("order {id}"),
            ))
            .await?;
            return Err(forbidden(
                "orders are signed only on a session signed by the key",
            ));
        }
        require(
            &mut conn,
            session,
            user,
            &o.order.payer_iban,
            |r| r.sign,
            "sign orders",
        )
        .await?;
        let serial = ctx
            .serial
            .ok_or_else(|| forbidden("orders are signed only on a session signed by the key"))?;
        let serial = pki::serial_hex(serial);
        let now = self.unix_now();
        let cert = conn
            .certificate(&serial)
            .await?
            .filter(|c| c.user_id == user.id && c.valid_at(now))
            .ok_or_else(|| forbidden("the session's certificate is no longer valid"))?;
        drop(conn);
        if o.version != version {
            return Err(changed());
        }
        // Checked against the version read here; the transaction below signs only that
        // version.
        let cert = Certificate::from_der(&cert.der).map_err(StorageError::corrupt)?;
        if payment::verify(&cert, id, version, &o.order, signature).is_err() {
            self.audit_alone(ctx.event(
                &user.login,
                "order_sign",
                "refused: bad signature",
                &format!("order {id}"),
            ))
            .await?;
            return Err(ApiError::new(
                ErrorCode::Invalid,
                "the signature does not match this order and your certificate",
            )
            .into());
        }

        let mut work = self.begin().await?;
        let locked = work.order_for_update(id).await?.ok_or_else(not_found)?;
        require(
            &mut *work,
            session,
            user,
            &locked.order.payer_iban,
            |r| r.sign,
            "sign orders",
        )
        .await?;
        if locked.order != o.order {
            return Err(changed());
        }
        let account = work
            .account(&locked.order.payer_iban)
            .await?
            .ok_or_else(|| StorageError::corrupt("an order's payer account does not exist"))?;
        let signers: Vec<i64> = work
            .signatures(id)
            .await?
            .iter()
            .map(|s| s.user_id)
            .collect();
        let signing = rules::sign(
            locked.status,
            locked.version,
            version,
            &signers,
            user.id,
            account.signatures_required,
        )
        .map_err(|r| match r {
            SignRefusal::NoMoreSignatures => not_allowed("this order needs no more signatures"),
            SignRefusal::VersionChanged => changed(),
            SignRefusal::AlreadySigned => forbidden(
                "you already signed this order; the second signature must come from another user",
            ),
        })?;
        work.insert_signature(&NewSignature {
            order_id: id,
            position: signing.position,
            user_id: user.id,
            cert_serial: &serial,
            signature,
            signed_at: now,
        })
        .await?;
        if !work
            .set_order_status(id, version, locked.status, signing.status, now)
            .await?
        {
            return Err(changed());
        }
        let detail = format!(
            "order {id} version {version}: signature {} of {}, digest {}",
            signing.position,
            account.signatures_required,
            payment::short_digest(id, version, &locked.order)
        );
        work.record(ctx.event(&user.login, "order_sign", "ok", &detail));
        self.commit(work).await?;
        self.order_reply(id).await
    }

    pub(crate) async fn send_order(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        id: u64,
    ) -> Answer {
        if session.stage != Stage::Key {
            return Err(forbidden(
                "orders are sent only on a session signed by the key",
            ));
        }
        let now = self.unix_now();
        let mut work = self.begin().await?;
        // The payer and amount debited are the locked row's, not a read from before.
        let o = work.order_for_update(id).await?.ok_or_else(not_found)?;
        require(
            &mut *work,
            session,
            user,
            &o.order.payer_iban,
            |r| r.send,
            "send orders",
        )
        .await?;
        let account = work
            .account(&o.order.payer_iban)
            .await?
            .ok_or_else(|| StorageError::corrupt("an order's payer account does not exist"))?;
        // A signature counts only while its signer still stands behind it: the certificate
        // it was made with unrevoked (a key reported lost may have signed in a thief's
        // hands) and the sign right on the account still granted.
        let mut signatures = 0;
        for s in work.signatures(id).await? {
            let revoked = work
                .certificate(&s.cert_serial)
                .await?
                .is_none_or(|c| c.user_id != s.user_id || c.revoked.is_some());
            let may_sign = work.rights(s.user_id, &o.order.payer_iban).await?.sign;
            if rules::signature_counts(revoked, may_sign) {
                signatures += 1;
            }
        }
        match rules::send(o.status, signatures, account.signatures_required) {
            // Sending twice sends once: the answer is where the order is.
            SendStep::AlreadySent => {
                drop(work);
                return self.order_reply(id).await;
            }
            SendStep::NeedsSignatures(n) => {
                return Err(not_allowed(&format!(
                    "the order needs {n} signature(s) before it can be sent"
                )));
            }
            SendStep::Send => {}
        }
        if !work.claim_for_sending(id, now).await? {
            drop(work);
            return self.order_reply(id).await;
        }
        let (status, reason) = self.execute(&mut work, id, &o.order).await?;
        work.settle_order(id, status, reason).await?;
        if let (OrderStatus::Rejected, Some(reason)) = (status, reason) {
            let amount = format!(
                "{} {}",
                payment::format_amount(o.order.amount),
                o.order.currency
            );
            self.notify_viewers(
                &mut work,
                &o.order.payer_iban,
                &Notice::OrderRejected {
                    id,
                    account: &o.order.payer_iban,
                    amount: &amount,
                    reason,
                },
            )
            .await?;
        }
        let detail = format!(
            "order {id}: {} {}{}",
            payment::format_amount(o.order.amount),
            o.order.currency,
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        );
        work.record(ctx.event(&user.login, "order_send", status.as_str(), &detail));
        self.commit(work).await?;
        self.order_reply(id).await
    }
}

impl Bank {
    /// Executes a claimed order in the sending transaction: debits the payer with a movement,
    /// and if the payee's account is one of this bank's, credits it with another (an internal
    /// transfer). Both accounts are locked in IBAN order, so that two transfers between the
    /// same accounts in opposite directions queue instead of deadlocking.
    async fn execute(
        &self,
        work: &mut Tx,
        id: u64,
        order: &PaymentOrder,
    ) -> Result<(OrderStatus, Option<&'static str>), StorageError> {
        let payee = work.account(&order.payee_iban).await?;
        let mut locked = vec![order.payer_iban.as_str()];
        if payee.is_some() {
            locked.push(&order.payee_iban);
        }
        locked.sort_unstable();
        let mut payer = None;
        for iban in locked {
            let a = work.account_for_update(iban).await?;
            if iban == order.payer_iban {
                payer = a;
            }
        }
        let payer = payer
            .ok_or_else(|| StorageError::corrupt("an order's payer account does not exist"))?;
        if payee.as_ref().is_some_and(|p| p.currency != order.currency) {
            return Ok((
                OrderStatus::Rejected,
                Some("the payee's account at this bank holds another currency"),
            ));
        }
        let number = work
            .order_document_number(id)
            .await?
            .unwrap_or_else(|| id.to_string());
        let kind = if payee.is_some() {
            MovementKind::Internal
        } else {
            MovementKind::Order
        };
        let debit = Posting {
            iban: &order.payer_iban,
            direction: Direction::Debit,
            amount: order.amount,
            kind,
            counterparty_name: &order.payee_name,
            counterparty_iban: &order.payee_iban,
            counterparty_tax_code: &order.payee_tax_code,
            purpose: &order.purpose,
            doc_number: &number,
            order_id: Some(id),
        };
        match self.book(work, &debit).await? {
            Ok(_) => {}
            Err(BookingRefusal::InsufficientFunds) => {
                return Ok((OrderStatus::Rejected, Some("insufficient funds")));
            }
            Err(BookingRefusal::OutOfRange) => {
                return Ok((OrderStatus::Rejected, Some("the amount is out of range")));
            }
        }
        if let Some(payee) = payee {
            // The payer as the payee's statement shows it: the account's holder, whose tax
            // code this bank does not keep.
            let credit = Posting {
                iban: &payee.iban,
                direction: Direction::Credit,
                counterparty_name: &payer.holder,
                counterparty_iban: &payer.iban,
                counterparty_tax_code: "",
                ..debit
            };
            if self.book(work, &credit).await?.is_err() {
                // Only a balance beyond the database's range refuses a credit; the debit
                // above is undone with the transaction.
                return Err(StorageError::corrupt(format!(
                    "account {}'s balance would leave the stored range",
                    payee.iban
                )));
            }
            let amount = format!(
                "{} {}",
                payment::format_amount(order.amount),
                order.currency
            );
            self.notify_viewers(
                work,
                &payee.iban,
                &Notice::IncomingPayment {
                    account: &payee.iban,
                    amount: &amount,
                    from: &payer.holder,
                },
            )
            .await?;
        }
        Ok((OrderStatus::Accepted, None))
    }
}

impl Bank {
    /// Prepares drafts from an accounting program's orders in one transaction: every order is
    /// checked as if typed, and one refusal refuses them all, naming the order. An order with
    /// the same payer, document number and date, amount and payee as an existing one (or an
    /// earlier one of the batch) is reported, not prepared again.
    pub(crate) async fn import_orders(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        orders: Vec<ImportedOrder>,
    ) -> Answer {
        if orders.is_empty() || orders.len() > MAX_IMPORT_BATCH {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                format!("an import holds 1 to {MAX_IMPORT_BATCH} orders"),
            )
            .into());
        }
        let now = self.unix_now();
        let mut work = self.begin().await?;
        let mut outcomes = Vec::with_capacity(orders.len());
        let mut duplicates = 0;
        for (n, imported) in orders.iter().enumerate() {
            let at = |Refusal(e): Refusal| {
                Refusal(ApiError::new(
                    e.code,
                    format!("order {}: {}", n + 1, e.message),
                ))
            };
            let order = &imported.order;
            require(
                &mut *work,
                session,
                user,
                &order.payer_iban,
                |r| r.prepare,
                "prepare orders",
            )
            .await
            .map_err(at)?;
            check_content(&mut *work, order).await.map_err(at)?;
            let number = imported.number.as_str();
            if number.is_empty()
                || number.chars().count() > MAX_DOC_NUMBER_CHARS
                || number.trim() != number
                || number.chars().any(char::is_control)
            {
                return Err(at(ApiError::new(
                    ErrorCode::Invalid,
                    format!(
                        "the document number must be 1 to {MAX_DOC_NUMBER_CHARS} printable \
                         characters"
                    ),
                )
                .into()));
            }
            if let Some(existing) = work
                .likely_duplicate(
                    &order.payer_iban,
                    number,
                    imported.date,
                    order.amount,
                    &order.payee_iban,
                )
                .await?
            {
                duplicates += 1;
                outcomes.push(ImportOutcome::Duplicate { existing });
                continue;
            }
            let id = work.insert_order(order, user.id, now).await?;
            work.set_order_document(id, number, imported.date).await?;
            outcomes.push(ImportOutcome::Prepared { id });
        }
        let detail = format!(
            "{} orders prepared, {duplicates} likely duplicates not",
            outcomes.len() - duplicates
        );
        work.record(ctx.event(&user.login, "order_import", "ok", &detail));
        self.commit(work).await?;
        Ok(Reply::Imported { outcomes })
    }
}

/// The longest document number the accounting formats carry.
const MAX_DOC_NUMBER_CHARS: usize = 35;

impl Bank {
    /// A page of the orders waiting for this user's signature. The session narrows every
    /// grant alike, so a session that may not sign (an OTP login, limited menus, a pending
    /// recovery) has an empty queue, and any other the whole of it.
    pub(crate) async fn signature_queue(
        &self,
        session: &SessionLogin,
        user: &UserRow,
        after: u64,
    ) -> Answer {
        if !rules::may_use_accounts(session.stage) {
            return Err(not_allowed("log in first"));
        }
        let signer = Rights {
            sign: true,
            ..Rights::default()
        };
        let narrowed =
            rules::session_rights(signer, session.stage, user.menus, user.recovery_pending);
        if !narrowed.sign {
            return Ok(Reply::Orders { orders: Vec::new() });
        }
        let mut conn = self.store.read().await?;
        let mut orders = Vec::new();
        for o in conn.signature_queue(user.id, after, QUEUE_PAGE).await? {
            orders.push(view(&mut conn, o).await?);
        }
        Ok(Reply::Orders { orders })
    }

    /// Signs a batch, each signature exactly as [`Bank::sign_order`] takes it, in its own
    /// transaction: a refused one (changed meanwhile, no right, a bad signature, even a
    /// database failure) refuses that order alone, and the reply says which.
    pub(crate) async fn sign_orders(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        signatures: Vec<OrderSignature>,
    ) -> Answer {
        if signatures.is_empty() || signatures.len() > MAX_SIGN_BATCH {
            return Err(ApiError::new(
                ErrorCode::Invalid,
                format!("a batch holds 1 to {MAX_SIGN_BATCH} signatures"),
            )
            .into());
        }
        let mut results = Vec::with_capacity(signatures.len());
        for s in signatures {
            let result = match self
                .sign_order(ctx, session, user, s.id, s.version, &s.signature)
                .await
            {
                Ok(Reply::Order(o)) => SignResult {
                    id: s.id,
                    status: Some(o.status),
                    error: None,
                },
                Ok(_) => return Err(StorageError::corrupt("signing answered no order").into()),
                Err(Refusal(e)) => SignResult {
                    id: s.id,
                    status: None,
                    error: Some(e),
                },
            };
            results.push(result);
        }
        Ok(Reply::Signed { results })
    }

    /// Deletes an order that was never sent, at the version the user saw.
    pub(crate) async fn delete_order(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        id: u64,
        version: u32,
    ) -> Answer {
        let mut work = self.begin().await?;
        let o = work.order_for_update(id).await?.ok_or_else(not_found)?;
        require(
            &mut *work,
            session,
            user,
            &o.order.payer_iban,
            |r| r.prepare,
            "delete orders",
        )
        .await?;
        if !rules::editable(o.status) {
            return Err(not_allowed("a sent order cannot be deleted"));
        }
        if !work.delete_order(id, version).await? {
            return Err(changed());
        }
        let detail = format!(
            "order {id} version {version}: {} {} to {}",
            payment::format_amount(o.order.amount),
            o.order.currency,
            o.order.payee_iban
        );
        work.record(ctx.event(&user.login, "order_delete", "ok", &detail));
        self.commit(work).await?;
        Ok(Reply::Done)
    }
}

#[cfg(test)]
mod unseen_tests {
    use super::*;

    #[test]
    fn only_what_the_user_may_not_see_answers_as_missing() {
        let missing = || Refusal(ApiError::new(ErrorCode::NotFound, "no such order"));
        let cases = [
            (ErrorCode::Forbidden, ErrorCode::NotFound),
            (ErrorCode::Internal, ErrorCode::Internal),
            (ErrorCode::Busy, ErrorCode::Busy),
            (ErrorCode::NotAllowed, ErrorCode::NotAllowed),
        ];
        for (given, want) in cases {
            let got = unseen_as_missing(Refusal(ApiError::new(given, "x")), missing());
            assert_eq!(got.0.code, want, "{given:?}");
        }
    }
}
