//! Payment templates and the counterparty directory. Both belong to a payer account and are
//! shared by the users with the prepare right on it (a company's accountants see one list of
//! suppliers and one set of monthly payments; losing the right loses them). Saving checks the
//! content as an order would be checked; a template's amount may be left to type each time.

use tresor_core::api::directory::{CounterpartyContent, MAX_TEMPLATE_NAME_CHARS, TemplateContent};
use tresor_core::api::{ApiError, ErrorCode, Reply, Rights};
use tresor_core::payment::PaymentOrder;

use crate::bank::{Answer, Bank, Ctx, Refusal, not_allowed};
use crate::orders::{forbidden, require};
use crate::rules;
use crate::storage::{SessionLogin, Tx, UserRow};

fn invalid(e: impl std::fmt::Display) -> Refusal {
    Refusal(ApiError::new(ErrorCode::Invalid, e.to_string()))
}

fn not_found(what: &str) -> Refusal {
    Refusal(ApiError::new(
        ErrorCode::NotFound,
        format!("no such {what}"),
    ))
}

/// Whether the session may list templates and counterparties: refused before login; false
/// on a session that may prepare no order (it narrows every grant alike), whose lists are
/// empty.
fn may_list(session: &SessionLogin, user: &UserRow) -> Result<bool, Refusal> {
    if !rules::may_use_accounts(session.stage) {
        return Err(not_allowed("log in first"));
    }
    let preparer = Rights {
        prepare: true,
        ..Rights::default()
    };
    Ok(rules::session_rights(preparer, session.stage, user.menus, user.recovery_pending).prepare)
}

/// Refuses, as if the entry did not exist, unless the session may prepare orders on its
/// account.
async fn require_keeper(
    work: &mut Tx,
    session: &SessionLogin,
    user: &UserRow,
    account: &str,
    what: &str,
) -> Result<(), Refusal> {
    require(
        work,
        session,
        user,
        account,
        |r| r.prepare,
        "keep templates",
    )
    .await
    .map_err(|e| crate::orders::unseen_as_missing(e, not_found(what)))
}

impl Bank {
    /// Checks `order` as an order on its payer account, with the account's currency.
    async fn check_as_order(&self, order: &PaymentOrder) -> Result<(), Refusal> {
        order.validate().map_err(invalid)?;
        let account = self.store.read().await?.account(&order.payer_iban).await?;
        match account {
            Some(a) if a.currency == order.currency => Ok(()),
            Some(a) => Err(invalid(format!(
                "account {} holds {}, not {}",
                a.iban, a.currency, order.currency
            ))),
            None => Err(forbidden(&format!(
                "you may not prepare orders on account {}",
                order.payer_iban
            ))),
        }
    }

    pub(crate) async fn save_template(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        t: TemplateContent,
    ) -> Answer {
        let name = t.name.trim();
        if name.is_empty()
            || name != t.name
            || name.chars().count() > MAX_TEMPLATE_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "a template's name is 1 to {MAX_TEMPLATE_NAME_CHARS} printable characters, \
                 without spaces around"
            )));
        }
        if t.amount == Some(0) {
            return Err(invalid("the amount must be greater than zero, or left out"));
        }
        let mut work = self.begin().await?;
        require(
            &mut *work,
            session,
            user,
            &t.payer_iban,
            |r| r.prepare,
            "keep templates",
        )
        .await?;
        self.check_as_order(&PaymentOrder {
            payer_iban: t.payer_iban.clone(),
            payee_name: t.payee_name.clone(),
            payee_tax_code: t.payee_tax_code.clone(),
            payee_iban: t.payee_iban.clone(),
            amount: t.amount.unwrap_or(1),
            currency: t.currency.clone(),
            purpose: t.purpose.clone(),
        })
        .await?;
        let id = work.save_template(&t, user.id, self.unix_now()).await?;
        let detail = format!("template {id} {name:?} on {}", t.payer_iban);
        work.record(ctx.event(&user.login, "template_save", "ok", &detail));
        self.commit(work).await?;
        let saved = self.store.read().await?.template(id).await?;
        Ok(Reply::Template(saved.ok_or_else(|| not_found("template"))?))
    }

    pub(crate) async fn list_templates(
        &self,
        session: &SessionLogin,
        user: &UserRow,
        account: Option<&str>,
    ) -> Answer {
        if !may_list(session, user)? {
            return Ok(Reply::Templates { templates: vec![] });
        }
        let templates = self
            .store
            .read()
            .await?
            .templates_for(user.id, account)
            .await?;
        Ok(Reply::Templates { templates })
    }

    pub(crate) async fn delete_template(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        id: u64,
    ) -> Answer {
        let mut work = self.begin().await?;
        let t = work
            .template(id)
            .await?
            .ok_or_else(|| not_found("template"))?;
        require_keeper(&mut work, session, user, &t.content.payer_iban, "template").await?;
        work.delete_template(id).await?;
        let detail = format!("template {id} {:?}", t.content.name);
        work.record(ctx.event(&user.login, "template_delete", "ok", &detail));
        self.commit(work).await?;
        Ok(Reply::Done)
    }

    pub(crate) async fn save_counterparty(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        c: CounterpartyContent,
    ) -> Answer {
        let mut work = self.begin().await?;
        require(
            &mut *work,
            session,
            user,
            &c.account,
            |r| r.prepare,
            "keep counterparties",
        )
        .await?;
        let currency = work
            .account(&c.account)
            .await?
            .map(|a| a.currency)
            .unwrap_or_default();
        // A purpose is optional here; an order's is not, so a placeholder stands in for the
        // check.
        self.check_as_order(&PaymentOrder {
            payer_iban: c.account.clone(),
            payee_name: c.name.clone(),
            payee_tax_code: c.tax_code.clone(),
            payee_iban: c.iban.clone(),
            amount: 1,
            currency,
            purpose: if c.purpose.is_empty() {
                "-".into()
            } else {
                c.purpose.clone()
            },
        })
        .await?;
        let id = work.save_counterparty(&c, user.id, self.unix_now()).await?;
        let detail = format!("counterparty {id} {} on {}", c.iban, c.account);
        work.record(ctx.event(&user.login, "counterparty_save", "ok", &detail));
        self.commit(work).await?;
        let saved = self.store.read().await?.counterparty(id).await?;
        Ok(Reply::Counterparty(
            saved.ok_or_else(|| not_found("counterparty"))?,
        ))
    }

    pub(crate) async fn list_counterparties(
        &self,
        session: &SessionLogin,
        user: &UserRow,
        account: Option<&str>,
    ) -> Answer {
        if !may_list(session, user)? {
            return Ok(Reply::Counterparties {
                counterparties: vec![],
            });
        }
        let counterparties = self
            .store
            .read()
            .await?
            .counterparties_for(user.id, account)
            .await?;
        Ok(Reply::Counterparties { counterparties })
    }

    pub(crate) async fn delete_counterparty(
        &self,
        ctx: &Ctx<'_>,
        session: &SessionLogin,
        user: &UserRow,
        id: u64,
    ) -> Answer {
        let mut work = self.begin().await?;
        let c = work
            .counterparty(id)
            .await?
            .ok_or_else(|| not_found("counterparty"))?;
        require_keeper(&mut work, session, user, &c.content.account, "counterparty").await?;
        work.delete_counterparty(id).await?;
        let detail = format!("counterparty {id} {}", c.content.iban);
        work.record(ctx.event(&user.login, "counterparty_delete", "ok", &detail));
        self.commit(work).await?;
        Ok(Reply::Done)
    }
}
