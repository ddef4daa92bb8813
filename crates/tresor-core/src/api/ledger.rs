//! Statements and the exchange with accounting software, as the protocol carries them: the
//! movements of an account's ledger, a statement for a period page by page, and payment orders
//! imported in bulk.

use serde::{Deserialize, Serialize};

use crate::date::Day;
use crate::payment::PaymentOrder;

/// Whether a movement took money out of the account or brought it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum Direction {
    /// Money out.
    Debit,
    /// Money in.
    Credit,
}

impl Direction {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debit => "debit",
            Self::Credit => "credit",
        }
    }
}

/// What made a movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum MovementKind {
    /// The balance an account was opened (or migrated) with.
    Opening,
    /// A payment order sent to another bank.
    Order,
    /// A payment between two accounts of this bank (both sides).
    Internal,
    /// A payment from another bank.
    Incoming,
}

impl MovementKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opening => "opening",
            Self::Order => "order",
            Self::Internal => "internal",
            Self::Incoming => "incoming",
        }
    }
}

/// One change of an account's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Movement {
    /// Its id in the bank's ledger.
    pub id: u64,
    /// When it was booked, Unix seconds.
    pub booked_at: u64,
    /// The value date.
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub value_date: Day,
    /// Out or in.
    pub direction: Direction,
    /// Minor units, positive.
    pub amount: u64,
    /// What made it.
    pub kind: MovementKind,
    /// The other side's name (the payee of a debit, the payer of a credit).
    pub counterparty_name: String,
    /// The other side's IBAN.
    pub counterparty_iban: String,
    /// The other side's EDRPOU or RNOKPP (empty if unknown).
    pub counterparty_tax_code: String,
    /// The purpose of payment.
    pub purpose: String,
    /// The document number (the order's, or the sender's).
    pub doc_number: String,
    /// The payment order, for a debit or an internal credit.
    pub order_id: Option<u64>,
    /// The balance after it.
    pub balance_after: u64,
}

/// A statement of an account for a period of days, and one page of its movements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct StatementPage {
    /// The account.
    pub iban: String,
    /// Its holder.
    pub holder: String,
    /// Its currency.
    pub currency: String,
    /// The first day of the period.
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub from: Day,
    /// The last day of the period (included).
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub to: Day,
    /// The balance at the start of `from`.
    pub opening: u64,
    /// Money out during the period.
    pub debits: u64,
    /// Money in during the period.
    pub credits: u64,
    /// The balance at the end of `to`: opening + credits − debits.
    pub closing: u64,
    /// This page's movements, oldest first.
    pub movements: Vec<Movement>,
    /// Where the next page starts; none on the last page.
    pub next: Option<String>,
}

/// Movements on one statement page unless the request asks otherwise.
pub const DEFAULT_PAGE: u32 = 100;
/// The most movements a page holds (a page must fit in one channel record).
pub const MAX_PAGE: u32 = 1000;

/// A payment order from an accounting program's file, with the number and date it has there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ImportedOrder {
    /// What to pay.
    #[serde(deserialize_with = "super::strict_order::deserialize")]
    pub order: PaymentOrder,
    /// The document number in the accounting program.
    pub number: String,
    /// The document date there.
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub date: Day,
}

/// Orders imported in one request at most (the request must fit in one channel record).
pub const MAX_IMPORT_BATCH: usize = 1000;

/// What became of each order of an import, in the request's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub enum ImportOutcome {
    /// Prepared as a draft.
    Prepared {
        /// The new order.
        id: u64,
    },
    /// An order with the same payer, number, date, amount and payee exists: not imported
    /// again.
    Duplicate {
        /// The existing order.
        existing: u64,
    },
}
