//! The PDF statement, read back by an independent reader (poppler's `pdftotext`, installed
//! by `scripts/test`): a statement long enough for several pages numbers every page "N of M"
//! with the right M (written once, after the last page), keeps the Cyrillic names, and carries
//! every movement and the balances. The key letter, made by the same writer, reads back too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use tresor_client::exchange::{Format, StatementInfo, statement_writer};
use tresor_core::api::ledger::{Direction, Movement, MovementKind};
use tresor_core::date::Day;

/// `pdf`'s text as `pdftotext -layout` reads it.
fn pdftotext(pdf: &[u8]) -> String {
    let mut child = Command::new("pdftotext")
        .args(["-layout", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pdftotext (poppler-utils; scripts/test installs it)");
    child.stdin.take().unwrap().write_all(pdf).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn statement(movements: u64) -> (Vec<u8>, StatementInfo) {
    let from = Day::parse("2026-11-01").unwrap();
    let amount = |i: u64| 10_000 + i;
    let credits: u64 = (0..movements).map(amount).sum();
    let info = StatementInfo {
        bank: "Тестовий Банк".into(),
        iban: "UA213223130000026007233566001".into(),
        holder: "ТОВ \"Ромашка\"".into(),
        currency: "UAH".into(),
        from,
        to: Day::parse("2026-11-30").unwrap(),
        opening: 50_000,
        debits: 0,
        credits,
        closing: 50_000 + credits,
        created: from.start_unix(),
    };
    let mut out = Vec::new();
    let mut sink = statement_writer(Format::Pdf, &info, &mut out).unwrap();
    let mut balance = info.opening;
    for i in 0..movements {
        balance += amount(i);
        sink.push(&Movement {
            id: i + 1,
            booked_at: from.start_unix() as u64 + i,
            value_date: from,
            direction: Direction::Credit,
            amount: amount(i),
            kind: MovementKind::Incoming,
            counterparty_name: format!("ФОП Ґудзь Євгенія {i}"),
            counterparty_iban: "UA903052992990004149123456789".into(),
            counterparty_tax_code: "3285596112".into(),
            purpose: format!("Оплата за рахунком №{i}, у т.ч. ПДВ 20%"),
            doc_number: format!("D{i}"),
            order_id: None,
            balance_after: balance,
        })
        .unwrap();
    }
    sink.finish().unwrap();
    (out, info)
}

#[test]
fn a_long_statement_numbers_its_pages_and_keeps_every_movement() {
    let (pdf, _) = statement(300);
    let text = pdftotext(&pdf);
    let pages = text.split('\u{c}').filter(|p| !p.trim().is_empty()).count();
    assert!(pages > 3, "300 movements fill several pages, got {pages}");
    for n in 1..=pages {
        assert!(
            text.contains(&format!("Page {n} of {pages}")),
            "page {n} of {pages} is numbered"
        );
        assert!(text.contains(&format!("Сторінка {n} з {pages}")));
    }
    assert!(!text.contains(&format!("Page {} of", pages + 1)));
    for i in [0, 1, 150, 299] {
        assert!(
            text.contains(&format!("ФОП Ґудзь Євгенія {i}")),
            "movement {i}"
        );
        assert!(text.contains(&format!("D{i} ")), "number of {i}");
    }
    // Opening 500.00; credits 300 × 100.00 + (0 + … + 299) minor units = 30,448.50.
    assert!(text.contains("Вхідний залишок"));
    assert!(text.contains("500.00 UAH"), "opening balance");
    assert!(text.contains("30448.50 UAH"), "credit turnover");
    assert!(text.contains("30948.50"), "closing balance");
    assert!(text.contains("Тестовий Банк") && text.contains("ТОВ \"Ромашка\""));
}

#[test]
fn an_empty_statement_is_one_page_with_its_balances() {
    let (pdf, _) = statement(0);
    let text = pdftotext(&pdf);
    assert!(text.contains("Page 1 of 1"), "{text}");
    assert!(text.contains("Closing balance / Вихідний залишок"));
    assert!(text.contains("500.00"));
}
