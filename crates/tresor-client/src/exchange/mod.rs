//! Statements out and payment orders in, in the formats accounting software reads and writes:
//! 1C/BAS `1CClientBankExchange` (windows-1251), ISO 20022 camt.053, CSV (RFC 4180), a
//! printable PDF, and a plain table for the terminal.
//!
//! IO-free but for the `Write` it is given: a statement is written as its movements arrive,
//! page by page from the bank ([`StatementSink::push`]), so a statement of any length is never
//! held whole in memory — the PDF included, whose pages go out as each one fills.

mod camt;
mod csv_format;
pub mod import;
mod onec;
mod pdf;
mod table;

use std::io::Write;

use tresor_core::api::ledger::{Movement, StatementPage};
use tresor_core::date::Day;

/// A statement's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// RFC 4180, UTF-8, a header row.
    Csv,
    /// A printable PDF.
    Pdf,
    /// 1C/BAS `1CClientBankExchange` 1.03, windows-1251, CRLF.
    OneC,
    /// ISO 20022 `camt.053.001.08`.
    Camt053,
}

impl Format {
    /// Every format, with the name the CLI takes.
    pub const ALL: [(Self, &'static str); 5] = [
        (Self::Table, "table"),
        (Self::Csv, "csv"),
        (Self::Pdf, "pdf"),
        (Self::OneC, "1c"),
        (Self::Camt053, "camt053"),
    ];

    /// The format named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| *f)
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Table => "txt",
            Self::Csv => "csv",
            Self::Pdf => "pdf",
            Self::OneC => "txt",
            Self::Camt053 => "xml",
        }
    }
}

/// What a statement says besides its movements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementInfo {
    /// The bank's name.
    pub bank: String,
    /// The account.
    pub iban: String,
    /// Its holder.
    pub holder: String,
    /// Its currency.
    pub currency: String,
    /// First day.
    pub from: Day,
    /// Last day.
    pub to: Day,
    /// Balance at the start.
    pub opening: u64,
    /// Money out.
    pub debits: u64,
    /// Money in.
    pub credits: u64,
    /// Balance at the end.
    pub closing: u64,
    /// When the statement was made, Unix seconds.
    pub created: i64,
}

impl StatementInfo {
    /// The figures of a statement's first page.
    pub fn of(bank: &str, page: &StatementPage, created: i64) -> Self {
        Self {
            bank: bank.to_owned(),
            iban: page.iban.clone(),
            holder: page.holder.clone(),
            currency: page.currency.clone(),
            from: page.from,
            to: page.to,
            opening: page.opening,
            debits: page.debits,
            credits: page.credits,
            closing: page.closing,
            created,
        }
    }
}

/// Why a statement could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing failed.
    #[error("writing the statement: {0}")]
    Io(#[from] std::io::Error),
    /// The PDF could not be made (its embedded font did not load).
    #[error("making the PDF: {0}")]
    Pdf(String),
    /// The XML writer failed.
    #[error("writing XML: {0}")]
    Xml(String),
    /// The CSV writer failed.
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// A statement being written: its movements pushed oldest first, then finished.
pub trait StatementSink {
    /// Writes one movement.
    fn push(&mut self, m: &Movement) -> Result<(), ExportError>;
    /// Writes what follows the movements and flushes.
    fn finish(self: Box<Self>) -> Result<(), ExportError>;
}

/// A writer of `info`'s statement in `format` to `out`; its header is written here.
pub fn statement_writer<'w, W: Write + 'w>(
    format: Format,
    info: &StatementInfo,
    out: W,
) -> Result<Box<dyn StatementSink + 'w>, ExportError> {
    Ok(match format {
        Format::Table => Box::new(table::Table::start(info, out)?),
        Format::Csv => Box::new(csv_format::Csv::start(info, out)?),
        Format::Pdf => Box::new(pdf::Pdf::start(info, out)?),
        Format::OneC => Box::new(onec::OneC::start(info, out)?),
        Format::Camt053 => Box::new(camt::Camt::start(info, out)?),
    })
}

/// `1234.56` from minor units.
pub(crate) fn amount(minor: u64) -> String {
    tresor_core::payment::format_amount(minor)
}

/// The UTC date and time of Unix seconds: (`YYYY-MM-DD`, `HH:MM:SS`).
pub(crate) fn date_time(unix: i64) -> (Day, String) {
    let secs = unix.rem_euclid(86_400);
    (
        Day::of_unix(unix),
        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use tresor_core::api::ledger::{Direction, MovementKind};

    use super::*;

    /// A statement with a debit and a credit, Cyrillic names included.
    pub fn sample() -> (StatementInfo, Vec<Movement>) {
        let day = Day::parse("2026-11-16").expect("date");
        let info = StatementInfo {
            bank: "Tresor Test Bank".into(),
            iban: "UA213223130000026007233566001".into(),
            holder: "ТОВ \"Ромашка\"".into(),
            currency: "UAH".into(),
            from: Day::parse("2026-11-01").expect("date"),
            to: Day::parse("2026-11-30").expect("date"),
            opening: 1_000_000,
            debits: 125_050,
            credits: 30_000,
            closing: 904_950,
            created: day.start_unix() + 3_600,
        };
        let m = |id, direction, amount, name: &str, balance_after| Movement {
            id,
            booked_at: u64::try_from(day.start_unix()).expect("time") + id * 60,
            value_date: day,
            direction,
            amount,
            kind: MovementKind::Order,
            counterparty_name: name.into(),
            counterparty_iban: "UA903052992990004149123456789".into(),
            counterparty_tax_code: "32855961".into(),
            purpose: "Оплата за рахунком №17, у т.ч. ПДВ 20%; \"quoted\", comma".into(),
            doc_number: format!("{id}"),
            order_id: Some(id),
            balance_after,
        };
        (
            info,
            vec![
                m(7, Direction::Debit, 125_050, "ТОВ Постачальник", 874_950),
                m(8, Direction::Credit, 30_000, "ФОП Іваненко Ґ. Є.", 904_950),
            ],
        )
    }

    #[test]
    fn formats_parse_by_name() {
        for (format, name) in Format::ALL {
            assert_eq!(Format::parse(name), Some(format));
        }
        assert_eq!(Format::parse("CAMT053"), Some(Format::Camt053));
        assert_eq!(Format::parse("xlsx"), None);
    }

    #[test]
    fn date_time_of_unix_seconds() {
        let (day, time) = date_time(Day::parse("2026-12-01").expect("d").start_unix() + 3_723);
        assert_eq!(
            (day.to_string(), time.as_str()),
            ("2026-12-01".into(), "01:02:03")
        );
    }
}
