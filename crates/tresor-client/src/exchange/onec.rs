//! 1C/BAS `1CClientBankExchange`, format version 1.03: the text file 1C:Enterprise and BAS
//! accounting load bank statements from. `Key=Value` lines, windows-1251, CRLF: a header, a
//! `СекцияРасчСчет` with the account's balances and turnovers, a `СекцияДокумент` per movement,
//! and `КонецФайла`.
//!
//! A character windows-1251 does not have is written as `?` (the format has no escape);
//! everything a Ukrainian name or purpose uses (і, ї, є, ґ, №) is there.

use std::io::Write;

use encoding_rs::WINDOWS_1251;
use tresor_core::api::ledger::{Direction, Movement};

use super::{ExportError, StatementInfo, StatementSink, amount, date_time};

pub(super) struct OneC<W: Write> {
    out: W,
    iban: String,
    holder: String,
}

/// Writes `key=value` as windows-1251 with CRLF.
pub(crate) fn line(out: &mut impl Write, key: &str, value: &str) -> std::io::Result<()> {
    let text = format!("{key}={value}\r\n");
    out.write_all(&encode_1251(&text))
}

/// `text` in windows-1251, `?` for what it lacks.
pub(crate) fn encode_1251(text: &str) -> Vec<u8> {
    let (bytes, _, lossy) = WINDOWS_1251.encode(text);
    if !lossy {
        return bytes.into_owned();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let (b, _, lossy) = WINDOWS_1251.encode(c.encode_utf8(&mut buf));
        if lossy {
            out.push(b'?');
        } else {
            out.extend_from_slice(&b);
        }
    }
    out
}

impl<W: Write> OneC<W> {
    pub(super) fn start(info: &StatementInfo, mut out: W) -> Result<Self, ExportError> {
        let (day, time) = date_time(info.created);
        let (from, to) = (info.from.dotted(), info.to.dotted());
        out.write_all(b"1CClientBankExchange\r\n")?;
        for (k, v) in [
            ("ВерсияФормата", "1.03"),
            ("Кодировка", "Windows"),
            ("Отправитель", info.bank.as_str()),
            ("Получатель", ""),
            ("ДатаСоздания", &day.dotted()),
            ("ВремяСоздания", &time),
            ("ДатаНачала", &from),
            ("ДатаКонца", &to),
            ("РасчСчет", &info.iban),
        ] {
            line(&mut out, k, v)?;
        }
        out.write_all(&encode_1251("СекцияРасчСчет\r\n"))?;
        for (k, v) in [
            ("ДатаНачала", from.as_str()),
            ("ДатаКонца", &to),
            ("РасчСчет", &info.iban),
            ("НачальныйОстаток", &amount(info.opening)),
            ("ВсегоПоступило", &amount(info.credits)),
            ("ВсегоСписано", &amount(info.debits)),
            ("КонечныйОстаток", &amount(info.closing)),
        ] {
            line(&mut out, k, v)?;
        }
        out.write_all(&encode_1251("КонецРасчСчет\r\n"))?;
        Ok(Self {
            out,
            iban: info.iban.clone(),
            holder: info.holder.clone(),
        })
    }
}

impl<W: Write> StatementSink for OneC<W> {
    fn push(&mut self, m: &Movement) -> Result<(), ExportError> {
        let date = m.value_date.dotted();
        let (own, other) = (
            (self.iban.as_str(), self.holder.as_str(), ""),
            (
                m.counterparty_iban.as_str(),
                m.counterparty_name.as_str(),
                m.counterparty_tax_code.as_str(),
            ),
        );
        let ((payer, payer_name, payer_tax), (payee, payee_name, payee_tax), dated) =
            match m.direction {
                Direction::Debit => (own, other, "ДатаСписано"),
                Direction::Credit => (other, own, "ДатаПоступило"),
            };
        // One document is encoded at once: a movement is one conversion and one write.
        let mut doc = String::with_capacity(640);
        doc.push_str("СекцияДокумент=Платежное поручение\r\n");
        for (k, v) in [
            ("Номер", m.doc_number.as_str()),
            ("Дата", &date),
            ("Сумма", &amount(m.amount)),
            ("ПлательщикСчет", payer),
            ("Плательщик", payer_name),
            ("ПлательщикИНН", payer_tax),
            ("Плательщик1", payer_name),
            ("ПлательщикРасчСчет", payer),
            ("ПолучательСчет", payee),
            ("Получатель", payee_name),
            ("ПолучательИНН", payee_tax),
            ("Получатель1", payee_name),
            ("ПолучательРасчСчет", payee),
            ("ВидОплаты", "01"),
            (dated, &date),
            ("НазначениеПлатежа", &m.purpose),
        ] {
            doc.push_str(k);
            doc.push('=');
            doc.push_str(v);
            doc.push_str("\r\n");
        }
        doc.push_str("КонецДокумента\r\n");
        self.out.write_all(&encode_1251(&doc))?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExportError> {
        self.out.write_all(&encode_1251("КонецФайла\r\n"))?;
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
    fn the_file_is_windows_1251_with_crlf_and_its_sections() {
        let (info, movements) = sample();
        let mut out = Vec::new();
        let mut w = statement_writer(Format::OneC, &info, &mut out).expect("start");
        for m in &movements {
            w.push(m).expect("push");
        }
        w.finish().expect("finish");
        let (text, _, bad) = WINDOWS_1251.decode(&out);
        assert!(!bad);
        assert!(
            text.starts_with("1CClientBankExchange\r\nВерсияФормата=1.03\r\nКодировка=Windows\r\n")
        );
        assert!(text.ends_with("КонецДокумента\r\nКонецФайла\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
        assert!(text.contains("НачальныйОстаток=10000.00\r\n"));
        assert!(text.contains("КонечныйОстаток=9049.50\r\n"));
        assert_eq!(
            text.matches("СекцияДокумент=Платежное поручение").count(),
            2
        );
        assert!(
            text.contains("Плательщик=ФОП Іваненко Ґ. Є.\r\n"),
            "Ukrainian letters kept"
        );
        assert!(text.contains("Получатель=ТОВ Постачальник\r\n"));
        assert!(text.contains("ДатаСписано=16.11.2026\r\n"));
        assert!(text.contains("ДатаПоступило=16.11.2026\r\n"));
    }

    #[test]
    fn what_windows_1251_lacks_becomes_a_question_mark() {
        assert_eq!(
            encode_1251("a€b"),
            [b'a', 0x88, b'b'],
            "the euro sign is there"
        );
        assert_eq!(encode_1251("a😀b"), b"a?b");
        assert_eq!(WINDOWS_1251.decode(&encode_1251("Ґґ№")).0, "Ґґ№");
    }
}
