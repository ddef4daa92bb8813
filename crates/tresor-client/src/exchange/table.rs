//! The statement as aligned text, for a terminal.

use std::io::Write;

use tresor_core::api::ledger::{Direction, Movement};
use tresor_core::text::printable;

use super::{ExportError, StatementInfo, StatementSink, amount};

pub(super) struct Table<W: Write> {
    out: W,
    closing: String,
}

/// `s` cut to `n` characters, padded to `n`.
fn cell(s: &str, n: usize) -> String {
    let s = printable(s);
    let count = s.chars().count();
    if count > n {
        let mut cut: String = s.chars().take(n.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        format!("{s}{}", " ".repeat(n - count))
    }
}

impl<W: Write> Table<W> {
    pub(super) fn start(info: &StatementInfo, mut out: W) -> Result<Self, ExportError> {
        writeln!(out, "{}", printable(&info.bank))?;
        writeln!(
            out,
            "Statement of {} ({}, {}) for {} to {}",
            info.iban,
            printable(&info.holder),
            info.currency,
            info.from,
            info.to
        )?;
        writeln!(out, "Opening balance {:>15}", amount(info.opening))?;
        writeln!(out, "Debits          {:>15}", amount(info.debits))?;
        writeln!(out, "Credits         {:>15}", amount(info.credits))?;
        writeln!(out)?;
        writeln!(
            out,
            "{}  {}  {}  {}  {:>13}  {:>13}  {:>14}",
            cell("Date", 10),
            cell("No.", 8),
            cell("Counterparty", 28),
            cell("Purpose", 32),
            "Debit",
            "Credit",
            "Balance"
        )?;
        Ok(Self {
            out,
            closing: amount(info.closing),
        })
    }
}

impl<W: Write> StatementSink for Table<W> {
    fn push(&mut self, m: &Movement) -> Result<(), ExportError> {
        let (debit, credit) = match m.direction {
            Direction::Debit => (amount(m.amount), String::new()),
            Direction::Credit => (String::new(), amount(m.amount)),
        };
        writeln!(
            self.out,
            "{}  {}  {}  {}  {debit:>13}  {credit:>13}  {:>14}",
            m.value_date,
            cell(&m.doc_number, 8),
            cell(&m.counterparty_name, 28),
            cell(&m.purpose, 32),
            amount(m.balance_after)
        )?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExportError> {
        writeln!(self.out)?;
        writeln!(self.out, "Closing balance {:>15}", self.closing)?;
        self.out.flush()?;
        Ok(())
    }
}
