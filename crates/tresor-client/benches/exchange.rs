//! The accounting exchange's figures on the client: writing a statement of 100,000 movements
//! to a file in each format (time, file size, and the process's peak resident memory, each
//! format in a process of its own), beside a peer that writes the same movements as JSON
//! lines; and reading 10,000 payment orders from a 1C file and from a CSV file.
//!
//! The movements arrive as the bank sends them, pages of 1,000, made here (the bank's side
//! of an export is in `cargo bench -p tresor-bank --bench ledger`).
//!
//! `cargo bench -p tresor-client --bench exchange`. Printed as tables for docs/PERFORMANCE.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufWriter, Write as _};
use std::time::Instant;

use tresor_client::exchange::import::parse_orders;
use tresor_client::exchange::{Format, StatementInfo, statement_writer};
use tresor_core::api::ledger::{Direction, Movement, MovementKind};
use tresor_core::date::Day;

const MOVEMENTS: u64 = 100_000;
const PAGE: u64 = 1_000;
const ORDERS: usize = 10_000;
const PAYER: &str = "UA213223130000026007233566001";
const PAYEE: &str = "UA903052992990004149123456789";

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn info() -> StatementInfo {
    let day = Day::parse("2026-11-01").unwrap();
    StatementInfo {
        bank: "Bench Bank".into(),
        iban: PAYER.into(),
        holder: "ТОВ Бенч".into(),
        currency: "UAH".into(),
        from: day,
        to: Day::parse("2026-11-30").unwrap(),
        opening: 0,
        debits: 0,
        credits: (0..MOVEMENTS).map(|i| 100 + i % 900).sum(),
        closing: (0..MOVEMENTS).map(|i| 100 + i % 900).sum(),
        created: day.start_unix(),
    }
}

/// Page `n` of the statement, as the bank would send it.
fn page(n: u64) -> Vec<Movement> {
    let start = Day::parse("2026-11-01").unwrap().start_unix() as u64;
    let mut balance: u64 = (0..n * PAGE).map(|i| 100 + i % 900).sum();
    (n * PAGE..(n + 1) * PAGE)
        .map(|i| {
            let amount = 100 + i % 900;
            balance += amount;
            Movement {
                id: i + 1,
                booked_at: start + i * 20,
                value_date: Day::of_unix((start + i * 20) as i64),
                direction: Direction::Credit,
                amount,
                kind: MovementKind::Incoming,
                counterparty_name: "ТОВ Покупець".into(),
                counterparty_iban: PAYEE.into(),
                counterparty_tax_code: "32855961".into(),
                purpose: format!("Оплата за рахунком {i}, у т.ч. ПДВ 20%"),
                doc_number: format!("{i}"),
                order_id: None,
                balance_after: balance,
            }
        })
        .collect()
}

/// One format, in this process: writes the statement to a file; prints time, size, peak RSS.
fn export_one(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statement");
    let before = peak_rss_kib();
    let start = Instant::now();
    let file = BufWriter::new(std::fs::File::create(&path).unwrap());
    if name == "jsonl" {
        let mut out = file;
        for n in 0..MOVEMENTS / PAGE {
            for m in page(n) {
                serde_json::to_writer(&mut out, &m).unwrap();
                out.write_all(b"\n").unwrap();
            }
        }
        out.flush().unwrap();
    } else {
        let format = Format::parse(name).unwrap();
        let mut sink = statement_writer(format, &info(), file).unwrap();
        for n in 0..MOVEMENTS / PAGE {
            for m in page(n) {
                sink.push(&m).unwrap();
            }
        }
        sink.finish().unwrap();
    }
    let took = start.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "| {name} | {took:.2} s | {:.1} MB | peak RSS {:.1} MiB (+{:.1} MiB over the process before it) |",
        size as f64 / 1e6,
        peak_rss_kib() as f64 / 1024.0,
        peak_rss_kib().saturating_sub(before) as f64 / 1024.0
    );
}

fn one_c_orders() -> String {
    let mut s = String::from("1CClientBankExchange\r\nВерсияФормата=1.03\r\nКодировка=Windows\r\n");
    for i in 0..ORDERS {
        s.push_str(&format!(
            "СекцияДокумент=Платежное поручение\r\nНомер={i}\r\nДата=30.11.2026\r\n\
             Сумма={}.{:02}\r\nПлательщикСчет={PAYER}\r\nПолучатель1=ТОВ Постачальник\r\n\
             ПолучательИНН=14360570\r\nПолучательСчет={PAYEE}\r\n\
             НазначениеПлатежа=Оплата за рахунком {i}\r\nКонецДокумента\r\n",
            100 + i,
            i % 100
        ));
    }
    s.push_str("КонецФайла\r\n");
    s
}

fn csv_orders() -> String {
    let mut s = String::from(
        "number,date,payer_iban,payee_name,payee_tax_code,payee_iban,amount,purpose\n",
    );
    for i in 0..ORDERS {
        s.push_str(&format!(
            "{i},2026-11-30,{PAYER},ТОВ Постачальник,14360570,{PAYEE},{}.{:02},Оплата за рахунком {i}\n",
            100 + i,
            i % 100
        ));
    }
    s
}

fn main() {
    if let Ok(name) = std::env::var("TRESOR_BENCH_EXPORT") {
        export_one(&name);
        return;
    }
    println!(
        "Statement of {MOVEMENTS} movements, written to a file (each in a process of its own):"
    );
    println!("| format | time | file | memory |");
    println!("| --- | --- | --- | --- |");
    let exe = std::env::current_exe().unwrap();
    for name in ["jsonl", "table", "csv", "1c", "camt053", "pdf"] {
        let out = std::process::Command::new(&exe)
            .env("TRESOR_BENCH_EXPORT", name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    let accounts = vec![(PAYER.to_owned(), "UAH".to_owned())];
    let onec = encoding_rs::WINDOWS_1251
        .encode(&one_c_orders())
        .0
        .into_owned();
    let csv = csv_orders().into_bytes();
    println!("\nReading {ORDERS} payment orders (checked as typed):");
    for (name, bytes) in [("1C, windows-1251", &onec), ("CSV, UTF-8", &csv)] {
        let start = Instant::now();
        let parsed = parse_orders(bytes, None, &accounts).unwrap();
        let took = start.elapsed().as_secs_f64();
        assert_eq!((parsed.orders.len(), parsed.problems.len()), (ORDERS, 0));
        println!(
            "| {name} | {:.1} MB | {:.3} s |",
            bytes.len() as f64 / 1e6,
            took
        );
    }
}
