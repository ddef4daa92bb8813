//! Payment templates and counterparties: rows keyed by their payer account, read through the
//! user's prepare right.

use std::ops::DerefMut;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};
use tresor_core::api::directory::{Counterparty, CounterpartyContent, Template, TemplateContent};

use super::{Conn, StorageError, from_db, to_db};

fn template(r: &AnyRow) -> Result<Template, StorageError> {
    let amount: Option<i64> = r.try_get("amount")?;
    Ok(Template {
        id: from_db(r.try_get("id")?, "template id")?,
        saved_by: r.try_get("login")?,
        content: TemplateContent {
            name: r.try_get("name")?,
            payer_iban: r.try_get("payer_iban")?,
            payee_name: r.try_get("payee_name")?,
            payee_tax_code: r.try_get("payee_tax_code")?,
            payee_iban: r.try_get("payee_iban")?,
            amount: amount.map(|a| from_db(a, "amount")).transpose()?,
            currency: r.try_get("currency")?,
            purpose: r.try_get("purpose")?,
        },
    })
}

fn counterparty(r: &AnyRow) -> Result<Counterparty, StorageError> {
    Ok(Counterparty {
        id: from_db(r.try_get("id")?, "counterparty id")?,
        content: CounterpartyContent {
            account: r.try_get("payer_iban")?,
            name: r.try_get("name")?,
            tax_code: r.try_get("tax_code")?,
            iban: r.try_get("iban")?,
            purpose: r.try_get("purpose")?,
        },
    })
}

const TEMPLATE_SELECT: &str = "SELECT t.id, u.login, t.name, t.payer_iban, t.payee_name, \
    t.payee_tax_code, t.payee_iban, t.amount, t.currency, t.purpose \
    FROM templates t JOIN users u ON u.id = t.created_by";

impl<C: DerefMut<Target = AnyConnection> + Send> Conn<C> {
    /// Saves a template, replacing the account's template of the same name; its id.
    pub async fn save_template(
        &mut self,
        t: &TemplateContent,
        user_id: i64,
        now: i64,
    ) -> Result<u64, StorageError> {
        let amount = t.amount.map(|a| to_db(a, "amount")).transpose()?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO templates (payer_iban, name, payee_name, payee_tax_code, payee_iban, \
             amount, currency, purpose, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (payer_iban, name) DO UPDATE SET payee_name = excluded.payee_name, \
             payee_tax_code = excluded.payee_tax_code, payee_iban = excluded.payee_iban, \
             amount = excluded.amount, currency = excluded.currency, \
             purpose = excluded.purpose, created_by = excluded.created_by, \
             created_at = excluded.created_at RETURNING id",
        )
        .bind(&t.payer_iban)
        .bind(&t.name)
        .bind(&t.payee_name)
        .bind(&t.payee_tax_code)
        .bind(&t.payee_iban)
        .bind(amount)
        .bind(&t.currency)
        .bind(&t.purpose)
        .bind(user_id)
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        from_db(id, "template id")
    }

    /// The template with this id.
    pub async fn template(&mut self, id: u64) -> Result<Option<Template>, StorageError> {
        let sql = format!("{TEMPLATE_SELECT} WHERE t.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_db(id, "template id")?)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(template).transpose()
    }

    /// The templates of the accounts `user_id` may prepare orders on (or of one of them),
    /// by account and name.
    pub async fn templates_for(
        &mut self,
        user_id: i64,
        account: Option<&str>,
    ) -> Result<Vec<Template>, StorageError> {
        let sql = format!(
            "{TEMPLATE_SELECT} WHERE t.payer_iban IN \
             (SELECT iban FROM rights WHERE user_id = $1 AND can_prepare = 1) \
             AND ($2 = '' OR t.payer_iban = $2) ORDER BY t.payer_iban, t.name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .bind(account.unwrap_or(""))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(template).collect()
    }

    /// Deletes a template; false if there was none.
    pub async fn delete_template(&mut self, id: u64) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM templates WHERE id = $1")
            .bind(to_db(id, "template id")?)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Saves a counterparty, replacing the directory's entry with the same IBAN; its id.
    pub async fn save_counterparty(
        &mut self,
        c: &CounterpartyContent,
        user_id: i64,
        now: i64,
    ) -> Result<u64, StorageError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO counterparties (payer_iban, name, tax_code, iban, purpose, created_by, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (payer_iban, iban) DO UPDATE SET name = excluded.name, \
             tax_code = excluded.tax_code, purpose = excluded.purpose, \
             created_by = excluded.created_by, created_at = excluded.created_at RETURNING id",
        )
        .bind(&c.account)
        .bind(&c.name)
        .bind(&c.tax_code)
        .bind(&c.iban)
        .bind(&c.purpose)
        .bind(user_id)
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        from_db(id, "counterparty id")
    }

    /// The counterparty with this id.
    pub async fn counterparty(&mut self, id: u64) -> Result<Option<Counterparty>, StorageError> {
        let row = sqlx::query(
            "SELECT id, payer_iban, name, tax_code, iban, purpose FROM counterparties \
             WHERE id = $1",
        )
        .bind(to_db(id, "counterparty id")?)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(counterparty).transpose()
    }

    /// The directories of the accounts `user_id` may prepare orders on (or of one), by
    /// account and name.
    pub async fn counterparties_for(
        &mut self,
        user_id: i64,
        account: Option<&str>,
    ) -> Result<Vec<Counterparty>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, payer_iban, name, tax_code, iban, purpose FROM counterparties \
             WHERE payer_iban IN (SELECT iban FROM rights WHERE user_id = $1 AND can_prepare = 1) \
             AND ($2 = '' OR payer_iban = $2) ORDER BY payer_iban, name, id",
        )
        .bind(user_id)
        .bind(account.unwrap_or(""))
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(counterparty).collect()
    }

    /// Deletes a counterparty; false if there was none.
    pub async fn delete_counterparty(&mut self, id: u64) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM counterparties WHERE id = $1")
            .bind(to_db(id, "counterparty id")?)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
