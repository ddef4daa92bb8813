//! A throwaway bank PKI for tests and benchmarks (feature `testkit`): a CA, a server
//! identity, and client keys with certificates, all in memory.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use der::Encode as _;
use x509_cert::Certificate;

use crate::channel::RingSigner;
use crate::channel::client::ClientAuthentication;
use crate::channel::server::ServerIdentity;
use crate::pki::{self, BankCa, DEFAULT_CA_VALIDITY, DEFAULT_CLIENT_VALIDITY};
use crate::{Login, PrivateKey};

/// A bank: its CA, and the server's key and certificate (for `localhost` and 127.0.0.1).
pub struct TestBank {
    /// The bank CA.
    pub ca: BankCa,
    /// The server's key.
    pub server_key: PrivateKey,
    /// The server's certificate.
    pub server_cert: Certificate,
}

impl TestBank {
    /// A new bank, valid from now.
    #[allow(clippy::expect_used)]
    pub fn new(name: &str) -> Self {
        let now = SystemTime::now();
        let ca = BankCa::generate(&format!("{name} CA"), name, "UA", now, DEFAULT_CA_VALIDITY)
            .expect("test CA");
        let server_key = PrivateKey::generate();
        let server_cert = ca
            .issue_server_certificate(
                &server_key.public_key(),
                &["localhost".to_string()],
                &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
                now,
                Duration::from_secs(365 * 24 * 3600),
            )
            .expect("test server certificate");
        Self {
            ca,
            server_key,
            server_cert,
        }
    }

    /// The CA certificate clients trust.
    pub fn ca_cert(&self) -> &Certificate {
        self.ca.certificate()
    }

    /// The server's handshake identity, signing on ring.
    #[allow(clippy::expect_used)]
    pub fn server_identity(&self) -> ServerIdentity {
        ServerIdentity::new(
            self.server_cert.to_der().expect("DER of a certificate"),
            Box::new(RingSigner::new(&self.server_key).expect("server key")),
        )
    }

    /// A client with a key and a certificate valid from now for a year.
    pub fn client(&self, login: &str) -> TestClient {
        self.client_at(login, SystemTime::now(), DEFAULT_CLIENT_VALIDITY)
    }

    /// A client whose certificate was issued at `issued` for `validity`.
    #[allow(clippy::expect_used)]
    pub fn client_at(&self, login: &str, issued: SystemTime, validity: Duration) -> TestClient {
        let login = Login::new(login).expect("test login");
        let key = PrivateKey::generate();
        let csr = pki::build_csr(&key, &login).expect("CSR");
        let csr = pki::verify_csr(&csr.to_der().expect("CSR DER")).expect("verified CSR");
        let cert = self
            .ca
            .issue_client_certificate(&csr, &login, issued, validity)
            .expect("client certificate");
        TestClient { login, key, cert }
    }
}

/// A client's login, key and certificate.
#[derive(Clone)]
pub struct TestClient {
    /// Its login.
    pub login: Login,
    /// Its key.
    pub key: PrivateKey,
    /// Its certificate.
    pub cert: Certificate,
}

impl TestClient {
    /// Authentication with this key and certificate.
    #[allow(clippy::expect_used)]
    pub fn auth(&self) -> ClientAuthentication {
        ClientAuthentication::Key {
            login: self.login.clone(),
            certificate: self.cert.to_der().expect("DER of a certificate"),
            signer: Box::new(self.key.clone()),
        }
    }
}

/// Runs `bytes` through every decoder of the channel's wire format, and panics if one that
/// accepts them would encode them differently: each message has exactly one encoding, as
/// the transcript requires. Shared by the property tests and the fuzz targets.
pub fn check_decoders_are_canonical(bytes: &[u8]) {
    use crate::channel::wire::{
        self, Accept, AcceptBody, Alert, ClientAuth, ClientFinish, ClientHello, Record, ServerAuth,
        ServerHello,
    };
    macro_rules! canonical {
        ($($t:ty),*) => {
            $(if let Ok(m) = <$t>::decode(bytes) {
                assert_eq!(m.encode(), bytes, "{} decodes to another encoding", stringify!($t));
            })*
        };
    }
    let _ = wire::peek_type(bytes);
    canonical!(
        ClientHello,
        ServerHello,
        ServerAuth,
        ClientFinish,
        ClientAuth,
        Accept,
        AcceptBody,
        Record,
        Alert
    );
}
