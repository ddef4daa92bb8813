//! The ledger: every change of a balance is a movement, booked in the transaction that changes
//! the balance, on an account whose row that transaction has locked.
//!
//! An account's movements form a chain (docs/ARCHITECTURE.md, "Ledger and statements"): each
//! carries the balance and the debit and credit totals after it, and a MAC over its content and
//! the previous movement's MAC. Booking checks the chain's head and books only if the account's
//! stored balance is the head's, so a balance raised in the database alone is never spent;
//! [`Bank::verify_ledger`] walks every chain. Statements read the totals at the period's two
//! ends, so a page costs the same on an account with ten movements or a million.

use tresor_core::api::ledger::{
    DEFAULT_PAGE, Direction, MAX_PAGE, Movement, MovementKind, StatementPage,
};
use tresor_core::api::{ApiError, ErrorCode, Reply};
use tresor_core::date::Day;
use tresor_core::payment::{self, Iban, PaymentOrder};

use crate::admin::{Actor, AdminError};
use crate::bank::{Answer, Bank};
use crate::orders::{forbidden, require};
use crate::rules::ledger::{BookingRefusal, Totals};
use crate::rules::{self};
use crate::storage::ledger::{After, MovementContent, MovementRow};
use crate::storage::{SessionLogin, StorageError, Tx, UserRow, to_db};

/// A movement to book.
#[derive(Debug, Clone)]
pub(crate) struct Posting<'a> {
    pub iban: &'a str,
    pub direction: Direction,
    pub amount: u64,
    pub kind: MovementKind,
    pub counterparty_name: &'a str,
    pub counterparty_iban: &'a str,
    pub counterparty_tax_code: &'a str,
    pub purpose: &'a str,
    pub doc_number: &'a str,
    pub order_id: Option<u64>,
}

fn totals(m: &MovementContent) -> Totals {
    Totals {
        balance: m.balance_after,
        debits: m.debits_after,
        credits: m.credits_after,
    }
}

/// A payment from another bank to one of this bank's accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingPayment {
    /// The account credited.
    pub account: String,
    /// Minor units.
    pub amount: u64,
    /// The currency, if the sender stated it: it must be the account's.
    pub currency: Option<String>,
    /// Who paid.
    pub payer_name: String,
    /// From which account, at another bank.
    pub payer_iban: String,
    /// The payer's EDRPOU or RNOKPP.
    pub payer_tax_code: String,
    /// Purpose of payment.
    pub purpose: String,
    /// The payer's document number.
    pub number: String,
}

/// What [`Bank::verify_ledger`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerCheck {
    /// Accounts checked.
    pub accounts: u64,
    /// Movements checked.
    pub movements: u64,
    /// The first account that disagrees with its ledger, and how.
    pub problem: Option<(String, String)>,
}

/// Movements read at a time by the ledger check.
const CHECK_CHUNK: u32 = 5000;

impl Bank {
    /// Books a movement on an account the caller has locked
    /// ([`crate::storage::Conn::account_for_update`]); the new balance, or why not.
    pub(crate) async fn book(
        &self,
        work: &mut Tx,
        p: &Posting<'_>,
    ) -> Result<Result<i64, BookingRefusal>, StorageError> {
        let head = work.ledger_head(p.iban).await?;
        let (before, prev_tag, last_booked) = match head.first() {
            None => (Totals::default(), None, i64::MIN),
            Some(h) => {
                let unbound = || {
                    StorageError::corrupt(format!(
                        "account {}'s ledger holds a movement without the bank's MAC",
                        p.iban
                    ))
                };
                let tag = h.tag.as_deref().ok_or_else(unbound)?;
                let prev = match head.get(1) {
                    Some(m) => Some(m.tag.as_deref().ok_or_else(unbound)?),
                    None => None,
                };
                if !self.binding.movement_holds(prev, &h.content, tag) {
                    return Err(unbound());
                }
                (totals(&h.content), Some(tag.to_vec()), h.content.booked_at)
            }
        };
        let amount = to_db(p.amount, "amount")?;
        let after = match rules::ledger::book(before, p.direction, amount) {
            Ok(after) => after,
            Err(refusal) => return Ok(Err(refusal)),
        };
        // Booking times never go back within an account, so that statements may read a range
        // of them in ledger order.
        let booked_at = self.unix_now().max(last_booked);
        let m = MovementContent {
            iban: p.iban.to_owned(),
            booked_at,
            value_date: Day::of_unix(booked_at),
            direction: p.direction,
            amount,
            kind: p.kind,
            counterparty_name: p.counterparty_name.to_owned(),
            counterparty_iban: p.counterparty_iban.to_owned(),
            counterparty_tax_code: p.counterparty_tax_code.to_owned(),
            purpose: p.purpose.to_owned(),
            doc_number: p.doc_number.to_owned(),
            order_id: p.order_id.map(|id| to_db(id, "order id")).transpose()?,
            balance_after: after.balance,
            debits_after: after.debits,
            credits_after: after.credits,
        };
        let tag = self.binding.movement_tag(prev_tag.as_deref(), &m);
        if !work.book_movement(&m, before.balance, &tag).await? {
            return Err(StorageError::corrupt(format!(
                "account {}'s balance differs from its ledger",
                p.iban
            )));
        }
        Ok(Ok(after.balance))
    }

    /// Binds the opening movements that migration 6 wrote, once, in the run that migrated:
    /// afterwards a movement without its MAC is refused as tampering.
    pub(crate) async fn bind_legacy_movements(&self) -> Result<(), StorageError> {
        let mut work = self.begin().await?;
        let rows = work.untagged_movements().await?;
        for m in &rows {
            // Migration 6 wrote one opening movement per account, the first of its chain.
            let tag = self.binding.movement_tag(None, &m.content);
            work.tag_movement(m.id, &tag).await?;
        }
        work.record(crate::bank::upgrade_event(format!(
            "opening movements of {} accounts booked in the ledger",
            rows.len()
        )));
        self.commit(work).await
    }

    /// Walks every account's ledger: each movement carries its MAC after the one before it and
    /// its totals follow from them, and the account's balance is its last movement's.
    pub async fn verify_ledger(&self) -> Result<LedgerCheck, StorageError> {
        let mut conn = self.store.read().await?;
        let accounts = conn.accounts().await?;
        let mut check = LedgerCheck {
            accounts: 0,
            movements: 0,
            problem: None,
        };
        for a in accounts {
            check.accounts += 1;
            let mut before = Totals::default();
            let mut prev_tag: Option<Vec<u8>> = None;
            let mut last: Option<(i64, i64)> = None;
            let mut problem = None;
            'chain: loop {
                let chunk = conn
                    .ledger_chunk(&a.iban, last.map_or(0, |l| l.0), CHECK_CHUNK)
                    .await?;
                for m in &chunk {
                    check.movements += 1;
                    if let Some(p) = self.movement_problem(m, before, prev_tag.as_deref(), last) {
                        problem = Some(format!("movement {}: {p}", m.id));
                        break 'chain;
                    }
                    before = totals(&m.content);
                    prev_tag = m.tag.clone();
                    last = Some((m.id, m.content.booked_at));
                }
                if chunk.len() < CHECK_CHUNK as usize {
                    break;
                }
            }
            let balance = i64::try_from(a.balance).unwrap_or(-1);
            if problem.is_none() && balance != before.balance {
                problem = Some(format!(
                    "balance {} but its movements add up to {}",
                    payment::format_amount(a.balance),
                    payment::format_amount(u64::try_from(before.balance).unwrap_or(0))
                ));
            }
            if let Some(p) = problem {
                check.problem = Some((a.iban, p));
                return Ok(check);
            }
        }
        Ok(check)
    }

    fn movement_problem(
        &self,
        m: &MovementRow,
        before: Totals,
        prev_tag: Option<&[u8]>,
        last: Option<(i64, i64)>,
    ) -> Option<&'static str> {
        let Some(tag) = m.tag.as_deref() else {
            return Some("no MAC");
        };
        if !self.binding.movement_holds(prev_tag, &m.content, tag) {
            return Some("its MAC does not hold (edited, inserted, or one before it removed)");
        }
        if last.is_some_and(|(_, at)| m.content.booked_at < at) {
            return Some("booked before the movement preceding it");
        }
        if !rules::ledger::follows(
            before,
            m.content.direction,
            m.content.amount,
            totals(&m.content),
        ) {
            return Some("its balance or totals do not follow from the movement before it");
        }
        None
    }

    /// Books payments from other banks, all of them or none; the balances after.
    pub async fn incoming_payments(
        &self,
        actor: impl Into<Actor>,
        payments: &[IncomingPayment],
    ) -> Result<Vec<u64>, AdminError> {
        let actor = actor.into();
        let mut work = self.begin().await?;
        let mut balances = Vec::with_capacity(payments.len());
        for (n, p) in payments.iter().enumerate() {
            let at = |e: String| {
                if payments.len() == 1 {
                    AdminError::Invalid(e)
                } else {
                    AdminError::Invalid(format!("payment {}: {e}", n + 1))
                }
            };
            let iban = Iban::parse(&p.account).map_err(|e| at(e.to_string()))?;
            let account = work
                .account_for_update(iban.as_str())
                .await?
                .ok_or_else(|| AdminError::NoSuchAccount(iban.to_string()))?;
            if p.currency.as_ref().is_some_and(|c| *c != account.currency) {
                return Err(at(format!(
                    "account {} holds {}, not {}",
                    account.iban,
                    account.currency,
                    p.currency.as_deref().unwrap_or_default()
                )));
            }
            // An incoming payment is a payment order from another bank to this account: it
            // must pass every check an order does.
            let as_order = PaymentOrder {
                payer_iban: Iban::parse(&p.payer_iban)
                    .map_err(|e| at(e.to_string()))?
                    .to_string(),
                payee_name: p.payer_name.trim().to_owned(),
                payee_tax_code: p.payer_tax_code.trim().to_owned(),
                payee_iban: account.iban.clone(),
                amount: p.amount,
                currency: account.currency.clone(),
                purpose: p.purpose.trim().to_owned(),
            };
            as_order
                .validate()
                .map_err(|e| at(e.to_string().replace("payee", "payer")))?;
            if work.account(&as_order.payer_iban).await?.is_some() {
                return Err(at(format!(
                    "{} is an account of this bank: move money between accounts with an order",
                    as_order.payer_iban
                )));
            }
            let number = p.number.trim();
            if number.is_empty()
                || number.chars().count() > 35
                || number.chars().any(char::is_control)
            {
                return Err(at(
                    "the document number must be 1 to 35 printable characters".into(),
                ));
            }
            let booked = self
                .book(
                    &mut work,
                    &Posting {
                        iban: &account.iban,
                        direction: Direction::Credit,
                        amount: p.amount,
                        kind: MovementKind::Incoming,
                        counterparty_name: &as_order.payee_name,
                        counterparty_iban: &as_order.payer_iban,
                        counterparty_tax_code: &as_order.payee_tax_code,
                        purpose: &as_order.purpose,
                        doc_number: number,
                        order_id: None,
                    },
                )
                .await?
                .map_err(|_| at("the amount is out of range".into()))?;
            work.record(actor.event(
                "",
                "payment_incoming",
                "ok",
                &format!(
                    "{} {} to {} from {} (document {number})",
                    payment::format_amount(p.amount),
                    account.currency,
                    account.iban,
                    as_order.payer_iban
                ),
            ));
            let amount = format!("{} {}", payment::format_amount(p.amount), account.currency);
            self.notify_viewers(
                &mut work,
                &account.iban,
                &crate::mail::Notice::IncomingPayment {
                    account: &account.iban,
                    amount: &amount,
                    from: &as_order.payee_name,
                },
            )
            .await?;
            balances.push(u64::try_from(booked).unwrap_or(0));
        }
        self.commit(work).await?;
        Ok(balances)
    }

    /// A page of a statement of `iban` for the days `from` to `to`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn statement(
        &self,
        session: &SessionLogin,
        user: &UserRow,
        iban: &str,
        (from, to): (Day, Day),
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Answer {
        let invalid = |what: &str| ApiError::new(ErrorCode::Invalid, what);
        if from > to {
            return Err(invalid("the period ends before it starts").into());
        }
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid(&format!("a page holds 1 to {MAX_PAGE} movements")).into());
        }
        let (start, end) = (from.start_unix(), to.next().start_unix());
        let after = match cursor {
            None => After {
                booked_at: start - 1,
                id: i64::MAX,
            },
            Some(c) => parse_cursor(c).ok_or_else(|| invalid("not a statement cursor"))?,
        };
        let mut conn = self.store.read().await?;
        require(
            &mut conn,
            session,
            user,
            iban,
            |r| r.view,
            "view statements",
        )
        .await?;
        let account = conn
            .account(iban)
            .await?
            .ok_or_else(|| forbidden(&format!("you may not view statements on account {iban}")))?;
        // The closing end first: the rest is read up to its movement, so a movement booked
        // meanwhile is in none of the figures rather than in some.
        let closing_row = conn.last_movement_before(iban, end, i64::MAX).await?;
        let upto = closing_row.as_ref().map_or(0, |m| m.id);
        let closing = closing_row.map_or_else(Totals::default, |m| totals(&m.content));
        let opening = conn
            .last_movement_before(iban, start, upto)
            .await?
            .map_or_else(Totals::default, |m| totals(&m.content));
        let (debits, credits) = rules::ledger::turnovers(opening, closing)
            .ok_or_else(|| StorageError::corrupt(format!("account {iban}'s ledger totals")))?;
        let mut rows = conn
            .movements_after(iban, (start, end), after, upto, limit + 1)
            .await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|m| format!("{}.{}", m.content.booked_at, m.id))
        } else {
            None
        };
        let movements = rows
            .iter()
            .map(MovementRow::view)
            .collect::<Result<Vec<Movement>, _>>()?;
        let unsigned = |v: i64, what: &str| crate::storage::from_db(v, what);
        Ok(Reply::Statement(StatementPage {
            iban: account.iban,
            holder: account.holder,
            currency: account.currency,
            from,
            to,
            opening: unsigned(opening.balance, "balance")?,
            debits: unsigned(debits, "turnover")?,
            credits: unsigned(credits, "turnover")?,
            closing: unsigned(closing.balance, "balance")?,
            movements,
            next,
        }))
    }
}

/// A cursor as [`Bank::statement`] writes it: `<booked_at>.<id>`.
fn parse_cursor(c: &str) -> Option<After> {
    let (at, id) = c.split_once('.')?;
    Some(After {
        booked_at: at.parse().ok()?,
        id: id.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_only_as_written() {
        assert_eq!(
            parse_cursor("1764547200.42"),
            Some(After {
                booked_at: 1_764_547_200,
                id: 42
            })
        );
        for bad in ["", "1", "1.", ".1", "a.1", "1.b", "1.2.3", "1,2"] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }
}
