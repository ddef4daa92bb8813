//! A printable statement: A4 pages with the bank, account, holder, period, balances and
//! turnovers, then the movements as a table (date, number, counterparty and IBAN, purpose,
//! debit, credit), the closing balance, and "page N of M" on every page. Each page is written
//! out as soon as it is full ([`crate::pdf`]), so memory stays flat however long the statement.

use std::io::Write;

use tresor_core::api::ledger::{Direction, Movement};

use super::{ExportError, StatementInfo, StatementSink, amount, date_time};
use crate::pdf::{Document, PdfError};

const PAGE_H: f32 = 297.0;
const LEFT: f32 = 12.0;
const RIGHT: f32 = 198.0;
const BOTTOM: f32 = 18.0;
const SIZE: f32 = 7.0;
const LINE: f32 = 3.3;
/// Columns: left edges, and the right edges of the two amounts.
const COL_DATE: f32 = LEFT;
const COL_NO: f32 = 29.0;
const COL_PARTY: f32 = 44.0;
const COL_PURPOSE: f32 = 97.0;
const DEBIT_RIGHT: f32 = 174.0;
const CREDIT_RIGHT: f32 = RIGHT;
/// Characters that fit the counterparty and purpose columns.
const PARTY_CHARS: usize = 34;
const PURPOSE_CHARS: usize = 40;

pub(super) struct Pdf<W: Write> {
    doc: Document<W>,
    y: f32,
    closing: String,
}

impl From<PdfError> for ExportError {
    fn from(e: PdfError) -> Self {
        match e {
            PdfError::Io(e) => Self::Io(e),
            e @ PdfError::Font(_) => Self::Pdf(e.to_string()),
        }
    }
}

/// `text` broken into lines of at most `width` characters, at spaces where it can.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let have = line.chars().count();
            let room = if have == 0 {
                width
            } else {
                width.saturating_sub(have + 1)
            };
            if word.len() <= room {
                if have > 0 {
                    line.push(' ');
                }
                line.extend(word.iter());
                break;
            }
            if have > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a line: cut it.
            line.extend(word.drain(..width));
            lines.push(std::mem::take(&mut line));
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

impl<W: Write> Pdf<W> {
    fn table_header(&mut self) {
        let y = self.y;
        let d = &mut self.doc;
        d.text("Date / Дата", SIZE, COL_DATE, y);
        d.text("No. / №", SIZE, COL_NO, y);
        d.text("Counterparty / Контрагент", SIZE, COL_PARTY, y);
        d.text("Purpose / Призначення платежу", SIZE, COL_PURPOSE, y);
        d.text_right("Debit / Дебет", SIZE, DEBIT_RIGHT, y);
        d.text_right("Credit / Кредит", SIZE, CREDIT_RIGHT, y);
        d.rule(LEFT, RIGHT, y - 1.2);
        self.y -= LINE + 1.8;
    }

    fn new_page(&mut self) -> Result<(), ExportError> {
        self.doc.new_page()?;
        let n = self.doc.page_count();
        self.doc
            .text_then_total(&format!("Page {n} of "), LEFT, 9.0);
        self.doc
            .text_then_total(&format!("Сторінка {n} з "), LEFT + 40.0, 9.0);
        self.y = PAGE_H - 15.0;
        Ok(())
    }

    pub(super) fn start(info: &StatementInfo, out: W) -> Result<Self, ExportError> {
        let title = format!("Statement {} {} — {}", info.iban, info.from, info.to);
        let mut s = Self {
            doc: Document::start(&title, out)?,
            y: 0.0,
            closing: amount(info.closing),
        };
        s.new_page()?;
        s.y = PAGE_H - 18.0;
        s.doc.text(&info.bank, 11.0, LEFT, s.y);
        s.y -= 8.0;
        s.doc
            .text("Statement of account / Виписка з рахунку", 14.0, LEFT, s.y);
        s.y -= 9.0;
        let (made_day, made_time) = date_time(info.created);
        for (label, value) in [
            (
                "Account / Рахунок",
                format!("{} ({})", info.iban, info.currency),
            ),
            ("Holder / Власник", info.holder.clone()),
            (
                "Period / Період",
                format!("{} — {}", info.from.dotted(), info.to.dotted()),
            ),
            (
                "Made / Сформовано",
                format!("{} {made_time} UTC", made_day.dotted()),
            ),
        ] {
            s.doc.text(label, 8.0, LEFT, s.y);
            s.doc.text(&value, 9.0, LEFT + 42.0, s.y);
            s.y -= 5.0;
        }
        s.y -= 2.0;
        for (label, value) in [
            ("Opening balance / Вхідний залишок", info.opening),
            ("Debit turnover / Обороти за дебетом", info.debits),
            ("Credit turnover / Обороти за кредитом", info.credits),
            ("Closing balance / Вихідний залишок", info.closing),
        ] {
            s.doc.text(label, 8.0, LEFT, s.y);
            let figure = format!("{} {}", amount(value), info.currency);
            s.doc.text(&figure, 9.0, LEFT + 70.0, s.y);
            s.y -= 5.0;
        }
        s.y -= 4.0;
        s.table_header();
        Ok(s)
    }
}

impl<W: Write> StatementSink for Pdf<W> {
    fn push(&mut self, m: &Movement) -> Result<(), ExportError> {
        let mut party = wrap(&m.counterparty_name, PARTY_CHARS);
        party.push(m.counterparty_iban.clone());
        if !m.counterparty_tax_code.is_empty() {
            party.push(m.counterparty_tax_code.clone());
        }
        let purpose = wrap(&m.purpose, PURPOSE_CHARS);
        let lines = party.len().max(purpose.len());
        let height = lines as f32 * LINE + 1.0;
        if self.y - height < BOTTOM {
            self.new_page()?;
            self.table_header();
        }
        let y = self.y;
        let d = &mut self.doc;
        d.text(&m.value_date.dotted(), SIZE, COL_DATE, y);
        let number: String = m.doc_number.chars().take(9).collect();
        d.text(&number, SIZE, COL_NO, y);
        for (i, l) in party.iter().enumerate() {
            d.text(l, SIZE, COL_PARTY, y - i as f32 * LINE);
        }
        for (i, l) in purpose.iter().enumerate() {
            d.text(l, SIZE, COL_PURPOSE, y - i as f32 * LINE);
        }
        let right = match m.direction {
            Direction::Debit => DEBIT_RIGHT,
            Direction::Credit => CREDIT_RIGHT,
        };
        d.text_right(&amount(m.amount), SIZE, right, y);
        self.y -= height;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExportError> {
        if self.y - 10.0 < BOTTOM {
            self.new_page()?;
        }
        let y = self.y;
        self.doc.rule(LEFT, RIGHT, y + 1.5);
        self.doc
            .text("Closing balance / Вихідний залишок", 8.0, LEFT, y - 3.0);
        self.doc
            .text_right(&self.closing, SIZE, CREDIT_RIGHT, y - 3.0);
        self.doc.finish()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_character() {
        let cases = [
            ("", 10, vec![""]),
            ("short", 10, vec!["short"]),
            ("two words here", 9, vec!["two words", "here"]),
            (
                "averyveryverylongword x",
                8,
                vec!["averyver", "yverylon", "gword x"],
            ),
        ];
        for (text, width, want) in cases {
            let got = wrap(text, width);
            assert_eq!(got, want, "{text:?}");
            assert!(got.iter().all(|l| l.chars().count() <= width));
        }
    }
}
