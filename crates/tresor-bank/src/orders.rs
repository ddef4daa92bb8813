//! Accounts and payment orders, with the user's rights checked on every request.
//!
//! A session's rights on an account are the admin's grant, narrowed by the session: limited
//! menus and a pending emergency password leave viewing only; an OTP session may view and
//! prepare, never sign or send.

use sqlx::Row as _;
use tresor_core::api::{
    AccountView, ApiError, ErrorCode, Menus, OrderStatus, OrderView, Overview, Reply, Rights,
    SignatureView, Stage,
};
use tresor_core::payment::{self, PaymentOrder};
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::Decode as _;

use crate::bank::{Answer, Bank, Ctx, Refusal, User, internal, not_allowed};
use crate::sessions::SessionLogin;
use crate::store::{StorageError, unix};

fn forbidden(what: &str) -> Refusal {
    Refusal(ApiError::new(ErrorCode::Forbidden, what))
}

fn not_found() -> Refusal {
    Refusal(ApiError::new(ErrorCode::NotFound, "no such order"))
}

struct Stored {
    id: i64,
    version: i64,
    order: PaymentOrder,
    status: OrderStatus,
    reject_reason: Option<String>,
}

const ORDER_COLUMNS: &str = "id, payer_iban, payee_name, payee_tax_code, payee_iban, amount, \
    currency, purpose, version, status, reject_reason";

fn order_from_row(r: &sqlx::any::AnyRow) -> Result<Stored, StorageError> {
    let status: String = r.try_get("status")?;
    let amount: i64 = r.try_get("amount")?;
    Ok(Stored {
        id: r.try_get("id")?,
        version: r.try_get("version")?,
        order: PaymentOrder {
            payer_iban: r.try_get("payer_iban")?,
            payee_name: r.try_get("payee_name")?,
            payee_tax_code: r.try_get("payee_tax_code")?,
            payee_iban: r.try_get("payee_iban")?,
            amount: u64::try_from(amount)
                .map_err(|_| StorageError::Corrupt("negative amount".into()))?,
            currency: r.try_get("currency")?,
            purpose: r.try_get("purpose")?,
        },
        status: OrderStatus::parse(&status)
            .ok_or_else(|| StorageError::Corrupt(format!("order status {status:?}")))?,
        reject_reason: r.try_get("reject_reason")?,
    })
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

impl Bank {
    /// What `session` may do on `iban`.
    async fn rights(
        &self,
        session: &SessionLogin,
        user: &User,
        iban: &str,
    ) -> Result<Rights, StorageError> {
        let row = sqlx::query(
            "SELECT can_view, can_prepare, can_sign, can_send FROM rights \
             WHERE user_id = $1 AND iban = $2",
        )
        .bind(user.id)
        .bind(iban)
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Rights::default());
        };
        Ok(narrow(rights_of(&row)?, session.stage, user))
    }

    async fn require(
        &self,
        session: &SessionLogin,
        user: &User,
        iban: &str,
        right: fn(&Rights) -> bool,
        what: &str,
    ) -> Result<(), Refusal> {
        if !matches!(session.stage, Stage::Key | Stage::Otp) {
            return Err(not_allowed("log in first"));
        }
        if right(&self.rights(session, user, iban).await?) {
            Ok(())
        } else {
            Err(forbidden(&format!("you may not {what} on account {iban}")))
        }
    }

    pub(crate) async fn overview(&self, session: &SessionLogin, user: &User) -> Answer {
        if !matches!(session.stage, Stage::Key | Stage::Otp) {
            return Err(not_allowed("log in first"));
        }
        let rows = sqlx::query(
            "SELECT a.iban, a.holder, a.currency, a.balance, a.signatures_required \
             FROM accounts a JOIN rights r ON r.iban = a.iban \
             WHERE r.user_id = $1 AND r.can_view = 1 ORDER BY a.iban",
        )
        .bind(user.id)
        .fetch_all(self.store.pool())
        .await?;
        let mut accounts = Vec::new();
        for r in &rows {
            let iban: String = r.try_get("iban")?;
            let rights = self.rights(session, user, &iban).await?;
            accounts.push(AccountView {
                holder: r.try_get("holder")?,
                currency: r.try_get("currency")?,
                balance: to_u64(r.try_get("balance")?),
                signatures_required: u8::try_from(r.try_get::<i64, _>("signatures_required")?)
                    .unwrap_or(2),
                rights,
                iban,
            });
        }
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

    async fn load_order(&self, id: u64) -> Result<Option<Stored>, StorageError> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// The order as it now is, as the answer to a request that changed it.
    async fn order_reply(&self, id: u64) -> Answer {
        let stored = self.load_order(id).await?.ok_or_else(not_found)?;
        Ok(Reply::Order(self.view(stored).await?))
    }

    async fn view(&self, o: Stored) -> Result<OrderView, StorageError> {
        let rows = sqlx::query(
            "SELECT u.login, s.cert_serial, s.signed_at FROM order_signatures s \
             JOIN users u ON u.id = s.user_id WHERE s.order_id = $1 ORDER BY s.position",
        )
        .bind(o.id)
        .fetch_all(self.store.pool())
        .await?;
        let signatures = rows
            .iter()
            .map(|r| {
                Ok(SignatureView {
                    login: r.try_get("login")?,
                    certificate: r.try_get("cert_serial")?,
                    signed_at: to_u64(r.try_get("signed_at")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let required = self.signatures_required(&o.order.payer_iban).await?;
        Ok(OrderView {
            id: to_u64(o.id),
            version: to_u32(o.version),
            short_digest: payment::short_digest(to_u64(o.id), to_u32(o.version), &o.order),
            order: o.order,
            status: o.status,
            signatures,
            signatures_required: u8::try_from(required).unwrap_or(2),
            reject_reason: o.reject_reason,
        })
    }

    async fn signatures_required(&self, iban: &str) -> Result<i64, StorageError> {
        Ok(
            sqlx::query_scalar("SELECT signatures_required FROM accounts WHERE iban = $1")
                .bind(iban)
                .fetch_optional(self.store.pool())
                .await?
                .unwrap_or(1),
        )
    }

    pub(crate) async fn list_orders(
        &self,
        session: &SessionLogin,
        user: &User,
        account: Option<&str>,
    ) -> Answer {
        if !matches!(session.stage, Stage::Key | Stage::Otp) {
            return Err(not_allowed("log in first"));
        }
        if let Some(iban) = account {
            self.require(session, user, iban, |r| r.view, "view orders")
                .await?;
        }
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE payer_iban IN \
             (SELECT iban FROM rights WHERE user_id = $1 AND can_view = 1) ORDER BY id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.id)
            .fetch_all(self.store.pool())
            .await?;
        let mut orders = Vec::new();
        for r in &rows {
            let o = order_from_row(r)?;
            if account.is_some_and(|a| a != o.order.payer_iban) {
                continue;
            }
            orders.push(self.view(o).await?);
        }
        Ok(Reply::Orders { orders })
    }

    pub(crate) async fn get_order(&self, session: &SessionLogin, user: &User, id: u64) -> Answer {
        let o = self.load_order(id).await?.ok_or_else(not_found)?;
        // Not visible is the same answer as not there.
        self.require(
            session,
            user,
            &o.order.payer_iban,
            |r| r.view,
            "view orders",
        )
        .await
        .map_err(|_| not_found())?;
        Ok(Reply::Order(self.view(o).await?))
    }

    async fn check_content(&self, order: &PaymentOrder) -> Result<(), Refusal> {
        order
            .validate()
            .map_err(|e| ApiError::new(ErrorCode::Invalid, e.to_string()))?;
        let currency: Option<String> =
            sqlx::query_scalar("SELECT currency FROM accounts WHERE iban = $1")
                .bind(&order.payer_iban)
                .fetch_optional(self.store.pool())
                .await?;
        match currency {
            None => Err(forbidden(&format!(
                "you may not prepare orders on account {}",
                order.payer_iban
            ))),
            Some(c) if c != order.currency => Err(ApiError::new(
                ErrorCode::Invalid,
                format!(
                    "account {} holds {c}, not {}",
                    order.payer_iban, order.currency
                ),
            )
            .into()),
            Some(_) => Ok(()),
        }
    }

    pub(crate) async fn prepare_order(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &User,
        order: PaymentOrder,
    ) -> Answer {
        self.require(
            session,
            user,
            &order.payer_iban,
            |r| r.prepare,
            "prepare orders",
        )
        .await?;
        self.check_content(&order).await?;
        let now = unix(self.now());
        let mut tx = self.store.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO orders (payer_iban, payee_name, payee_tax_code, payee_iban, amount, \
             currency, purpose, version, status, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 'draft', $8, $9, $9) RETURNING id",
        )
        .bind(&order.payer_iban)
        .bind(&order.payee_name)
        .bind(&order.payee_tax_code)
        .bind(&order.payee_iban)
        .bind(
            i64::try_from(order.amount)
                .map_err(|_| ApiError::new(ErrorCode::Invalid, "the amount is too large"))?,
        )
        .bind(&order.currency)
        .bind(&order.purpose)
        .bind(user.id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let detail = format!(
            "order {id}: {} {} to {}",
            payment::format_amount(order.amount),
            order.currency,
            order.payee_iban
        );
        self.audit(
            &mut tx,
            ctx.event(&user.login, "order_prepare", "ok", &detail),
        )
        .await?;
        tx.commit().await?;
        self.order_reply(to_u64(id)).await
    }

    pub(crate) async fn edit_order(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &User,
        id: u64,
        version: u32,
        order: PaymentOrder,
    ) -> Answer {
        let old = self.load_order(id).await?.ok_or_else(not_found)?;
        self.require(
            session,
            user,
            &old.order.payer_iban,
            |r| r.prepare,
            "edit orders",
        )
        .await?;
        self.require(
            session,
            user,
            &order.payer_iban,
            |r| r.prepare,
            "prepare orders",
        )
        .await?;
        if !matches!(
            old.status,
            OrderStatus::Draft | OrderStatus::PartlySigned | OrderStatus::Signed
        ) {
            return Err(not_allowed("a sent order cannot be edited"));
        }
        self.check_content(&order).await?;
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(
            "UPDATE orders SET payer_iban = $1, payee_name = $2, payee_tax_code = $3, \
             payee_iban = $4, amount = $5, currency = $6, purpose = $7, version = version + 1, \
             status = 'draft', updated_at = $8 \
             WHERE id = $9 AND version = $10 AND status IN ('draft', 'partly_signed', 'signed')",
        )
        .bind(&order.payer_iban)
        .bind(&order.payee_name)
        .bind(&order.payee_tax_code)
        .bind(&order.payee_iban)
        .bind(
            i64::try_from(order.amount)
                .map_err(|_| ApiError::new(ErrorCode::Invalid, "the amount is too large"))?,
        )
        .bind(&order.currency)
        .bind(&order.purpose)
        .bind(unix(self.now()))
        .bind(old.id)
        .bind(i64::from(version))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the order changed since you opened it; reload it",
            )
            .into());
        }
        let dropped = sqlx::query("DELETE FROM order_signatures WHERE order_id = $1")
            .bind(old.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let detail = format!(
            "order {}: version {}, {dropped} signatures dropped",
            old.id,
            version + 1
        );
        self.audit(&mut tx, ctx.event(&user.login, "order_edit", "ok", &detail))
            .await?;
        tx.commit().await?;
        self.order_reply(id).await
    }

    pub(crate) async fn sign_order(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &User,
        id: u64,
        version: u32,
        signature: &[u8],
    ) -> Answer {
        let o = self.load_order(id).await?.ok_or_else(not_found)?;
        if session.stage != Stage::Key {
            self.audit_alone(ctx.event(
                &user.login,
                "order_sign",
                "refused: session without the key",
                &format!("order {}", o.id),
            ))
            .await?;
            return Err(forbidden(
                "orders are signed only on a session signed by the key",
            ));
        }
        self.require(
            session,
            user,
            &o.order.payer_iban,
            |r| r.sign,
            "sign orders",
        )
        .await?;
        if !matches!(o.status, OrderStatus::Draft | OrderStatus::PartlySigned) {
            return Err(not_allowed("this order needs no more signatures"));
        }
        if to_u32(o.version) != version {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the order changed since you opened it; reload it before signing",
            )
            .into());
        }
        let serial = ctx
            .serial
            .ok_or_else(|| forbidden("orders are signed only on a session signed by the key"))?;
        let der = self
            .certificate_der(serial)
            .await?
            .ok_or_else(|| forbidden("the session's certificate is no longer valid"))?;
        let cert = Certificate::from_der(&der)
            .map_err(|e| internal(StorageError::Corrupt(e.to_string())))?;
        if payment::verify(&cert, to_u64(o.id), version, &o.order, signature).is_err() {
            self.audit_alone(ctx.event(
                &user.login,
                "order_sign",
                "refused: bad signature",
                &format!("order {}", o.id),
            ))
            .await?;
            return Err(ApiError::new(
                ErrorCode::Invalid,
                "the signature does not match this order and your certificate",
            )
            .into());
        }
        let required = self.signatures_required(&o.order.payer_iban).await?;
        let mut tx = self.store.begin().await?;
        // Re-read under the write lock: the order may have been edited or signed meanwhile.
        let row = sqlx::query("SELECT version, status FROM orders WHERE id = $1")
            .bind(o.id)
            .fetch_one(&mut *tx)
            .await?;
        let (now_version, status): (i64, String) =
            (row.try_get("version")?, row.try_get("status")?);
        if to_u32(now_version) != version || !matches!(status.as_str(), "draft" | "partly_signed") {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the order changed since you opened it; reload it before signing",
            )
            .into());
        }
        let signers: Vec<i64> =
            sqlx::query_scalar("SELECT user_id FROM order_signatures WHERE order_id = $1")
                .bind(o.id)
                .fetch_all(&mut *tx)
                .await?;
        if signers.contains(&user.id) {
            return Err(forbidden(
                "you already signed this order; the second signature must come from another user",
            ));
        }
        let position = i64::try_from(signers.len()).unwrap_or(i64::MAX) + 1;
        let now = unix(self.now());
        sqlx::query(
            "INSERT INTO order_signatures (order_id, position, user_id, cert_serial, signature, \
             signed_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(o.id)
        .bind(position)
        .bind(user.id)
        .bind(tresor_core::pki::serial_hex(serial))
        .bind(signature.to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let status = if position >= required {
            OrderStatus::Signed
        } else {
            OrderStatus::PartlySigned
        };
        sqlx::query("UPDATE orders SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now)
            .bind(o.id)
            .execute(&mut *tx)
            .await?;
        let detail = format!(
            "order {} version {version}: signature {position} of {required}, digest {}",
            o.id,
            payment::short_digest(to_u64(o.id), version, &o.order)
        );
        self.audit(&mut tx, ctx.event(&user.login, "order_sign", "ok", &detail))
            .await?;
        tx.commit().await?;
        self.order_reply(id).await
    }

    pub(crate) async fn send_order(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &User,
        id: u64,
    ) -> Answer {
        let o = self.load_order(id).await?.ok_or_else(not_found)?;
        if session.stage != Stage::Key {
            return Err(forbidden(
                "orders are sent only on a session signed by the key",
            ));
        }
        self.require(
            session,
            user,
            &o.order.payer_iban,
            |r| r.send,
            "send orders",
        )
        .await?;
        match o.status {
            // Sending twice sends once: the answer is where the order is.
            OrderStatus::Sent | OrderStatus::Accepted | OrderStatus::Rejected => {
                return Ok(Reply::Order(self.view(o).await?));
            }
            OrderStatus::Signed => {}
            OrderStatus::Draft | OrderStatus::PartlySigned => {
                let required = self.signatures_required(&o.order.payer_iban).await?;
                return Err(not_allowed(&format!(
                    "the order needs {required} signature(s) before it can be sent"
                )));
            }
        }
        let now = unix(self.now());
        let mut tx = self.store.begin().await?;
        let claimed = sqlx::query(
            "UPDATE orders SET status = 'sent', sent_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'signed'",
        )
        .bind(now)
        .bind(o.id)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            // Sent meanwhile by another request.
            drop(tx);
            return self.order_reply(id).await;
        }
        let amount = i64::try_from(o.order.amount).unwrap_or(i64::MAX);
        let debited = sqlx::query(
            "UPDATE accounts SET balance = balance - $1 WHERE iban = $2 AND balance >= $1",
        )
        .bind(amount)
        .bind(&o.order.payer_iban)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let (status, reason) = if debited {
            (OrderStatus::Accepted, None)
        } else {
            (OrderStatus::Rejected, Some("insufficient funds"))
        };
        sqlx::query("UPDATE orders SET status = $1, reject_reason = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(reason)
            .bind(o.id)
            .execute(&mut *tx)
            .await?;
        let detail = format!(
            "order {}: {} {}",
            o.id,
            payment::format_amount(o.order.amount),
            o.order.currency
        );
        self.audit(
            &mut tx,
            ctx.event(&user.login, "order_send", status.as_str(), &detail),
        )
        .await?;
        tx.commit().await?;
        self.order_reply(id).await
    }
}

/// The rights in a row that has the `rights` table's `can_*` columns.
pub(crate) fn rights_of(row: &sqlx::any::AnyRow) -> Result<Rights, sqlx::Error> {
    let flag = |c: &str| row.try_get::<i64, _>(c).map(|v| v != 0);
    Ok(Rights {
        view: flag("can_view")?,
        prepare: flag("can_prepare")?,
        sign: flag("can_sign")?,
        send: flag("can_send")?,
    })
}

/// The admin's grant, narrowed by the session and the user's state.
fn narrow(granted: Rights, stage: Stage, user: &User) -> Rights {
    let view_only = Rights {
        view: granted.view,
        ..Rights::default()
    };
    if user.menus == Menus::Limited || user.recovery_pending {
        return view_only;
    }
    match stage {
        Stage::Key => granted,
        Stage::Otp => Rights {
            view: granted.view,
            prepare: granted.prepare,
            sign: false,
            send: false,
        },
        _ => Rights::default(),
    }
}
