//! Statements and the accounting exchange, end to end: orders made by an independent 1C/BAS
//! library are imported with `tresor order import`, signed and sent; a payment arrives from
//! another bank; the statement is exported in every format and each file is read back by an
//! implementation that is not ours: the `client_bank_1c` Python parser for 1C, `xmllint`
//! against the official ISO 20022 schema for camt.053, `pdftotext` for the PDF, LibreOffice
//! for the CSV.

use std::path::Path;
use std::process::Command;

use crate::support::{Bank, KEY_PASSWORD, PASSWORD, Tresor, iban};

/// Runs a Python program with `args`; its standard output. It must succeed.
fn python(program: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A 1CClientBankExchange file of two payment orders from `payer`, written by the
/// `client_bank_1c` library (windows-1251), as an accounting program would.
const MAKE_1C: &str = r#"
import datetime, decimal, sys
import client_bank_1c
payer, payee, out = sys.argv[1], sys.argv[2], sys.argv[3]
day = datetime.date(2026, 11, 30)
def order(number, amount, name, purpose):
    return {
        "ВидДокумента": "Платежное поручение",
        "Номер": number,
        "Дата": day,
        "Сумма": decimal.Decimal(amount),
        "ПлательщикСчет": payer,
        "Плательщик": "ТОВ Олена Трейд",
        "ПлательщикИНН": "32855961",
        "ПолучательСчет": payee,
        "Получатель": name,
        "ПолучательИНН": "14360570",
        "НазначениеПлатежа": purpose,
    }
data = client_bank_1c.dump(
    [order("101", "1200.50", "ТОВ Постачальник Ґрунт", "Оплата за рахунком №5, у т.ч. ПДВ"),
     order("102", "300.00", "ФОП Іваненко Є.", "Оплата послуг за листопад")],
    {"ДатаСоздания": day, "ВремяСоздания": datetime.time(9, 30)},
)
open(out, "wb").write(data)
"#;

/// Reads a 1C statement with `client_bank_1c` and prints its balances and documents.
const READ_1C: &str = r#"
import json, sys
import client_bank_1c
s = client_bank_1c.load(open(sys.argv[1], "rb").read())
acct = s.accounts[0]
print(json.dumps({
    "info_account": s.info["РасчСчет"],
    "account": acct["РасчСчет"],
    "opening": str(acct["НачальныйОстаток"]),
    "credits": str(acct["ВсегоПоступило"]),
    "debits": str(acct["ВсегоСписано"]),
    "closing": str(acct["КонечныйОстаток"]),
    "documents": [[d["Номер"], str(d["Сумма"]), d["Получатель"], d["Плательщик"]] for d in s.documents],
}, ensure_ascii=False))
"#;

fn export(me: &Tresor, account: &str, format: &str, out: &Path) -> serde_json::Value {
    me.run(&[
        "statement",
        "--account",
        account,
        "--from",
        "2026-01-01",
        "--to",
        "2099-12-31",
        "--format",
        format,
        "--output",
        out.to_str().unwrap(),
    ])
    .secret("TRESOR_PASSWORD", PASSWORD)
    .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
    .json_ok()
}

#[test]
fn import_sign_send_then_every_statement_format_reads_back() {
    let bank = Bank::start("");
    let payer = iban("2");
    let payee = iban("9");
    bank.admin(&[
        "account",
        "add",
        &payer,
        "--holder",
        "ТОВ Олена Трейд",
        "--balance",
        "10000.00",
    ]);
    let drive = tempfile::tempdir().unwrap();
    let me = bank.enrolled("olena.k", drive.path());
    bank.admin(&["rights", "grant", "olena.k", &payer, "all"]);
    let files = tempfile::tempdir().unwrap();
    let with_secrets = |r: crate::support::Run| {
        r.secret("TRESOR_PASSWORD", PASSWORD)
            .secret("TRESOR_KEY_PASSWORD", KEY_PASSWORD)
    };

    // Import: a file with a bad line imports nothing and names the line.
    let bad = files.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!(
            "number,date,payer_iban,payee_name,payee_tax_code,payee_iban,amount,purpose\n\
             1,2026-11-30,{payer},Good Ltd,14360570,{payee},1.00,Fine\n\
             2,2026-11-30,{payer},Bad Ltd,14360570,{payee},-5,Negative\n"
        ),
    )
    .unwrap();
    let stderr = with_secrets(me.run(&["order", "import", bad.to_str().unwrap()]))
        .fails_with(1, "nothing was imported");
    assert!(stderr.contains("line 3, amount"), "{stderr}");
    let orders = with_secrets(me.run(&["order", "list"])).json_ok();
    assert_eq!(orders.as_array().unwrap().len(), 0);

    // The 1C file, in windows-1251, as the independent library wrote it.
    let file = files.path().join("orders.txt");
    python(MAKE_1C, &[&payer, &payee, file.to_str().unwrap()]);
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "windows-1251, not UTF-8"
    );
    let imported = with_secrets(me.run(&["order", "import", file.to_str().unwrap()])).json_ok();
    let ids: Vec<String> = imported["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert_eq!(o["result"]["outcome"], "prepared", "{o}");
            o["result"]["id"].as_u64().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    // The same file again: flagged as duplicates, not imported twice.
    let again = with_secrets(me.run(&["order", "import", file.to_str().unwrap()])).json_ok();
    assert!(
        again["imported"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["result"]["outcome"] == "duplicate"),
        "{again}"
    );

    // The queue holds both; they are signed in one go, the batch digest checked as a
    // script would (read from the summary, passed back), then sent.
    let queue = with_secrets(me.run(&["order", "queue"])).json_ok();
    let queued: Vec<String> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_u64().unwrap().to_string())
        .collect();
    assert_eq!(queued, ids);
    assert_eq!(queue[0]["order"]["payee_tax_code"], "14360570");
    let mut sign = vec!["order", "sign", &ids[0], &ids[1]];
    let stderr = with_secrets(me.run(&sign).arg("--digest").arg("0000-0000-0000-0000"))
        .fails_with(1, "nothing signed");
    assert!(stderr.contains("2 orders, in all 1500.50 UAH"), "{stderr}");
    let digest = stderr
        .split("Batch digest ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .unwrap()
        .to_string();
    sign.extend(["--digest", &digest]);
    let signed = with_secrets(me.run(&sign)).json_ok();
    assert!(
        signed
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "signed"),
        "{signed}"
    );
    assert_eq!(
        with_secrets(me.run(&["order", "queue"])).json_ok(),
        serde_json::json!([])
    );
    for id in &ids {
        let sent = with_secrets(me.run(&["order", "send", id])).json_ok();
        assert_eq!(sent["status"], "accepted", "{sent}");
    }
    // A copy is a new draft; a draft is deleted at the version seen.
    let copy = with_secrets(me.run(&["order", "copy", &ids[0]])).json_ok();
    let copy_id = copy["id"].as_u64().unwrap().to_string();
    assert_eq!(copy["status"], "draft");
    assert_eq!(copy["order"]["amount"], 120_050);
    with_secrets(me.run(&["order", "delete", &copy_id, "--version", "1"])).json_ok();
    // A template from a sent order, used with another amount; a counterparty paid from the
    // directory with its usual purpose.
    let template = with_secrets(me.run(&[
        "template",
        "save",
        "--from-order",
        &ids[1],
        "--name",
        "Послуги щомісяця",
        "--no-amount",
    ]))
    .json_ok();
    let template_id = template[0]["id"].as_u64().unwrap().to_string();
    assert_eq!(template[0]["content"]["amount"], serde_json::Value::Null);
    let from_template =
        with_secrets(me.run(&["template", "use", &template_id, "--amount", "42.00"])).json_ok();
    assert_eq!(from_template["order"]["payee_name"], "ФОП Іваненко Є.");
    assert_eq!(from_template["order"]["amount"], 4200);
    let entry = with_secrets(me.run(&[
        "counterparty",
        "add",
        "--account",
        &payer,
        "--name",
        "ТОВ Постачальник Ґрунт",
        "--tax-code",
        "14360570",
        "--iban",
        &payee,
        "--purpose",
        "Оплата за рахунком",
    ]))
    .json_ok();
    let entry_id = entry[0]["id"].as_u64().unwrap().to_string();
    let to_entry =
        with_secrets(me.run(&["counterparty", "pay", &entry_id, "--amount", "7.00"])).json_ok();
    assert_eq!(to_entry["order"]["purpose"], "Оплата за рахунком");
    assert_eq!(to_entry["order"]["payee_iban"], payee.as_str());
    // A payment from another bank.
    let incoming = bank.local(&[
        "payments",
        "incoming",
        "--account",
        &payer,
        "--amount",
        "250.00",
        "--payer-name",
        "ТОВ Покупець",
        "--payer-iban",
        "UA903052992990004149123456789",
        "--payer-tax-code",
        "32855961",
        "--purpose",
        "Оплата за рахунком 7",
        "--number",
        "55",
    ]);
    assert!(
        incoming.status.success(),
        "{}",
        String::from_utf8_lossy(&incoming.stderr)
    );
    let verify = bank.admin(&["ledger", "verify"]);
    assert!(
        verify.contains("ledger intact: 1 accounts, 4 movements"),
        "{verify}"
    );

    // 10000.00 + 250.00 − 1200.50 − 300.00.
    let closing = "8749.50";
    // 1C: the independent parser finds the balances and the movements.
    let onec = files.path().join("statement.txt");
    let summary = export(&me, &payer, "1c", &onec);
    assert_eq!(summary["movements"], 4);
    let read: serde_json::Value =
        serde_json::from_str(&python(READ_1C, &[onec.to_str().unwrap()])).unwrap();
    assert_eq!(read["account"], payer.as_str());
    assert_eq!(read["info_account"], serde_json::json!([payer.as_str()]));
    assert_eq!(read["opening"], "0.00");
    assert_eq!(read["credits"], "10250.00");
    assert_eq!(read["debits"], "1500.50");
    assert_eq!(read["closing"], closing);
    let documents = read["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 4);
    assert_eq!(
        documents[1],
        serde_json::json!([
            "101",
            "1200.50",
            "ТОВ Постачальник Ґрунт",
            "ТОВ Олена Трейд"
        ])
    );
    assert_eq!(documents[3][3], "ТОВ Покупець");

    // camt.053: valid against the official schema.
    let camt = files.path().join("statement.xml");
    export(&me, &payer, "camt053", &camt);
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/iso20022/camt.053.001.08.xsd");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(&camt)
        .output()
        .expect("xmllint (libxml2-utils)");
    assert!(
        out.status.success(),
        "xmllint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = std::fs::read_to_string(&camt).unwrap();
    assert_eq!(xml.matches("<Ntry>").count(), 4);
    assert!(xml.contains(&format!("<Amt Ccy=\"UAH\">{closing}</Amt>")));

    // PDF: the text read back holds the balances and a Cyrillic payee.
    let pdf = files.path().join("statement.pdf");
    export(&me, &payer, "pdf", &pdf);
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        closing,
        "10250.00",
        "1500.50",
        "ТОВ Постачальник Ґрунт",
        "Виписка з рахунку",
        &payer,
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} not in the PDF's text:\n{text}"
        );
    }

    // CSV: LibreOffice reads the columns (converted to a semicolon-separated file and back).
    let csv = files.path().join("statement.csv");
    export(&me, &payer, "csv", &csv);
    let converted = files.path().join("converted");
    let out = Command::new("soffice")
        .args(["--headless", "--norestore", "--infilter=CSV:44,34,76,1"])
        .args(["--convert-to", "csv:Text - txt - csv (StarCalc):59,34,76,1"])
        .arg("--outdir")
        .arg(&converted)
        .arg(&csv)
        .env("HOME", files.path())
        .output()
        .expect("soffice (LibreOffice)");
    assert!(
        out.status.success(),
        "soffice: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = std::fs::read_to_string(converted.join("statement.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .from_reader(back.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 5, "a header and four movements: {back}");
    assert_eq!(rows[0][3], "debit");
    assert_eq!(rows[0][6], "counterparty");
    assert!(rows.iter().all(|r| r.len() == 12), "{rows:?}");
    assert_eq!(rows[2][6], "ТОВ Постачальник Ґрунт");
    let number = |s: &str| s.parse::<f64>().unwrap();
    assert_eq!(number(&rows[2][3]), 1200.5);
    assert_eq!(number(&rows[4][4]), 250.0);
    assert_eq!(number(&rows[4][10]), 8749.5);
}
