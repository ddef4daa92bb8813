//! A bank on a fresh database, SQLite or PostgreSQL, driven in process through the real
//! channel (handshake and records as bytes, no HTTP): every storage test runs on both.
//!
//! PostgreSQL comes from `TRESOR_TEST_POSTGRES` (a server URL without a database, e.g.
//! `postgres://tresor:tresor@127.0.0.1:5432`); each test gets a database of its own. The
//! variable is required: a storage test that silently skipped PostgreSQL would prove nothing.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tresor_bank::bank::Bank;
use tresor_bank::clock::ManualClock;
use tresor_bank::config::Policy;
use tresor_bank::data::{self, BankFiles};
use tresor_bank::server::{self, BankChannel, Opened};
use tresor_bank::storage::{SchemaPolicy, Store};
use tresor_core::api::admin::{AdminAction, Role};
use tresor_core::api::{ApiError, ErrorCode, Reply, Request, Response, Rights, Stage};
use tresor_core::channel::client::{self, ClientAuthentication, ClientSession};
use tresor_core::channel::wire::Alert;
use tresor_core::channel::{AlertCode, ChannelError};
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::{Decode as _, Encode as _};
use tresor_core::{Login, Password, PrivateKey, pki};

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs one scenario as two tests, on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = $body;
                f(support::Db::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let f = $body;
                f(support::Db::Postgres).await;
            }
        }
    };
}

/// A database URL for a fresh database.
pub async fn fresh_database(db: Db, dir: &std::path::Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("tresor.db").display()),
        Db::Postgres => {
            let server = std::env::var("TRESOR_TEST_POSTGRES").expect(
                "TRESOR_TEST_POSTGRES must name a PostgreSQL server for the storage tests \
                 (e.g. postgres://tresor:tresor@127.0.0.1:5432); .ci/run sets it",
            );
            let server = server.trim_end_matches('/').to_owned();
            let mut name = [0u8; 8];
            getrandom(&mut name);
            let name = format!("tresor_test_{}", data_encoding::HEXLOWER.encode(&name));
            sqlx::any::install_default_drivers();
            let admin = sqlx::AnyPool::connect(&format!("{server}/postgres"))
                .await
                .expect("connecting to TRESOR_TEST_POSTGRES");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .expect("CREATE DATABASE");
            admin.close().await;
            format!("{server}/{name}")
        }
    }
}

fn getrandom(buf: &mut [u8]) {
    use ring::rand::SecureRandom as _;
    ring::rand::SystemRandom::new().fill(buf).unwrap();
}

/// A bank with its data folder, database, clock, and channel.
pub struct TestBank {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub clock: Arc<ManualClock>,
    pub channel: Arc<BankChannel>,
    pub ca: Certificate,
    pub db: Db,
    /// Every instance opens the database by URL, as instances sharing one do; else SQLite is
    /// the embedded database, whose one serving process holds its sessions' seqs in memory,
    /// as `tresor-bank serve` runs it by default.
    pub shared: bool,
}

impl TestBank {
    pub async fn new(db: Db) -> Self {
        Self::with_policy(db, Policy::default()).await
    }

    pub async fn with_policy(db: Db, policy: Policy) -> Self {
        Self::open(db, policy, false).await
    }

    /// Whether its instances hold the sessions' seqs in memory: the embedded database, and
    /// PostgreSQL; not SQLite by URL.
    pub fn holds_seqs(&self) -> bool {
        self.db == Db::Postgres || !self.shared
    }

    /// A bank whose instances all open the database by URL, so that a second one can serve
    /// it beside the first (on SQLite too, where the embedded database is one process's).
    pub async fn shared(db: Db) -> Self {
        Self::open(db, Policy::default(), true).await
    }

    async fn open(db: Db, policy: Policy, shared: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database(db, dir.path()).await;
        let clock = Arc::new(ManualClock::new(SystemTime::now()));
        let embedded = db == Db::Sqlite && !shared;
        let channel = instance(dir.path(), &url, clock.clone(), policy, embedded).await;
        let ca = data::open(dir.path(), &Default::default())
            .unwrap()
            .ca
            .certificate()
            .clone();
        Self {
            dir,
            url,
            clock,
            channel,
            ca,
            db,
            shared,
        }
    }

    /// Another server instance on the same data folder and database (of a bank opened
    /// [`shared`](Self::shared) on SQLite: the embedded database has one).
    pub async fn second_instance(&self) -> Arc<BankChannel> {
        assert!(
            self.shared || self.db == Db::Postgres,
            "a second instance needs TestBank::shared on SQLite"
        );
        instance(
            self.dir.path(),
            &self.url,
            self.clock.clone(),
            self.bank().policy().clone(),
            false,
        )
        .await
    }

    pub fn clock_now(&self) -> SystemTime {
        use tresor_bank::clock::Clock as _;
        self.clock.now()
    }

    pub fn bank(&self) -> &Bank {
        self.channel.handler()
    }

    pub fn store(&self) -> &Store {
        self.bank().store()
    }

    /// An anonymous session from `ip`.
    pub async fn anonymous(&self, ip: &str) -> Client {
        self.connect(ClientAuthentication::Anonymous, ip)
            .await
            .unwrap()
    }

    /// A session signed by `key` for `login` with `cert`, from `ip`.
    pub async fn with_key(&self, who: &Holder, ip: &str) -> Result<Client, ChannelError> {
        let auth = ClientAuthentication::Key {
            login: Login::new(&who.login).unwrap(),
            certificate: who.cert.to_der().unwrap(),
            signer: Box::new(who.key.clone()),
        };
        self.connect(auth, ip).await
    }

    pub async fn connect(
        &self,
        auth: ClientAuthentication,
        ip: &str,
    ) -> Result<Client, ChannelError> {
        let peer = SocketAddr::new(ip.parse::<IpAddr>().unwrap(), 40000);
        let (await_hello, hello) = client::start(auth);
        let server_hello = self
            .channel
            .handshake(&hello, self.clock_now(), Some(peer))
            .await;
        let (await_accept, finish) =
            await_hello.receive(&server_hello, &self.ca, SystemTime::now())?;
        let accept = self
            .channel
            .handshake(&finish, self.clock_now(), Some(peer))
            .await;
        let session = await_accept.receive(&accept)?;
        Ok(Client {
            session,
            channel: self.channel.clone(),
            peer,
        })
    }

    /// Creates a user with `rights` on `accounts`, takes them through the first login
    /// (password change, key, certificate), and returns their key and certificate.
    pub async fn enrolled_user(&self, login: &str, accounts: &[(&str, Rights)]) -> Holder {
        let initial = self
            .bank()
            .add_user("admin:test", login, "Test User")
            .await
            .unwrap();
        for (iban, rights) in accounts {
            self.bank()
                .change_rights("admin:test", login, iban, *rights, true)
                .await
                .unwrap();
        }
        self.first_login(login, &initial).await
    }

    /// Creates an admin with `roles` (as break-glass does) and takes them through the first
    /// login: they get an admin certificate.
    pub async fn enrolled_admin(&self, login: &str, roles: &[Role]) -> Holder {
        let initial = self
            .bank()
            .add_admin("break-glass:test", login, "Test Admin", roles)
            .await
            .unwrap();
        self.first_login(login, &initial).await
    }

    /// The first login with an initial password: a new password, a key, a certificate.
    pub async fn first_login(&self, login: &str, initial: &Password) -> Holder {
        let password = "Ptah correct horse battery".to_string();
        let mut c = self.anonymous("10.0.0.1").await;
        let r = c.login(login, initial.expose(), None, None).await.unwrap();
        assert!(
            matches!(r, Reply::LoggedIn(ref i) if i.stage == Stage::ChangePassword),
            "{r:?}"
        );
        let r = c
            .call(Request::ChangePassword {
                current: initial.clone(),
                new: Password::from(password.as_str()),
            })
            .await
            .unwrap();
        assert_eq!(
            r,
            Reply::PasswordChanged {
                next: Stage::Enroll
            }
        );
        let key = PrivateKey::generate();
        let cert = c.request_certificate(&key, login).await.unwrap();
        Holder {
            login: login.to_owned(),
            password,
            key,
            cert,
        }
    }

    /// What `channel` of the outbox (`mail`, `sms`) queued since the last call, oldest first,
    /// with the key that seals it; each marked sent, as the mailer or gateway would after
    /// handing it on.
    async fn drain(&self, channel: &str) -> (tresor_bank::binding::Vault, Vec<(String, Vec<u8>)>) {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT id, sealed FROM mail_outbox WHERE sent_at IS NULL AND channel = $1 \
             ORDER BY created_at, id",
        )
        .bind(channel)
        .fetch_all(self.store().pool())
        .await
        .unwrap();
        for (id, _) in &rows {
            self.store()
                .read()
                .await
                .unwrap()
                .mail_sent(id, 0)
                .await
                .unwrap();
        }
        let files = data::open(self.dir.path(), &Default::default()).unwrap();
        (tresor_bank::mailer::vault(&files.secrets), rows)
    }

    /// The mail queued since the last call, opened with the bank's key.
    pub async fn mailbox(&self) -> Vec<tresor_bank::mail::Mail> {
        let (vault, rows) = self.drain("mail").await;
        rows.iter()
            .map(|(id, sealed)| {
                tresor_bank::mail::open(&vault, id, sealed).expect("sealed by the bank")
            })
            .collect()
    }

    /// The text messages queued since the last call, opened with the bank's key.
    pub async fn texts(&self) -> Vec<tresor_bank::sms::Sms> {
        let (vault, rows) = self.drain("sms").await;
        rows.iter()
            .map(|(id, sealed)| {
                tresor_bank::sms::open(&vault, id, sealed).expect("sealed by the bank")
            })
            .collect()
    }

    /// A user created with an e-mail address (`user add --email`), the initial password
    /// read from the mail, taken through the first login.
    pub async fn mailed_user(
        &self,
        login: &str,
        email: &str,
        accounts: &[(&str, Rights)],
    ) -> Holder {
        self.bank()
            .add_user_by_mail("admin:test", login, "Mailed User", email)
            .await
            .unwrap();
        let mails = self.mailbox().await;
        let initial = mails
            .iter()
            .filter(|m| m.to == email)
            .find_map(|m| {
                m.text
                    .lines()
                    .find_map(|l| l.strip_prefix("Initial password: "))
            })
            .expect("an activation mail");
        for (iban, rights) in accounts {
            self.bank()
                .change_rights("admin:test", login, iban, *rights, true)
                .await
                .unwrap();
        }
        self.first_login(login, &Password::from(initial.trim()))
            .await
    }

    /// Opens an account with a balance.
    pub async fn account(&self, n: u32, balance: u64) -> String {
        let iban =
            tresor_core::payment::Iban::ua_from_parts("300001", &format!("2600000000{n:04}"))
                .unwrap()
                .to_string();
        self.bank()
            .add_account("admin:test", &iban, "Test LLC", "UAH", balance)
            .await
            .unwrap()
    }

    /// A key session logged in.
    pub async fn key_login(&self, who: &Holder, ip: &str) -> Client {
        let mut c = self.with_key(who, ip).await.unwrap();
        let r = c
            .login(&who.login, &who.password, None, None)
            .await
            .unwrap();
        assert!(
            matches!(r, Reply::LoggedIn(ref i) if i.stage == Stage::Key),
            "{r:?}"
        );
        c
    }
}

async fn instance(
    dir: &std::path::Path,
    url: &str,
    clock: Arc<ManualClock>,
    policy: Policy,
    embedded: bool,
) -> Arc<BankChannel> {
    let files: BankFiles = data::open_or_create(
        dir,
        "Test Bank",
        &[],
        &[],
        SystemTime::now(),
        &Default::default(),
    )
    .unwrap();
    let by_url = (!embedded).then_some(url);
    let store = Store::open(dir, by_url, SchemaPolicy::Create)
        .await
        .unwrap();
    let bank = Bank::new(
        store,
        files.ca.clone(),
        &files.secrets,
        policy,
        clock,
        "Test Bank",
    )
    .await
    .unwrap()
    // Mail and text messages are queued (never sent: no mailer or gateway runs here).
    .with_mail(tresor_bank::mailer::vault(&files.secrets))
    .with_sms(tresor_bank::mailer::vault(&files.secrets));
    server::channel(Opened { bank, files }).unwrap()
}

/// A user's login, password, key and certificate.
#[derive(Clone)]
pub struct Holder {
    pub login: String,
    pub password: String,
    pub key: PrivateKey,
    pub cert: Certificate,
}

/// A client session, in process.
pub struct Client {
    pub session: ClientSession,
    pub channel: Arc<BankChannel>,
    pub peer: SocketAddr,
}

impl Client {
    /// Sends a record; the raw reply bytes, for tests that replay them.
    pub async fn raw(&mut self, payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let record = self.session.seal(payload).unwrap();
        let reply = self.channel.record(&record, Some(self.peer)).await;
        (record, reply)
    }

    /// Sends a request and decodes its reply. When the bank's Argon2 queue is full
    /// ("busy": the tests of one binary share it, and some race fifty logins), tries again,
    /// as a client would, so that every request is decided.
    pub async fn call(&mut self, request: Request) -> Response {
        let payload = serde_json::to_vec(&request).unwrap();
        loop {
            let (_, reply) = self.raw(&payload).await;
            let response: Response = match self.session.open(&reply) {
                Ok(client::Reply::Data(bytes)) => serde_json::from_slice(&bytes).unwrap(),
                other => panic!("no reply: {other:?} ({:?})", Alert::decode(&reply)),
            };
            match response {
                Err(e) if e.code == ErrorCode::Busy => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                r => return r,
            }
        }
    }

    /// An admin command.
    pub async fn admin(&mut self, action: AdminAction) -> Response {
        self.call(Request::Admin { action }).await
    }

    pub async fn login(
        &mut self,
        login: &str,
        password: &str,
        otp: Option<&str>,
        emergency: Option<&str>,
    ) -> Response {
        self.call(Request::Login {
            login: login.into(),
            password: Password::from(password),
            otp: otp.map(str::to_owned),
            emergency_password: emergency.map(Password::from),
        })
        .await
    }

    /// Starts TOTP enrollment: the secret of the otpauth URI the bank answers.
    pub async fn start_totp(&mut self) -> tresor_core::totp::TotpSecret {
        let uri = match self.call(Request::TotpEnroll {}).await.unwrap() {
            Reply::TotpEnrollment { uri } => uri,
            other => panic!("{other:?}"),
        };
        let b32 = uri
            .split("secret=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .unwrap();
        tresor_core::totp::TotpSecret::from_base32(b32).unwrap()
    }

    pub async fn request_certificate(
        &mut self,
        key: &PrivateKey,
        login: &str,
    ) -> Result<Certificate, ApiError> {
        let csr = pki::build_csr(key, &Login::new(login).unwrap()).unwrap();
        match self
            .call(Request::RequestCertificate {
                csr: csr.to_der().unwrap(),
            })
            .await?
        {
            Reply::Certificate { certificate, .. } => {
                Ok(Certificate::from_der(&certificate).unwrap())
            }
            other => panic!("{other:?}"),
        }
    }
}

/// The error code of a refused request.
pub fn code(r: &Response) -> ErrorCode {
    match r {
        Err(e) => e.code,
        Ok(reply) => panic!("expected a refusal, got {reply:?}"),
    }
}

/// The alert code of a refused handshake.
pub fn alert_of(e: &ChannelError) -> AlertCode {
    e.alert()
}

pub const ALL: Rights = Rights {
    view: true,
    prepare: true,
    sign: true,
    send: true,
};

pub fn rights(view: bool, prepare: bool, sign: bool, send: bool) -> Rights {
    Rights {
        view,
        prepare,
        sign,
        send,
    }
}

/// The TOTP code for Unix time `t`.
pub fn totp_code(secret: &tresor_core::totp::TotpSecret, t: u64) -> String {
    use tresor_core::totp;
    totp::format_code(totp::code_at(secret, totp::time_step(t)))
}

/// A valid payment order from `payer`.
pub fn order(payer: &str, amount: u64) -> tresor_core::payment::PaymentOrder {
    tresor_core::payment::PaymentOrder {
        payer_iban: payer.to_owned(),
        payee_name: "Supplier LLC".into(),
        payee_tax_code: "14360570".into(),
        payee_iban: "UA213223130000026007233566001".into(),
        amount,
        currency: "UAH".into(),
        purpose: "Invoice 42, VAT included".into(),
    }
}

/// Moves the bank's clock.
pub fn advance(bank: &TestBank, by: Duration) {
    bank.clock.advance(by);
}

/// The code (`Code: …`) in a mail's text.
pub fn mailed_code(mail: &tresor_bank::mail::Mail) -> String {
    mail.text
        .lines()
        .find_map(|l| l.strip_prefix("Code: "))
        .unwrap_or_else(|| panic!("no code in {}", mail.text))
        .trim()
        .to_owned()
}

/// The 6-digit code in a login's text message.
pub fn texted_code(sms: &tresor_bank::sms::Sms) -> String {
    sms.text
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {}", sms.text))
        .to_owned()
}
