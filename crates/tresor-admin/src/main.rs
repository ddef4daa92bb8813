//! `tresor-admin`: bank administration over the secure channel, against a running bank, with
//! the admin's own key (on a drive) and password. Every command logs in, does one thing and
//! logs out; the bank checks the admin's roles on each, and the dangerous ones wait for a
//! second admin (`request list`, `request approve ID`), who alone sees the secret they make.
//!
//! Secrets are never arguments: the password from `TRESOR_ADMIN_PASSWORD`, the key password
//! from `TRESOR_KEY_PASSWORD` (and `TRESOR_NEW_PASSWORD`, `TRESOR_EMERGENCY_PASSWORD` where a
//! flow needs them), or asked on the terminal without echo. A secret the bank hands out is
//! printed once, as the last line (or in the `secret` field with `--json`).
//!
//! Exit codes: 0 done, 1 other error, 2 bad usage, 3 login refused, 4 key or drive problem,
//! 5 account locked or address blocked, 6 network, 7 the bank refused the request (invalid,
//! not found, conflict, not on this session), 8 the admin's roles or a four-eyes rule do not
//! allow it.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::json;
use tresor_client::error::{ClientError, ErrorKind};
use tresor_client::flows::{self, Client};
use tresor_client::keystore::{KeyStore, StoreError};
use tresor_client::media::SystemMedia;
use tresor_client::prompt;
use tresor_client::session::BankSession;
use tresor_client::settings::Settings;
use tresor_core::api::admin::{
    AccountRow, AdminAction, AdminView, ApprovalView, AuditRecord, CertificateView, IssuedSecret,
    UserDetails, UserSummary, parse_roles, roles_text,
};
use tresor_core::api::{ErrorCode, Menus, Reply, Rights};
use tresor_core::keyfile::KeyFileError;
use tresor_core::login::Login;
use tresor_core::payment;
use tresor_core::secret::Password;
use tresor_core::text::printable;

const EXIT_CREDENTIALS: u8 = 3;
const EXIT_KEY: u8 = 4;
const EXIT_LOCKED: u8 = 5;
const EXIT_NETWORK: u8 = 6;
const EXIT_REFUSED: u8 = 7;
const EXIT_FORBIDDEN: u8 = 8;

#[derive(Parser)]
#[command(
    name = "tresor-admin",
    version,
    about = "Tresor bank administration, over the secure channel with an admin's key"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The settings file (default: the client's, client.toml in the OS's config folder).
    #[arg(long, global = true, env = "TRESOR_CLIENT_CONFIG")]
    config: Option<PathBuf>,
    /// The bank's address, https://host:port.
    #[arg(long, global = true, env = "TRESOR_SERVER")]
    server: Option<String>,
    /// The bank CA certificate, PEM.
    #[arg(long, global = true, env = "TRESOR_BANK_CA")]
    bank_ca: Option<PathBuf>,
    /// The admin's login.
    #[arg(long, global = true, env = "TRESOR_ADMIN_LOGIN")]
    login: Option<String>,
    /// Mount path of the drive with the admin's key (default: the first drive with one).
    #[arg(long, global = true, env = "TRESOR_DRIVE")]
    drive: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// First login: the initial password (TRESOR_ADMIN_PASSWORD), a new password
    /// (TRESOR_NEW_PASSWORD), and the admin's first key on the drive (--drive).
    FirstLogin,
    /// Recovery with an emergency password two security officers issued: a new key.
    Recover,
    /// Who you are and your roles.
    Whoami,
    /// Users (clients and admins).
    #[command(subcommand)]
    User(UserCommand),
    /// Accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Rights of users on accounts (granting sign or send waits for a second manager).
    Rights {
        /// grant or revoke.
        action: GrantOrRevoke,
        /// The user.
        user: String,
        /// The account.
        iban: String,
        /// Comma-separated: view,prepare,sign,send (or all).
        rights: String,
    },
    /// Certificates.
    #[command(subcommand)]
    Cert(CertCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Admin accounts (creating one and changing roles wait for a second officer).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Four-eyes requests.
    #[command(subcommand)]
    Request(RequestCommand),
    /// The break-glass window for the local `tresor-bank break-glass` commands.
    #[command(subcommand)]
    BreakGlass(BreakGlassCommand),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GrantOrRevoke {
    Grant,
    Revoke,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MenusArg {
    Full,
    Limited,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Users whose login or name contains QUERY (all without one).
    Find { query: Option<String> },
    /// A user's status, certificates and rights.
    Show { user: String },
    /// Creates a client user; prints the initial password last, or with --email the bank
    /// sends it to the user and nobody sees it.
    Add {
        user: String,
        #[arg(long)]
        name: String,
        /// The user's e-mail address, where the bank sends the initial password.
        #[arg(long)]
        email: Option<String>,
    },
    /// Sets a user's mobile number for the SMS second step (`+380…`), or removes it
    /// (security officer).
    Phone {
        user: String,
        /// The number; none with --remove.
        #[arg(required_unless_present = "remove")]
        phone: Option<String>,
        #[arg(long, conflicts_with = "phone")]
        remove: bool,
    },
    /// Locks a user.
    Lock { user: String },
    /// Suspends every certificate of a user and ends their sessions (the user's call that the
    /// key is stolen); a recovery with an emergency password lifts it.
    Suspend { user: String },
    /// Unlocks a user.
    Unlock { user: String },
    /// Full or limited menus.
    Menus { user: String, menus: MenusArg },
    /// Asks for a temporary password (a second admin approves and gets it).
    TempPassword { user: String },
    /// Asks for an emergency password (a second security officer approves and gets it).
    EmergencyPassword { user: String },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Opens an account.
    Add {
        iban: String,
        #[arg(long)]
        holder: String,
        #[arg(long, default_value = "UAH")]
        currency: String,
        /// Opening balance, e.g. 1000.00.
        #[arg(long, default_value = "0")]
        balance: String,
    },
    /// Lists accounts.
    List,
    /// Signatures an order needs (lowering waits for a second manager).
    Signatures { iban: String, count: u8 },
}

#[derive(Subcommand)]
enum CertCommand {
    /// Certificates, of one login or all.
    List { user: Option<String> },
    /// Revokes a certificate.
    Revoke { serial: String },
    /// Activates a user's new certificate from the signed key letter: type the fingerprint
    /// printed on it.
    Activate {
        user: String,
        /// The key's SHA-256 fingerprint from the letter (spaces allowed).
        #[arg(long)]
        fingerprint: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Records, newest first.
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        event: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Checks the chain and its anchor.
    Verify,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Admins and their roles.
    List,
    /// Asks for a new admin (the approver gets the initial password).
    Add {
        admin: String,
        #[arg(long)]
        name: String,
        /// Comma-separated: helpdesk, security_officer, account_manager, auditor.
        #[arg(long)]
        roles: String,
    },
    /// Asks to set an admin's roles.
    Roles { admin: String, roles: String },
}

#[derive(Subcommand)]
enum RequestCommand {
    /// Requests pending, and those decided lately.
    List,
    /// Approves a request and carries it out; prints its secret last, once.
    Approve { id: u64 },
    /// Rejects a request (or withdraws your own).
    Reject { id: u64 },
}

#[derive(Subcommand)]
enum BreakGlassCommand {
    /// Asks for a window (another security officer approves).
    Request {
        #[arg(long)]
        reason: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(run(&cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tresor-admin: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn exit_code(err: &anyhow::Error) -> u8 {
    for e in err.chain() {
        if let Some(e) = e.downcast_ref::<ClientError>() {
            if let ClientError::Refused(api) = e
                && api.code == ErrorCode::Forbidden
            {
                return EXIT_FORBIDDEN;
            }
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

async fn run(cli: &Cli) -> Result<()> {
    let settings = Settings::resolve(
        cli.config.as_deref(),
        cli.server.clone(),
        cli.bank_ca.clone(),
    )
    .map_err(ClientError::from)?;
    let client = Client::new(&settings)?;
    let login = Login::new(
        cli.login
            .as_deref()
            .context("name the admin's login (--login or TRESOR_ADMIN_LOGIN)")?,
    )
    .context("invalid login")?;
    match &cli.command {
        Command::FirstLogin => return first_login(cli, &client, &login).await,
        Command::Recover => return recover(cli, &client, &login).await,
        _ => {}
    }
    let action = action_of(&cli.command)?;
    let mut session = open(cli, &client, &login).await?;
    let result = session.admin(action).await;
    let _ = session.logout(&SystemMedia).await;
    let reply = result?;
    print_reply(cli.json, &reply)
}

/// The admin action a command sends.
fn action_of(command: &Command) -> Result<AdminAction> {
    Ok(match command {
        Command::FirstLogin | Command::Recover => bail!("not an admin action"),
        Command::Whoami => AdminAction::WhoAmI {},
        Command::User(c) => match c {
            UserCommand::Find { query } => AdminAction::FindUsers {
                query: query.clone(),
            },
            UserCommand::Show { user } => AdminAction::ShowUser {
                login: user.clone(),
            },
            UserCommand::Add { user, name, email } => AdminAction::AddUser {
                login: user.clone(),
                name: name.clone(),
                email: email.clone(),
            },
            UserCommand::Phone { user, phone, .. } => AdminAction::SetPhone {
                login: user.clone(),
                phone: phone.clone(),
            },
            UserCommand::Lock { user } => AdminAction::LockUser {
                login: user.clone(),
            },
            UserCommand::Suspend { user } => AdminAction::SuspendUser {
                login: user.clone(),
            },
            UserCommand::Unlock { user } => AdminAction::UnlockUser {
                login: user.clone(),
            },
            UserCommand::Menus { user, menus } => AdminAction::SetMenus {
                login: user.clone(),
                menus: match menus {
                    MenusArg::Full => Menus::Full,
                    MenusArg::Limited => Menus::Limited,
                },
            },
            UserCommand::TempPassword { user } => AdminAction::TempPassword {
                login: user.clone(),
            },
            UserCommand::EmergencyPassword { user } => AdminAction::EmergencyPassword {
                login: user.clone(),
            },
        },
        Command::Account(c) => match c {
            AccountCommand::Add {
                iban,
                holder,
                currency,
                balance,
            } => AdminAction::AddAccount {
                iban: iban.clone(),
                holder: holder.clone(),
                currency: currency.clone(),
                balance: payment::parse_amount(balance)?,
            },
            AccountCommand::List => AdminAction::ListAccounts {},
            AccountCommand::Signatures { iban, count } => AdminAction::SetSignatures {
                iban: iban.clone(),
                count: *count,
            },
        },
        Command::Rights {
            action,
            user,
            iban,
            rights,
        } => AdminAction::ChangeRights {
            login: user.clone(),
            iban: iban.clone(),
            rights: Rights::parse(rights).map_err(anyhow::Error::msg)?,
            grant: matches!(action, GrantOrRevoke::Grant),
        },
        Command::Cert(c) => match c {
            CertCommand::List { user } => AdminAction::ListCertificates {
                login: user.clone(),
            },
            CertCommand::Revoke { serial } => AdminAction::RevokeCertificate {
                serial: serial.clone(),
            },
            CertCommand::Activate { user, fingerprint } => AdminAction::ActivateCertificate {
                login: user.clone(),
                fingerprint: fingerprint.clone(),
            },
        },
        Command::Audit(c) => match c {
            AuditCommand::List { user, event, limit } => AdminAction::AuditList {
                login: user.clone(),
                event: event.clone(),
                from: None,
                until: None,
                limit: *limit,
            },
            AuditCommand::Verify => AdminAction::AuditVerify {},
        },
        Command::Admin(c) => match c {
            AdminCommand::List => AdminAction::ListAdmins {},
            AdminCommand::Add { admin, name, roles } => AdminAction::AddAdmin {
                login: admin.clone(),
                name: name.clone(),
                roles: parse_roles(roles).map_err(anyhow::Error::msg)?,
            },
            AdminCommand::Roles { admin, roles } => AdminAction::SetRoles {
                login: admin.clone(),
                roles: parse_roles(roles).map_err(anyhow::Error::msg)?,
            },
        },
        Command::Request(c) => match c {
            RequestCommand::List => AdminAction::ListRequests {},
            RequestCommand::Approve { id } => AdminAction::Approve { id: *id },
            RequestCommand::Reject { id } => AdminAction::Reject { id: *id },
        },
        Command::BreakGlass(BreakGlassCommand::Request { reason }) => AdminAction::BreakGlass {
            reason: reason.clone(),
        },
    })
}

/// A logged-in admin session with the key.
async fn open(cli: &Cli, client: &Client, login: &Login) -> Result<BankSession> {
    let store = flows::find_store(&SystemMedia, login, cli.drive.as_deref())?;
    let password = secret("TRESOR_ADMIN_PASSWORD", "Admin password: ")?;
    let key_password = secret("TRESOR_KEY_PASSWORD", "Key password: ")?;
    Ok(client
        .login_with_key(&store.into(), &password, &key_password, &|_| {})
        .await?)
}

async fn first_login(cli: &Cli, client: &Client, login: &Login) -> Result<()> {
    let drive = cli
        .drive
        .as_deref()
        .context("name the drive for the new key (--drive)")?;
    let initial = secret("TRESOR_ADMIN_PASSWORD", "Initial password: ")?;
    let new = new_secret("TRESOR_NEW_PASSWORD", "New password: ")?;
    new.check_new_login_password(login)
        .map_err(ClientError::from)?;
    let key_password = new_secret("TRESOR_KEY_PASSWORD", "New key password: ")?;
    key_password
        .check_new_key_password()
        .map_err(ClientError::from)?;
    let done = client
        .first_login(
            &KeyStore::new(drive, login).into(),
            &initial,
            &new,
            &key_password,
            &|_| {},
        )
        .await?;
    print_enrolled(cli.json, "enrolled", &done)
}

async fn recover(cli: &Cli, client: &Client, login: &Login) -> Result<()> {
    let drive = cli
        .drive
        .as_deref()
        .context("name the drive for the new key (--drive)")?;
    let password = secret("TRESOR_ADMIN_PASSWORD", "Admin password: ")?;
    let emergency = secret(
        "TRESOR_EMERGENCY_PASSWORD",
        "Emergency password from the bank: ",
    )?;
    let key_password = new_secret("TRESOR_KEY_PASSWORD", "New key password: ")?;
    key_password
        .check_new_key_password()
        .map_err(ClientError::from)?;
    let done = client
        .recover(
            &KeyStore::new(drive, login).into(),
            &password,
            &emergency,
            &key_password,
            &|_| {},
        )
        .await?;
    print_enrolled(cli.json, "recovered", &done)
}

fn print_enrolled(json: bool, what: &str, c: &flows::KeyCertificate) -> Result<()> {
    if json {
        println!(
            "{}",
            json!({ what: true, "serial": c.serial, "key": c.key_path.display().to_string() })
        );
    } else {
        println!(
            "Admin key {what}: certificate {} ; key at {}.",
            c.serial,
            c.key_path.display()
        );
    }
    Ok(())
}

fn secret(var: &str, prompt: &str) -> Result<Password> {
    Ok(prompt::secret(var, prompt)?)
}

fn new_secret(var: &str, prompt: &str) -> Result<Password> {
    Ok(prompt::new_secret(var, prompt)?)
}

// ---------------------------------------------------------------------------------------------
// Output. What users typed (logins, names, audit details) is shown with control characters
// escaped, so that it cannot drive the admin's terminal.

macro_rules! out {
    ($($arg:tt)*) => {
        println!("{}", printable(&format!($($arg)*)))
    };
}

fn time(t: u64) -> String {
    tresor_client::format_time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
}

fn print_reply(json: bool, reply: &Reply) -> Result<()> {
    if json {
        let value = match reply {
            Reply::Secret(s) => secret_json(s),
            Reply::Approved { request, secret } => json!({
                "request": request,
                "secret": secret.as_ref().map(secret_json),
            }),
            other => serde_json::to_value(other)?,
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    match reply {
        Reply::Done => out!("Done."),
        Reply::Admin(a) => print_admin(a),
        Reply::Admins { admins } => admins.iter().for_each(print_admin),
        Reply::Users { users } => users.iter().for_each(print_user),
        Reply::User(d) => print_details(d),
        Reply::Accounts { accounts } => accounts.iter().for_each(print_account),
        Reply::Rights { rights } => out!("Rights now: {}", rights.names()),
        Reply::Certificates { certificates } => certificates.iter().for_each(print_cert),
        Reply::AuditRecords { records } => records.iter().for_each(print_record),
        Reply::AuditCheck(c) => {
            if c.intact {
                out!(
                    "audit log intact: {} records, chain and anchor verified",
                    c.records
                );
            } else {
                bail!(
                    "audit log tampered: {}",
                    c.problem.as_deref().unwrap_or("?")
                );
            }
        }
        Reply::Requests { requests } => requests.iter().for_each(print_request),
        Reply::Requested(r) => {
            out!(
                "Request #{} filed: {}. Another admin ({}) approves it with `tresor-admin \
                 request approve {}` before {}.",
                r.id,
                r.summary,
                roles_text(&r.approvers),
                r.id,
                time(r.expires_at)
            );
        }
        Reply::Approved { request, secret } => {
            out!("Request #{} approved: {}.", request.id, request.summary);
            if let Some(s) = secret {
                print_secret(s);
            }
        }
        Reply::Secret(s) => print_secret(s),
        Reply::Mailed { login, to } => out!(
            "User {login} created; the bank is sending the initial password to {to} by e-mail."
        ),
        other => out!("{other:?}"),
    }
    Ok(())
}

fn secret_json(s: &IssuedSecret) -> serde_json::Value {
    json!({
        "login": s.login,
        "kind": s.kind,
        "secret": s.secret.expose(),
        "expires_at": s.expires_at,
    })
}

fn print_secret(s: &IssuedSecret) {
    out!(
        "{} password for {}: single use, valid until {}; shown once, hand it over in person.",
        s.kind,
        s.login,
        time(s.expires_at)
    );
    // The secret alone on the last line, unescaped: it is the bank's, not a user's text.
    println!("{}", s.secret.expose());
}

fn print_admin(a: &AdminView) {
    out!(
        "{:<24} {:<32} {:<40} {}",
        a.login,
        a.name,
        roles_text(&a.roles),
        a.status.join(", ")
    );
}

fn print_user(u: &UserSummary) {
    out!("{:<24} {:<32} {}", u.login, u.name, u.status.join(", "));
}

fn print_details(d: &UserDetails) {
    out!("login:    {}", d.summary.login);
    out!("name:     {}", d.summary.name);
    out!("status:   {}", d.summary.status.join(", "));
    out!(
        "menus:    {}",
        match d.menus {
            Menus::Full => "full",
            Menus::Limited => "limited",
        }
    );
    out!("failed logins: {}", d.failed_logins);
    out!(
        "totp:     {}",
        if d.totp { "enrolled" } else { "not enrolled" }
    );
    out!("certificates:");
    for c in &d.certificates {
        print_cert(c);
    }
    out!("rights:");
    for (iban, r) in &d.rights {
        out!("  {iban} {}", r.names());
    }
}

fn print_account(a: &AccountRow) {
    out!(
        "{} {:>16} {} {} signature(s) {}",
        a.iban,
        payment::format_amount(a.balance),
        a.currency,
        a.signatures_required,
        a.holder
    );
}

fn print_cert(c: &CertificateView) {
    let state = match &c.revoked {
        Some((at, why)) => format!("revoked {} ({why})", time(*at)),
        None if c.activation == "pending" => "valid, waiting for its key letter".into(),
        None => "valid".into(),
    };
    out!(
        "  {} {:<16} {:<8} {} → {} {state}",
        c.serial,
        c.login,
        c.purpose,
        time(c.not_before),
        time(c.not_after)
    );
}

fn print_record(r: &AuditRecord) {
    out!(
        "{:>6} {} {:<12} {:<16} {:<18} {:<10} {} {}",
        r.seq,
        time(r.at),
        r.login,
        r.ip,
        r.event,
        r.actor,
        r.outcome,
        r.detail
    );
}

fn print_request(r: &ApprovalView) {
    out!(
        "#{:<5} {:<10} {:<20} by {:<16} until {} {}{}",
        r.id,
        r.status,
        r.action,
        r.requested_by,
        time(r.expires_at),
        r.summary,
        r.decided_by
            .as_deref()
            .map(|d| format!(" (decided by {d})"))
            .unwrap_or_default()
    );
}
