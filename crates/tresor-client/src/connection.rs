//! The secure channel to the bank: the IO-free handshake and session of
//! `tresor_core::channel`, carried over HTTPS by reqwest on rustls (TLS 1.3 only, ring,
//! trusting the bank CA).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use rustls_pki_types::CertificateDer;
use tresor_core::channel::client::{self, ClientAuthentication, ClientSession, Reply};
use tresor_core::channel::{ChannelError, wire};
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::Encode as _;
use zeroize::Zeroizing;

/// Path of the handshake endpoint (docs/PROTOCOL.md §8).
pub const HANDSHAKE_PATH: &str = "/tresor/v1/handshake";
/// Path of the session endpoint.
pub const SESSION_PATH: &str = "/tresor/v1/session";
/// The header that carries the bank's sealed pending handshake from its ServerHello back
/// with the ClientFinish (§8), so that any instance of the bank can finish the handshake.
pub const TICKET_HEADER: &str = "tresor-handshake-ticket";
/// The header naming a record's session (hex), for a load balancer that terminates TLS to
/// route every record of a session to the instance serving it (docs/PROTOCOL.md §8). The
/// bank does not read it: the record names its session itself.
pub const SESSION_HEADER: &str = "tresor-session";

/// Why talking to the bank failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The server URL is not an `https://` URL.
    #[error("the bank's address must be an https:// URL, not {0:?}")]
    BadUrl(String),
    /// The TLS configuration could not be built from the bank CA certificate.
    #[error("the bank CA certificate cannot be used for TLS: {0}")]
    Tls(String),
    /// The network: unreachable, refused, timed out, or TLS failed (certificate included).
    #[error("cannot reach the bank: {0}")]
    Network(#[source] reqwest::Error),
    /// The server answered with an HTTP error instead of a Tresor message.
    #[error("the bank's server answered HTTP {0}")]
    HttpStatus(u16),
    /// The server's reply was larger than any Tresor message.
    #[error("the bank's server sent a reply larger than {0} bytes")]
    ReplyTooLarge(usize),
    /// The secure channel refused: the server's alert, or a check that failed here.
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// The client's TLS: 1.3 only, on ring, trusting only `bank_ca`.
pub fn tls_config(bank_ca: &Certificate) -> Result<rustls::ClientConfig, ConnectionError> {
    let ca_der = bank_ca
        .to_der()
        .map_err(|e| ConnectionError::Tls(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der))
        .map_err(|e| ConnectionError::Tls(e.to_string()))?;
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(|e| ConnectionError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// The bank at one address, trusted through its CA certificate.
#[derive(Clone)]
pub struct BankConnection {
    http: reqwest::Client,
    base: String,
    bank_ca: Certificate,
}

impl BankConnection {
    /// Prepares HTTPS to `server` (`https://host:port`), trusting only `bank_ca` for TLS
    /// and for the channel.
    pub fn new(server: &str, bank_ca: &Certificate) -> Result<Self, ConnectionError> {
        if !server.starts_with("https://") {
            return Err(ConnectionError::BadUrl(server.to_string()));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(bank_ca)?)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(ConnectionError::Network)?;
        Self::with_http(server, bank_ca, http)
    }

    /// [`Self::new`] over an HTTP client the caller built (on [`tls_config`], for the TLS
    /// trust to hold): for tests and benches that pick the local address or the resolver.
    pub fn with_http(
        server: &str,
        bank_ca: &Certificate,
        http: reqwest::Client,
    ) -> Result<Self, ConnectionError> {
        let base = server.trim_end_matches('/').to_string();
        if !base.starts_with("https://") {
            return Err(ConnectionError::BadUrl(server.to_string()));
        }
        Ok(Self {
            http,
            base,
            bank_ca: bank_ca.clone(),
        })
    }

    /// Runs the handshake and returns the established session.
    pub async fn open(&self, auth: ClientAuthentication) -> Result<Session, ConnectionError> {
        let (await_hello, hello) = client::start(auth);
        let (server_hello, ticket) = self.send(HANDSHAKE_PATH, hello, None).await?;
        let (await_accept, finish) =
            await_hello.receive(&server_hello, &self.bank_ca, SystemTime::now())?;
        // The ticket goes back as it came, so that any instance of the bank can finish.
        let (accept, _) = self
            .send(
                HANDSHAKE_PATH,
                finish,
                ticket.as_ref().map(|t| (TICKET_HEADER, t)),
            )
            .await?;
        let inner = await_accept.receive(&accept)?;
        Ok(Session {
            connection: self.clone(),
            inner,
        })
    }

    /// Posts a record of `session`, named in [`SESSION_HEADER`].
    async fn post_record(
        &self,
        session: &ClientSession,
        record: Vec<u8>,
    ) -> Result<Vec<u8>, ConnectionError> {
        let hex: String = session.id().0.iter().map(|b| format!("{b:02x}")).collect();
        let id = HeaderValue::from_str(&hex).map_err(|_| ChannelError::Decode("session id"))?;
        Ok(self
            .send(SESSION_PATH, record, Some((SESSION_HEADER, &id)))
            .await?
            .0)
    }

    /// Posts `body` (with the handshake `ticket`, if any): the reply, and the ticket it
    /// carries, if any.
    async fn send(
        &self,
        path: &str,
        body: Vec<u8>,
        header: Option<(&str, &HeaderValue)>,
    ) -> Result<(Vec<u8>, Option<HeaderValue>), ConnectionError> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/octet-stream");
        if let Some((name, value)) = header {
            request = request.header(name, value.clone());
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(ConnectionError::Network)?;
        if !response.status().is_success() {
            return Err(ConnectionError::HttpStatus(response.status().as_u16()));
        }
        let ticket = response.headers().get(TICKET_HEADER).cloned();
        Ok((read_limited(response, wire::MAX_RECORD).await?, ticket))
    }
}

/// Reads a reply of at most `limit` bytes, chunk by chunk: a server (or whatever sits in
/// its place) cannot make the client hold more than one record's worth, whatever the
/// Content-Length says.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ConnectionError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ConnectionError::ReplyTooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ConnectionError::Network)? {
        if body.len() + chunk.len() > limit {
            return Err(ConnectionError::ReplyTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An established session with the bank.
pub struct Session {
    connection: BankConnection,
    inner: ClientSession,
}

impl Session {
    /// The channel state: id, mode, server certificate.
    pub fn channel(&self) -> &ClientSession {
        &self.inner
    }

    /// Sends one request and returns the reply. After any error the session is unusable
    /// (the request may or may not have been handled): open a new one.
    pub async fn request(&mut self, payload: &[u8]) -> Result<Zeroizing<Vec<u8>>, ConnectionError> {
        let record = self.inner.seal(payload)?;
        let reply = self.connection.post_record(&self.inner, record).await?;
        match self.inner.open(&reply)? {
            Reply::Data(data) => Ok(data),
            Reply::Closed => {
                Err(ChannelError::UnexpectedMessage("closed instead of a reply").into())
            }
        }
    }

    /// Closes the session on both sides.
    pub async fn close(mut self) -> Result<(), ConnectionError> {
        let record = self.inner.seal_close()?;
        let reply = self.connection.post_record(&self.inner, record).await?;
        match self.inner.open(&reply)? {
            Reply::Closed => Ok(()),
            Reply::Data(_) => Err(ChannelError::UnexpectedMessage("data instead of close").into()),
        }
    }
}
