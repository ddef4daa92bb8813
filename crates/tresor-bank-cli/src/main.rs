//! `tresor-bank`: the bank server, and what only the data folder's holder does: create the
//! bank with its first security officer (`init`), migrate, check the audit log, and the
//! break-glass commands. Day-to-day administration is `tresor-admin`, over the channel, with
//! an admin's own key and roles.
//!
//! Break-glass runs the admin commands locally, on the data folder and the database, as
//! `break-glass:<OS user>`, with a reason; once the bank has two security officers it needs a
//! window one asked for and another approved (`tresor-admin break-glass request`), used up
//! by the command. Every use is audited as such.
//!
//! Secrets handed out (initial, temporary and emergency passwords) are printed once, as the
//! last line of the command's output, and nowhere else: not in logs, not in the audit log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use tresor_bank::admin::format_time;
use tresor_bank::clock::SystemClock;
use tresor_bank::config::Config;
use tresor_bank::operations::{self, Operations};
use tresor_bank::proxy::Proxies;
use tresor_bank::server::Purpose;
use tresor_bank::{server, tls};
use tresor_core::api::Menus;
use tresor_core::api::Rights;
use tresor_core::api::admin::{CertificateView, Role, parse_roles, roles_text};
use tresor_core::payment;
use tresor_core::text::printable;

/// Prints a line with every control character escaped: logins, names and audit details come
/// from users, and an escape sequence typed as a login must not drive the admin's terminal.
macro_rules! out {
    ($($arg:tt)*) => {
        println!("{}", printable(&format!($($arg)*)))
    };
}

#[derive(Parser)]
#[command(
    name = "tresor-bank",
    version,
    about = "Tresor's bank server and admin CLI"
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "TRESOR_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder: bank CA, server certificate, secrets, embedded database.
    #[arg(long, global = true, env = "TRESOR_DATA")]
    data: Option<PathBuf>,
    /// PostgreSQL URL instead of the embedded database. Prefer the environment variable
    /// when it holds a password: command lines are visible to other users.
    #[arg(
        long,
        global = true,
        env = "TRESOR_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the bank server. On first start it creates the bank (data folder, bank CA,
    /// database); a database from an older tresor-bank is migrated only with --migrate.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "TRESOR_LISTEN")]
        listen: Option<SocketAddr>,
        /// Seeds a demo company and prints its login and initial password.
        #[arg(long)]
        demo: bool,
        /// Brings an older database's schema up to date first (back it up before).
        #[arg(long)]
        migrate: bool,
    },
    /// Creates a new bank: data folder, bank CA, server certificate, database, and its first
    /// security officer, whose initial password is printed last. Refuses a folder that
    /// already holds a bank.
    Init {
        /// The first security officer's login.
        #[arg(long)]
        admin: String,
        /// Their full name.
        #[arg(long)]
        name: String,
    },
    /// Brings an existing bank's database schema up to date (back it up first).
    Migrate,
    /// Checks the audit log, or prints its head for a witness.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Checks every account's ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Issues a TLS certificate from the bank CA for a load balancer that terminates TLS in
    /// front of the bank (serverAuth only: it can never answer the secure channel), with a
    /// new key; writes certificate, CA certificate and key to --out (0600), as HAProxy's
    /// `crt` and nginx's `ssl_certificate` take them. Audited as `operator:<OS user>`.
    ProxyCertificate {
        /// A host name clients reach the balancer by (repeat for more).
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// An address clients reach the balancer at (repeat for more).
        #[arg(long = "ip")]
        ips: Vec<std::net::IpAddr>,
        /// Where to write the PEM bundle.
        #[arg(long)]
        out: PathBuf,
    },
    /// Payments between this bank and others.
    #[command(subcommand)]
    Payments(PaymentsCommand),
    /// Admin commands run locally, on the data folder and the database: audited as
    /// break-glass; with two security officers, only in a window they approved.
    BreakGlass {
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
        #[command(subcommand)]
        command: BreakGlassCommand,
    },
}

#[derive(Subcommand)]
enum BreakGlassCommand {
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Admin accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Rights of users on accounts.
    Rights {
        /// grant or revoke.
        action: GrantOrRevoke,
        /// The user.
        login: String,
        /// The account.
        iban: String,
        /// Comma-separated: view,prepare,sign,send (or all).
        rights: String,
    },
    /// Certificates.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Lists audit records, newest first.
    AuditList {
        #[arg(long)]
        login: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Creates an admin; prints the initial password as the last line.
    Add {
        login: String,
        /// The full name.
        #[arg(long)]
        name: String,
        /// Comma-separated: helpdesk, security_officer, account_manager, auditor.
        #[arg(long)]
        roles: String,
    },
    /// Sets an admin's roles.
    Roles { login: String, roles: String },
    /// Lists admins and their roles.
    List,
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
    /// Creates a user; prints the one-time initial password as the last line, or with
    /// --email sends it to the user by e-mail (the bank's `[mail]`) and prints only that it
    /// did.
    Add {
        login: String,
        /// The user's full name.
        #[arg(long)]
        name: String,
        /// The user's e-mail address: the initial password goes there, not to the screen.
        #[arg(long)]
        email: Option<String>,
    },
    /// Lists users and their status.
    List,
    /// Shows a user's status, certificates and rights.
    Show { login: String },
    /// Sets the user's mobile number for the SMS second step (`+380…`), or removes it.
    Phone {
        login: String,
        /// The number; none with --remove.
        #[arg(required_unless_present = "remove")]
        phone: Option<String>,
        #[arg(long, conflicts_with = "phone")]
        remove: bool,
    },
    /// Locks an account.
    Lock { login: String },
    /// Unlocks an account.
    Unlock { login: String },
    /// Issues a temporary password (unlocks; must be changed at login); prints it last.
    TempPassword { login: String },
    /// Issues an emergency password for certificate recovery; prints it last.
    EmergencyPassword { login: String },
    /// Full or limited menus.
    Menus { login: String, menus: MenusArg },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Opens an account.
    Add {
        iban: String,
        /// The holder's name.
        #[arg(long)]
        holder: String,
        /// Currency code.
        #[arg(long, default_value = "UAH")]
        currency: String,
        /// Opening balance, e.g. 1000.00.
        #[arg(long, default_value = "0")]
        balance: String,
    },
    /// Lists accounts.
    List,
    /// Sets the signatures an order needs before it is sent (1, or 2 for first and second).
    Signatures { iban: String, count: u8 },
}

#[derive(Subcommand)]
enum CertCommand {
    /// Lists certificates, of one user or all.
    List { login: Option<String> },
    /// Revokes a certificate.
    Revoke { serial: String },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Checks that every account's balance is its opening balance plus its movements, and
    /// every movement carries the bank's MAC; reports the first account that disagrees.
    Verify,
}

#[derive(Subcommand)]
enum PaymentsCommand {
    /// Books payments that other banks sent to this bank's accounts: one from the flags, or
    /// every row of a CSV file (all or none). Audited as `clearing:<OS user>`.
    Incoming(IncomingArgs),
}

#[derive(clap::Args)]
struct IncomingArgs {
    /// A CSV file (UTF-8, header row) with the columns account, amount, currency,
    /// payer_name, payer_iban, payer_tax_code, purpose, number.
    #[arg(long, conflicts_with_all = ["account", "amount", "payer_name", "payer_iban", "payer_tax_code", "purpose", "number"])]
    file: Option<PathBuf>,
    /// The account credited.
    #[arg(long, required_unless_present = "file")]
    account: Option<String>,
    /// The amount, e.g. 1250.00.
    #[arg(long, required_unless_present = "file")]
    amount: Option<String>,
    /// The currency, if stated: it must be the account's.
    #[arg(long)]
    currency: Option<String>,
    /// Who paid.
    #[arg(long, required_unless_present = "file")]
    payer_name: Option<String>,
    /// From which account.
    #[arg(long, required_unless_present = "file")]
    payer_iban: Option<String>,
    /// The payer's EDRPOU or RNOKPP.
    #[arg(long, required_unless_present = "file")]
    payer_tax_code: Option<String>,
    /// Purpose of payment.
    #[arg(long, required_unless_present = "file")]
    purpose: Option<String>,
    /// The payer's document number.
    #[arg(long, required_unless_present = "file")]
    number: Option<String>,
}

/// A row of an incoming-payments CSV file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct IncomingRow {
    account: String,
    amount: String,
    #[serde(default)]
    currency: Option<String>,
    payer_name: String,
    payer_iban: String,
    payer_tax_code: String,
    purpose: String,
    number: String,
}

impl IncomingRow {
    fn payment(self) -> anyhow::Result<tresor_bank::ledger::IncomingPayment> {
        Ok(tresor_bank::ledger::IncomingPayment {
            account: self.account,
            amount: payment::parse_amount(&self.amount)?,
            currency: self.currency.filter(|c| !c.is_empty()),
            payer_name: self.payer_name,
            payer_iban: self.payer_iban,
            payer_tax_code: self.payer_tax_code,
            purpose: self.purpose,
            number: self.number,
        })
    }
}

fn incoming_payments(
    args: IncomingArgs,
) -> anyhow::Result<Vec<tresor_bank::ledger::IncomingPayment>> {
    let Some(file) = args.file else {
        let row = IncomingRow {
            account: args.account.unwrap_or_default(),
            amount: args.amount.unwrap_or_default(),
            currency: args.currency,
            payer_name: args.payer_name.unwrap_or_default(),
            payer_iban: args.payer_iban.unwrap_or_default(),
            payer_tax_code: args.payer_tax_code.unwrap_or_default(),
            purpose: args.purpose.unwrap_or_default(),
            number: args.number.unwrap_or_default(),
        };
        return Ok(vec![row.payment()?]);
    };
    let mut reader =
        csv::Reader::from_path(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut payments = Vec::new();
    for (n, row) in reader.deserialize::<IncomingRow>().enumerate() {
        // Line n + 2: the header is line 1.
        let line = n + 2;
        let row = row.with_context(|| format!("{}: line {line}", file.display()))?;
        payments.push(
            row.payment()
                .with_context(|| format!("{}: line {line}", file.display()))?,
        );
    }
    if payments.is_empty() {
        bail!("{} holds no payments", file.display());
    }
    Ok(payments)
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Checks the chain and its anchor; reports the first altered, inserted or deleted record.
    Verify,
    /// Prints the anchored head (seq and hash), to keep with an outside witness.
    Head,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRESOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("TRESOR_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn config_of(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(data) = &cli.data {
        config.data = data.clone();
    }
    if let Some(url) = &cli.database_url {
        config.database_url = Some(url.clone());
    }
    Ok(config)
}

/// Waits for SIGTERM or Ctrl-C (SIGINT).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "SIGTERM cannot be caught; Ctrl-C only"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The OS user running the command, for the audit log.
fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = config_of(&cli)?;
    if let Command::Serve {
        listen: Some(listen),
        ..
    } = &cli.command
    {
        config.listen = *listen;
    }
    let purpose = match &cli.command {
        Command::Serve { migrate, .. } => Purpose::Serve { migrate: *migrate },
        Command::Init { .. } => Purpose::Init,
        Command::Migrate => Purpose::Migrate,
        _ => Purpose::Admin,
    };
    let opened = server::open(&config, Arc::new(SystemClock), purpose)
        .await
        .context("opening the bank")?;
    if let Command::Serve { demo, .. } = cli.command {
        let bank = &opened.bank;
        let demo_user = if demo {
            bank.seed_demo("bank:demo").await?
        } else {
            None
        };
        let tls = tls::server_config(&opened.files.server_key, &opened.files.server_cert)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let addr = listener.local_addr()?;
        out!("Tresor bank server: {}", server::url_of(addr));
        out!(
            "Clients trust the bank CA certificate: {}",
            opened.files.ca_cert_path.display()
        );
        if demo {
            match &demo_user {
                Some((login, password)) => {
                    out!("Demo login: {login}");
                    out!("Demo initial password (shown once): {}", password.expose());
                }
                None => out!("Demo data already present (login demo.director)."),
            }
        }
        let mailer = tresor_bank::mailer::Mailer::new(
            &config.mail,
            opened.bank.store().clone(),
            &opened.files.secrets,
            Arc::new(SystemClock),
        )?;
        let sms = tresor_bank::sms::Gateway::new(
            &config.sms,
            opened.bank.store().clone(),
            &opened.files.secrets,
            Arc::new(SystemClock),
        )?;
        let channel = server::channel(opened)?;
        if let Some(gateway) = sms {
            // A login waits on its code: looked for every second.
            tresor_bank::sms::spawn(gateway, Duration::from_secs(1));
        }
        if let Some(mailer) = mailer {
            tresor_bank::mailer::spawn(mailer, Duration::from_secs(2));
            // Reminders fall due by the day: looking every ten minutes is plenty.
            tresor_bank::notices::spawn_reminders(channel.clone(), Duration::from_secs(600));
        }
        let ops = Operations::new(channel.clone());
        // SIGTERM (systemd, a container stop) or Ctrl-C: stop accepting, say "not ready",
        // let the requests in flight finish, then exit.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = {
            let ops = ops.clone();
            async move {
                stop_signal().await;
                ops.start_draining();
                let _ = stop_tx.send(true);
            }
        };
        let on_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Some(at) = config.operations.listen {
            let ops_listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("listening on {at} (operations)"))?;
            out!("Operations: http://{}", ops_listener.local_addr()?);
            // It outlives the drain: `/readyz` says "draining" while requests finish.
            tokio::spawn(operations::serve(
                ops_listener,
                ops.clone(),
                std::future::pending(),
            ));
        }
        tokio::spawn(stopped);
        server::serve(
            listener,
            channel,
            tls,
            Arc::new(Proxies::new(&config.proxy)?),
            on_stop(stop_rx),
            Duration::from_secs(config.operations.drain_seconds),
        )
        .await?;
        tracing::info!("stopped");
        return Ok(());
    }
    let bank = &opened.bank;
    match cli.command {
        Command::Serve { .. } => {}
        Command::Init { admin, name } => {
            let password = bank
                .add_admin(
                    tresor_bank::admin::Actor::from("bank:init"),
                    &admin,
                    &name,
                    &[Role::SecurityOfficer],
                )
                .await?;
            out!("Bank created in {}.", config.data.display());
            out!(
                "Clients trust the bank CA certificate: {}",
                opened.files.ca_cert_path.display()
            );
            out!(
                "First security officer {admin}: log in with `tresor-admin first-login` to \
                 change this initial password and enroll your key."
            );
            out!("{}", password.expose());
        }
        Command::Migrate => {
            let state = bank.store().schema_state().await?;
            out!(
                "Database schema at version {}.",
                state.version().unwrap_or_default()
            );
        }
        Command::Audit(cmd) => match cmd {
            AuditCommand::Verify => match bank.audit_verify().await? {
                Ok(n) => out!("audit log intact: {n} records, chain and anchor verified"),
                Err(tampering) => bail!("audit log tampered: {tampering}"),
            },
            AuditCommand::Head => {
                let (seq, hash) = tresor_bank::audit::head(bank.store()).await?;
                out!("{seq} {}", data_encoding::HEXLOWER.encode(&hash));
            }
        },
        Command::ProxyCertificate { dns, ips, out } => {
            let cert = tresor_bank::data::write_proxy_certificate(
                &opened.files.ca,
                &dns,
                &ips,
                std::time::SystemTime::now(),
                &out,
            )?;
            let serial =
                data_encoding::HEXLOWER.encode(cert.tbs_certificate().serial_number().as_bytes());
            let names: Vec<String> = dns
                .iter()
                .cloned()
                .chain(ips.iter().map(ToString::to_string))
                .collect();
            bank.record_operator_action(
                &tresor_bank::admin::Actor::operator(&os_user()),
                "proxy_certificate",
                &format!("serial {serial} for {}", names.join(", ")),
            )
            .await?;
            out!(
                "TLS certificate {serial} for {} written to {} (with the bank CA and the key:                  keep it 0600 on the balancer).",
                names.join(", "),
                out.display()
            );
        }
        Command::Ledger(LedgerCommand::Verify) => {
            let check = bank.verify_ledger().await?;
            if let Some((iban, problem)) = check.problem {
                bail!("ledger of account {iban} disagrees: {problem}");
            }
            out!(
                "ledger intact: {} accounts, {} movements, every balance backed by its movements",
                check.accounts,
                check.movements
            );
        }
        Command::Payments(PaymentsCommand::Incoming(args)) => {
            let payments = incoming_payments(args)?;
            let actor = tresor_bank::admin::Actor::clearing(&os_user());
            let balances = bank.incoming_payments(&actor, &payments).await?;
            for (p, balance) in payments.iter().zip(balances) {
                out!(
                    "{}: {} credited from {}, balance {}",
                    p.account,
                    payment::format_amount(p.amount),
                    p.payer_iban,
                    payment::format_amount(balance)
                );
            }
        }
        Command::BreakGlass { reason, command } => {
            let actor = bank.open_break_glass(&os_user(), &reason).await?;
            break_glass(bank, &actor, command).await?;
        }
    }
    bank.store().close().await;
    Ok(())
}

async fn break_glass(
    bank: &tresor_bank::bank::Bank,
    actor: &tresor_bank::admin::Actor,
    command: BreakGlassCommand,
) -> anyhow::Result<()> {
    match command {
        BreakGlassCommand::User(cmd) => match cmd {
            UserCommand::Add {
                login,
                name,
                email: Some(email),
            } => {
                let to = bank.add_user_by_mail(actor, &login, &name, &email).await?;
                out!(
                    "User {login} created; the initial password is being sent to {to} by e-mail \
                     and must be changed at first login."
                );
            }
            UserCommand::Add {
                login,
                name,
                email: None,
            } => {
                let password = bank.add_user(actor, &login, &name).await?;
                out!("User {login} created; the initial password must be changed at first login.");
                out!("{}", password.expose());
            }
            UserCommand::List => {
                for u in bank.list_users().await? {
                    out!("{:<24} {:<32} {}", u.login, u.name, u.status.join(", "));
                }
            }
            UserCommand::Show { login } => {
                let d = bank.show_user(&login).await?;
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
                    out!("  {}", cert_line(c));
                }
                out!("rights:");
                for (iban, r) in &d.rights {
                    out!("  {iban} {}", r.names());
                }
            }
            UserCommand::Phone { login, phone, .. } => {
                bank.set_phone(actor, &login, phone.as_deref()).await?;
                match phone {
                    Some(_) => out!("{login}'s mobile number set."),
                    None => out!("{login}'s mobile number removed."),
                }
            }
            UserCommand::Lock { login } => {
                bank.lock_user(actor, &login).await?;
                out!("{login} locked.");
            }
            UserCommand::Unlock { login } => {
                bank.unlock_user(actor, &login).await?;
                out!("{login} unlocked.");
            }
            UserCommand::TempPassword { login } => {
                let p = bank.temporary_password(actor, &login).await?;
                out!(
                    "Temporary password for {login}: single use, valid {} hours, must be changed at login.",
                    bank.policy().temporary_password_seconds / 3600
                );
                out!("{}", p.expose());
            }
            UserCommand::EmergencyPassword { login } => {
                let p = bank.emergency_password(actor, &login).await?;
                out!(
                    "Emergency password for {login}: single use, valid {} hours; rights are view-only until recovery.",
                    bank.policy().emergency_password_seconds / 3600
                );
                out!("{}", p.expose());
            }
            UserCommand::Menus { login, menus } => {
                let menus = match menus {
                    MenusArg::Full => Menus::Full,
                    MenusArg::Limited => Menus::Limited,
                };
                bank.set_menus(actor, &login, menus).await?;
                out!("{login}: menus updated.");
            }
        },
        BreakGlassCommand::Admin(cmd) => match cmd {
            AdminCommand::Add { login, name, roles } => {
                let roles = parse_roles(&roles).map_err(anyhow::Error::msg)?;
                let password = bank.add_admin(actor, &login, &name, &roles).await?;
                out!(
                    "Admin {login} created with roles {}; the initial password must be changed at first login.",
                    roles_text(&roles)
                );
                out!("{}", password.expose());
            }
            AdminCommand::Roles { login, roles } => {
                let roles = parse_roles(&roles).map_err(anyhow::Error::msg)?;
                bank.set_roles(actor, &login, &roles).await?;
                out!("{login}: roles {}.", roles_text(&roles));
            }
            AdminCommand::List => {
                for a in bank.list_admins().await? {
                    out!(
                        "{:<24} {:<32} {:<40} {}",
                        a.login,
                        a.name,
                        roles_text(&a.roles),
                        a.status.join(", ")
                    );
                }
            }
        },
        BreakGlassCommand::Account(cmd) => match cmd {
            AccountCommand::Add {
                iban,
                holder,
                currency,
                balance,
            } => {
                let balance = payment::parse_amount(&balance)?;
                let iban = bank
                    .add_account(actor, &iban, &holder, &currency, balance)
                    .await?;
                out!("Account {iban} opened.");
            }
            AccountCommand::List => {
                for a in bank.list_accounts().await? {
                    out!(
                        "{} {:>16} {} {} signature(s) {}",
                        a.iban,
                        payment::format_amount(a.balance),
                        a.currency,
                        a.signatures_required,
                        a.holder
                    );
                }
            }
            AccountCommand::Signatures { iban, count } => {
                bank.set_signatures_required(actor, &iban, count).await?;
                out!("{iban}: orders need {count} signature(s).");
            }
        },
        BreakGlassCommand::Rights {
            action,
            login,
            iban,
            rights,
        } => {
            let r = Rights::parse(&rights).map_err(anyhow::Error::msg)?;
            let grant = matches!(action, GrantOrRevoke::Grant);
            let now = bank.change_rights(actor, &login, &iban, r, grant).await?;
            out!("{login} on {iban}: {}", now.names());
        }
        BreakGlassCommand::Cert(cmd) => match cmd {
            CertCommand::List { login } => {
                for c in bank.list_certificates(login.as_deref()).await? {
                    out!("{}", cert_line(&c));
                }
            }
            CertCommand::Revoke { serial } => {
                bank.revoke_certificate(actor, &serial).await?;
                out!("Certificate {serial} revoked.");
            }
        },
        BreakGlassCommand::AuditList { login, limit } => {
            for r in bank.audit_list(login.as_deref(), limit).await? {
                let t = tresor_bank::storage::unix(r.at);
                out!(
                    "{:>6} {} {:<12} {:<16} {:<18} {:<10} {} {}",
                    r.seq,
                    format_time(t),
                    r.login,
                    r.ip,
                    r.event,
                    r.actor,
                    r.outcome,
                    r.detail
                );
            }
        }
    }
    Ok(())
}

fn cert_line(c: &CertificateView) -> String {
    let t = |v: u64| format_time(i64::try_from(v).unwrap_or(i64::MAX));
    let state = match &c.revoked {
        Some((at, why)) => format!("revoked {} ({why})", t(*at)),
        None if c.activation == "pending" => "valid, waiting for its key letter".to_string(),
        None => "valid".to_string(),
    };
    format!(
        "{} {:<16} {:<8} {} → {} {state}",
        c.serial,
        c.login,
        c.purpose,
        t(c.not_before),
        t(c.not_after)
    )
}
