//! Accounts, their balances and signature rules, and users' rights on them.

use std::ops::DerefMut;

use sqlx::{AnyConnection, AssertSqlSafe, Row as _};
use tresor_core::api::Rights;

use super::rows::{ACCOUNT_COLUMNS, AccountRow, decode_rights};
use super::{Conn, StorageError};

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// The account with this IBAN.
    pub async fn account(&mut self, iban: &str) -> Result<Option<AccountRow>, StorageError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE iban = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(iban)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(AccountRow::decode).transpose()
    }

    /// All accounts, by IBAN.
    pub async fn accounts(&mut self) -> Result<Vec<AccountRow>, StorageError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY iban");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(AccountRow::decode).collect()
    }

    /// Opens an account with a zero balance (an opening balance is the ledger's first
    /// movement); false if the IBAN exists.
    pub async fn insert_account(
        &mut self,
        iban: &str,
        holder: &str,
        currency: &str,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO accounts (iban, holder, currency, balance) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (iban) DO NOTHING",
        )
        .bind(iban)
        .bind(holder)
        .bind(currency)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Raises (or keeps) the signatures an order on the account needs: false if there is no
    /// account or it needs more than `n` (lowering takes a second admin).
    pub async fn raise_signatures_required(
        &mut self,
        iban: &str,
        n: u8,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "UPDATE accounts SET signatures_required = $1 \
             WHERE iban = $2 AND signatures_required <= $3",
        )
        .bind(i64::from(n))
        .bind(iban)
        .bind(i64::from(n))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the signatures an order on the account needs; false if there is no account.
    pub async fn set_signatures_required(
        &mut self,
        iban: &str,
        n: u8,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE accounts SET signatures_required = $1 WHERE iban = $2")
            .bind(i64::from(n))
            .bind(iban)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The rights granted to a user on an account (none if no row).
    pub async fn rights(&mut self, user_id: i64, iban: &str) -> Result<Rights, StorageError> {
        let row = sqlx::query(
            "SELECT can_view, can_prepare, can_sign, can_send FROM rights \
             WHERE user_id = $1 AND iban = $2",
        )
        .bind(user_id)
        .bind(iban)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map_or(Ok(Rights::default()), decode_rights)
    }

    /// Every grant of a user, by IBAN.
    pub async fn rights_of_user(
        &mut self,
        user_id: i64,
    ) -> Result<Vec<(String, Rights)>, StorageError> {
        let rows = sqlx::query(
            "SELECT iban, can_view, can_prepare, can_sign, can_send FROM rights \
             WHERE user_id = $1 ORDER BY iban",
        )
        .bind(user_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("iban")?, decode_rights(r)?)))
            .collect()
    }

    /// The accounts a user may view, with the rights granted on each.
    pub async fn viewable_accounts(
        &mut self,
        user_id: i64,
    ) -> Result<Vec<(AccountRow, Rights)>, StorageError> {
        let rows = sqlx::query(
            "SELECT a.iban, a.holder, a.currency, a.balance, a.signatures_required, \
             r.can_view, r.can_prepare, r.can_sign, r.can_send \
             FROM accounts a JOIN rights r ON r.iban = a.iban \
             WHERE r.user_id = $1 AND r.can_view = 1 ORDER BY a.iban",
        )
        .bind(user_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok((AccountRow::decode(r)?, decode_rights(r)?)))
            .collect()
    }

    /// The grant of a user on an account, locked until the transaction ends (created empty
    /// if there is none).
    pub async fn rights_for_update(
        &mut self,
        user_id: i64,
        iban: &str,
    ) -> Result<Rights, StorageError> {
        sqlx::query(
            "INSERT INTO rights (user_id, iban) VALUES ($1, $2) \
             ON CONFLICT (user_id, iban) DO NOTHING",
        )
        .bind(user_id)
        .bind(iban)
        .execute(self.conn())
        .await?;
        let sql = format!(
            "SELECT can_view, can_prepare, can_sign, can_send FROM rights \
             WHERE user_id = $1 AND iban = $2{}",
            self.for_update()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(iban)
            .fetch_one(self.conn())
            .await?;
        decode_rights(&row)
    }

    /// Sets the grant of a user on an account.
    pub async fn set_rights(
        &mut self,
        user_id: i64,
        iban: &str,
        r: Rights,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE rights SET can_view = $1, can_prepare = $2, can_sign = $3, can_send = $4 \
             WHERE user_id = $5 AND iban = $6",
        )
        .bind(i64::from(r.view))
        .bind(i64::from(r.prepare))
        .bind(i64::from(r.sign))
        .bind(i64::from(r.send))
        .bind(user_id)
        .bind(iban)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
