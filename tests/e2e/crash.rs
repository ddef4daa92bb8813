//! A real `tresor-bank serve` on its embedded database, stopped in the middle of traffic and
//! started again on its data folder: no record is accepted twice. The one serving process
//! holds its sessions' seqs in memory (docs/ARCHITECTURE.md, "Sessions"): killed (SIGKILL),
//! it could not write them back, so the next start ends every session, and a record replayed
//! to it, or sent on, finds no session. Stopped cleanly (SIGTERM), it writes them back
//! after its last request, and the sessions go on after the restart, a replay refused.

use std::time::{Duration, SystemTime};

use tresor_core::api::{Request, Response};
use tresor_core::channel::AlertCode;
use tresor_core::channel::client::{self, ClientAuthentication, ClientSession, Reply};
use tresor_core::channel::wire::Alert;
use tresor_core::x509_cert::Certificate;
use tresor_core::x509_cert::der::DecodePem as _;

use crate::support::Bank;

const HANDSHAKE: &str = "/tresor/v1/handshake";
const SESSION: &str = "/tresor/v1/session";

fn http(ca: &Certificate) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tresor_client::connection::tls_config(ca).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::Result<Vec<u8>> {
    Ok(http
        .post(url)
        .body(body)
        .send()
        .await?
        .bytes()
        .await?
        .to_vec())
}

async fn handshake(http: &reqwest::Client, bank: &str, ca: &Certificate) -> ClientSession {
    let url = format!("{bank}{HANDSHAKE}");
    let (wait, hello) = client::start(ClientAuthentication::Anonymous);
    let sh = post(http, &url, hello).await.unwrap();
    let (wait, finish) = wait.receive(&sh, ca, SystemTime::now()).unwrap();
    wait.receive(&post(http, &url, finish).await.unwrap())
        .unwrap()
}

/// Whether `reply` is the bank's answer (a sealed reply) rather than an alert; an alert must
/// be `refusal`.
fn answered(session: &mut ClientSession, reply: &[u8], refusal: AlertCode) -> bool {
    if let Ok(alert) = Alert::decode(reply) {
        assert_eq!(alert.code, refusal, "{alert:?}");
        return false;
    }
    let Ok(Reply::Data(data)) = session.open(reply) else {
        panic!("neither a reply nor an alert");
    };
    let response: Response = serde_json::from_slice(&data).unwrap();
    assert!(response.is_err(), "anonymous: refused, but answered");
    true
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A session with five records answered; the last of them, kept to replay.
async fn answered_five(
    http: &reqwest::Client,
    url: &str,
    ca: &Certificate,
    request: &[u8],
) -> (ClientSession, Vec<u8>) {
    let mut s = handshake(http, url, ca).await;
    let mut last = Vec::new();
    for _ in 0..5 {
        last = s.seal(request).unwrap();
        let reply = post(http, &format!("{url}{SESSION}"), last.clone())
            .await
            .unwrap();
        assert!(answered(&mut s, &reply, AlertCode::BadRecord));
    }
    (s, last)
}

#[test]
fn sigkill_mid_traffic_then_restart_accepts_no_record_twice() {
    let mut bank = Bank::start("");
    let ca = Certificate::from_pem(std::fs::read(&bank.ca).unwrap()).unwrap();
    let rt = runtime();
    let http = http(&ca);
    let request = serde_json::to_vec(&Request::Overview {}).unwrap();
    let url = bank.url.clone();
    // A session with a record answered just before the crash, kept to replay.
    let (mut quiet, last) = rt.block_on(answered_five(&http, &url, &ca, &request));
    // Traffic: eight sessions sending records back to back while the bank is killed. Each
    // keeps the record it had in flight when the connection broke, if it had one.
    let traffic: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, ca, request) = (http.clone(), url.clone(), ca.clone(), request.clone());
            rt.spawn(async move {
                let mut s = handshake(&http, &url, &ca).await;
                let mut answered_count = 0u32;
                loop {
                    let record = s.seal(&request).unwrap();
                    match post(&http, &format!("{url}{SESSION}"), record.clone()).await {
                        Ok(reply) => {
                            assert!(answered(&mut s, &reply, AlertCode::BadRecord));
                            answered_count += 1;
                        }
                        Err(_) => return (s, record, answered_count),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    bank.kill_and_restart();
    let url = bank.url.clone();
    let in_flight: Vec<_> = traffic
        .into_iter()
        .map(|t| rt.block_on(t).unwrap())
        .collect();
    assert!(
        in_flight.iter().all(|(_, _, n)| *n > 0),
        "the traffic ran before the kill"
    );
    rt.block_on(async {
        let session = format!("{url}{SESSION}");
        // The record answered before the crash finds no session now: the seqs held in the
        // killed process's memory are lost, so every session ended at the start.
        let reply = post(&http, &session, last).await.unwrap();
        assert!(
            !answered(&mut quiet, &reply, AlertCode::UnknownSession),
            "a replayed record was answered"
        );
        let next = quiet.seal(&request).unwrap();
        let reply = post(&http, &session, next).await.unwrap();
        assert!(!answered(&mut quiet, &reply, AlertCode::UnknownSession));
        // A record in flight at the crash, sent twice now: no session takes it.
        for (mut s, record, _) in in_flight {
            for _ in 0..2 {
                let reply = post(&http, &session, record.clone()).await.unwrap();
                assert!(!answered(&mut s, &reply, AlertCode::UnknownSession));
            }
        }
        // The restarted bank serves a new session.
        answered_five(&http, &url, &ca, &request).await;
    });
    assert!(
        std::fs::read_to_string(bank.data().parent().unwrap().join("bank.log"))
            .unwrap()
            .contains("stopped without writing its sessions' seqs back"),
        "the restarted bank says why the sessions ended"
    );
    assert!(bank.admin(&["audit", "verify"]).contains("intact"));
}

#[test]
fn a_clean_stop_keeps_the_sessions_and_refuses_a_replay_after_the_restart() {
    let mut bank = Bank::start("");
    let ca = Certificate::from_pem(std::fs::read(&bank.ca).unwrap()).unwrap();
    let rt = runtime();
    let http = http(&ca);
    let request = serde_json::to_vec(&Request::Overview {}).unwrap();
    let url = bank.url.clone();
    let (mut s, last) = rt.block_on(answered_five(&http, &url, &ca, &request));
    // SIGTERM: the last request answered, the seqs written back, a clean exit.
    bank.stop_and_restart();
    let session = format!("{}{SESSION}", bank.url);
    rt.block_on(async {
        let reply = post(&http, &session, last).await.unwrap();
        assert!(
            !answered(&mut s, &reply, AlertCode::BadRecord),
            "a replayed record was answered"
        );
        for _ in 0..3 {
            let next = s.seal(&request).unwrap();
            let reply = post(&http, &session, next).await.unwrap();
            assert!(
                answered(&mut s, &reply, AlertCode::BadRecord),
                "the session goes on with its seq"
            );
        }
    });
}
