//! Statements and the signature queue in the window: thin adapters over `tresor-client`'s
//! statement pages, export loop and batch signing.

use std::path::PathBuf;

use serde::Serialize;
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;
use tresor_client::exchange::Format;
use tresor_client::exchange::import::LineProblem;
use tresor_client::session::BatchSummary;
use tresor_client::statements::{self, ExchangeError};
use tresor_core::api::directory::{Counterparty, CounterpartyContent, Template, TemplateContent};
use tresor_core::api::ledger::{ImportOutcome, MAX_PAGE, StatementPage};
use tresor_core::api::{OrderStatus, OrderView};
use tresor_core::date::Day;
use tresor_core::payment::{Iban, parse_amount};

use crate::error::{AppError, ErrorCode};
use crate::state::AppState;

type Result<T> = std::result::Result<T, AppError>;

fn day(s: &str) -> Result<Day> {
    Day::parse(s.trim()).map_err(|e| AppError::new(ErrorCode::InvalidInput, e.to_string()))
}

/// A page of the statement of `account` for the days `from` to `to` (`YYYY-MM-DD`), from
/// `cursor` (a previous page's `next`).
#[tauri::command]
#[specta::specta]
pub async fn statement_page(
    state: State<'_, AppState>,
    account: String,
    from: String,
    to: String,
    cursor: Option<String>,
) -> Result<StatementPage> {
    let period = (day(&from)?, day(&to)?);
    let mut inner = state.lock().await;
    let result = inner
        .session()?
        .statement_page(&account, period, cursor, MAX_PAGE)
        .await;
    inner.outcome(result)
}

/// What an export wrote.
#[derive(Debug, Serialize, specta::Type)]
pub struct ExportView {
    /// The file.
    pub path: String,
    /// Movements in it.
    pub movements: u32,
}

/// Exports the statement in `format` (`csv`, `pdf`, `1c`, `camt053`) to a file the user
/// picks in the native save dialog (`TRESOR_EXPORT_DIR` names a folder instead, for tests);
/// none if the user cancelled. The file is written whole or not at all.
#[tauri::command]
#[specta::specta]
pub async fn export_statement(
    app: AppHandle,
    state: State<'_, AppState>,
    account: String,
    from: String,
    to: String,
    format: String,
) -> Result<Option<ExportView>> {
    let format = Format::parse(&format)
        .filter(|f| *f != Format::Table)
        .ok_or_else(|| AppError::new(ErrorCode::InvalidInput, "no such export format"))?;
    let period = (day(&from)?, day(&to)?);
    let name = format!("statement-{account}-{from}-{to}.{}", format.extension());
    let path = match std::env::var_os("TRESOR_EXPORT_DIR") {
        Some(dir) => PathBuf::from(dir).join(&name),
        None => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            app.dialog()
                .file()
                .set_file_name(&name)
                .save_file(move |path| {
                    let _ = tx.send(path);
                });
            let chosen = rx
                .await
                .map_err(|e| AppError::new(ErrorCode::Other, e.to_string()))?;
            match chosen.and_then(|p| p.into_path().ok()) {
                Some(path) => path,
                None => return Ok(None),
            }
        }
    };
    let io =
        |e: std::io::Error| AppError::new(ErrorCode::Other, format!("{}: {e}", path.display()));
    let partial = path.with_extension("partial");
    let file = std::fs::File::create(&partial).map_err(io)?;
    let mut inner = state.lock().await;
    let bank = inner.client()?.bank_name();
    let writer = std::io::BufWriter::new(file.try_clone().map_err(io)?);
    let result =
        statements::export_statement(inner.session()?, &bank, &account, period, format, writer)
            .await;
    let exported = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return match e {
                ExchangeError::Client(e) => inner.outcome(Err(e)),
                e => Err(AppError::new(ErrorCode::Other, e.to_string())),
            };
        }
    };
    drop(inner);
    file.sync_all().map_err(io)?;
    std::fs::rename(&partial, &path).map_err(io)?;
    Ok(Some(ExportView {
        path: path.display().to_string(),
        movements: u32::try_from(exported.movements).unwrap_or(u32::MAX),
    }))
}

/// The orders waiting for this user's signature.
#[tauri::command]
#[specta::specta]
pub async fn signature_queue(state: State<'_, AppState>) -> Result<Vec<OrderView>> {
    let mut inner = state.lock().await;
    let result = inner.session()?.signature_queue().await;
    inner.outcome(result)
}

/// What signing orders `ids` together would sign: each order, the totals, the batch digest.
#[tauri::command]
#[specta::specta]
pub async fn batch_summary(state: State<'_, AppState>, ids: Vec<u64>) -> Result<BatchSummary> {
    let mut inner = state.lock().await;
    let result = inner.session()?.batch_summary(&ids).await;
    inner.outcome(result)
}

/// What became of one order of a batch.
#[derive(Debug, Serialize, specta::Type)]
pub struct SignedView {
    /// The order.
    pub id: u64,
    /// Where it is now, if signed.
    pub status: Option<OrderStatus>,
    /// Why not, if refused.
    pub error: Option<String>,
}

/// Signs the orders `shown` summarised, each with its own signature; refused as a whole if
/// any changed since it was shown.
#[tauri::command]
#[specta::specta]
pub async fn sign_batch(
    state: State<'_, AppState>,
    shown: BatchSummary,
) -> Result<Vec<SignedView>> {
    let mut inner = state.lock().await;
    let result = inner.session()?.sign_batch(&shown).await;
    let results = inner.outcome(result)?;
    Ok(results
        .into_iter()
        .map(|r| SignedView {
            id: r.id,
            status: r.status,
            error: r.error.map(|e| e.message),
        })
        .collect())
}

/// The native file chooser, for a file of payment orders to import.
#[tauri::command]
#[specta::specta]
pub async fn pick_orders_file(app: AppHandle) -> Result<Option<String>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .add_filter("1C / BAS, CSV", &["txt", "csv"])
        .pick_file(move |file| {
            let _ = tx.send(file);
        });
    let file = rx
        .await
        .map_err(|e| AppError::new(ErrorCode::Other, e.to_string()))?;
    Ok(file
        .and_then(|f| f.into_path().ok())
        .map(|p| p.display().to_string()))
}

/// What an import did, line by line.
#[derive(Debug, Serialize, specta::Type)]
pub struct ImportView {
    /// Drafts prepared.
    pub prepared: u32,
    /// Lines left out as likely duplicates of existing orders.
    pub duplicates: u32,
    /// Lines refused (with `skip_invalid`; without it, nothing was imported).
    pub problems: Vec<LineProblem>,
    /// Whether anything was imported.
    pub imported: bool,
}

/// Imports the payment orders in the file at `path` (1C/BAS in windows-1251 or UTF-8, or
/// CSV; detected) as drafts. With a bad line nothing is imported, unless `skip_invalid`;
/// either way the report names each bad line.
#[tauri::command]
#[specta::specta]
pub async fn import_orders(
    state: State<'_, AppState>,
    path: String,
    skip_invalid: bool,
) -> Result<ImportView> {
    let path = PathBuf::from(path.trim());
    let bytes = std::fs::read(&path)
        .map_err(|e| AppError::new(ErrorCode::InvalidInput, format!("{}: {e}", path.display())))?;
    let mut inner = state.lock().await;
    let result = statements::import_orders(inner.session()?, &bytes, None, skip_invalid).await;
    match result {
        Ok(report) => {
            let duplicates = report
                .outcomes
                .iter()
                .filter(|(_, o)| matches!(o, ImportOutcome::Duplicate { .. }))
                .count();
            Ok(ImportView {
                prepared: u32::try_from(report.outcomes.len() - duplicates).unwrap_or(u32::MAX),
                duplicates: u32::try_from(duplicates).unwrap_or(u32::MAX),
                problems: report.problems,
                imported: true,
            })
        }
        Err(ExchangeError::BadLines(problems)) => Ok(ImportView {
            prepared: 0,
            duplicates: 0,
            problems,
            imported: false,
        }),
        Err(ExchangeError::Client(e)) => inner.outcome(Err(e)),
        Err(e) => Err(AppError::new(ErrorCode::InvalidInput, e.to_string())),
    }
}

/// The templates of the accounts the user may prepare orders on.
#[tauri::command]
#[specta::specta]
pub async fn list_templates(state: State<'_, AppState>) -> Result<Vec<Template>> {
    let mut inner = state.lock().await;
    let result = inner.session()?.templates(None).await;
    inner.outcome(result)
}

/// Saves a template (one of the same name on the account is replaced). The amount, as typed
/// in the form, may be left empty.
#[tauri::command]
#[specta::specta]
pub async fn save_template(
    state: State<'_, AppState>,
    name: String,
    draft: crate::commands::OrderDraft,
) -> Result<Template> {
    let amount = match draft.amount.trim() {
        "" => None,
        a => Some(parse_amount(a).map_err(tresor_client::ClientError::from)?),
    };
    let content = TemplateContent {
        name: name.trim().to_owned(),
        payer_iban: draft.payer_iban,
        payee_name: draft.payee_name.trim().to_owned(),
        payee_tax_code: draft.payee_tax_code.trim().to_owned(),
        payee_iban: Iban::parse(&draft.payee_iban)
            .map_err(tresor_client::ClientError::from)?
            .to_string(),
        amount,
        currency: draft.currency.trim().to_owned(),
        purpose: draft.purpose.trim().to_owned(),
    };
    let mut inner = state.lock().await;
    let result = inner.session()?.save_template(content).await;
    inner.outcome(result)
}

/// The counterparty directories of the accounts the user may prepare orders on.
#[tauri::command]
#[specta::specta]
pub async fn list_counterparties(state: State<'_, AppState>) -> Result<Vec<Counterparty>> {
    let mut inner = state.lock().await;
    let result = inner.session()?.counterparties(None).await;
    inner.outcome(result)
}

/// Saves the form's payee in its payer account's directory (the entry with its IBAN is
/// replaced).
#[tauri::command]
#[specta::specta]
pub async fn save_counterparty(
    state: State<'_, AppState>,
    draft: crate::commands::OrderDraft,
) -> Result<Counterparty> {
    let content = CounterpartyContent {
        account: draft.payer_iban,
        name: draft.payee_name.trim().to_owned(),
        tax_code: draft.payee_tax_code.trim().to_owned(),
        iban: Iban::parse(&draft.payee_iban)
            .map_err(tresor_client::ClientError::from)?
            .to_string(),
        purpose: draft.purpose.trim().to_owned(),
    };
    let mut inner = state.lock().await;
    let result = inner.session()?.save_counterparty(content).await;
    inner.outcome(result)
}
