//! Putting the bank together: data folder, database, bank, channel, HTTPS.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tresor_core::channel::RingSigner;
use tresor_core::channel::server::{ServerIdentity, SessionParams};
use tresor_core::x509_cert::der::Encode as _;

use crate::bank::{Bank, BankError};
use crate::channel::{self, Channel, ChannelConfig};
use crate::clock::Clock;
use crate::config::Config;
use crate::data::{self, BankFiles, DataError};
use crate::sessions::DbSessions;
use crate::storage::{SchemaPolicy, StorageError, Store};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data folder.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The database.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The bank.
    #[error(transparent)]
    Bank(#[from] BankError),
    /// TLS or the listener.
    #[error("{0}")]
    Listen(String),
}

/// Why a bank is being opened: only serving and `init` may create one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `serve`: creates the data folder and database on first start; migrates an older
    /// database only with `migrate` (`serve --migrate`).
    Serve {
        /// Bring an older schema up to date.
        migrate: bool,
    },
    /// `init`: creates a new bank; refuses a folder that holds one.
    Init,
    /// `migrate`: brings an existing bank's database up to date.
    Migrate,
    /// Admin commands: an existing bank at this program's schema; creates nothing.
    Admin,
}

/// A bank opened on its data folder and database.
pub struct Opened {
    /// The bank.
    pub bank: Bank,
    /// Its keys and certificates.
    pub files: BankFiles,
}

/// Opens the data folder and the database named by `config`, creating them only where
/// `purpose` allows.
pub async fn open(
    config: &Config,
    clock: Arc<dyn Clock>,
    purpose: Purpose,
) -> Result<Opened, StartError> {
    let ips: Vec<IpAddr> = if config.listen.ip().is_unspecified() {
        vec![IpAddr::from([127, 0, 0, 1])]
    } else {
        vec![config.listen.ip()]
    };
    let create = || {
        data::open_or_create(
            &config.data,
            config.name(),
            &config.hostnames,
            &ips,
            clock.now(),
            &config.ca,
        )
    };
    let (files, schema) = match purpose {
        Purpose::Serve { migrate } => (
            create()?,
            if migrate {
                SchemaPolicy::Migrate
            } else {
                SchemaPolicy::Create
            },
        ),
        Purpose::Init if data::exists(&config.data) => {
            return Err(DataError::Exists(config.data.clone()).into());
        }
        Purpose::Init => (create()?, SchemaPolicy::Create),
        Purpose::Migrate => (data::open(&config.data, &config.ca)?, SchemaPolicy::Migrate),
        Purpose::Admin => (data::open(&config.data, &config.ca)?, SchemaPolicy::Current),
    };
    let store = Store::open(&config.data, config.database_url.as_deref(), schema).await?;
    let bank = Bank::new(
        store,
        files.ca.clone(),
        &files.secrets,
        config.policy.clone(),
        clock,
        config.name(),
    )
    .await?
    .with_info(config.bank_info());
    let bank = if config.mail.smtp.is_some() {
        bank.with_mail(crate::mailer::vault(&files.secrets))
    } else {
        bank
    };
    let bank = if config.sms.url.is_some() {
        bank.with_sms(crate::mailer::vault(&files.secrets))
    } else {
        bank
    };
    Ok(Opened { bank, files })
}

/// The bank's channel over its database.
pub type BankChannel = Channel<Bank, DbSessions>;

/// The channel for an opened bank.
pub fn channel(opened: Opened) -> Result<Arc<BankChannel>, StartError> {
    let Opened { bank, files } = opened;
    let signer =
        RingSigner::new(&files.server_key).map_err(|e| StartError::Listen(e.to_string()))?;
    let cert = files
        .server_cert
        .to_der()
        .map_err(|e| StartError::Listen(e.to_string()))?;
    // The embedded database is one process's: its sessions' seqs stay in that process's
    // memory. So do PostgreSQL's, each in the instance serving it. SQLite by URL may have
    // other processes: every record goes to the database.
    let (bank, sessions) = match bank.store().embedded_in() {
        Some(dir) => {
            let sessions = DbSessions::held(bank.store().clone(), &files.secrets, dir)
                .map_err(|e| StartError::Listen(e.to_string()))?;
            let held = sessions.held_sessions();
            (bank.with_held_sessions(held), sessions)
        }
        // PostgreSQL: each session held by the instance that serves it, asked for by another.
        None if bank.store().backend() == crate::storage::Backend::Postgres => {
            let sessions = DbSessions::held_shared(bank.store().clone(), &files.secrets);
            let held = sessions.held_sessions();
            (bank.with_held_sessions(held), sessions)
        }
        None => {
            let sessions = DbSessions::new(bank.store().clone(), &files.secrets);
            (bank, sessions)
        }
    };
    let config = ChannelConfig {
        params: SessionParams {
            idle_timeout: Duration::from_secs(bank.policy().session_idle_seconds),
            max_lifetime: Duration::from_secs(bank.policy().session_max_seconds),
            ..SessionParams::default()
        },
        ..ChannelConfig::default()
    };
    Ok(Channel::new(
        ServerIdentity::new(cert, Box::new(signer)),
        files.ca.certificate().clone(),
        bank,
        sessions,
        config,
    ))
}

/// Serves `channel` on `listener` until `shutdown` completes, then lets the requests in
/// flight finish for up to `drain`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    channel: Arc<BankChannel>,
    tls: Arc<rustls::ServerConfig>,
    proxies: Arc<crate::proxy::Proxies>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> Result<(), StartError> {
    channel::spawn_sweeper(&channel, Duration::from_secs(30));
    let app_channel = Arc::clone(&channel);
    let app = channel::router(channel);
    let channel = Arc::clone(&app_channel);
    crate::tls::serve(listener, tls, app, proxies, shutdown, drain)
        .await
        .map_err(|e| StartError::Listen(e.to_string()))?;
    // Every request has been answered: what the sessions kept in memory goes to the database.
    if let Err(e) = channel.release_sessions().await {
        tracing::error!(error = %e, "could not write the sessions' seqs back: they end at the next start");
    }
    Ok(())
}

/// The address a listener actually bound.
pub fn url_of(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        format!("https://localhost:{}", addr.port())
    } else {
        format!("https://{addr}")
    }
}
