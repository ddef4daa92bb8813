//! The client's address behind load balancers. Budgets and penalties key on the address a
//! request came from ([`crate::channel::source_of`]); behind a balancer the TCP peer is the
//! balancer, so the bank learns the client's address from it, and only from it: on a
//! connection whose peer is in `[proxy] trusted`, from the PROXY protocol v2 header that
//! precedes TLS (TLS passed through), or from `X-Forwarded-For` (TLS terminated at the
//! balancer). A connection from any other peer is its own client, whatever it sends.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::channel::unmapped;

/// `[proxy]`: the balancers in front of the bank and how they say who the client is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Their addresses: single addresses or CIDR ranges. Empty (the default): no balancer,
    /// every TCP peer is the client.
    pub trusted: Vec<String>,
    /// How they pass the client's address on; required when `trusted` is set.
    pub header: Option<ProxyHeader>,
}

/// How a trusted balancer passes the client's address on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyHeader {
    /// A PROXY protocol v2 header before anything else on the connection (HAProxy's
    /// `send-proxy-v2`): TLS passes through the balancer.
    ProxyV2,
    /// The `X-Forwarded-For` header of each request (HAProxy's `option forwardfor`, nginx's
    /// `$proxy_add_x_forwarded_for`): TLS ends at the balancer.
    ForwardedFor,
}

/// Why a client's address could not be learned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// A `[proxy] trusted` entry is neither an address nor a CIDR range.
    #[error("[proxy] trusted: {0:?} is not an IP address or a CIDR range (10.0.0.0/8)")]
    BadTrusted(String),
    /// `trusted` is set without saying how the balancers pass the address on.
    #[error("[proxy] header must be \"proxy-v2\" or \"forwarded-for\" when trusted is set")]
    NoHeader,
    /// A trusted balancer's connection did not start with a valid PROXY v2 header.
    #[error("PROXY protocol v2 header: {0}")]
    BadProxyHeader(String),
    /// A trusted balancer's request carried no usable `X-Forwarded-For`.
    #[error("X-Forwarded-For from a trusted proxy: {0}")]
    BadForwardedFor(&'static str),
}

/// The balancers the bank trusts, from [`ProxyConfig`].
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    trusted: Vec<IpNet>,
    header: Option<ProxyHeader>,
}

/// Longest PROXY v2 address block and TLVs read: HAProxy sends a few dozen bytes; the
/// protocol allows 64 KiB, which a balancer has no reason to use.
const MAX_PROXY_V2_BODY: usize = 1024;

impl Proxies {
    /// No balancer: every peer is the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// The balancers `config` names.
    pub fn new(config: &ProxyConfig) -> Result<Self, ProxyError> {
        let trusted = config
            .trusted
            .iter()
            .map(|t| {
                let t = t.trim();
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| ProxyError::BadTrusted(t.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !trusted.is_empty() && config.header.is_none() {
            return Err(ProxyError::NoHeader);
        }
        Ok(Self {
            trusted,
            header: config.header,
        })
    }

    /// Whether `ip` is one of the trusted balancers.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// Whether a connection from `peer` starts with a PROXY v2 header.
    pub fn expects_proxy_v2(&self, peer: IpAddr) -> bool {
        self.header == Some(ProxyHeader::ProxyV2) && self.trusts(peer)
    }

    /// The client of a request that arrived from `peer` (after any PROXY v2 header) with
    /// `headers`: the peer itself unless it is a trusted balancer that passes addresses on
    /// in `X-Forwarded-For`; then the address nearest the bank in that header that is not a
    /// trusted balancer (balancers may be chained), with port 0.
    pub fn client_of(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<SocketAddr, ProxyError> {
        if self.header != Some(ProxyHeader::ForwardedFor) || !self.trusts(peer.ip()) {
            return Ok(peer);
        }
        let mut hops = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let text = value
                .to_str()
                .map_err(|_| ProxyError::BadForwardedFor("not text"))?;
            hops.extend(text.split(',').map(str::trim));
        }
        forwarded_client(&hops, |ip| self.trusts(ip)).map(|ip| SocketAddr::new(ip, 0))
    }
}

/// The client in an `X-Forwarded-For` list (`hops`, the client first, each balancer
/// appending the address it saw): walking back from the bank's side, the first address that
/// is not `trusted`; the first of the list if every one is. Addresses beyond it are not
/// read: whoever sent them is not trusted to say.
pub fn forwarded_client(
    hops: &[&str],
    trusted: impl Fn(IpAddr) -> bool,
) -> Result<IpAddr, ProxyError> {
    if hops.is_empty() {
        return Err(ProxyError::BadForwardedFor("missing"));
    }
    let mut client = None;
    for hop in hops.iter().rev() {
        let ip: IpAddr = hop
            .parse()
            .map_err(|_| ProxyError::BadForwardedFor("not a list of IP addresses"))?;
        let ip = unmapped(ip);
        client = Some(ip);
        if !trusted(ip) {
            break;
        }
    }
    client.ok_or(ProxyError::BadForwardedFor("missing"))
}

/// Reads the PROXY protocol v2 header that starts a connection from a trusted balancer, and
/// no byte more: the client's address, or `None` for the balancer's own connections (a
/// LOCAL header: health checks).
pub async fn read_proxy_v2<R: AsyncRead + Unpin>(
    io: &mut R,
) -> Result<Option<SocketAddr>, ProxyError> {
    let bad = |e: String| ProxyError::BadProxyHeader(e);
    // 12-byte signature, version and command, family and protocol, two-byte length.
    let mut header = vec![0u8; 16];
    io.read_exact(&mut header)
        .await
        .map_err(|e| bad(e.to_string()))?;
    if !header.starts_with(ppp::v2::PROTOCOL_PREFIX) {
        return Err(bad("the connection does not start with one".into()));
    }
    let len = usize::from(u16::from_be_bytes([header[14], header[15]]));
    if len > MAX_PROXY_V2_BODY {
        return Err(bad(format!("{len} bytes of addresses is too long")));
    }
    header.resize(16 + len, 0);
    io.read_exact(&mut header[16..])
        .await
        .map_err(|e| bad(e.to_string()))?;
    let parsed = ppp::v2::Header::try_from(header.as_slice()).map_err(|e| bad(e.to_string()))?;
    match (parsed.command, parsed.addresses) {
        (ppp::v2::Command::Local, _) => Ok(None),
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv4(a)) => Ok(Some(SocketAddr::new(
            IpAddr::V4(a.source_address),
            a.source_port,
        ))),
        (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv6(a)) => Ok(Some(SocketAddr::new(
            IpAddr::V6(a.source_address),
            a.source_port,
        ))),
        (ppp::v2::Command::Proxy, _) => Err(bad("not a TCP/IP client".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(trusted: &[&str], header: ProxyHeader) -> Proxies {
        Proxies::new(&ProxyConfig {
            trusted: trusted.iter().map(|t| (*t).to_owned()).collect(),
            header: Some(header),
        })
        .unwrap()
    }

    #[test]
    fn the_client_in_x_forwarded_for_is_the_first_untrusted_hop_from_the_bank() {
        let trusted = |ip: IpAddr| ip.to_string().starts_with("10.");
        let cases: &[(&[&str], Result<&str, ProxyError>)] = &[
            (&["203.0.113.7"], Ok("203.0.113.7")),
            // A client that sends its own header cannot choose its address.
            (&["1.2.3.4", "203.0.113.7"], Ok("203.0.113.7")),
            // Chained balancers are walked past.
            (&["1.2.3.4", "203.0.113.7", "10.0.0.2"], Ok("203.0.113.7")),
            (&["10.0.0.3", "10.0.0.2"], Ok("10.0.0.3")),
            (&["2001:db8::1"], Ok("2001:db8::1")),
            (&["::ffff:203.0.113.7"], Ok("203.0.113.7")),
            // What lies beyond the client is not read, garbage included.
            (&["garbage", "203.0.113.7"], Ok("203.0.113.7")),
            (&[], Err(ProxyError::BadForwardedFor("missing"))),
            (
                &["203.0.113.7:443"],
                Err(ProxyError::BadForwardedFor("not a list of IP addresses")),
            ),
            (
                &["", "10.0.0.2"],
                Err(ProxyError::BadForwardedFor("not a list of IP addresses")),
            ),
        ];
        for (hops, want) in cases {
            let got = forwarded_client(hops, trusted);
            let want = want.clone().map(|w| w.parse::<IpAddr>().unwrap());
            assert_eq!(got, want, "{hops:?}");
        }
    }

    #[test]
    fn only_a_trusted_peer_is_asked_who_the_client_is() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"], ProxyHeader::ForwardedFor);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
        let from = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 5000);
        let cases = [
            ("127.0.0.1", "203.0.113.7"),
            ("10.9.8.7", "203.0.113.7"),
            ("::ffff:127.0.0.1", "203.0.113.7"),
            // Anyone else is the client, whatever it claims.
            ("192.0.2.1", "192.0.2.1"),
            ("127.0.0.2", "127.0.0.2"),
        ];
        for (peer, client) in cases {
            assert_eq!(
                p.client_of(from(peer), &headers).unwrap().ip(),
                client.parse::<IpAddr>().unwrap(),
                "{peer}"
            );
        }
        assert_eq!(
            p.client_of(from("127.0.0.1"), &HeaderMap::new()),
            Err(ProxyError::BadForwardedFor("missing"))
        );
        // With PROXY v2, headers say nothing: the address came before TLS.
        let p = proxies(&["127.0.0.1"], ProxyHeader::ProxyV2);
        assert_eq!(
            p.client_of(from("127.0.0.1"), &headers).unwrap(),
            from("127.0.0.1")
        );
        assert!(p.expects_proxy_v2("127.0.0.1".parse().unwrap()));
        assert!(!p.expects_proxy_v2("127.0.0.2".parse().unwrap()));
        assert!(!Proxies::none().expects_proxy_v2("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn a_bad_proxy_configuration_is_refused_with_what_is_wrong() {
        let config = |trusted: &[&str], header| ProxyConfig {
            trusted: trusted.iter().map(|t| (*t).to_owned()).collect(),
            header,
        };
        assert_eq!(
            Proxies::new(&config(&["10.0.0.0/33"], Some(ProxyHeader::ProxyV2))).unwrap_err(),
            ProxyError::BadTrusted("10.0.0.0/33".into())
        );
        assert_eq!(
            Proxies::new(&config(&["lb.example"], Some(ProxyHeader::ProxyV2))).unwrap_err(),
            ProxyError::BadTrusted("lb.example".into())
        );
        assert_eq!(
            Proxies::new(&config(&["10.0.0.1"], None)).unwrap_err(),
            ProxyError::NoHeader
        );
        assert!(Proxies::new(&config(&[], None)).is_ok());
    }

    fn v2(command: ppp::v2::Command, addresses: ppp::v2::Addresses) -> Vec<u8> {
        let version_command = ppp::v2::Version::Two as u8 | command as u8;
        ppp::v2::Builder::with_addresses(version_command, ppp::v2::Protocol::Stream, addresses)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_proxy_v2_header_gives_the_client_and_leaves_the_rest_unread() {
        let client: SocketAddr = "203.0.113.7:51000".parse().unwrap();
        let bank: SocketAddr = "10.0.0.5:8443".parse().unwrap();
        let mut bytes = v2(ppp::v2::Command::Proxy, (client, bank).into());
        bytes.extend_from_slice(b"\x16\x03\x01 TLS follows");
        let mut reader = bytes.as_slice();
        assert_eq!(read_proxy_v2(&mut reader).await.unwrap(), Some(client));
        assert_eq!(reader, b"\x16\x03\x01 TLS follows");

        let v6: SocketAddr = "[2001:db8::7]:51000".parse().unwrap();
        let bytes = v2(
            ppp::v2::Command::Proxy,
            (v6, "[2001:db8::5]:8443".parse::<SocketAddr>().unwrap()).into(),
        );
        assert_eq!(
            read_proxy_v2(&mut bytes.as_slice()).await.unwrap(),
            Some(v6)
        );

        let local = v2(ppp::v2::Command::Local, ppp::v2::Addresses::Unspecified);
        assert_eq!(read_proxy_v2(&mut local.as_slice()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_connection_without_a_valid_proxy_v2_header_is_refused() {
        let client: SocketAddr = "203.0.113.7:51000".parse().unwrap();
        let bank: SocketAddr = "10.0.0.5:8443".parse().unwrap();
        let good = v2(ppp::v2::Command::Proxy, (client, bank).into());
        let mut long = good[..16].to_vec();
        long[14..16].copy_from_slice(&2000u16.to_be_bytes());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "TLS straight away",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello".to_vec(),
            ),
            (
                "PROXY v1",
                b"PROXY TCP4 203.0.113.7 10.0.0.5 51000 8443\r\n".to_vec(),
            ),
            ("cut short", good[..20].to_vec()),
            ("too long", long),
            ("empty", Vec::new()),
        ];
        for (what, bytes) in cases {
            assert!(
                matches!(
                    read_proxy_v2(&mut bytes.as_slice()).await,
                    Err(ProxyError::BadProxyHeader(_))
                ),
                "{what}"
            );
        }
    }
}
