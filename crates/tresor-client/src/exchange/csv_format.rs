//! CSV (RFC 4180): UTF-8, comma-separated, quoted where needed, CRLF, a header row, one
//! movement per row, amounts with a decimal point in a debit and a credit column, so that a
//! spreadsheet sums each column as it stands.

use std::io::Write;

use tresor_core::api::ledger::{Direction, Movement};

use super::{ExportError, StatementInfo, StatementSink, amount, date_time};

/// The header row.
pub const COLUMNS: [&str; 12] = [
    "booked",
    "value_date",
    "document",
    "debit",
    "credit",
    "currency",
    "counterparty",
    "counterparty_iban",
    "counterparty_tax_code",
    "purpose",
    "balance_after",
    "movement_id",
];

pub(super) struct Csv<W: Write> {
    out: csv::Writer<W>,
    currency: String,
}

impl<W: Write> Csv<W> {
    pub(super) fn start(info: &StatementInfo, out: W) -> Result<Self, ExportError> {
        let mut out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        out.write_record(COLUMNS)?;
        Ok(Self {
            out,
            currency: info.currency.clone(),
        })
    }
}

impl<W: Write> StatementSink for Csv<W> {
    fn push(&mut self, m: &Movement) -> Result<(), ExportError> {
        let (day, time) = date_time(i64::try_from(m.booked_at).unwrap_or(i64::MAX));
        let (debit, credit) = match m.direction {
            Direction::Debit => (amount(m.amount), String::new()),
            Direction::Credit => (String::new(), amount(m.amount)),
        };
        self.out.write_record([
            format!("{day} {time}").as_str(),
            &m.value_date.to_string(),
            &m.doc_number,
            &debit,
            &credit,
            &self.currency,
            &m.counterparty_name,
            &m.counterparty_iban,
            &m.counterparty_tax_code,
            &m.purpose,
            &amount(m.balance_after),
            &m.id.to_string(),
        ])?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExportError> {
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::super::{Format, statement_writer};
    use super::*;

    #[test]
    fn rows_quote_what_needs_quoting_and_read_back() {
        let (info, movements) = sample();
        let mut out = Vec::new();
        let mut w = statement_writer(Format::Csv, &info, &mut out).expect("start");
        for m in &movements {
            w.push(m).expect("push");
        }
        w.finish().expect("finish");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("booked,value_date,document,debit,credit,"));
        assert!(text.contains("\r\n"));
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.expect("row")).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][3], "1250.50");
        assert_eq!(&rows[0][4], "");
        assert_eq!(&rows[1][4], "300.00");
        assert_eq!(&rows[1][6], "ФОП Іваненко Ґ. Є.");
        assert_eq!(&rows[0][9], movements[0].purpose);
        assert!(rows.iter().all(|r| r.len() == COLUMNS.len()));
    }
}
