//! The ledger: movements of accounts' balances, and the reads statements and checks need.
//!
//! Booking takes the account's row lock ([`Conn::account_for_update`]) before it reads the
//! account's last movement, so two bookings on one account are serialised and each extends
//! the chain the other left.

use std::ops::DerefMut;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row as _};
use tresor_core::api::ledger::{Direction, Movement, MovementKind};
use tresor_core::date::Day;

use super::rows::{ACCOUNT_COLUMNS, AccountRow, StoredEnum as _, text_enum};
use super::{Conn, StorageError, from_db, to_db};

/// What a movement says, as booked and as bound by its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementContent {
    /// The account.
    pub iban: String,
    /// When booked, Unix seconds.
    pub booked_at: i64,
    /// Value date.
    pub value_date: Day,
    /// Out or in.
    pub direction: Direction,
    /// Minor units, positive.
    pub amount: i64,
    /// What made it.
    pub kind: MovementKind,
    /// The other side.
    pub counterparty_name: String,
    /// The other side's IBAN.
    pub counterparty_iban: String,
    /// The other side's tax code.
    pub counterparty_tax_code: String,
    /// Purpose of payment.
    pub purpose: String,
    /// Document number.
    pub doc_number: String,
    /// The order, if one made it.
    pub order_id: Option<i64>,
    /// Balance after.
    pub balance_after: i64,
    /// All debits of the account up to and including this one.
    pub debits_after: i64,
    /// All credits of the account up to and including this one.
    pub credits_after: i64,
}

/// A stored movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementRow {
    /// Its id.
    pub id: i64,
    /// What it says.
    pub content: MovementContent,
    /// Its HMAC; none only on a movement a migration wrote and the bank has not bound yet.
    pub tag: Option<Vec<u8>>,
}

const MOVEMENT_COLUMNS: &str = "id, iban, booked_at, value_date, direction, amount, kind, \
    counterparty_name, counterparty_iban, counterparty_tax_code, purpose, doc_number, order_id, \
    balance_after, debits_after, credits_after, tag";

impl MovementRow {
    fn decode(r: &AnyRow) -> Result<Self, StorageError> {
        let non_negative = |column: &str| -> Result<i64, StorageError> {
            let v: i64 = r.try_get(column)?;
            if v < 0 {
                return Err(StorageError::corrupt(format!("negative movement {column}")));
            }
            Ok(v)
        };
        Ok(Self {
            id: r.try_get("id")?,
            content: MovementContent {
                iban: r.try_get("iban")?,
                booked_at: r.try_get("booked_at")?,
                value_date: Day::from_days(r.try_get("value_date")?),
                direction: text_enum(r, "direction")?,
                amount: non_negative("amount")?,
                kind: text_enum(r, "kind")?,
                counterparty_name: r.try_get("counterparty_name")?,
                counterparty_iban: r.try_get("counterparty_iban")?,
                counterparty_tax_code: r.try_get("counterparty_tax_code")?,
                purpose: r.try_get("purpose")?,
                doc_number: r.try_get("doc_number")?,
                order_id: r.try_get("order_id")?,
                balance_after: non_negative("balance_after")?,
                debits_after: non_negative("debits_after")?,
                credits_after: non_negative("credits_after")?,
            },
            tag: r.try_get("tag")?,
        })
    }

    /// As the protocol carries it.
    pub fn view(&self) -> Result<Movement, StorageError> {
        let c = &self.content;
        Ok(Movement {
            id: from_db(self.id, "movement id")?,
            booked_at: from_db(c.booked_at, "booking time")?,
            value_date: c.value_date,
            direction: c.direction,
            amount: from_db(c.amount, "amount")?,
            kind: c.kind,
            counterparty_name: c.counterparty_name.clone(),
            counterparty_iban: c.counterparty_iban.clone(),
            counterparty_tax_code: c.counterparty_tax_code.clone(),
            purpose: c.purpose.clone(),
            doc_number: c.doc_number.clone(),
            order_id: c.order_id.map(|id| from_db(id, "order id")).transpose()?,
            balance_after: from_db(c.balance_after, "balance")?,
        })
    }
}

/// Where a statement page continues: after this movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After {
    /// Its booking time.
    pub booked_at: i64,
    /// Its id.
    pub id: i64,
}

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// The account, its row locked until the transaction ends: bookings on it queue here.
    pub async fn account_for_update(
        &mut self,
        iban: &str,
    ) -> Result<Option<AccountRow>, StorageError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE iban = $1{}",
            self.for_update()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(iban)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(AccountRow::decode).transpose()
    }

    /// The account's two newest movements, newest first: the head of its chain, and the
    /// movement whose tag the head's covers.
    pub async fn ledger_head(&mut self, iban: &str) -> Result<Vec<MovementRow>, StorageError> {
        let sql = format!(
            "SELECT {MOVEMENT_COLUMNS} FROM movements WHERE iban = $1 \
             ORDER BY booked_at DESC, id DESC LIMIT 2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(iban)
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(MovementRow::decode).collect()
    }

    /// The account's last movement booked before `before` (Unix seconds), among those up to
    /// id `upto`.
    pub async fn last_movement_before(
        &mut self,
        iban: &str,
        before: i64,
        upto: i64,
    ) -> Result<Option<MovementRow>, StorageError> {
        let sql = format!(
            "SELECT {MOVEMENT_COLUMNS} FROM movements WHERE iban = $1 AND booked_at < $2 \
             AND id <= $3 ORDER BY booked_at DESC, id DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(iban)
            .bind(before)
            .bind(upto)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(MovementRow::decode).transpose()
    }

    /// Up to `limit` movements of the account booked in `[from, before)`, after `after` and up
    /// to id `upto`, oldest first.
    pub async fn movements_after(
        &mut self,
        iban: &str,
        (from, before): (i64, i64),
        after: After,
        upto: i64,
        limit: u32,
    ) -> Result<Vec<MovementRow>, StorageError> {
        let sql = format!(
            "SELECT {MOVEMENT_COLUMNS} FROM movements WHERE iban = $1 \
             AND booked_at >= $2 AND booked_at < $3 AND (booked_at, id) > ($4, $5) \
             AND id <= $6 ORDER BY booked_at, id LIMIT $7"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(iban)
            .bind(from)
            .bind(before)
            .bind(after.booked_at)
            .bind(after.id)
            .bind(upto)
            .bind(i64::from(limit))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(MovementRow::decode).collect()
    }

    /// Up to `limit` movements of the account after id `after_id`, in ledger order.
    pub async fn ledger_chunk(
        &mut self,
        iban: &str,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<MovementRow>, StorageError> {
        let sql = format!(
            "SELECT {MOVEMENT_COLUMNS} FROM movements WHERE iban = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(iban)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(MovementRow::decode).collect()
    }

    /// Appends a movement, and sets its account's balance to the balance after it, only if
    /// the account's balance is still `balance_before` (it is locked: a mismatch means the
    /// balance was changed outside the ledger). False if it was not.
    pub async fn book_movement(
        &mut self,
        m: &MovementContent,
        balance_before: i64,
        tag: &[u8],
    ) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE accounts SET balance = $1 WHERE iban = $2 AND balance = $3")
            .bind(m.balance_after)
            .bind(&m.iban)
            .bind(balance_before)
            .execute(self.conn())
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO movements (iban, booked_at, value_date, direction, amount, kind, \
             counterparty_name, counterparty_iban, counterparty_tax_code, purpose, doc_number, \
             order_id, balance_after, debits_after, credits_after, tag) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&m.iban)
        .bind(m.booked_at)
        .bind(m.value_date.days())
        .bind(m.direction.to_db())
        .bind(m.amount)
        .bind(m.kind.to_db())
        .bind(&m.counterparty_name)
        .bind(&m.counterparty_iban)
        .bind(&m.counterparty_tax_code)
        .bind(&m.purpose)
        .bind(&m.doc_number)
        .bind(m.order_id)
        .bind(m.balance_after)
        .bind(m.debits_after)
        .bind(m.credits_after)
        .bind(tag.to_vec())
        .execute(self.conn())
        .await?;
        Ok(true)
    }

    /// Movements a migration wrote without a tag, in ledger order.
    pub async fn untagged_movements(&mut self) -> Result<Vec<MovementRow>, StorageError> {
        let sql = format!("SELECT {MOVEMENT_COLUMNS} FROM movements WHERE tag IS NULL ORDER BY id");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(MovementRow::decode).collect()
    }

    /// Sets the tag of an untagged movement.
    pub async fn tag_movement(&mut self, id: i64, tag: &[u8]) -> Result<(), StorageError> {
        sqlx::query("UPDATE movements SET tag = $1 WHERE id = $2 AND tag IS NULL")
            .bind(tag.to_vec())
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// An order on `payer` with the same document number and date, amount and payee: an
    /// import that would prepare it again.
    pub async fn likely_duplicate(
        &mut self,
        payer: &str,
        number: &str,
        date: Day,
        amount: u64,
        payee_iban: &str,
    ) -> Result<Option<u64>, StorageError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE payer_iban = $1 AND doc_number = $2 AND doc_date = $3 \
             AND amount = $4 AND payee_iban = $5 ORDER BY id LIMIT 1",
        )
        .bind(payer)
        .bind(number)
        .bind(date.days())
        .bind(to_db(amount, "amount")?)
        .bind(payee_iban)
        .fetch_optional(self.conn())
        .await?;
        id.map(|id| from_db(id, "order id")).transpose()
    }

    /// Gives an order the number and date it has in the accounting program.
    pub async fn set_order_document(
        &mut self,
        id: u64,
        number: &str,
        date: Day,
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE orders SET doc_number = $1, doc_date = $2 WHERE id = $3")
            .bind(number)
            .bind(date.days())
            .bind(to_db(id, "order id")?)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// An order's document number, if it has one.
    pub async fn order_document_number(&mut self, id: u64) -> Result<Option<String>, StorageError> {
        let n: Option<Option<String>> =
            sqlx::query_scalar("SELECT doc_number FROM orders WHERE id = $1")
                .bind(to_db(id, "order id")?)
                .fetch_optional(self.conn())
                .await?;
        Ok(n.flatten())
    }
}
