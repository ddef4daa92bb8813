//! ISO 20022 `camt.053.001.08` (BankToCustomerStatement): the statement as banks across Europe
//! deliver it. One `Stmt` with the account, the opening (`OPBD`) and closing (`CLBD`) booked
//! balances, the debit and credit sums, and an `Ntry` per movement with its parties and
//! purpose. Written element by element as movements arrive; the test validates the result
//! against the official XSD with libxml2's `xmllint`.

use std::io::Write;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use tresor_core::api::ledger::{Direction, Movement, MovementKind};
use tresor_core::date::Day;

use super::{ExportError, StatementInfo, StatementSink, amount, date_time};

const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";
/// Max140Text.
const TEXT_MAX: usize = 140;

pub(super) struct Camt<W: Write> {
    w: Writer<W>,
    currency: String,
}

fn xml(e: impl std::fmt::Display) -> ExportError {
    ExportError::Xml(e.to_string())
}

/// `YYYY-MM-DDThh:mm:ssZ`.
fn iso_date_time(unix: i64) -> String {
    let (day, time) = date_time(unix);
    format!("{day}T{time}Z")
}

/// The first `n` characters of `s`.
fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl<W: Write> Camt<W> {
    fn open(&mut self, name: &str) -> Result<(), ExportError> {
        self.w
            .write_event(Event::Start(BytesStart::new(name)))
            .map_err(xml)
    }

    fn close(&mut self, name: &str) -> Result<(), ExportError> {
        self.w
            .write_event(Event::End(BytesEnd::new(name)))
            .map_err(xml)
    }

    fn text(&mut self, name: &str, value: &str) -> Result<(), ExportError> {
        self.w
            .create_element(name)
            .write_text_content(BytesText::new(value))
            .map_err(xml)?;
        Ok(())
    }

    fn amount(&mut self, minor: u64) -> Result<(), ExportError> {
        self.w
            .create_element("Amt")
            .with_attribute(("Ccy", self.currency.as_str()))
            .write_text_content(BytesText::new(&amount(minor)))
            .map_err(xml)?;
        Ok(())
    }

    /// `<open><…>…</…></open>` for a path of single children ending in a text.
    fn path(&mut self, names: &[&str], value: &str) -> Result<(), ExportError> {
        let (last, outer) = names.split_last().ok_or_else(|| xml("empty path"))?;
        for n in outer {
            self.open(n)?;
        }
        self.text(last, value)?;
        for n in outer.iter().rev() {
            self.close(n)?;
        }
        Ok(())
    }

    fn balance(&mut self, code: &str, minor: u64, day: Day) -> Result<(), ExportError> {
        self.open("Bal")?;
        self.path(&["Tp", "CdOrPrtry", "Cd"], code)?;
        self.amount(minor)?;
        self.text("CdtDbtInd", "CRDT")?;
        self.path(&["Dt", "Dt"], &day.to_string())?;
        self.close("Bal")
    }

    /// A party: its name and, if known, its Ukrainian tax code (EDRPOU for a company, RNOKPP
    /// for a person), as a tax identification.
    fn party(&mut self, name: &str, tax_code: &str) -> Result<(), ExportError> {
        self.open("Pty")?;
        self.text("Nm", &cut(name, TEXT_MAX))?;
        if !tax_code.is_empty() {
            let kind = if tax_code.len() == 10 {
                "PrvtId"
            } else {
                "OrgId"
            };
            self.open("Id")?;
            self.open(kind)?;
            self.open("Othr")?;
            self.text("Id", tax_code)?;
            self.path(&["SchmeNm", "Cd"], "TXID")?;
            self.close("Othr")?;
            self.close(kind)?;
            self.close("Id")?;
        }
        self.close("Pty")
    }

    pub(super) fn start(info: &StatementInfo, out: W) -> Result<Self, ExportError> {
        let mut s = Self {
            w: Writer::new_with_indent(out, b' ', 1),
            currency: info.currency.clone(),
        };
        s.w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
            .map_err(xml)?;
        s.w.write_event(Event::Start(
            BytesStart::new("Document").with_attributes([("xmlns", NAMESPACE)]),
        ))
        .map_err(xml)?;
        s.open("BkToCstmrStmt")?;
        let id = format!("TRESOR-{}-{}", info.from.days(), info.created);
        let created = iso_date_time(info.created);
        s.open("GrpHdr")?;
        s.text("MsgId", &id)?;
        s.text("CreDtTm", &created)?;
        s.close("GrpHdr")?;
        s.open("Stmt")?;
        s.text("Id", &id)?;
        s.text("CreDtTm", &created)?;
        s.open("FrToDt")?;
        s.text("FrDtTm", &iso_date_time(info.from.start_unix()))?;
        s.text("ToDtTm", &iso_date_time(info.to.next().start_unix() - 1))?;
        s.close("FrToDt")?;
        s.open("Acct")?;
        s.path(&["Id", "IBAN"], &info.iban)?;
        s.text("Ccy", &info.currency)?;
        s.path(&["Ownr", "Nm"], &cut(&info.holder, TEXT_MAX))?;
        s.close("Acct")?;
        s.balance("OPBD", info.opening, info.from)?;
        s.balance("CLBD", info.closing, info.to)?;
        s.open("TxsSummry")?;
        s.path(&["TtlCdtNtries", "Sum"], &amount(info.credits))?;
        s.path(&["TtlDbtNtries", "Sum"], &amount(info.debits))?;
        s.close("TxsSummry")?;
        Ok(s)
    }
}

impl<W: Write> StatementSink for Camt<W> {
    fn push(&mut self, m: &Movement) -> Result<(), ExportError> {
        let (indicator, family) = match m.direction {
            Direction::Debit => ("DBIT", "ICDT"),
            Direction::Credit => ("CRDT", "RCDT"),
        };
        let id = m.id.to_string();
        self.open("Ntry")?;
        self.text("NtryRef", &id)?;
        self.amount(m.amount)?;
        self.text("CdtDbtInd", indicator)?;
        self.path(&["Sts", "Cd"], "BOOK")?;
        self.path(
            &["BookgDt", "DtTm"],
            &iso_date_time(i64::try_from(m.booked_at).unwrap_or(i64::MAX)),
        )?;
        self.path(&["ValDt", "Dt"], &m.value_date.to_string())?;
        self.text("AcctSvcrRef", &id)?;
        self.open("BkTxCd")?;
        if m.kind == MovementKind::Opening {
            self.path(&["Prtry", "Cd"], "OPENING")?;
        } else {
            self.open("Domn")?;
            self.text("Cd", "PMNT")?;
            self.open("Fmly")?;
            self.text("Cd", family)?;
            self.text("SubFmlyCd", "DMCT")?;
            self.close("Fmly")?;
            self.close("Domn")?;
        }
        self.close("BkTxCd")?;
        self.open("NtryDtls")?;
        self.open("TxDtls")?;
        self.path(&["Refs", "EndToEndId"], &cut(&m.doc_number, 35))?;
        self.amount(m.amount)?;
        self.text("CdtDbtInd", indicator)?;
        let (party, account) = match m.direction {
            Direction::Debit => ("Cdtr", "CdtrAcct"),
            Direction::Credit => ("Dbtr", "DbtrAcct"),
        };
        self.open("RltdPties")?;
        self.open(party)?;
        self.party(&m.counterparty_name, &m.counterparty_tax_code)?;
        self.close(party)?;
        self.open(account)?;
        self.path(&["Id", "IBAN"], &m.counterparty_iban)?;
        self.close(account)?;
        self.close("RltdPties")?;
        self.open("RmtInf")?;
        let chars: Vec<char> = m.purpose.chars().collect();
        for chunk in chars.chunks(TEXT_MAX) {
            self.text("Ustrd", &chunk.iter().collect::<String>())?;
        }
        self.close("RmtInf")?;
        self.close("TxDtls")?;
        self.close("NtryDtls")?;
        self.close("Ntry")
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExportError> {
        self.close("Stmt")?;
        self.close("BkToCstmrStmt")?;
        self.close("Document")?;
        let out = self.w.get_mut();
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    }
}
