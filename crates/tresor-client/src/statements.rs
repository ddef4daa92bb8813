//! Statements and imports against the bank: the export loop that pulls a statement page by
//! page into a [`StatementSink`], and the import that sends a file's orders in batches.

use std::io::Write;

use tresor_core::api::ledger::{ImportOutcome, MAX_IMPORT_BATCH, MAX_PAGE, Movement};
use tresor_core::date::Day;

use crate::error::ClientError;
use crate::exchange::import::{ImportError, ImportFormat, LineProblem, parse_orders};
use crate::exchange::{ExportError, Format, StatementInfo, statement_writer};
use crate::session::BankSession;

/// Why a statement or an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The bank or the session.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Writing the file.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The file is not a file of orders.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The bank refused a batch after earlier ones were prepared (a file of more than
    /// [`MAX_IMPORT_BATCH`] orders, and the user's rights changed meanwhile).
    #[error(
        "the bank refused the orders from line {line}: {error}; the {} orders before them were imported",
        .imported.len()
    )]
    PartlyImported {
        /// The first line of the refused batch.
        line: usize,
        /// Why.
        error: ClientError,
        /// What was imported before.
        imported: Vec<(usize, ImportOutcome)>,
    },
    /// Lines of the file are wrong; nothing was imported.
    #[error("{} line(s) of the file are wrong; nothing was imported", .0.len())]
    BadLines(Vec<LineProblem>),
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The statement's figures.
    pub info: StatementInfo,
    /// Movements written.
    pub movements: u64,
}

/// Writes the statement of `account` for `from` to `to` in `format` to `out`, fetching it
/// from the bank a page at a time: memory stays flat whatever the period's length. The file
/// is written on a thread of its own, fed page by page (two pages in flight at most), so
/// that writing, a blocking and for the PDF a heavy job, never holds up the async runtime.
pub async fn export_statement(
    session: &mut BankSession,
    bank: &str,
    account: &str,
    (from, to): (Day, Day),
    format: Format,
    out: impl Write + Send + 'static,
) -> Result<Exported, ExchangeError> {
    let first = session
        .statement_page(account, (from, to), None, MAX_PAGE)
        .await?;
    let created = i64::try_from(crate::unix_seconds(std::time::SystemTime::now())).unwrap_or(0);
    let info = StatementInfo::of(bank, &first, created);
    let (pages, mut arriving) = tokio::sync::mpsc::channel::<Vec<Movement>>(2);
    let header = info.clone();
    let writer = std::thread::spawn(move || -> Result<(), ExportError> {
        let mut sink = statement_writer(format, &header, out)?;
        while let Some(page) = arriving.blocking_recv() {
            for m in &page {
                sink.push(m)?;
            }
        }
        sink.finish()
    });
    let mut movements = 0;
    let mut page = first;
    let fetched = loop {
        movements += page.movements.len() as u64;
        let next = page.next.take();
        // A writer that stopped has its own error, reported below.
        if pages
            .send(std::mem::take(&mut page.movements))
            .await
            .is_err()
        {
            break Ok(());
        }
        let Some(cursor) = next else {
            break Ok(());
        };
        match session
            .statement_page(account, (from, to), Some(cursor), MAX_PAGE)
            .await
        {
            Ok(p) => page = p,
            Err(e) => break Err(e),
        }
    };
    drop(pages);
    let written = writer
        .join()
        .map_err(|_| ExportError::Io(std::io::Error::other("the statement writer failed")))?;
    fetched?;
    written?;
    Ok(Exported { info, movements })
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines refused (imported anyway only with `skip_invalid`).
    pub problems: Vec<LineProblem>,
    /// For each order sent, its first line and what the bank did with it.
    pub outcomes: Vec<(usize, ImportOutcome)>,
}

/// Imports the payment orders in `bytes` as drafts. Every line is checked here first, against
/// the accounts the user may prepare orders on; with a bad line nothing is imported unless
/// `skip_invalid`, which imports the good lines and reports the bad. The bank checks each
/// batch again, all or nothing, and flags likely duplicates instead of preparing them twice.
pub async fn import_orders(
    session: &mut BankSession,
    bytes: &[u8],
    format: Option<ImportFormat>,
    skip_invalid: bool,
) -> Result<ImportReport, ExchangeError> {
    let overview = session.overview().await?;
    let accounts: Vec<(String, String)> = overview
        .accounts
        .iter()
        .filter(|a| a.rights.prepare)
        .map(|a| (a.iban.clone(), a.currency.clone()))
        .collect();
    let parsed = parse_orders(bytes, format, &accounts)?;
    if !parsed.problems.is_empty() && !skip_invalid {
        return Err(ExchangeError::BadLines(parsed.problems));
    }
    let mut outcomes = Vec::with_capacity(parsed.orders.len());
    for batch in parsed.orders.chunks(MAX_IMPORT_BATCH) {
        let lines = batch.iter().map(|(line, _)| *line);
        let orders = batch.iter().map(|(_, o)| o.clone()).collect();
        match session.import_orders(orders).await {
            Ok(done) => outcomes.extend(lines.zip(done)),
            Err(error) if outcomes.is_empty() => return Err(error.into()),
            Err(error) => {
                return Err(ExchangeError::PartlyImported {
                    line: batch[0].0,
                    error,
                    imported: outcomes,
                });
            }
        }
    }
    Ok(ImportReport {
        problems: parsed.problems,
        outcomes,
    })
}
