//! Payment templates and the counterparty directory, as the protocol carries them. Both
//! belong to a payer account and are shared by the users with the prepare right on it.

use serde::{Deserialize, Serialize};

/// A payment template as stored: an order's content under a name, the amount optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Template {
    /// Its id.
    pub id: u64,
    /// Who saved it last.
    pub saved_by: String,
    /// What it holds.
    pub content: TemplateContent,
}

/// What a template holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TemplateContent {
    /// Its name, unique on the account.
    pub name: String,
    /// The account debited.
    pub payer_iban: String,
    /// The payee's name.
    pub payee_name: String,
    /// The payee's EDRPOU or RNOKPP.
    pub payee_tax_code: String,
    /// The payee's IBAN.
    pub payee_iban: String,
    /// Minor units; none if it is typed each time.
    pub amount: Option<u64>,
    /// Currency code.
    pub currency: String,
    /// Purpose of payment.
    pub purpose: String,
}

/// A counterparty in an account's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Counterparty {
    /// Its id.
    pub id: u64,
    /// What it holds.
    pub content: CounterpartyContent,
}

/// What a directory entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CounterpartyContent {
    /// The payer account whose directory it is in.
    pub account: String,
    /// Name as registered.
    pub name: String,
    /// EDRPOU or RNOKPP.
    pub tax_code: String,
    /// IBAN, unique in the directory.
    pub iban: String,
    /// The purpose an order to it starts with (may be empty).
    pub purpose: String,
}

/// The longest template name.
pub const MAX_TEMPLATE_NAME_CHARS: usize = 64;
