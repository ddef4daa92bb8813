//! A printable statement: A4 pages with the bank, account, holder, period, balances and
//! turnovers, then the movements as a table (date, number, counterparty and IBAN, purpose,
//! debit, credit), the closing balance, and "page N of M" on every page. Text is set in DejaVu
//! Sans, embedded, so Cyrillic prints as written.

use std::io::{BufWriter, Write};

use printpdf::{
    IndirectFontRef, Line, Mm, PdfDocument, PdfDocumentReference, PdfLayerReference, Point,
};
use tresor_core::api::ledger::{Direction, Movement};

use super::{ExportError, StatementInfo, StatementSink, amount, date_time};

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const LEFT: f32 = 12.0;
const RIGHT: f32 = 198.0;
const BOTTOM: f32 = 18.0;
const SIZE: f32 = 7.0;
const LINE: f32 = 3.3;
/// Width of a digit or a space in DejaVu Sans at [`SIZE`], mm (0.636 em).
const DIGIT: f32 = SIZE * 0.3528 * 0.636;
/// Columns: left edges, and the right edges of the two amounts.
const COL_DATE: f32 = LEFT;
const COL_NO: f32 = 27.0;
const COL_PARTY: f32 = 42.0;
const COL_PURPOSE: f32 = 97.0;
const DEBIT_RIGHT: f32 = 174.0;
const CREDIT_RIGHT: f32 = RIGHT;
/// Characters that fit the counterparty and purpose columns.
const PARTY_CHARS: usize = 34;
const PURPOSE_CHARS: usize = 40;

pub(super) struct Pdf<W: Write> {
    out: W,
    doc: PdfDocumentReference,
    font: IndirectFontRef,
    pages: Vec<PdfLayerReference>,
    y: f32,
    closing: String,
}

fn failed(e: impl std::fmt::Display) -> ExportError {
    ExportError::Pdf(e.to_string())
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
    fn layer(&self) -> Result<&PdfLayerReference, ExportError> {
        self.pages.last().ok_or_else(|| failed("no page"))
    }

    fn text(&self, s: &str, size: f32, x: f32, y: f32) -> Result<(), ExportError> {
        self.layer()?.use_text(s, size, Mm(x), Mm(y), &self.font);
        Ok(())
    }

    /// A figure whose right edge is at `right`.
    fn figure(&self, s: &str, right: f32, y: f32) -> Result<(), ExportError> {
        let width = s.chars().count() as f32 * DIGIT;
        self.text(s, SIZE, right - width, y)
    }

    fn rule(&self, y: f32) -> Result<(), ExportError> {
        self.layer()?.add_line(Line {
            points: vec![
                (Point::new(Mm(LEFT), Mm(y)), false),
                (Point::new(Mm(RIGHT), Mm(y)), false),
            ],
            is_closed: false,
        });
        Ok(())
    }

    fn table_header(&mut self) -> Result<(), ExportError> {
        let y = self.y;
        self.text("Date / Дата", SIZE, COL_DATE, y)?;
        self.text("No. / №", SIZE, COL_NO, y)?;
        self.text("Counterparty / Контрагент", SIZE, COL_PARTY, y)?;
        self.text("Purpose / Призначення платежу", SIZE, COL_PURPOSE, y)?;
        self.figure("Debit / Дебет", DEBIT_RIGHT, y)?;
        self.figure("Credit / Кредит", CREDIT_RIGHT, y)?;
        self.rule(y - 1.2)?;
        self.y -= LINE + 1.8;
        Ok(())
    }

    fn new_page(&mut self) -> Result<(), ExportError> {
        let (page, layer) = self.doc.add_page(Mm(PAGE_W), Mm(PAGE_H), "statement");
        self.pages.push(self.doc.get_page(page).get_layer(layer));
        self.y = PAGE_H - 15.0;
        self.table_header()
    }

    pub(super) fn start(info: &StatementInfo, out: W) -> Result<Self, ExportError> {
        let (doc, page, layer) = PdfDocument::new(
            format!("Statement {} {} — {}", info.iban, info.from, info.to),
            Mm(PAGE_W),
            Mm(PAGE_H),
            "statement",
        );
        let font = doc
            .add_external_font(std::io::Cursor::new(FONT))
            .map_err(failed)?;
        let first = doc.get_page(page).get_layer(layer);
        let mut s = Self {
            out,
            doc,
            font,
            pages: vec![first],
            y: PAGE_H - 18.0,
            closing: amount(info.closing),
        };
        s.text(&info.bank, 11.0, LEFT, s.y)?;
        s.y -= 8.0;
        s.text("Statement of account / Виписка з рахунку", 14.0, LEFT, s.y)?;
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
            s.text(label, 8.0, LEFT, s.y)?;
            s.text(&value, 9.0, LEFT + 42.0, s.y)?;
            s.y -= 5.0;
        }
        s.y -= 2.0;
        for (label, value) in [
            ("Opening balance / Вхідний залишок", info.opening),
            ("Debit turnover / Обороти за дебетом", info.debits),
            ("Credit turnover / Обороти за кредитом", info.credits),
            ("Closing balance / Вихідний залишок", info.closing),
        ] {
            s.text(label, 8.0, LEFT, s.y)?;
            let figure = format!("{} {}", amount(value), info.currency);
            s.text(&figure, 9.0, LEFT + 70.0, s.y)?;
            s.y -= 5.0;
        }
        s.y -= 4.0;
        s.table_header()?;
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
        }
        let y = self.y;
        self.text(&m.value_date.dotted(), SIZE, COL_DATE, y)?;
        let number: String = m.doc_number.chars().take(9).collect();
        self.text(&number, SIZE, COL_NO, y)?;
        for (i, l) in party.iter().enumerate() {
            self.text(l, SIZE, COL_PARTY, y - i as f32 * LINE)?;
        }
        for (i, l) in purpose.iter().enumerate() {
            self.text(l, SIZE, COL_PURPOSE, y - i as f32 * LINE)?;
        }
        let figure = amount(m.amount);
        match m.direction {
            Direction::Debit => self.figure(&figure, DEBIT_RIGHT, y)?,
            Direction::Credit => self.figure(&figure, CREDIT_RIGHT, y)?,
        }
        self.y -= height;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExportError> {
        if self.y - 10.0 < BOTTOM {
            self.new_page()?;
        }
        self.rule(self.y + 1.5)?;
        self.y -= 3.0;
        self.text("Closing balance / Вихідний залишок", 8.0, LEFT, self.y)?;
        let closing = self.closing.clone();
        self.figure(&closing, CREDIT_RIGHT, self.y)?;
        let total = self.pages.len();
        for (n, layer) in self.pages.iter().enumerate() {
            let label = format!("Page {} of {total} / Сторінка {} з {total}", n + 1, n + 1);
            layer.use_text(label, 7.0, Mm(LEFT), Mm(9.0), &self.font);
        }
        let Self { doc, out, .. } = *self;
        let mut out = BufWriter::new(out);
        doc.save(&mut out).map_err(failed)?;
        out.flush()?;
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
