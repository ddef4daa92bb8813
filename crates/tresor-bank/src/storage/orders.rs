//! Payment orders and their signatures.

use std::ops::DerefMut;

use sqlx::{AnyConnection, AssertSqlSafe};
use tresor_core::api::OrderStatus;
use tresor_core::payment::PaymentOrder;

use super::rows::{ORDER_COLUMNS, OrderRow, SignatureRow, StoredEnum as _};
use super::{Conn, StorageError, from_db, to_db};

/// A signature to record.
#[derive(Debug)]
pub struct NewSignature<'a> {
    /// The order.
    pub order_id: u64,
    /// First (1) or second (2).
    pub position: u8,
    /// Who.
    pub user_id: i64,
    /// With which certificate.
    pub cert_serial: &'a str,
    /// DER ECDSA signature.
    pub signature: &'a [u8],
    /// Now.
    pub signed_at: i64,
}

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    async fn order_locked(
        &mut self,
        id: u64,
        lock: bool,
    ) -> Result<Option<OrderRow>, StorageError> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let lock = if lock { self.for_update() } else { "" };
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1{lock}");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(OrderRow::decode).transpose()
    }

    /// The order with this id.
    pub async fn order(&mut self, id: u64) -> Result<Option<OrderRow>, StorageError> {
        self.order_locked(id, false).await
    }

    /// The order with this id, locked until the transaction ends: what is decided on it
    /// holds until the decision is written.
    pub async fn order_for_update(&mut self, id: u64) -> Result<Option<OrderRow>, StorageError> {
        self.order_locked(id, true).await
    }

    /// The orders on the accounts a user may view (or on one of them), newest first.
    pub async fn orders_visible_to(
        &mut self,
        user_id: i64,
        account: Option<&str>,
    ) -> Result<Vec<OrderRow>, StorageError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE payer_iban IN \
             (SELECT iban FROM rights WHERE user_id = $1 AND can_view = 1) \
             AND ($2 = '' OR payer_iban = $2) ORDER BY id DESC"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(account.unwrap_or(""))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(OrderRow::decode).collect()
    }

    /// Up to `limit` orders after id `after` that `user_id` has the sign right on, not sent
    /// and lacking the user's signature, oldest first.
    pub async fn signature_queue(
        &mut self,
        user_id: i64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<OrderRow>, StorageError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE status IN ('draft', 'partly_signed') \
             AND id > $2 \
             AND payer_iban IN (SELECT iban FROM rights WHERE user_id = $1 AND can_sign = 1) \
             AND NOT EXISTS (SELECT 1 FROM order_signatures s \
             WHERE s.order_id = orders.id AND s.user_id = $1) ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(to_db(after, "order id")?)
            .bind(to_db(limit as u64, "limit")?)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(OrderRow::decode).collect()
    }

    /// Deletes an unsent order at `version` with its signatures; false if it is no longer
    /// at that version or was sent.
    pub async fn delete_order(&mut self, id: u64, version: u32) -> Result<bool, StorageError> {
        let id = to_db(id, "order id")?;
        sqlx::query(
            "DELETE FROM order_signatures WHERE order_id = $1 AND order_id IN \
             (SELECT id FROM orders WHERE id = $1 AND version = $2 \
             AND status IN ('draft', 'partly_signed', 'signed'))",
        )
        .bind(id)
        .bind(i64::from(version))
        .execute(self.conn())
        .await?;
        let done = sqlx::query(
            "DELETE FROM orders WHERE id = $1 AND version = $2 \
             AND status IN ('draft', 'partly_signed', 'signed')",
        )
        .bind(id)
        .bind(i64::from(version))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a new draft, version 1; its id.
    pub async fn insert_order(
        &mut self,
        o: &PaymentOrder,
        created_by: i64,
        now: i64,
    ) -> Result<u64, StorageError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO orders (payer_iban, payee_name, payee_tax_code, payee_iban, amount, \
             currency, purpose, version, status, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $10) RETURNING id",
        )
        .bind(&o.payer_iban)
        .bind(&o.payee_name)
        .bind(&o.payee_tax_code)
        .bind(&o.payee_iban)
        .bind(to_db(o.amount, "amount")?)
        .bind(&o.currency)
        .bind(&o.purpose)
        .bind(OrderStatus::Draft.to_db())
        .bind(created_by)
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        from_db(id, "order id")
    }

    /// Replaces the content of version `version` with the next version, back to draft;
    /// false if the order is no longer at that version or no longer editable.
    pub async fn update_order_content(
        &mut self,
        id: u64,
        version: u32,
        o: &PaymentOrder,
        now: i64,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE orders SET payer_iban = $1, payee_name = $2, payee_tax_code = $3, \
             payee_iban = $4, amount = $5, currency = $6, purpose = $7, version = version + 1, \
             status = 'draft', updated_at = $8 \
             WHERE id = $9 AND version = $10 AND status IN ('draft', 'partly_signed', 'signed')",
        )
        .bind(&o.payer_iban)
        .bind(&o.payee_name)
        .bind(&o.payee_tax_code)
        .bind(&o.payee_iban)
        .bind(to_db(o.amount, "amount")?)
        .bind(&o.currency)
        .bind(&o.purpose)
        .bind(now)
        .bind(to_db(id, "order id")?)
        .bind(i64::from(version))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Drops an order's signatures; how many.
    pub async fn delete_signatures(&mut self, order_id: u64) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM order_signatures WHERE order_id = $1")
            .bind(to_db(order_id, "order id")?)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }

    /// An order's signatures, in order.
    pub async fn signatures(&mut self, order_id: u64) -> Result<Vec<SignatureRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT s.position, s.user_id, u.login, s.cert_serial, s.signed_at \
             FROM order_signatures s JOIN users u ON u.id = s.user_id \
             WHERE s.order_id = $1 ORDER BY s.position",
        )
        .bind(to_db(order_id, "order id")?)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(SignatureRow::decode).collect()
    }

    /// Records a signature.
    pub async fn insert_signature(&mut self, s: &NewSignature<'_>) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO order_signatures (order_id, position, user_id, cert_serial, signature, \
             signed_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(to_db(s.order_id, "order id")?)
        .bind(i64::from(s.position))
        .bind(s.user_id)
        .bind(s.cert_serial)
        .bind(s.signature.to_vec())
        .bind(s.signed_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Moves an order from `from` to `to`, only if it is still at `version` and in `from`.
    pub async fn set_order_status(
        &mut self,
        id: u64,
        version: u32,
        from: OrderStatus,
        to: OrderStatus,
        now: i64,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE orders SET status = $1, updated_at = $2 \
             WHERE id = $3 AND version = $4 AND status = $5",
        )
        .bind(to.to_db())
        .bind(now)
        .bind(to_db(id, "order id")?)
        .bind(i64::from(version))
        .bind(from.to_db())
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a signed order as sent; false if it is no longer signed (sent meanwhile).
    pub async fn claim_for_sending(&mut self, id: u64, now: i64) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE orders SET status = 'sent', sent_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'signed'",
        )
        .bind(now)
        .bind(to_db(id, "order id")?)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The bank's verdict on a sent order.
    pub async fn settle_order(
        &mut self,
        id: u64,
        status: OrderStatus,
        reason: Option<&str>,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE orders SET status = $1, reject_reason = $2 WHERE id = $3 AND status = 'sent'",
        )
        .bind(status.to_db())
        .bind(reason)
        .bind(to_db(id, "order id")?)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
