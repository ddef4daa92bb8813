//! Payment orders in: from a 1C/BAS `1CClientBankExchange` file (windows-1251 or UTF-8,
//! detected) or the CSV layout below, each checked as if typed, with a report per line.
//!
//! The CSV layout (UTF-8, RFC 4180, a header row naming these columns in any order;
//! `currency` may be left out, the payer account's is used):
//! `number,date,payer_iban,payee_name,payee_tax_code,payee_iban,amount,currency,purpose`,
//! dates as `YYYY-MM-DD` or `DD.MM.YYYY`, amounts with a decimal point.

use std::collections::HashMap;

use encoding_rs::WINDOWS_1251;
use tresor_core::api::ledger::ImportedOrder;
use tresor_core::date::Day;
use tresor_core::payment::{self, Iban, PaymentError, PaymentOrder};

/// A file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// `1CClientBankExchange`.
    OneC,
    /// The CSV layout.
    Csv,
}

impl ImportFormat {
    /// The format named `name` (`1c` or `csv`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "1c" => Some(Self::OneC),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// What is wrong with one line of a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct LineProblem {
    /// The line (1-based) of the field, or of the order's first line.
    pub line: usize,
    /// The field, as the file names it.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// What a file holds: the orders that passed, with their first line, and every problem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedImport {
    /// Orders ready to send to the bank.
    pub orders: Vec<(usize, ImportedOrder)>,
    /// Problems, in line order.
    pub problems: Vec<LineProblem>,
}

/// A file that cannot be read as orders at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Not the format asked for.
    #[error("not a {0} file: {1}")]
    NotFormat(&'static str, String),
    /// A CSV file without a column the layout needs.
    #[error("the CSV header lacks the column {0:?}")]
    MissingColumn(&'static str),
    /// The file holds no order.
    #[error("the file holds no payment order")]
    Empty,
}

const ONE_C_MAGIC: &str = "1CClientBankExchange";

/// The file's text: UTF-8 if it is valid UTF-8 (a BOM dropped), windows-1251 otherwise.
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => WINDOWS_1251
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// The format of `text`: 1C if it starts with the format's signature, CSV otherwise.
pub fn detect(text: &str) -> ImportFormat {
    if text.trim_start().starts_with(ONE_C_MAGIC) {
        ImportFormat::OneC
    } else {
        ImportFormat::Csv
    }
}

/// The orders in `bytes`. `accounts` are the accounts the user may prepare orders on, with
/// their currencies: an order on any other is a problem of its line.
pub fn parse_orders(
    bytes: &[u8],
    format: Option<ImportFormat>,
    accounts: &[(String, String)],
) -> Result<ParsedImport, ImportError> {
    let text = decode(bytes);
    let format = format.unwrap_or_else(|| detect(&text));
    let raws = match format {
        ImportFormat::OneC => one_c(&text)?,
        ImportFormat::Csv => csv_rows(&text)?,
    };
    if raws.is_empty() {
        return Err(ImportError::Empty);
    }
    let accounts: HashMap<&str, &str> = accounts
        .iter()
        .map(|(i, c)| (i.as_str(), c.as_str()))
        .collect();
    let mut parsed = ParsedImport::default();
    for raw in raws {
        match raw.check(&accounts) {
            Ok(order) => parsed.orders.push((raw.line, order)),
            Err(problems) => parsed.problems.extend(problems),
        }
    }
    Ok(parsed)
}

/// An order's fields as the file gives them, with the line of each.
#[derive(Debug, Default)]
struct Raw {
    /// The order's first line.
    line: usize,
    fields: HashMap<&'static str, (usize, String)>,
    /// What the file calls each field, for the report.
    names: HashMap<&'static str, &'static str>,
    problems: Vec<LineProblem>,
}

/// The fields an order needs: every column of the CSV layout but the currency, which the
/// payer account gives.
fn needed() -> impl Iterator<Item = &'static str> {
    CSV_COLUMNS.into_iter().filter(|c| *c != "currency")
}

impl Raw {
    fn set(&mut self, field: &'static str, name: &'static str, line: usize, value: &str) {
        self.fields.insert(field, (line, value.to_owned()));
        self.names.insert(field, name);
    }

    fn problem(&self, field: &str, reason: impl Into<String>) -> LineProblem {
        let (line, name) = match self.fields.get(field) {
            Some((line, _)) => (*line, self.names.get(field).copied().unwrap_or("")),
            None => (self.line, ""),
        };
        LineProblem {
            line,
            field: if name.is_empty() {
                field.to_owned()
            } else {
                name.to_owned()
            },
            reason: reason.into(),
        }
    }

    fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", |(_, v)| v.as_str())
    }

    /// The order, or every problem found with it.
    fn check(&self, accounts: &HashMap<&str, &str>) -> Result<ImportedOrder, Vec<LineProblem>> {
        let mut problems = self.problems.clone();
        for field in needed() {
            if self.get(field).trim().is_empty() {
                problems.push(self.problem(field, "missing"));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let number = self.get("number").trim();
        if number.chars().count() > 35 || number.chars().any(char::is_control) {
            problems.push(self.problem("number", "must be 1 to 35 printable characters"));
        }
        let date = self.get("date").trim();
        let date = Day::parse(date).or_else(|_| Day::parse_dotted(date));
        if date.is_err() {
            problems.push(self.problem("date", "not a date (YYYY-MM-DD or DD.MM.YYYY)"));
        }
        let amount = payment::parse_amount(self.get("amount").trim());
        match &amount {
            Err(e) => problems.push(self.problem("amount", e.to_string())),
            Ok(0) => problems.push(self.problem("amount", "must be greater than zero")),
            Ok(_) => {}
        }
        let payer = Iban::parse(self.get("payer_iban"));
        let currency = match &payer {
            Err(e) => {
                problems.push(self.problem("payer_iban", e.to_string()));
                None
            }
            Ok(p) => match accounts.get(p.as_str()) {
                None => {
                    problems.push(self.problem(
                        "payer_iban",
                        format!("you may not prepare orders on account {p}"),
                    ));
                    None
                }
                Some(c) => Some(*c),
            },
        };
        let stated = self.get("currency").trim();
        if let Some(c) = currency
            && !stated.is_empty()
            && !stated.eq_ignore_ascii_case(c)
        {
            problems.push(self.problem("currency", format!("the payer account holds {c}")));
        }
        let order = PaymentOrder {
            payer_iban: self.get("payer_iban").to_owned(),
            payee_name: self.get("payee_name").to_owned(),
            payee_tax_code: self.get("payee_tax_code").trim().to_owned(),
            payee_iban: self.get("payee_iban").to_owned(),
            amount: *amount.as_ref().unwrap_or(&1),
            currency: currency.unwrap_or("UAH").to_owned(),
            purpose: self.get("purpose").to_owned(),
        };
        let order = order.normalized().and_then(|o| o.validate().map(|()| o));
        match (order, date, problems.is_empty()) {
            (Ok(order), Ok(date), true) => Ok(ImportedOrder {
                order,
                number: number.to_owned(),
                date,
            }),
            (order, _, _) => {
                if let Err(e) = order {
                    let field = field_of(&e);
                    if !problems
                        .iter()
                        .any(|p| p.field == self.problem(field, "").field)
                    {
                        problems.push(self.problem(field, e.to_string()));
                    }
                }
                problems.sort_by_key(|p| p.line);
                Err(problems)
            }
        }
    }
}

/// The field a payment error is about, as the CSV layout names it.
fn field_of(e: &PaymentError) -> &'static str {
    use PaymentError::*;
    let named = |what: &str| match what {
        w if w.starts_with("payer") => "payer_iban",
        w if w.contains("name") => "payee_name",
        w if w.contains("purpose") => "purpose",
        w if w.contains("tax") => "payee_tax_code",
        w if w.contains("currency") => "currency",
        _ => "payee_iban",
    };
    match e {
        IbanFormat { what, .. } | IbanLength { what, .. } | IbanChecksum { what, .. } => {
            named(what)
        }
        NotCanonical { field, .. } | FieldTooLong { field, .. } => named(field),
        EmptyField(f) | Untrimmed(f) | ControlCharacter(f) => named(f),
        TaxCodeFormat(_) | TaxCodeChecksum(_) => "payee_tax_code",
        BadCurrency(_) => "currency",
        AmountEmpty | AmountSigned | AmountFormat(_) | AmountTooPrecise(_) | AmountTooLarge(_)
        | ZeroAmount => "amount",
        _ => "payee_iban",
    }
}

/// 1C keys and the fields they fill; the first listed wins where a file has both.
const ONE_C_FIELDS: [(&str, &str); 11] = [
    ("Номер", "number"),
    ("Дата", "date"),
    ("Сумма", "amount"),
    ("ПлательщикСчет", "payer_iban"),
    ("ПлательщикРасчСчет", "payer_iban"),
    ("Получатель1", "payee_name"),
    ("Получатель", "payee_name"),
    ("ПолучательИНН", "payee_tax_code"),
    ("ПолучательСчет", "payee_iban"),
    ("ПолучательРасчСчет", "payee_iban"),
    ("НазначениеПлатежа", "purpose"),
];

fn one_c(text: &str) -> Result<Vec<Raw>, ImportError> {
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    match lines.next() {
        Some(first) if first.trim_start_matches('\u{feff}').trim() == ONE_C_MAGIC => {}
        _ => {
            return Err(ImportError::NotFormat(
                "1CClientBankExchange",
                format!("line 1 must be {ONE_C_MAGIC}"),
            ));
        }
    }
    let mut raws = Vec::new();
    let mut current: Option<Raw> = None;
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        match key.trim() {
            "СекцияДокумент" => {
                let mut raw = Raw {
                    line: n,
                    ..Raw::default()
                };
                if value.trim() != "Платежное поручение" && value.trim() != "Платіжне доручення"
                {
                    raw.problems.push(LineProblem {
                        line: n,
                        field: "СекцияДокумент".into(),
                        reason: format!(
                            "{value:?} is not a payment order; only those are imported"
                        ),
                    });
                }
                current = Some(raw);
            }
            "КонецДокумента" => raws.extend(current.take()),
            key => {
                let Some(raw) = current.as_mut() else {
                    continue;
                };
                // Purpose continuation lines (НазначениеПлатежа1…) join the purpose.
                if let Some(rest) = key.strip_prefix("НазначениеПлатежа")
                    && !rest.is_empty()
                {
                    if let Some((_, purpose)) = raw.fields.get_mut("purpose")
                        && !value.trim().is_empty()
                    {
                        purpose.push(' ');
                        purpose.push_str(value.trim());
                    }
                    continue;
                }
                let Some(&(name, field)) = ONE_C_FIELDS.iter().find(|(k, _)| *k == key) else {
                    continue;
                };
                // "Получатель" often holds "ИНН … name"; "Получатель1" the name alone.
                if raw.fields.contains_key(field) && !raw.get(field).is_empty() {
                    let preferred = ONE_C_FIELDS.iter().position(|(k, _)| *k == key);
                    let existing = raw
                        .names
                        .get(field)
                        .and_then(|e| ONE_C_FIELDS.iter().position(|(k, _)| k == e));
                    if existing <= preferred {
                        continue;
                    }
                }
                raw.set(field, name, n, value);
            }
        }
    }
    if let Some(raw) = current {
        return Err(ImportError::NotFormat(
            "1CClientBankExchange",
            format!("the document from line {} has no КонецДокумента", raw.line),
        ));
    }
    Ok(raws)
}

const CSV_COLUMNS: [&str; 9] = [
    "number",
    "date",
    "payer_iban",
    "payee_name",
    "payee_tax_code",
    "payee_iban",
    "amount",
    "currency",
    "purpose",
];

fn csv_rows(text: &str) -> Result<Vec<Raw>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| ImportError::NotFormat("CSV", e.to_string()))?
        .clone();
    let mut index = HashMap::new();
    for column in CSV_COLUMNS {
        match header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(column))
        {
            Some(i) => {
                index.insert(column, i);
            }
            None if column == "currency" => {}
            None => return Err(ImportError::MissingColumn(column)),
        }
    }
    let mut raws = Vec::new();
    for record in reader.records() {
        let (line, record) = match record {
            Ok(r) => (r.position().map_or(0, |p| p.line() as usize), r),
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                raws.push(Raw {
                    line,
                    problems: vec![LineProblem {
                        line,
                        field: "line".into(),
                        reason: e.to_string(),
                    }],
                    ..Raw::default()
                });
                continue;
            }
        };
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let mut raw = Raw {
            line,
            ..Raw::default()
        };
        for column in CSV_COLUMNS {
            if let Some(&i) = index.get(column) {
                raw.set(column, column, line, record.get(i).unwrap_or(""));
            }
        }
        raws.push(raw);
    }
    Ok(raws)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYER: &str = "UA213223130000026007233566001";
    const PAYEE: &str = "UA903052992990004149123456789";

    fn accounts() -> Vec<(String, String)> {
        vec![(PAYER.into(), "UAH".into())]
    }

    fn one_c_file(docs: &[&[(&str, &str)]]) -> String {
        let mut s =
            String::from("1CClientBankExchange\r\nВерсияФормата=1.03\r\nКодировка=Windows\r\n");
        for doc in docs {
            s.push_str("СекцияДокумент=Платежное поручение\r\n");
            for (k, v) in *doc {
                s.push_str(&format!("{k}={v}\r\n"));
            }
            s.push_str("КонецДокумента\r\n");
        }
        s.push_str("КонецФайла\r\n");
        s
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Номер", "15"),
            ("Дата", "30.11.2026"),
            ("Сумма", "1250.50"),
            ("ПлательщикСчет", PAYER),
            ("Получатель", "ІНН 32855961 ТОВ Постачальник"),
            ("Получатель1", "ТОВ Постачальник"),
            ("ПолучательИНН", "32855961"),
            ("ПолучательСчет", PAYEE),
            ("НазначениеПлатежа", "Оплата за рахунком №7"),
            ("НазначениеПлатежа1", "у т.ч. ПДВ 20%"),
        ]
    }

    #[test]
    fn a_1c_file_in_either_encoding_gives_the_same_order() {
        let text = one_c_file(&[&good()]);
        let cp1251 = WINDOWS_1251.encode(&text).0.into_owned();
        for bytes in [text.as_bytes().to_vec(), cp1251] {
            let parsed = parse_orders(&bytes, None, &accounts()).expect("parsed");
            assert_eq!(parsed.problems, []);
            let (line, o) = &parsed.orders[0];
            assert_eq!(*line, 4);
            assert_eq!(o.number, "15");
            assert_eq!(o.date.to_string(), "2026-11-30");
            assert_eq!(o.order.amount, 125_050);
            assert_eq!(o.order.payee_name, "ТОВ Постачальник");
            assert_eq!(o.order.purpose, "Оплата за рахунком №7 у т.ч. ПДВ 20%");
            assert_eq!(o.order.currency, "UAH");
        }
    }

    #[test]
    fn every_bad_line_is_reported_with_its_field() {
        let mut bad = good();
        bad[2] = ("Сумма", "12,5.0");
        bad[7] = ("ПолучательСчет", "UA903052992990004149123456780");
        let mut foreign = good();
        foreign[3] = ("ПлательщикСчет", "UA143000010000026000000000002");
        let mut missing = good();
        missing.retain(|(k, _)| *k != "Дата");
        let text = one_c_file(&[&good(), &bad, &foreign, &missing]);
        let parsed =
            parse_orders(text.as_bytes(), Some(ImportFormat::OneC), &accounts()).expect("parsed");
        assert_eq!(parsed.orders.len(), 1);
        let got: Vec<(usize, &str)> = parsed
            .problems
            .iter()
            .map(|p| (p.line, p.field.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (19, "Сумма"),
                (24, "ПолучательСчет"),
                (32, "ПлательщикСчет"),
                (40, "date"),
            ]
        );
        assert!(parsed.problems[2].reason.contains("may not prepare"));
    }

    #[test]
    fn a_csv_file_in_its_layout() {
        let text = format!(
            "number,date,payer_iban,payee_name,payee_tax_code,payee_iban,amount,purpose\n\
             1,2026-11-30,{PAYER},\"ТОВ \"\"Ромашка\"\"\",32855961,{PAYEE},10.00,\"Invoice 1, VAT\"\n\
             2,30.11.2026,{PAYER},Someone,123,{PAYEE},0,Nothing\n"
        );
        let parsed = parse_orders(text.as_bytes(), None, &accounts()).expect("parsed");
        assert_eq!(parsed.orders.len(), 1);
        assert_eq!(parsed.orders[0].1.order.payee_name, "ТОВ \"Ромашка\"");
        assert_eq!(parsed.orders[0].1.order.purpose, "Invoice 1, VAT");
        let fields: Vec<(usize, &str)> = parsed
            .problems
            .iter()
            .map(|p| (p.line, p.field.as_str()))
            .collect();
        assert_eq!(fields, [(3, "amount"), (3, "payee_tax_code")]);
        assert_eq!(
            parse_orders(b"number,date\n1,2\n", Some(ImportFormat::Csv), &accounts()),
            Err(ImportError::MissingColumn("payer_iban"))
        );
        assert_eq!(
            parse_orders(b"hello", Some(ImportFormat::OneC), &accounts())
                .unwrap_err()
                .to_string(),
            "not a 1CClientBankExchange file: line 1 must be 1CClientBankExchange"
        );
    }
}
