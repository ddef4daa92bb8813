//! `tresor`: the client's command line, for people and for scripts. A thin face over the
//! `tresor_client` library; the desktop app is its twin.
//!
//! Secrets are never arguments: they come from `TRESOR_PASSWORD`, `TRESOR_NEW_PASSWORD`,
//! `TRESOR_KEY_PASSWORD`, `TRESOR_TOKEN_PIN`, `TRESOR_EMERGENCY_PASSWORD`, `TRESOR_OTP`,
//! `TRESOR_SMS_CODE`, `TRESOR_RESET_CODE` and `TRESOR_EMAIL_CODE`, or are asked for on the terminal without echo. A key lives on a drive (`--drive`) or on a
//! PKCS#11 token (`--token LABEL|SERIAL`, the module from `--pkcs11-module` or
//! `TRESOR_PKCS11_MODULE`). Exit codes: 0 done, 1 other error, 2 bad usage, 3 login
//! refused, 4 key or drive problem, 5 account locked or address blocked, 6 network, 7 the
//! bank refused the request.

#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::json;
use tresor_client::KeyHome;
use tresor_client::error::{ClientError, ErrorKind};
use tresor_client::exchange::Format;
use tresor_client::exchange::import::{ImportFormat, LineProblem};
use tresor_client::flows::{self, Client, KeyCertificate};
use tresor_client::keystore::{KeyStore, StoreError};
use tresor_client::letter::{self, LetterDetails};
use tresor_client::media::{self, MediaSource as _, SystemMedia};
use tresor_client::prompt;
use tresor_client::reminder::{self, Reminder};
use tresor_client::session::{BankSession, SigningSummary};
use tresor_client::settings::{self, Settings};
use tresor_client::statements::{self, ExchangeError};
use tresor_client::token::{self, TokenModule, TokenStore};
use tresor_core::api::directory::{Counterparty, CounterpartyContent, Template, TemplateContent};
use tresor_core::api::ledger::ImportOutcome;
use tresor_core::api::profile::{Language, NoticeKind};
use tresor_core::api::{OrderView, Overview, Stage};
use tresor_core::date::Day;
use tresor_core::keyfile::{KdfLimits, KeyFileError};
use tresor_core::login::Login;
use tresor_core::payment::{self, PaymentOrder};
use tresor_core::pki;
use tresor_core::secret::Password;
use tresor_core::text::printable;

/// Exit status for a refused login (wrong login, password or second factor).
const EXIT_CREDENTIALS: u8 = 3;
/// Exit status for a problem with the key or the drive (wrong key password, no key, an
/// expired or revoked certificate, a read-only drive, …).
const EXIT_KEY: u8 = 4;
/// Exit status for a locked account or a blocked address.
const EXIT_LOCKED: u8 = 5;
/// Exit status for a network or channel failure.
const EXIT_NETWORK: u8 = 6;
/// Exit status for a request the bank refused (rights, stage, invalid content).
const EXIT_REFUSED: u8 = 7;

#[derive(Parser)]
#[command(name = "tresor", version, about = "Tresor business-banking client")]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The settings file (default: client.toml in the OS's config folder).
    #[arg(long, global = true, env = "TRESOR_CLIENT_CONFIG")]
    config: Option<PathBuf>,
    /// The bank's address, https://host:port (overrides the settings file).
    #[arg(long, global = true, env = "TRESOR_SERVER")]
    server: Option<String>,
    /// The bank CA certificate, PEM (overrides the settings file).
    #[arg(long, global = true, env = "TRESOR_BANK_CA")]
    bank_ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Where the key is: a drive, or a token.
#[derive(Args, Clone, Default)]
struct Medium {
    /// Mount path of the drive with the key (default: the first drive that has one).
    #[arg(long, env = "TRESOR_DRIVE", conflicts_with = "token")]
    drive: Option<PathBuf>,
    /// The PKCS#11 token with the key, by label or serial; its PIN from TRESOR_TOKEN_PIN.
    #[arg(long, env = "TRESOR_TOKEN")]
    token: Option<String>,
    /// The PKCS#11 module (default: OpenSC's, then SoftHSM2's, where installed).
    #[arg(long, env = "TRESOR_PKCS11_MODULE")]
    pkcs11_module: Option<PathBuf>,
}

/// Who logs in, and with what.
#[derive(Args, Clone)]
struct Who {
    /// The login.
    #[arg(long, env = "TRESOR_LOGIN")]
    login: String,
    #[command(flatten)]
    medium: Medium,
    /// Log in with an OTP code (TRESOR_OTP) instead of the key: view and prepare only.
    #[arg(long)]
    otp: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Save the bank's address and CA certificate in the settings file.
    Setup,
    /// The bank's name and helpdesk (phone, e-mail, hours, website): asked of the bank, or
    /// as it last told them when it cannot be reached.
    BankInfo,
    /// Removable drives and disks, and PKCS#11 tokens.
    Media {
        #[command(subcommand)]
        command: MediaCommand,
    },
    /// First login: the initial password, a new password, and the first key on the drive
    /// or token.
    FirstLogin {
        /// The login the bank gave.
        #[arg(long, env = "TRESOR_LOGIN")]
        login: String,
        #[command(flatten)]
        medium: Medium,
    },
    /// Check the credentials; print who you are, the certificate and your rights.
    Login(Who),
    /// The login password.
    Password {
        #[command(subcommand)]
        command: PasswordCommand,
    },
    /// Your e-mail address and what the bank mails you.
    Profile {
        #[command(subcommand)]
        command: ProfileCommand,
    },
    /// One-time codes from an authenticator app (TOTP).
    Otp {
        #[command(subcommand)]
        command: OtpCommand,
    },
    /// The key on the drive.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Accounts, balances and rights.
    Accounts(Who),
    /// Payment orders.
    Order {
        #[command(subcommand)]
        command: OrderCommand,
    },
    /// Payment templates, shared on each account by whoever may prepare orders on it.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// The counterparty directory of each account.
    Counterparty {
        #[command(subcommand)]
        command: CounterpartyCommand,
    },
    /// A statement of an account for a period: opening balance, turnovers, closing balance
    /// and the movements, as a table or a file for accounting software.
    Statement {
        #[command(flatten)]
        who: Who,
        /// The account (IBAN).
        #[arg(long)]
        account: String,
        /// The first day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// The last day, YYYY-MM-DD (included).
        #[arg(long)]
        to: String,
        /// table, csv, pdf, 1c (1CClientBankExchange, windows-1251) or camt053 (ISO 20022).
        #[arg(long, default_value = "table")]
        format: String,
        /// Write here instead of to the standard output (written whole or not at all).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum MediaCommand {
    /// List mounted drives, removable ones first, then the tokens plugged in.
    List {
        /// The PKCS#11 module (default: OpenSC's, then SoftHSM2's, where installed).
        #[arg(long, env = "TRESOR_PKCS11_MODULE")]
        pkcs11_module: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PasswordCommand {
    /// Change the password (TRESOR_PASSWORD → TRESOR_NEW_PASSWORD).
    Change(Who),
    /// Forgot the password: with the key, ask the bank to mail a one-time code to your
    /// verified e-mail address.
    Forgot {
        /// The login.
        #[arg(long, env = "TRESOR_LOGIN")]
        login: String,
        #[command(flatten)]
        medium: Medium,
    },
    /// Set a new password with the mailed code (TRESOR_RESET_CODE, then
    /// TRESOR_NEW_PASSWORD), with the key.
    Reset {
        /// The login.
        #[arg(long, env = "TRESOR_LOGIN")]
        login: String,
        #[command(flatten)]
        medium: Medium,
    },
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Show your e-mail address, the language of the bank's mail and the notices you
    /// turned off.
    Show(Who),
    /// Have the bank write to another address: it mails a code there (confirm with
    /// `profile confirm`).
    Email {
        #[command(flatten)]
        who: Who,
        /// The new address.
        #[arg(long)]
        address: String,
    },
    /// Confirm the new address with the mailed code (TRESOR_EMAIL_CODE).
    Confirm(Who),
    /// Set the language of the bank's mail and the notices you do not want.
    Set {
        #[command(flatten)]
        who: Who,
        /// uk, en, or both.
        #[arg(long, default_value = "both")]
        language: String,
        /// Notices to turn off, comma-separated: certificate_expiry, order_rejected,
        /// incoming_payment (security notices cannot be).
        #[arg(long, value_delimiter = ',')]
        quiet: Vec<String>,
    },
}

#[derive(Subcommand)]
enum OtpCommand {
    /// Start enrollment: print the otpauth URI, write its QR code, and confirm with a first
    /// code when run on a terminal.
    Enroll {
        #[command(flatten)]
        who: Who,
        /// Write the QR code here, as SVG.
        #[arg(long)]
        qr: Option<PathBuf>,
    },
    /// Confirm enrollment with a code from the app (TRESOR_OTP).
    Confirm(Who),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Generate a new P-256 key on the drive, encrypted with the key password (offline; the
    /// first login does this and asks for the certificate).
    Generate {
        /// Mount path of the drive (or any folder standing in for it).
        #[arg(long)]
        drive: PathBuf,
        /// The login the key is for.
        #[arg(long)]
        login: String,
    },
    /// Decrypt the key and print its public-key fingerprint.
    Check {
        /// Mount path of the drive.
        #[arg(long)]
        drive: PathBuf,
        /// The login whose key to check.
        #[arg(long)]
        login: String,
    },
    /// The certificate's expiry and the renewal reminder (offline, no password).
    Status {
        /// The login.
        #[arg(long, env = "TRESOR_LOGIN")]
        login: String,
        /// Mount path of the drive (default: the first drive with a key for the login).
        #[arg(long, env = "TRESOR_DRIVE")]
        drive: Option<PathBuf>,
    },
    /// Renew: a new key on the same drive or token, certified on a session signed by the
    /// current one.
    Renew {
        /// The login.
        #[arg(long, env = "TRESOR_LOGIN")]
        login: String,
        #[command(flatten)]
        medium: Medium,
    },
    /// Recover with the bank's emergency password: a new key under a new key password (or
    /// on a token, under its PIN).
    Recover {
        /// The login.
        #[arg(long, env = "TRESOR_LOGIN")]
        login: String,
        #[command(flatten)]
        medium: Medium,
    },
    /// The key letter of the current certificate, as a PDF to print, sign and bring to the
    /// bank, which activates the key from it (offline, no password).
    Letter {
        /// The login.
        #[arg(long, env = "TRESOR_LOGIN")]
        login: String,
        /// Mount path of the drive (default: the first drive with a key for the login).
        #[arg(long, env = "TRESOR_DRIVE")]
        drive: Option<PathBuf>,
        /// Where to write the PDF.
        #[arg(long)]
        output: PathBuf,
        /// Your full name, printed on the letter (else a line to write it on).
        #[arg(long)]
        name: Option<String>,
        /// Your company, printed on the letter (else a line to write it on).
        #[arg(long)]
        company: Option<String>,
    },
    /// Block the key now, if you fear it is stolen: every certificate is suspended and every
    /// session ends; only a recovery with an emergency password brings access back. Needs
    /// only the login and password (TRESOR_PASSWORD), not the key.
    Block {
        /// The login.
        #[arg(long, env = "TRESOR_LOGIN")]
        login: String,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Save an order's content as a template (a template of the same name is replaced).
    Save {
        #[command(flatten)]
        who: Who,
        /// The order to take the content from.
        #[arg(long)]
        from_order: u64,
        /// The template's name.
        #[arg(long)]
        name: String,
        /// Leave the amount out: it is typed each time the template is used.
        #[arg(long)]
        no_amount: bool,
    },
    /// List templates.
    List {
        #[command(flatten)]
        who: Who,
        /// Only this account's.
        #[arg(long)]
        account: Option<String>,
    },
    /// Prepare a draft from a template.
    Use {
        #[command(flatten)]
        who: Who,
        /// The template's id.
        id: u64,
        /// The amount, if the template has none or another is wanted.
        #[arg(long)]
        amount: Option<String>,
    },
    /// Delete a template.
    Delete {
        #[command(flatten)]
        who: Who,
        /// The template's id.
        id: u64,
    },
}

#[derive(Subcommand)]
enum CounterpartyCommand {
    /// Add a counterparty to an account's directory (the entry with its IBAN is replaced).
    Add {
        #[command(flatten)]
        who: Who,
        /// The payer account whose directory it goes in.
        #[arg(long)]
        account: String,
        /// Name as registered.
        #[arg(long)]
        name: String,
        /// EDRPOU or RNOKPP.
        #[arg(long)]
        tax_code: String,
        /// IBAN.
        #[arg(long)]
        iban: String,
        /// The purpose an order to it starts with.
        #[arg(long, default_value = "")]
        purpose: String,
    },
    /// List the directories.
    List {
        #[command(flatten)]
        who: Who,
        /// Only this account's.
        #[arg(long)]
        account: Option<String>,
    },
    /// Prepare a draft to a counterparty from its account.
    Pay {
        #[command(flatten)]
        who: Who,
        /// The counterparty's id.
        id: u64,
        /// The amount.
        #[arg(long)]
        amount: String,
        /// The purpose, if not the counterparty's usual one.
        #[arg(long)]
        purpose: Option<String>,
    },
    /// Delete a counterparty.
    Delete {
        #[command(flatten)]
        who: Who,
        /// The counterparty's id.
        id: u64,
    },
}

#[derive(Subcommand)]
enum OrderCommand {
    /// Prepare a payment order (a draft).
    Create {
        #[command(flatten)]
        who: Who,
        /// The account debited (IBAN).
        #[arg(long)]
        payer: String,
        /// The payee's name.
        #[arg(long)]
        payee_name: String,
        /// The payee's tax code (EDRPOU or RNOKPP).
        #[arg(long)]
        payee_tax_code: String,
        /// The payee's IBAN.
        #[arg(long)]
        payee_iban: String,
        /// The amount, e.g. 1234.50.
        #[arg(long)]
        amount: String,
        /// ISO 4217 currency code.
        #[arg(long, default_value = "UAH")]
        currency: String,
        /// The purpose of payment.
        #[arg(long)]
        purpose: String,
    },
    /// Show an order and what signing it would sign.
    Show {
        #[command(flatten)]
        who: Who,
        /// The order's id.
        id: u64,
    },
    /// Sign orders with the key, after showing amount, payee and digest: one, or several in
    /// one go (one key unlock; a summary with the count, the totals per currency and each
    /// order, then each order signed on its own).
    Sign {
        #[command(flatten)]
        who: Who,
        /// The orders' ids.
        #[arg(required = true)]
        ids: Vec<u64>,
        /// Sign only if the digest is this one (for scripts): the order's, or for several
        /// orders the batch digest over them all.
        #[arg(long)]
        digest: Option<String>,
        /// Do not ask for confirmation on a terminal.
        #[arg(long)]
        yes: bool,
    },
    /// Send a fully signed order to the bank.
    Send {
        #[command(flatten)]
        who: Who,
        /// The order's id.
        id: u64,
    },
    /// Import payment orders from accounting software as drafts: a 1CClientBankExchange file
    /// (windows-1251 or UTF-8) or CSV. Every line is checked first; with a bad line nothing
    /// is imported unless --skip-invalid. Likely duplicates of existing orders are reported,
    /// not imported twice.
    Import {
        #[command(flatten)]
        who: Who,
        /// The file.
        file: PathBuf,
        /// 1c or csv (detected if not given).
        #[arg(long)]
        format: Option<String>,
        /// Import the good lines and report the bad ones.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// The orders waiting for your signature, on every account you sign for.
    Queue {
        #[command(flatten)]
        who: Who,
    },
    /// Delete an order that was never sent.
    Delete {
        #[command(flatten)]
        who: Who,
        /// The order's id.
        id: u64,
        /// The version you reviewed (as `order show` prints it).
        #[arg(long)]
        version: u32,
    },
    /// Prepare a new draft with the content of an existing order.
    Copy {
        #[command(flatten)]
        who: Who,
        /// The order's id.
        id: u64,
    },
    /// List orders with their statuses.
    List {
        #[command(flatten)]
        who: Who,
        /// Only this payer account.
        #[arg(long)]
        account: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tresor: {err:#}");
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<ClientError>())
                .any(ClientError::offers_recovery)
            {
                eprintln!(
                    "tresor: to recover, ask the bank for an emergency password and run \
                     `tresor key recover`"
                );
            }
            if sends_to_bank(&err)
                && let Some(helpdesk) = cached_helpdesk(&cli)
            {
                eprintln!("tresor: {helpdesk}");
            }
            ExitCode::from(exit_code(&err))
        }
    }
}

/// Whether the way out of `err` goes through the bank: a locked account or address, a key
/// to recover.
fn sends_to_bank(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<ClientError>())
        .any(|e| e.offers_recovery() || e.kind() == ErrorKind::Locked)
}

/// "The helpdesk of BANK: PHONE (HOURS)", from what the bank last said (`tresor bank-info`
/// and every app start cache it), if it said how to reach it.
fn cached_helpdesk(cli: &Cli) -> Option<String> {
    let settings = Settings::resolve(
        cli.config.as_deref(),
        cli.server.clone(),
        cli.bank_ca.clone(),
    )
    .ok()?;
    let info = settings::cached_bank_info(cli.config.as_deref(), &settings.server)?.info;
    let reach = [info.phone.as_str(), info.email.as_str()]
        .into_iter()
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    if reach.is_empty() {
        return None;
    }
    let hours = if info.hours.is_empty() {
        String::new()
    } else {
        format!(" ({})", info.hours)
    };
    Some(printable(&format!("the helpdesk of {}: {reach}{hours}", info.name)).into_owned())
}

fn exit_code(err: &anyhow::Error) -> u8 {
    for e in err.chain() {
        if let Some(e) = e.downcast_ref::<ClientError>() {
            return match e.kind() {
                ErrorKind::Credentials => EXIT_CREDENTIALS,
                ErrorKind::Key => EXIT_KEY,
                ErrorKind::Locked => EXIT_LOCKED,
                ErrorKind::Network => EXIT_NETWORK,
                ErrorKind::Refused => EXIT_REFUSED,
                ErrorKind::Other => 1,
            };
        }
        if e.is::<StoreError>() || e.is::<KeyFileError>() {
            return EXIT_KEY;
        }
    }
    1
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Setup => setup(cli),
        Command::Media {
            command: MediaCommand::List { pkcs11_module },
        } => media_list(
            cli.json,
            pkcs11_module
                .clone()
                .or_else(|| settings::stored_pkcs11_module(cli.config.as_deref()))
                .as_deref(),
        ),
        Command::Key {
            command: KeyCommand::Generate { drive, login },
        } => key_generate(cli.json, drive, login),
        Command::Key {
            command: KeyCommand::Check { drive, login },
        } => key_check(cli.json, drive, login),
        Command::Key {
            command: KeyCommand::Status { login, drive },
        } => key_status(cli.json, login, drive.as_deref()),
        Command::Key {
            command:
                KeyCommand::Letter {
                    login,
                    drive,
                    output,
                    name,
                    company,
                },
        } => key_letter(
            cli.json,
            login,
            drive.as_deref(),
            output,
            LetterDetails {
                name: name.clone(),
                company: company.clone(),
            },
        ),
        command => block_on(online(cli, command)),
    }
}

fn block_on<F: std::future::Future<Output = Result<()>>>(future: F) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

/// The commands that talk to the bank.
async fn online(cli: &Cli, command: &Command) -> Result<()> {
    let settings = Settings::resolve(
        cli.config.as_deref(),
        cli.server.clone(),
        cli.bank_ca.clone(),
    )
    .map_err(ClientError::from)?;
    let client = Client::new(&settings)?;
    let json = cli.json;
    match command {
        Command::BankInfo => bank_info(cli, &settings, &client).await,
        Command::FirstLogin { login, medium } => first_login(&client, json, login, medium).await,
        Command::Key {
            command: KeyCommand::Recover { login, medium },
        } => key_recover(&client, json, login, medium).await,
        Command::Key {
            command: KeyCommand::Block { login },
        } => {
            let login = Login::new(login).context("invalid login")?;
            let password = secret("TRESOR_PASSWORD", "Password: ")?;
            client.block_key(&login, &password).await?;
            if json {
                println!("{}", json!({ "blocked": true }));
            } else {
                println!(
                    "Your key is blocked: every certificate is suspended and every session \
                     ended. To get access back, ask the bank for an emergency password and run \
                     `tresor key recover`."
                );
            }
            Ok(())
        }
        Command::Key {
            command: KeyCommand::Renew { login, medium },
        } => {
            let who = Who {
                login: login.clone(),
                medium: medium.clone(),
                otp: false,
            };
            let opened = open_inner(&client, &who).await?;
            let mut session = opened.session;
            let key_password = opened
                .key_password
                .context("renewal needs a login with the key")?;
            let result = client.renew(&mut session, &key_password, &|_| {}).await;
            finish(session).await;
            let done = result?;
            print_certificate(json, "renewed", &done)
        }
        Command::Login(who) => {
            let mut session = open(&client, who).await?;
            let result = login_report(&mut session).await;
            finish(session).await;
            let (report, overview) = result?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_overview(&overview);
            }
            Ok(())
        }
        Command::Accounts(who) => {
            let mut session = open(&client, who).await?;
            let result = session.overview().await;
            finish(session).await;
            let overview = result?;
            if json {
                println!("{}", serde_json::to_string_pretty(&overview.accounts)?);
            } else {
                print_overview(&overview);
            }
            Ok(())
        }
        Command::Password {
            command: PasswordCommand::Change(who),
        } => {
            let login = Login::new(&who.login).context("invalid login")?;
            let Opened {
                mut session,
                password,
                forced,
                ..
            } = open_inner(&client, who).await?;
            let result = if forced {
                Ok(())
            } else {
                let new = new_login_password(&login)?;
                session.change_password(&password, &new).await.map(|_| ())
            };
            finish(session).await;
            result?;
            if json {
                println!("{}", json!({ "password_changed": true }));
            } else {
                println!("The password is changed.");
            }
            Ok(())
        }
        Command::Password {
            command: PasswordCommand::Forgot { login, medium },
        } => {
            let login = Login::new(login).context("invalid login")?;
            let home = key_home(&client, &login, medium)?;
            let key_password = key_secret(&home)?;
            let to = client.forgot_password(&home, &key_password).await?;
            if json {
                println!("{}", json!({ "code_sent_to": to }));
            } else {
                println!(
                    "A one-time code was sent to {to}. Within 15 minutes, run \
                     `tresor password reset` with it."
                );
            }
            Ok(())
        }
        Command::Password {
            command: PasswordCommand::Reset { login, medium },
        } => {
            let login = Login::new(login).context("invalid login")?;
            let home = key_home(&client, &login, medium)?;
            let code = secret("TRESOR_RESET_CODE", "Code from the mail: ")?;
            let new = new_login_password(&login)?;
            let key_password = key_secret(&home)?;
            let session = client
                .reset_password(&home, &key_password, &code, &new)
                .await?;
            finish(session).await;
            if json {
                println!("{}", json!({ "password_reset": true }));
            } else {
                println!("The password is reset. Every other session of yours has ended.");
            }
            Ok(())
        }
        Command::Profile { command } => profile(&client, json, command).await,
        Command::Otp {
            command: OtpCommand::Enroll { who, qr },
        } => otp_enroll(&client, json, who, qr.as_deref()).await,
        Command::Otp {
            command: OtpCommand::Confirm(who),
        } => {
            let mut session = open(&client, who).await?;
            let code = secret("TRESOR_OTP", "Code from the authenticator app: ")?;
            let result = session.totp_confirm(code.expose()).await;
            finish(session).await;
            result?;
            if json {
                println!("{}", json!({ "totp_enrolled": true }));
            } else {
                println!(
                    "One-time codes are enrolled: you can log in with a code instead of the key."
                );
            }
            Ok(())
        }
        Command::Order { command } => order(&client, json, command).await,
        Command::Template { command } => template(&client, json, command).await,
        Command::Counterparty { command } => counterparty(&client, json, command).await,
        Command::Statement {
            who,
            account,
            from,
            to,
            format,
            output,
        } => {
            let format = Format::parse(format).with_context(|| {
                format!("unknown format {format:?}: use table, csv, pdf, 1c or camt053")
            })?;
            let period = (Day::parse(from)?, Day::parse(to)?);
            let account = payment::Iban::parse(account)
                .map_err(ClientError::from)?
                .to_string();
            let mut session = open(&client, who).await?;
            let result = statement(
                &client,
                &mut session,
                &account,
                period,
                format,
                output.as_deref(),
            )
            .await;
            finish(session).await;
            let exported = result?;
            if output.is_some() {
                let info = &exported.info;
                if json {
                    println!(
                        "{}",
                        json!({
                            "account": info.iban,
                            "from": info.from.to_string(),
                            "to": info.to.to_string(),
                            "opening": info.opening,
                            "debits": info.debits,
                            "credits": info.credits,
                            "closing": info.closing,
                            "movements": exported.movements,
                        })
                    );
                } else {
                    println!(
                        "{} movements written; opening {}, closing {} {}",
                        exported.movements,
                        payment::format_amount(info.opening),
                        payment::format_amount(info.closing),
                        info.currency
                    );
                }
            }
            Ok(())
        }
        Command::Setup
        | Command::Media { .. }
        | Command::Key {
            command:
                KeyCommand::Generate { .. }
                | KeyCommand::Check { .. }
                | KeyCommand::Status { .. }
                | KeyCommand::Letter { .. },
        } => unreachable!("offline commands are run before"),
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions.

/// Logs in as `who` says, makes the forced password change if the bank asks for it.
async fn open(client: &Client, who: &Who) -> Result<BankSession> {
    Ok(open_inner(client, who).await?.session)
}

/// A logged-in session and what it took.
struct Opened {
    session: BankSession,
    /// The password logged in with.
    password: Password,
    /// The key password, on a key session (renewal gives it to the new key).
    key_password: Option<Password>,
    /// Whether the bank forced a password change, already made.
    forced: bool,
}

async fn open_inner(client: &Client, who: &Who) -> Result<Opened> {
    let login = Login::new(&who.login).context("invalid login")?;
    let password = secret("TRESOR_PASSWORD", "Password: ")?;
    let (mut session, key_password) = if who.otp {
        let code = secret("TRESOR_OTP", "One-time code: ")?;
        let session = client
            .login_with_otp(&login, &password, code.expose())
            .await?;
        (session, None)
    } else {
        let home = key_home(client, &login, &who.medium)?;
        let key_password = key_secret(&home)?;
        let mut session = client
            .login_with_key(&home, &password, &key_password, &|_| {})
            .await?;
        // The bank's second step: the code it sent by SMS.
        if session.stage() == Some(Stage::SmsCode) {
            let code = prompt::later_code("TRESOR_SMS_CODE", "Code from the SMS: ")?;
            if let Err(e) = session.confirm_login(&code).await {
                finish(session).await;
                return Err(e.into());
            }
        }
        (session, Some(key_password))
    };
    remind_renewal(&session);
    let forced = session.stage() == Some(Stage::ChangePassword);
    if forced {
        eprintln!("tresor: the bank asks for a new password before anything else");
        let new = new_login_password(&login)?;
        let result = session.change_password(&password, &new).await;
        if let Err(e) = result {
            finish(session).await;
            return Err(e.into());
        }
    }
    Ok(Opened {
        session,
        password,
        key_password,
        forced,
    })
}

/// Logs out, and reminds to pull out the drive.
async fn finish(session: BankSession) {
    let report = session.logout(&SystemMedia).await;
    if let Some(drive) = report.remove_drive {
        eprintln!(
            "tresor: logged out. Pull out the USB drive at {} when you are done.",
            drive.display()
        );
    }
}

fn remind_renewal(session: &BankSession) {
    if let Some(r) = session
        .key()
        .and_then(|k| reminder::renewal_reminder(pki::not_after(&k.certificate), SystemTime::now()))
    {
        eprintln!("tresor: {}; run `tresor key renew`", r.message());
    }
}

// ---------------------------------------------------------------------------------------------
// Flows.

/// Where a new key goes: the drive or token named (a drive must be named: a new key is
/// never put on whichever drive comes first).
fn new_key_home(client: &Client, login: &Login, medium: &Medium) -> Result<KeyHome> {
    match (&medium.drive, &medium.token) {
        (Some(drive), None) => {
            warn_if_fixed(drive);
            Ok(KeyStore::new(drive, login).into())
        }
        (None, Some(_)) => key_home(client, login, medium),
        _ => bail!("name the drive (--drive) or the token (--token) for the new key"),
    }
}

/// The secret a new key takes: a new key password, or the token's PIN.
fn new_key_secret(home: &KeyHome) -> Result<Password> {
    if home.is_token() {
        key_secret(home)
    } else {
        new_key_password()
    }
}

/// `tresor bank-info`: from the bank, cached in the settings file; from that cache when the
/// bank cannot be reached.
async fn bank_info(cli: &Cli, settings: &Settings, client: &Client) -> Result<()> {
    let file = cli.config.as_deref();
    let (info, fetched, live) = match client.bank_info().await {
        Ok(info) => {
            let now = tresor_client::unix_seconds(std::time::SystemTime::now());
            if let Err(e) = settings::cache_bank_info(file, &settings.server, &info, now) {
                eprintln!("warning: the bank's details were not cached: {e}");
            }
            (info, now, true)
        }
        Err(e) => {
            let Some(cached) = settings::cached_bank_info(file, &settings.server) else {
                return Err(anyhow::Error::from(e)
                    .context("the bank's details were never saved on this computer"));
            };
            eprintln!(
                "The bank cannot be reached ({e}); its details as it gave them on {}:",
                tresor_client::format_time(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(cached.fetched)
                )
            );
            (cached.info, cached.fetched, false)
        }
    };
    if cli.json {
        println!(
            "{}",
            json!({ "bank": info, "fetched": fetched, "from_cache": !live })
        );
        return Ok(());
    }
    println!("{}", printable(&info.name));
    for (label, value) in [
        ("Helpdesk", &info.phone),
        ("E-mail", &info.email),
        ("Hours", &info.hours),
        ("Website", &info.website),
    ] {
        if !value.is_empty() {
            println!("{label:<9} {}", printable(value));
        }
    }
    Ok(())
}

async fn first_login(client: &Client, json: bool, login: &str, medium: &Medium) -> Result<()> {
    let login = Login::new(login).context("invalid login")?;
    let home = new_key_home(client, &login, medium)?;
    let initial = secret("TRESOR_PASSWORD", "Initial password: ")?;
    let new = new_login_password(&login)?;
    let key_password = new_key_secret(&home)?;
    let done = client
        .first_login(&home, &initial, &new, &key_password, &|_| {})
        .await?;
    print_certificate(json, "enrolled", &done)
}

async fn key_recover(client: &Client, json: bool, login: &str, medium: &Medium) -> Result<()> {
    let login = Login::new(login).context("invalid login")?;
    let home = new_key_home(client, &login, medium)?;
    let password = secret("TRESOR_PASSWORD", "Password: ")?;
    let emergency = secret(
        "TRESOR_EMERGENCY_PASSWORD",
        "Emergency password from the bank: ",
    )?;
    let key_password = new_key_secret(&home)?;
    let done = client
        .recover(&home, &password, &emergency, &key_password, &|_| {})
        .await?;
    print_certificate(json, "recovered", &done)
}

async fn otp_enroll(client: &Client, json: bool, who: &Who, qr: Option<&Path>) -> Result<()> {
    let mut session = open(client, who).await?;
    let result = session.totp_enroll().await;
    let enrollment = match result {
        Ok(e) => e,
        Err(e) => {
            finish(session).await;
            return Err(e.into());
        }
    };
    if let Some(path) = qr {
        write_private(path, enrollment.qr_svg.as_bytes())?;
    }
    // Confirm right away when a person is there to read the app.
    let confirm = std::io::stdin().is_terminal() && std::env::var_os("TRESOR_OTP").is_none();
    if json {
        println!(
            "{}",
            json!({ "uri": enrollment.uri.as_str(), "qr_svg": enrollment.qr_svg.as_str() })
        );
    } else {
        println!("Scan this into the authenticator app (it holds the secret: keep it private):");
        println!("{}", enrollment.uri.as_str());
        if let Some(path) = qr {
            println!("The QR code is in {}.", path.display());
        }
    }
    let result = if confirm {
        let code = secret("TRESOR_OTP", "Code from the authenticator app: ")?;
        session.totp_confirm(code.expose()).await
    } else {
        if !json {
            println!("Confirm with a first code: `tresor otp confirm`.");
        }
        Ok(())
    };
    finish(session).await;
    result?;
    if confirm {
        println!("One-time codes are enrolled.");
    }
    Ok(())
}

async fn order(client: &Client, json: bool, command: &OrderCommand) -> Result<()> {
    match command {
        OrderCommand::Create {
            who,
            payer,
            payee_name,
            payee_tax_code,
            payee_iban,
            amount,
            currency,
            purpose,
        } => {
            let order = PaymentOrder {
                payer_iban: payer.clone(),
                payee_name: payee_name.clone(),
                payee_tax_code: payee_tax_code.clone(),
                payee_iban: payee_iban.clone(),
                amount: payment::parse_amount(amount).map_err(ClientError::from)?,
                currency: currency.clone(),
                purpose: purpose.clone(),
            }
            .normalized()
            .map_err(ClientError::from)?;
            let mut session = open(client, who).await?;
            let result = session.prepare_order(&order).await;
            finish(session).await;
            print_order(json, &result?)
        }
        OrderCommand::Show { who, id } => {
            let mut session = open(client, who).await?;
            let result = session.get_order(*id).await;
            finish(session).await;
            print_order(json, &result?)
        }
        OrderCommand::Sign {
            who,
            ids,
            digest,
            yes,
        } => {
            let mut session = open(client, who).await?;
            if let [id] = ids.as_slice() {
                let result = sign(&mut session, *id, digest.as_deref(), *yes).await;
                finish(session).await;
                return print_order(json, &result?);
            }
            let result = sign_batch(&mut session, ids, digest.as_deref(), *yes).await;
            finish(session).await;
            let results = result?;
            let refused = results.iter().filter(|r| r.error.is_some()).count();
            if json {
                println!("{}", serde_json::to_string_pretty(&results)?);
            } else {
                for r in &results {
                    match (&r.status, &r.error) {
                        (Some(status), _) => println!("#{}: {}", r.id, status.as_str()),
                        (None, Some(e)) => {
                            println!("#{}: refused: {}", r.id, printable(&e.message))
                        }
                        (None, None) => {}
                    }
                }
            }
            if refused > 0 {
                bail!("{refused} of {} orders were not signed", results.len());
            }
            Ok(())
        }
        OrderCommand::Queue { who } => {
            let mut session = open(client, who).await?;
            let result = session.signature_queue().await;
            finish(session).await;
            print_orders(json, &result?)
        }
        OrderCommand::Delete { who, id, version } => {
            let mut session = open(client, who).await?;
            let result = session.delete_order(*id, *version).await;
            finish(session).await;
            result?;
            print_deleted(json, "Order #", *id)
        }
        OrderCommand::Copy { who, id } => {
            let mut session = open(client, who).await?;
            let result = async {
                let original = session.get_order(*id).await?;
                session.prepare_order(&original.order).await
            }
            .await;
            finish(session).await;
            print_order(json, &result?)
        }
        OrderCommand::Send { who, id } => {
            let mut session = open(client, who).await?;
            let result = session.send_order(*id).await;
            finish(session).await;
            print_order(json, &result?)
        }
        OrderCommand::Import {
            who,
            file,
            format,
            skip_invalid,
        } => {
            let format = match format {
                None => None,
                Some(f) => Some(
                    ImportFormat::parse(f)
                        .with_context(|| format!("unknown format {f:?}: use 1c or csv"))?,
                ),
            };
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let mut session = open(client, who).await?;
            let result =
                statements::import_orders(&mut session, &bytes, format, *skip_invalid).await;
            finish(session).await;
            let report = match result {
                Ok(report) => report,
                Err(ExchangeError::BadLines(problems)) => {
                    report_lines(file, &problems);
                    bail!(ExchangeError::BadLines(problems));
                }
                Err(ExchangeError::Client(e)) => return Err(e.into()),
                Err(e) => return Err(e.into()),
            };
            report_lines(file, &report.problems);
            if json {
                let outcomes: Vec<_> = report
                    .outcomes
                    .iter()
                    .map(|(line, o)| json!({ "line": line, "result": o }))
                    .collect();
                println!(
                    "{}",
                    json!({ "imported": outcomes, "skipped": report.problems })
                );
            } else {
                for (line, outcome) in &report.outcomes {
                    match outcome {
                        ImportOutcome::Prepared { id } => println!("line {line}: draft #{id}"),
                        ImportOutcome::Duplicate { existing } => println!(
                            "line {line}: likely a duplicate of order #{existing}, not imported"
                        ),
                    }
                }
            }
            Ok(())
        }
        OrderCommand::List { who, account } => {
            let mut session = open(client, who).await?;
            let result = session.list_orders(account.as_deref()).await;
            finish(session).await;
            print_orders(json, &result?)
        }
    }
}

async fn sign(
    session: &mut BankSession,
    id: u64,
    expected_digest: Option<&str>,
    yes: bool,
) -> Result<OrderView> {
    let summary = session.signing_summary(id).await?;
    eprintln!("{}", describe(&summary));
    if let Some(expected) = expected_digest
        && !expected.trim().eq_ignore_ascii_case(&summary.digest)
    {
        bail!(
            "order {id} has digest {}, not {expected}: not signed",
            summary.digest
        );
    }
    if !yes && std::io::stdin().is_terminal() {
        eprint!("Sign this order? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("not signed");
        }
    }
    Ok(session.sign_order(&summary).await?)
}

async fn template(client: &Client, json: bool, command: &TemplateCommand) -> Result<()> {
    match command {
        TemplateCommand::Save {
            who,
            from_order,
            name,
            no_amount,
        } => {
            let mut session = open(client, who).await?;
            let result = async {
                let o = session.get_order(*from_order).await?.order;
                session
                    .save_template(TemplateContent {
                        name: name.trim().to_owned(),
                        payer_iban: o.payer_iban,
                        payee_name: o.payee_name,
                        payee_tax_code: o.payee_tax_code,
                        payee_iban: o.payee_iban,
                        amount: (!no_amount).then_some(o.amount),
                        currency: o.currency,
                        purpose: o.purpose,
                    })
                    .await
            }
            .await;
            finish(session).await;
            print_templates(json, &[result?])
        }
        TemplateCommand::List { who, account } => {
            let mut session = open(client, who).await?;
            let result = session.templates(account.as_deref()).await;
            finish(session).await;
            print_templates(json, &result?)
        }
        TemplateCommand::Use { who, id, amount } => {
            let amount = match amount {
                Some(a) => Some(payment::parse_amount(a).map_err(ClientError::from)?),
                None => None,
            };
            let mut session = open(client, who).await?;
            let result = session.prepare_from_template(*id, amount).await;
            finish(session).await;
            print_order(json, &result?)
        }
        TemplateCommand::Delete { who, id } => {
            let mut session = open(client, who).await?;
            let result = session.delete_template(*id).await;
            finish(session).await;
            result?;
            print_deleted(json, "Template ", *id)
        }
    }
}

/// Says that `what` `id` was deleted.
fn print_deleted(json: bool, what: &str, id: u64) -> Result<()> {
    if json {
        println!("{}", json!({ "deleted": id }));
    } else {
        println!("{what}{id} deleted.");
    }
    Ok(())
}

fn print_templates(json: bool, templates: &[Template]) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(templates)?);
    } else if templates.is_empty() {
        println!("No templates.");
    } else {
        for t in templates {
            let c = &t.content;
            let amount = c
                .amount
                .map_or_else(|| "(amount each time)".to_owned(), payment::format_amount);
            println!(
                "{:<5} {} on {}: {amount} {} to {} ({})",
                t.id,
                printable(&c.name),
                c.payer_iban,
                c.currency,
                printable(&c.payee_name),
                c.payee_iban
            );
        }
    }
    Ok(())
}

async fn counterparty(client: &Client, json: bool, command: &CounterpartyCommand) -> Result<()> {
    match command {
        CounterpartyCommand::Add {
            who,
            account,
            name,
            tax_code,
            iban,
            purpose,
        } => {
            let content = CounterpartyContent {
                account: payment::Iban::parse(account)
                    .map_err(ClientError::from)?
                    .to_string(),
                name: name.trim().to_owned(),
                tax_code: payment::TaxCode::parse(tax_code)
                    .map_err(ClientError::from)?
                    .as_str()
                    .to_owned(),
                iban: payment::Iban::parse(iban)
                    .map_err(ClientError::from)?
                    .to_string(),
                purpose: purpose.trim().to_owned(),
            };
            let mut session = open(client, who).await?;
            let result = session.save_counterparty(content).await;
            finish(session).await;
            print_counterparties(json, &[result?])
        }
        CounterpartyCommand::List { who, account } => {
            let mut session = open(client, who).await?;
            let result = session.counterparties(account.as_deref()).await;
            finish(session).await;
            print_counterparties(json, &result?)
        }
        CounterpartyCommand::Pay {
            who,
            id,
            amount,
            purpose,
        } => {
            let amount = payment::parse_amount(amount).map_err(ClientError::from)?;
            let mut session = open(client, who).await?;
            let result = async {
                let c = session
                    .counterparties(None)
                    .await?
                    .into_iter()
                    .find(|c| c.id == *id)
                    .ok_or_else(|| ClientError::NotPossible(format!("no counterparty {id}")))?
                    .content;
                let currency = session
                    .overview()
                    .await?
                    .accounts
                    .into_iter()
                    .find(|a| a.iban == c.account)
                    .map(|a| a.currency)
                    .unwrap_or_default();
                let order = PaymentOrder {
                    payer_iban: c.account,
                    payee_name: c.name,
                    payee_tax_code: c.tax_code,
                    payee_iban: c.iban,
                    amount,
                    currency,
                    purpose: purpose.clone().unwrap_or(c.purpose),
                };
                session.prepare_order(&order).await
            }
            .await;
            finish(session).await;
            print_order(json, &result?)
        }
        CounterpartyCommand::Delete { who, id } => {
            let mut session = open(client, who).await?;
            let result = session.delete_counterparty(*id).await;
            finish(session).await;
            result?;
            print_deleted(json, "Counterparty ", *id)
        }
    }
}

fn print_counterparties(json: bool, list: &[Counterparty]) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(list)?);
    } else if list.is_empty() {
        println!("No counterparties.");
    } else {
        for c in list {
            let e = &c.content;
            println!(
                "{:<5} {} ({}), {} — in the directory of {}",
                c.id,
                printable(&e.name),
                e.tax_code,
                e.iban,
                e.account
            );
        }
    }
    Ok(())
}

/// Shows a batch (each order, the count and the totals), checks the expected batch digest or
/// asks on a terminal, then signs each order.
async fn sign_batch(
    session: &mut BankSession,
    ids: &[u64],
    expected_digest: Option<&str>,
    yes: bool,
) -> Result<Vec<tresor_core::api::SignResult>> {
    let summary = session.batch_summary(ids).await?;
    for o in &summary.orders {
        eprintln!("{}", describe(o));
    }
    let totals: Vec<String> = summary
        .totals
        .iter()
        .map(|(currency, amount)| format!("{amount} {currency}"))
        .collect();
    eprintln!(
        "{} orders, in all {}. Batch digest {}.",
        summary.orders.len(),
        totals.join(", "),
        summary.digest
    );
    if let Some(expected) = expected_digest
        && !expected.trim().eq_ignore_ascii_case(&summary.digest)
    {
        bail!(
            "the batch has digest {}, not {expected}: nothing signed",
            summary.digest
        );
    }
    if !yes && std::io::stdin().is_terminal() {
        eprint!("Sign these {} orders? [y/N] ", summary.orders.len());
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("nothing signed");
        }
    }
    Ok(session.sign_batch(&summary).await?)
}

fn print_orders(json: bool, orders: &[OrderView]) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(orders)?);
    } else if orders.is_empty() {
        println!("No orders.");
    } else {
        for o in orders {
            println!(
                "#{:<6} {:<13} {:>14} {} to {} ({}) digest {}",
                o.id,
                o.status.as_str(),
                payment::format_amount(o.order.amount),
                o.order.currency,
                printable(&o.order.payee_name),
                o.order.payee_iban,
                o.short_digest
            );
        }
    }
    Ok(())
}

fn describe(s: &SigningSummary) -> String {
    printable(&format!(
        "Order #{} version {}: pay {} {} from {} to {}, IBAN {}. Digest {}.",
        s.id, s.version, s.amount, s.currency, s.payer_iban, s.payee_name, s.payee_iban, s.digest
    ))
    .into_owned()
}

// ---------------------------------------------------------------------------------------------
// Reports.

#[derive(Serialize)]
struct LoginReport {
    login: String,
    name: String,
    stage: Stage,
    certificate: Option<tresor_core::api::CertificateStatus>,
    reminder: Option<Reminder>,
    overview: Overview,
}

async fn login_report(session: &mut BankSession) -> Result<(LoginReport, Overview)> {
    let info = session
        .info()
        .cloned()
        .context("the session is not logged in")?;
    let overview = session.overview().await?;
    let reminder = session.key().and_then(|k| {
        reminder::renewal_reminder(pki::not_after(&k.certificate), SystemTime::now())
    });
    Ok((
        LoginReport {
            login: info.login,
            name: info.name,
            stage: overview.stage,
            certificate: info.certificate,
            reminder,
            overview: overview.clone(),
        },
        overview,
    ))
}

fn print_overview(o: &Overview) {
    println!(
        "{} ({}), logged in with {}{}",
        o.name,
        o.login,
        match o.stage {
            Stage::Key => "the key",
            Stage::Otp => "a one-time code: view and prepare only",
            _ => "a restricted session",
        },
        if o.restricted {
            "; rights restricted while an emergency password is pending"
        } else {
            ""
        }
    );
    for a in &o.accounts {
        let r = a.rights;
        let rights: Vec<&str> = [
            (r.view, "view"),
            (r.prepare, "prepare"),
            (r.sign, "sign"),
            (r.send, "send"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect();
        println!(
            "  {}  {:>14} {}  {}  [{}]{}",
            a.iban,
            payment::format_amount(a.balance),
            a.currency,
            a.holder,
            rights.join(", "),
            if a.signatures_required > 1 {
                " (two signatures)"
            } else {
                ""
            }
        );
    }
}

fn print_order(json: bool, o: &OrderView) -> Result<()> {
    let summary = SigningSummary::of(o)?;
    if json {
        let mut value = serde_json::to_value(o)?;
        value["summary"] = serde_json::to_value(&summary)?;
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{} Status: {}.", describe(&summary), o.status.as_str());
        if let Some(reason) = &o.reject_reason {
            println!("Rejected: {reason}");
        }
    }
    Ok(())
}

fn print_certificate(json: bool, what: &str, c: &KeyCertificate) -> Result<()> {
    if json {
        let mut value = serde_json::to_value(c)?;
        value["done"] = json!(what);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "Key {what}: {} (certificate {}, valid until {}).",
            c.key_path.display(),
            c.serial,
            tresor_client::format_time(
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(c.not_after)
            )
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Offline commands.

fn setup(cli: &Cli) -> Result<()> {
    let (Some(server), Some(bank_ca)) = (&cli.server, &cli.bank_ca) else {
        bail!(
            "give the bank's address and CA certificate: tresor setup --server URL --bank-ca FILE"
        );
    };
    let settings = Settings {
        server: server.clone(),
        bank_ca: bank_ca.clone(),
        pkcs11_module: settings::stored_pkcs11_module(cli.config.as_deref()),
    };
    let path = settings.save(cli.config.as_deref())?;
    if cli.json {
        println!("{}", json!({ "settings": path }));
    } else {
        println!("Saved {}.", path.display());
    }
    Ok(())
}

fn media_list(json: bool, module: Option<&Path>) -> Result<()> {
    let drives = SystemMedia.list()?;
    // Tokens are listed where a module is configured or installed. A module named (flag,
    // environment, settings) that fails is an error; an installed default that fails (a
    // SoftHSM2 whose token folder this user may not read) only goes unlisted.
    let named =
        module.is_some() || std::env::var_os(token::MODULE_ENV).is_some_and(|v| !v.is_empty());
    let tokens = match token::resolve_module(module)
        .and_then(|path| TokenModule::load(&path))
        .and_then(|m| m.tokens())
    {
        Ok(tokens) => tokens,
        Err(e) if named => return Err(ClientError::from(e).into()),
        Err(token::TokenError::NoModule) => Vec::new(),
        Err(e) => {
            eprintln!("tresor: tokens are not listed: {e}");
            Vec::new()
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "drives": drives, "tokens": tokens }))?
        );
        return Ok(());
    }
    if drives.is_empty() {
        println!("No drives found.");
    }
    for t in &tokens {
        println!(
            "{:<9} {:<24} {:<32} serial {}",
            "token", t.label, t.model, t.serial
        );
    }
    for d in drives {
        println!(
            "{:<9} {:<24} {:<32} {:>10} free of {:>10}  {}{}",
            if d.removable { "removable" } else { "fixed" },
            d.label,
            d.mount_path.display(),
            human_bytes(d.free_bytes),
            human_bytes(d.total_bytes),
            d.file_system,
            if d.read_only { " (read-only)" } else { "" },
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct KeyReport {
    login: String,
    key_path: PathBuf,
    generation: u32,
    fingerprint: String,
    certificate_expires: Option<u64>,
}

fn key_generate(json: bool, drive: &Path, login: &str) -> Result<()> {
    let login = Login::new(login).context("invalid login")?;
    let store = KeyStore::new(drive, &login);
    // Refuse before asking for a password; the store refuses again when it writes.
    if let Some(g) = store.latest_key()? {
        return Err(StoreError::KeyExists(store.key_path(g.number)).into());
    }
    let password = new_key_password()?;
    let pending = store.create_first_key(&password)?;
    if json {
        let report = KeyReport {
            login: login.to_string(),
            key_path: pending.key_path.clone(),
            generation: pending.generation,
            fingerprint: pending.key.fingerprint(),
            certificate_expires: None,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", pending.key_path.display());
    }
    Ok(())
}

fn key_check(json: bool, drive: &Path, login: &str) -> Result<()> {
    let login = Login::new(login).context("invalid login")?;
    let store = KeyStore::new(drive, &login);
    // Fail on a missing key before asking for a password.
    if store.latest_key()?.is_none() {
        return Err(StoreError::KeyNotFound {
            login: login.to_string(),
            dir: store.dir().to_path_buf(),
        }
        .into());
    }
    let password = secret("TRESOR_KEY_PASSWORD", "Key password: ")?;
    let unlocked = store.unlock_latest(&password, &KdfLimits::DEFAULT)?;
    let expires = unlocked
        .certificate
        .as_ref()
        .map(|c| tresor_client::unix_seconds(pki::not_after(c)));
    if json {
        let report = KeyReport {
            login: login.to_string(),
            key_path: unlocked.key_path.clone(),
            generation: unlocked.generation,
            fingerprint: unlocked.key.fingerprint(),
            certificate_expires: expires,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", unlocked.key.fingerprint());
    }
    Ok(())
}

#[derive(Serialize)]
struct KeyStatus {
    login: String,
    drive: PathBuf,
    generation: u32,
    serial: String,
    not_after: u64,
    reminder: Option<Reminder>,
    backup_generation: Option<u32>,
    pending_generation: Option<u32>,
}

fn key_status(json: bool, login: &str, drive: Option<&Path>) -> Result<()> {
    let login = Login::new(login).context("invalid login")?;
    let store = flows::find_store(&SystemMedia, &login, drive)?;
    let gens = store.key_generations().map_err(ClientError::from)?;
    let cert = store.certificate(gens.current).map_err(ClientError::from)?;
    let not_after = pki::not_after(&cert);
    let status = KeyStatus {
        login: login.to_string(),
        drive: store.drive().to_path_buf(),
        generation: gens.current,
        serial: pki::serial_hex(cert.tbs_certificate().serial_number()),
        not_after: tresor_client::unix_seconds(not_after),
        reminder: reminder::renewal_reminder(not_after, SystemTime::now()),
        backup_generation: gens.backup,
        pending_generation: gens.pending,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!(
            "Key generation {} on {}: certificate {} valid until {}.",
            status.generation,
            status.drive.display(),
            status.serial,
            tresor_client::format_time(not_after)
        );
        match &status.reminder {
            Some(r) => println!("Reminder: {}.", r.message()),
            None => println!("No renewal needed yet."),
        }
    }
    Ok(())
}

/// Writes the key letter of the login's current certificate.
fn key_letter(
    json: bool,
    login: &str,
    drive: Option<&Path>,
    output: &Path,
    details: LetterDetails,
) -> Result<()> {
    let login = Login::new(login).context("invalid login")?;
    let store = flows::find_store(&SystemMedia, &login, drive)?;
    let gens = store.key_generations().map_err(ClientError::from)?;
    let cert = store.certificate(gens.current).map_err(ClientError::from)?;
    let pdf = letter::key_letter_pdf(&cert, &details, SystemTime::now())?;
    std::fs::write(output, pdf).with_context(|| format!("cannot write {}", output.display()))?;
    let fingerprint = pki::fingerprint_text(&pki::key_fingerprint(&cert)?);
    let serial = pki::serial_hex(cert.tbs_certificate().serial_number());
    if json {
        println!(
            "{}",
            json!({ "letter": output, "fingerprint": fingerprint, "serial": serial })
        );
    } else {
        println!(
            "Key letter written to {}: print it, sign it, seal it and bring it to the bank.\n\
             Key fingerprint (SHA-256): {fingerprint}",
            output.display()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Profile.

async fn profile(client: &Client, json: bool, command: &ProfileCommand) -> Result<()> {
    let who = match command {
        ProfileCommand::Show(who) | ProfileCommand::Confirm(who) => who,
        ProfileCommand::Email { who, .. } | ProfileCommand::Set { who, .. } => who,
    };
    // Checked before the key is opened: bad input spends nothing.
    let set = match command {
        ProfileCommand::Set {
            language, quiet, ..
        } => {
            let language = match language.as_str() {
                "both" => None,
                l => Some(
                    Language::parse(l)
                        .with_context(|| format!("unknown language {l:?}: use uk, en or both"))?,
                ),
            };
            let quiet = quiet
                .iter()
                .filter(|q| !q.is_empty())
                .map(|q| {
                    NoticeKind::parse(q.trim()).with_context(|| format!("unknown notice {q:?}"))
                })
                .collect::<Result<Vec<_>>>()?;
            Some((language, quiet))
        }
        _ => None,
    };
    let code = match command {
        ProfileCommand::Confirm(_) => Some(secret("TRESOR_EMAIL_CODE", "Code from the mail: ")?),
        _ => None,
    };
    let mut session = open(client, who).await?;
    let result = match (command, set, code) {
        (ProfileCommand::Email { address, .. }, _, _) => {
            session.set_email(address).await.map(ProfileOutcome::Sent)
        }
        (_, Some((language, quiet)), _) => session
            .set_preferences(language, quiet)
            .await
            .map(ProfileOutcome::Profile),
        (_, _, Some(code)) => session
            .confirm_email(&code)
            .await
            .map(ProfileOutcome::Profile),
        _ => session.profile().await.map(ProfileOutcome::Profile),
    };
    finish(session).await;
    match result? {
        ProfileOutcome::Sent(to) => {
            if json {
                println!("{}", json!({ "code_sent_to": to }));
            } else {
                println!(
                    "A code was sent to {to}. Confirm with `tresor profile confirm` within 15 \
                     minutes; until then the bank writes to your current address."
                );
            }
        }
        ProfileOutcome::Profile(p) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                println!(
                    "E-mail:    {}",
                    p.email.as_deref().unwrap_or("(none verified)")
                );
                if let Some(pending) = &p.pending_email {
                    println!("Pending:   {pending} (waiting for its code)");
                }
                println!("Language:  {}", p.language.map_or("both", Language::as_str));
                let quiet: Vec<&str> = p.quiet.iter().map(|k| k.as_str()).collect();
                println!(
                    "Turned off: {}",
                    if quiet.is_empty() {
                        "none".to_owned()
                    } else {
                        quiet.join(", ")
                    }
                );
            }
        }
    }
    Ok(())
}

/// What a profile command got back.
enum ProfileOutcome {
    Sent(String),
    Profile(tresor_core::api::profile::Profile),
}

// ---------------------------------------------------------------------------------------------
// Secrets and small helpers.

fn secret(var: &str, prompt: &str) -> Result<Password> {
    Ok(prompt::secret(var, prompt)?)
}

fn new_secret(var: &str, prompt: &str) -> Result<Password> {
    Ok(prompt::new_secret(var, prompt)?)
}

fn new_login_password(login: &Login) -> Result<Password> {
    let new = new_secret("TRESOR_NEW_PASSWORD", "New password: ")?;
    new.check_new_login_password(login)
        .map_err(ClientError::from)?;
    Ok(new)
}

/// The login's key: on the token named, on the drive named, or on the first drive with one.
/// The module: `--pkcs11-module` or `TRESOR_PKCS11_MODULE`, else the settings file's, else
/// the usual places.
fn key_home(client: &Client, login: &Login, medium: &Medium) -> Result<KeyHome> {
    if let Some(which) = &medium.token {
        let named = medium.pkcs11_module.as_deref().or(client.pkcs11_module());
        let path = token::resolve_module(named).map_err(ClientError::from)?;
        let module = TokenModule::load(&path).map_err(ClientError::from)?;
        let store = TokenStore::open(module, which, login).map_err(ClientError::from)?;
        return Ok(store.into());
    }
    Ok(flows::find_store(&SystemMedia, login, medium.drive.as_deref())?.into())
}

/// What opens the key: the token's PIN, or the key file's password.
fn key_secret(home: &KeyHome) -> Result<Password> {
    if home.is_token() {
        secret(token::PIN_ENV, "Token PIN: ")
    } else {
        secret("TRESOR_KEY_PASSWORD", "Key password: ")
    }
}

fn new_key_password() -> Result<Password> {
    let pw = new_secret("TRESOR_KEY_PASSWORD", "New key password: ")?;
    pw.check_new_key_password().map_err(ClientError::from)?;
    Ok(pw)
}

/// The design asks for a clear warning when the key goes to a fixed disk.
fn warn_if_fixed(drive: &Path) {
    if let Some(w) = media::fixed_disk_warning(&SystemMedia, drive) {
        let on = w
            .disk
            .map(|d| format!(" (it is on the fixed disk {})", d.display()))
            .unwrap_or_default();
        eprintln!(
            "tresor: warning: {} is not on a removable drive{on}; anyone with this computer \
             has the key file",
            drive.display()
        );
    }
}

/// Writes a file readable by the user only (the QR code holds the TOTP secret).
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Writes a statement to `output` (whole or not at all: a partial file is removed) or to the
/// standard output.
async fn statement(
    client: &Client,
    session: &mut BankSession,
    account: &str,
    period: (Day, Day),
    format: Format,
    output: Option<&Path>,
) -> Result<statements::Exported> {
    let bank = client.bank_name();
    let Some(path) = output else {
        let stdout = std::io::BufWriter::new(std::io::stdout());
        return Ok(
            statements::export_statement(session, &bank, account, period, format, stdout).await?,
        );
    };
    let partial = path.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let writer = std::io::BufWriter::new(
        file.try_clone()
            .with_context(|| format!("creating {}", partial.display()))?,
    );
    let done = statements::export_statement(session, &bank, account, period, format, writer).await;
    let done = done.and_then(|d| {
        file.sync_all()
            .map_err(|e| statements::ExchangeError::Export(e.into()))?;
        Ok(d)
    });
    match done {
        Ok(d) => {
            std::fs::rename(&partial, path)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(d)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            match e {
                statements::ExchangeError::Client(e) => Err(e.into()),
                e => Err(e.into()),
            }
        }
    }
}

/// Prints an import's bad lines, one per line, to standard error.
fn report_lines(file: &Path, problems: &[LineProblem]) {
    for p in problems {
        eprintln!(
            "{}: line {}, {}: {}",
            file.display(),
            p.line,
            printable(&p.field),
            printable(&p.reason)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn exit_codes_follow_the_error_kind() {
        let code = |e: ClientError| exit_code(&anyhow::Error::from(e));
        assert_eq!(
            code(ClientError::LoginFailed("no".into())),
            EXIT_CREDENTIALS
        );
        assert_eq!(
            code(ClientError::AccountLocked("locked".into())),
            EXIT_LOCKED
        );
        assert_eq!(code(ClientError::WrongKeyPassword), EXIT_KEY);
        assert_eq!(code(ClientError::CertificateRevoked), EXIT_KEY);
        assert_eq!(code(ClientError::SessionExpired(300)), EXIT_NETWORK);
        assert_eq!(
            code(ClientError::Refused(tresor_core::api::ApiError::new(
                tresor_core::api::ErrorCode::Forbidden,
                "no"
            ))),
            EXIT_REFUSED
        );
        assert_eq!(exit_code(&anyhow::anyhow!("other")), 1);
    }
}
