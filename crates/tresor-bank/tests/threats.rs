//! The attacks of docs/THREAT_MODEL.md, each run against the bank and shown refused, on SQLite
//! and PostgreSQL where storage is involved. Each test names the finding of the security
//! review it reproduces.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use support::{ALL, Client, Db, Holder, TestBank, advance, code, order, rights, totp_code};
use tresor_bank::audit::Tampering;
use tresor_bank::config::Policy;
use tresor_core::api::{ErrorCode, OrderStatus, Reply, Request, Stage};
use tresor_core::channel::AlertCode;
use tresor_core::channel::client::{self, ClientAuthentication};
use tresor_core::channel::wire::Alert;
use tresor_core::payment;
use tresor_core::x509_cert::der::Encode as _;
use tresor_core::{Password, PrivateKey};

/// A request whose session the bank has ended answers an alert, not a reply.
async fn ended(c: &mut Client) -> AlertCode {
    let payload = serde_json::to_vec(&Request::Overview {}).unwrap();
    let (_, reply) = c.raw(&payload).await;
    match c.session.open(&reply) {
        Ok(r) => panic!("the session still answers: {r:?}"),
        Err(_) => Alert::decode(&reply).unwrap().code,
    }
}

async fn exec(bank: &TestBank, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(bank.store().pool())
        .await
        .unwrap();
}

async fn scalar_i64(bank: &TestBank, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(bank.store().pool())
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Finding 1: a thief's session survives certificate recovery.

on_both!(
    a_thief_holding_key_and_password_loses_everything_at_recovery,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(1, 1_000_000).await;
        let victim = bank
            .enrolled_user("victim.k", &[(iban.as_str(), ALL)])
            .await;
        // The thief copied the key file and watched the password typed.
        let thief: Holder = victim.clone();
        let mut stolen = bank.key_login(&thief, "203.0.113.9").await;

        // The victim reports the key lost: the bank issues an emergency password, which ends
        // every session of the user, the thief's included.
        let emergency = bank
            .bank()
            .emergency_password("admin:test", "victim.k")
            .await
            .unwrap();
        assert_eq!(ended(&mut stolen).await, AlertCode::UnknownSession);

        // The thief logs in again with the key and the password: viewing only. No password
        // change, no TOTP secret, no renewed certificate, no order.
        let mut again = bank.key_login(&thief, "203.0.113.9").await;
        assert!(again.call(Request::Overview {}).await.is_ok());
        let refusals = [
            Request::ChangePassword {
                current: Password::from(thief.password.as_str()),
                new: Password::from("Thief's own passphrase 2026"),
            },
            Request::TotpEnroll {},
            Request::RequestCertificate {
                csr: tresor_core::pki::build_csr(
                    &PrivateKey::generate(),
                    &tresor_core::Login::new("victim.k").unwrap(),
                )
                .unwrap()
                .to_der()
                .unwrap(),
            },
            Request::PrepareOrder {
                order: order(&iban, 5_000),
            },
        ];
        for request in refusals {
            let what = format!("{request:?}");
            assert_eq!(
                code(&again.call(request).await),
                ErrorCode::NotAllowed,
                "{what}"
            );
        }

        // The victim recovers with the password and the emergency password.
        let mut recovery = bank.anonymous("198.51.100.7").await;
        let r = recovery
            .login("victim.k", &victim.password, None, Some(emergency.expose()))
            .await
            .unwrap();
        assert!(
            matches!(r, Reply::LoggedIn(ref i) if i.stage == Stage::Recovery),
            "{r:?}"
        );
        let new_key = PrivateKey::generate();
        let new_cert = recovery
            .request_certificate(&new_key, "victim.k")
            .await
            .unwrap();
        // The thief's second session ended with the old certificate; the old key opens none.
        assert_eq!(ended(&mut again).await, AlertCode::UnknownSession);
        assert!(bank.with_key(&thief, "203.0.113.9").await.is_err());
        // The victim's new key works, with the password the thief never changed.
        let recovered = Holder {
            key: new_key,
            cert: new_cert,
            ..victim
        };
        let mut ok = bank.key_login(&recovered, "198.51.100.7").await;
        assert!(ok.call(Request::Overview {}).await.is_ok());
    }
);

on_both!(
    every_request_checks_the_session_certificate_is_still_valid,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let holder = bank.enrolled_user("cert.check", &[]).await;
        let mut c = bank.key_login(&holder, "10.1.0.1").await;
        assert!(c.call(Request::Overview {}).await.is_ok());
        // Revoked behind the sessions' back (as a path that forgot to end them would): the
        // next request is refused and the session ends.
        let serial = tresor_core::pki::serial_hex(holder.cert.tbs_certificate().serial_number());
        exec(
            &bank,
            &format!(
                "UPDATE certificates SET revoked_at = 1, revoke_reason = 'admin' \
                 WHERE serial = '{serial}'"
            ),
        )
        .await;
        assert_eq!(
            code(&c.call(Request::Overview {}).await),
            ErrorCode::NotAllowed
        );
        assert_eq!(ended(&mut c).await, AlertCode::UnknownSession);
    }
);

on_both!(
    password_change_lock_and_rights_changes_end_the_users_other_sessions,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(2, 1_000).await;
        let holder = bank
            .enrolled_user("many.sessions", &[(iban.as_str(), ALL)])
            .await;
        let mut here = bank.key_login(&holder, "10.2.0.1").await;
        let mut there = bank.key_login(&holder, "10.2.0.2").await;
        let new = "A brand new passphrase 2026";
        let r = here
            .call(Request::ChangePassword {
                current: Password::from(holder.password.as_str()),
                new: Password::from(new),
            })
            .await
            .unwrap();
        assert_eq!(r, Reply::PasswordChanged { next: Stage::Key });
        assert_eq!(ended(&mut there).await, AlertCode::UnknownSession);
        assert!(
            here.call(Request::Overview {}).await.is_ok(),
            "the asking session goes on"
        );

        let holder = Holder {
            password: new.to_owned(),
            ..holder
        };
        // An admin's rights change ends the sessions opened under the old rights.
        let mut s = bank.key_login(&holder, "10.2.0.3").await;
        bank.bank()
            .change_rights(
                "admin:test",
                "many.sessions",
                &iban,
                rights(false, false, true, true),
                false,
            )
            .await
            .unwrap();
        assert_eq!(ended(&mut s).await, AlertCode::UnknownSession);
        assert_eq!(ended(&mut here).await, AlertCode::UnknownSession);
        let mut s = bank.key_login(&holder, "10.2.0.3").await;
        bank.bank()
            .set_menus(
                "admin:test",
                "many.sessions",
                tresor_core::api::Menus::Limited,
            )
            .await
            .unwrap();
        assert_eq!(ended(&mut s).await, AlertCode::UnknownSession);
        let mut s = bank.key_login(&holder, "10.2.0.3").await;
        bank.bank()
            .lock_user("admin:test", "many.sessions")
            .await
            .unwrap();
        assert_eq!(ended(&mut s).await, AlertCode::UnknownSession);
    }
);

on_both!(
    a_session_ends_at_its_absolute_lifetime_however_active,
    |db: Db| async move {
        let policy = Policy {
            session_idle_seconds: 300,
            session_max_seconds: 600,
            ..Policy::default()
        };
        let bank = TestBank::with_policy(db, policy).await;
        let holder = bank.enrolled_user("long.lived", &[]).await;
        let mut c = bank.key_login(&holder, "10.3.0.1").await;
        for _ in 0..2 {
            advance(&bank, Duration::from_secs(250));
            assert!(c.call(Request::Overview {}).await.is_ok());
        }
        advance(&bank, Duration::from_secs(250));
        assert_eq!(ended(&mut c).await, AlertCode::UnknownSession);
    }
);

// ---------------------------------------------------------------------------------------------
// Finding 2: anyone can stop every login by filling the pending-handshake table.

on_both!(
    a_flood_of_replayed_client_hellos_does_not_stop_a_genuine_client,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let (_, hello) = client::start(ClientAuthentication::Anonymous);
        let flooder = Some("127.0.0.1:40000".parse().unwrap());
        let now = bank.clock_now();
        let mut busy = 0;
        for _ in 0..12_000 {
            let reply = bank.channel.handshake(&hello, now, flooder).await;
            if Alert::decode(&reply).is_ok_and(|a| a.code == AlertCode::ServerBusy) {
                busy += 1;
            }
        }
        assert!(busy >= 11_900, "{busy} refused");
        assert!(
            bank.channel.pending_count() <= 64,
            "{}",
            bank.channel.pending_count()
        );
        // The flooder's address is blocked, and the audit log says so.
        assert!(
            bank.bank()
                .ip_blocked("127.0.0.1", now)
                .await
                .unwrap()
                .is_some()
        );
        // A genuine client from another address gets through.
        let mut genuine = bank.anonymous("127.0.0.2").await;
        assert_eq!(
            code(&genuine.call(Request::Overview {}).await),
            ErrorCode::NotAllowed
        );
        let holder = bank.enrolled_user("during.flood", &[]).await;
        let mut key = bank.key_login(&holder, "127.0.0.3").await;
        assert!(key.call(Request::Overview {}).await.is_ok());
    }
);

on_both!(
    an_ipv6_subscriber_counts_as_one_address,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        bank.enrolled_user("v6.target", &[]).await;
        // Six wrong logins (the sixth penalty point blocks), each from another address of
        // one /64.
        for i in 1..=6 {
            let mut c = bank.anonymous(&format!("2001:db8:1:2::{i}")).await;
            assert_eq!(
                code(&c.login("v6.target", "wrong guess", None, None).await),
                ErrorCode::LoginFailed
            );
        }
        let mut c = bank.anonymous("2001:db8:1:2:ffff::7").await;
        assert_eq!(
            code(&c.login("v6.target", "wrong guess", None, None).await),
            ErrorCode::AddressBlocked
        );
        // Another /64 is another subscriber.
        let mut c = bank.anonymous("2001:db8:1:3::1").await;
        assert_eq!(
            code(&c.login("v6.target", "wrong guess", None, None).await),
            ErrorCode::LoginFailed
        );
    }
);

// ---------------------------------------------------------------------------------------------
// Finding 3: a database-only attacker rewrites the audit log.

on_both!(
    an_audit_log_rewritten_in_the_database_stays_detected_after_appends,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        bank.enrolled_user("audit.target", &[]).await;
        // The attacker edits a record and recomputes its hash the way an unkeyed chain would
        // let them (a plain SHA-256): without the key, no hash they compute is right.
        exec(
            &bank,
            "UPDATE audit SET outcome = 'nothing happened', keyed = 0 WHERE seq = 2",
        )
        .await;
        // Then waits for appends: a failed login from the network.
        let mut c = bank.anonymous("10.4.0.1").await;
        c.login("audit.target", "wrong", None, None)
            .await
            .unwrap_err();
        assert_eq!(
            bank.bank().audit_verify().await.unwrap(),
            Err(Tampering::Altered(2))
        );

        // Truncation with a forged head: appends stop instead of building on it.
        let bank = TestBank::new(db).await;
        bank.enrolled_user("audit.target", &[]).await;
        let n = bank.bank().audit_verify().await.unwrap().unwrap();
        exec(&bank, &format!("DELETE FROM audit WHERE seq > {}", n - 2)).await;
        exec(
            &bank,
            &format!(
                "UPDATE audit_head SET seq = {}, hash = (SELECT hash FROM audit WHERE seq = {})",
                n - 2,
                n - 2
            ),
        )
        .await;
        let mut c = bank.anonymous("10.4.0.2").await;
        assert_eq!(
            code(&c.login("audit.target", "wrong", None, None).await),
            ErrorCode::Internal
        );
        assert_eq!(
            bank.bank().audit_verify().await.unwrap(),
            Err(Tampering::ForgedHead)
        );
    }
);

// ---------------------------------------------------------------------------------------------
// Finding 4: a database-only attacker acts as any user.

on_both!(
    a_session_row_edited_in_the_database_is_refused_not_obeyed,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(3, 1_000_000).await;
        bank.enrolled_user("db.victim", &[(iban.as_str(), ALL)])
            .await;
        let victim_id = scalar_i64(&bank, "SELECT id FROM users WHERE login = 'db.victim'").await;
        let certs = || scalar_i64(&bank, "SELECT COUNT(*) FROM certificates");
        let before = certs().await;

        // An anonymous session promoted to the victim's recovery stage in the database.
        let mut anon = bank.anonymous("10.5.0.1").await;
        exec(
            &bank,
            &format!(
                "UPDATE channel_sessions SET user_id = {victim_id}, stage = 'recovery' \
                 WHERE user_id IS NULL"
            ),
        )
        .await;
        let attacker_key = PrivateKey::generate();
        let r = anon.request_certificate(&attacker_key, "db.victim").await;
        // Read, the forged login fails its MAC; where the process holds the session, it
        // knows the session anonymous and does not read the row at all.
        let refused = if bank.holds_seqs() {
            ErrorCode::NotAllowed
        } else {
            ErrorCode::Internal
        };
        assert_eq!(r.unwrap_err().code, refused);
        assert_eq!(certs().await, before, "no certificate issued");

        // Promoted to a key stage: no order either.
        let mut anon = bank.anonymous("10.5.0.2").await;
        exec(
            &bank,
            &format!(
                "UPDATE channel_sessions SET user_id = {victim_id}, stage = 'key' \
                 WHERE user_id IS NULL"
            ),
        )
        .await;
        assert_eq!(
            code(
                &anon
                    .call(Request::PrepareOrder {
                        order: order(&iban, 100)
                    })
                    .await
            ),
            refused
        );
        assert_eq!(scalar_i64(&bank, "SELECT COUNT(*) FROM orders").await, 0);
    }
);

on_both!(
    a_session_seq_rolled_back_in_the_database_accepts_no_record_twice,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let holder = bank.enrolled_user("seq.victim", &[]).await;
        let mut c = bank.key_login(&holder, "10.6.0.1").await;
        let payload = serde_json::to_vec(&Request::Overview {}).unwrap();
        let (record, reply) = c.raw(&payload).await;
        assert!(c.session.open(&reply).is_ok());
        // The sweep writes held seqs back (as every 30 s): the row has one to roll back.
        bank.channel.sweep(bank.clock_now()).await.unwrap();
        // Roll the seq back so that the captured record would be accepted again.
        exec(
            &bank,
            "UPDATE channel_sessions SET next_seq = next_seq - 1 WHERE user_id IS NOT NULL",
        )
        .await;
        let again = c.channel.record(&record, Some(c.peer)).await;
        let alert = Alert::decode(&again).expect("an alert, not a second reply");
        // Shared: the rolled-back seq fails its MAC. Held: the seq in the process's memory
        // is the one that counts, and the record is out of sequence.
        let refused = if bank.holds_seqs() {
            AlertCode::BadRecord
        } else {
            AlertCode::ServerBusy
        };
        assert_eq!(alert.code, refused);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_handed_over_in_the_database_is_refused() {
    // The instance holding a session keeps its seq in memory; the row names it. An attacker
    // who writes the row as held by no one (or by another instance) would have the next
    // instance take the session up at the row's older seq, and a captured record accepted
    // again: the seq MAC covers the holder, so that row is refused instead.
    let bank = TestBank::new(Db::Postgres).await;
    let second = bank.second_instance().await;
    let mut c = bank.anonymous("10.6.2.1").await;
    let payload = serde_json::to_vec(&Request::BankInfo {}).unwrap();
    let (captured, reply) = c.raw(&payload).await;
    assert!(c.session.open(&reply).is_ok());
    for holder in ["NULL", "'pg 1 2000-01-01 00:00:00+00'"] {
        exec(
            &bank,
            &format!("UPDATE channel_sessions SET holder = {holder}"),
        )
        .await;
        let again = second.record(&captured, Some(c.peer)).await;
        let alert = Alert::decode(&again).expect("an alert, not a second reply");
        assert_eq!(alert.code, AlertCode::ServerBusy);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_does_not_open_moves_no_session() {
    // Session ids cross a TLS-terminating proxy in the clear. A record sent to another
    // instance than the one holding its session is authenticated before that instance asks
    // for the session: one that does not open moves nothing, and the session goes on where
    // it is.
    let bank = TestBank::new(Db::Postgres).await;
    let second = bank.second_instance().await;
    let mut c = bank.anonymous("10.6.3.1").await;
    let payload = serde_json::to_vec(&Request::BankInfo {}).unwrap();
    let (_, reply) = c.raw(&payload).await;
    assert!(c.session.open(&reply).is_ok());
    let holder = || async {
        sqlx::query_scalar::<_, Option<String>>("SELECT holder FROM channel_sessions")
            .fetch_one(bank.store().pool())
            .await
            .unwrap()
    };
    let before = holder().await;
    assert!(before.is_some());
    let record = c.session.seal(&payload).unwrap();
    let mut forged = record.clone();
    *forged.last_mut().unwrap() ^= 1;
    let refused = second
        .record(&forged, Some("10.6.3.2:1".parse().unwrap()))
        .await;
    assert_eq!(
        Alert::decode(&refused).expect("refused").code,
        AlertCode::BadRecord
    );
    assert_eq!(holder().await, before, "the session did not move");
    let reply = bank.channel.record(&record, Some(c.peer)).await;
    assert!(c.session.open(&reply).is_ok(), "the session goes on");
}

on_both!(
    sessions_end_when_the_epoch_of_their_seqs_is_over,
    |db: Db| async move {
        // Seqs are committed without waiting for the disk: a database server (PostgreSQL) or
        // host (SQLite) that stops uncleanly may lose the last of them. Its restart is a new
        // epoch, and a bank that finds the stored epoch over ends every session first.
        let bank = TestBank::shared(db).await;
        let mut c = bank.anonymous("10.6.1.1").await;
        let payload = serde_json::to_vec(&Request::BankInfo {}).unwrap();
        let (_, reply) = c.raw(&payload).await;
        assert!(c.session.open(&reply).is_ok());
        // Another instance in the same epoch: the session goes on there.
        c.channel = bank.second_instance().await;
        let (_, reply) = c.raw(&payload).await;
        assert!(c.session.open(&reply).is_ok());
        let first = bank.channel.clone();
        // The stored epoch is one that is over (the host rebooted, the server restarted).
        exec(
            &bank,
            "UPDATE meta SET value = 'an epoch that is over' WHERE key = 'session_epoch'",
        )
        .await;
        let restarted = bank.second_instance().await;
        assert_eq!(restarted.session_count().await.unwrap(), 0);
        // Neither the restarted instance nor one that kept the session's state in memory
        // accepts a record on it.
        c.channel = restarted;
        let (record, reply) = c.raw(&payload).await;
        let again = first.record(&record, Some(c.peer)).await;
        for reply in [reply, again] {
            let alert = Alert::decode(&reply).expect("an alert, not a reply");
            assert_eq!(alert.code, AlertCode::UnknownSession);
        }
    }
);

on_both!(
    password_and_emergency_hashes_written_in_the_database_let_nobody_in,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let holder = bank.enrolled_user("hash.victim", &[]).await;
        bank.bank()
            .emergency_password("admin:test", "hash.victim")
            .await
            .unwrap();
        // The attacker writes hashes of passwords of their own choosing (the bank's own
        // format, Argon2id PHC), as a database-only attacker can.
        let mine = Password::from("Attacker's chosen password 1");
        let phc = tresor_bank::passwords::hash(&mine).await.unwrap();
        exec(
            &bank,
            &format!(
                "UPDATE users SET password_hash = '{phc}', emergency_hash = '{phc}' \
                 WHERE login = 'hash.victim'"
            ),
        )
        .await;
        let mut c = bank.anonymous("10.7.0.1").await;
        assert_eq!(
            code(
                &c.login("hash.victim", mine.expose(), None, Some(mine.expose()))
                    .await
            ),
            ErrorCode::LoginFailed
        );
        // Nor with a bound hash copied from another user.
        let other = bank.enrolled_user("hash.other", &[]).await;
        exec(
            &bank,
            "UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE login = \
             'hash.other') WHERE login = 'hash.victim'",
        )
        .await;
        let mut c = bank.with_key(&holder, "10.7.0.2").await.unwrap();
        assert_eq!(
            code(&c.login("hash.victim", &other.password, None, None).await),
            ErrorCode::LoginFailed
        );
    }
);

on_both!(
    totp_secrets_are_sealed_and_a_planted_secret_is_refused,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let holder = bank.enrolled_user("totp.victim", &[]).await;
        let mut k = bank.key_login(&holder, "10.8.0.1").await;
        let secret = k.start_totp().await;
        let t = bank
            .clock_now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        k.call(Request::TotpConfirm {
            code: totp_code(&secret, t),
        })
        .await
        .unwrap();
        // Not in the clear in the database.
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT totp_secret FROM users WHERE login = 'totp.victim'")
                .fetch_one(bank.store().pool())
                .await
                .unwrap();
        assert!(
            !stored
                .windows(secret.as_bytes().len())
                .any(|w| w == secret.as_bytes()),
            "the TOTP secret is stored in the clear"
        );
        // A secret of the attacker's, written in the clear, opens nothing.
        let planted = tresor_core::totp::TotpSecret::generate();
        sqlx::query("UPDATE users SET totp_secret = $1 WHERE login = 'totp.victim'")
            .bind(planted.as_bytes().to_vec())
            .execute(bank.store().pool())
            .await
            .unwrap();
        advance(&bank, Duration::from_secs(60));
        let t = t + 60;
        let mut c = bank.anonymous("10.8.0.2").await;
        assert_eq!(
            code(
                &c.login(
                    "totp.victim",
                    &holder.password,
                    Some(&totp_code(&planted, t)),
                    None
                )
                .await
            ),
            ErrorCode::LoginFailed
        );
    }
);

// ---------------------------------------------------------------------------------------------
// Finding 5: timing tells a right password from a wrong one on the recovery path.

// (Its timing test is in timing.rs, a binary of its own: no other test shares the CPUs.)

// ---------------------------------------------------------------------------------------------
// Finding 6: a stranger locks an account at will.

on_both!(
    a_stranger_cannot_lock_an_account_but_is_throttled,
    |db: Db| async move {
        let policy = Policy {
            ip_max_points: 10_000,
            anonymous_guesses: 5,
            ..Policy::default()
        };
        let bank = TestBank::with_policy(db, policy).await;
        let holder = bank.enrolled_user("stranger.target", &[]).await;
        let mut owner = bank.key_login(&holder, "10.10.0.1").await;
        for i in 0..12 {
            let mut c = bank.anonymous(&format!("10.10.1.{i}")).await;
            assert_eq!(
                code(&c.login("stranger.target", "guess", None, None).await),
                ErrorCode::LoginFailed
            );
        }
        let details = bank.bank().show_user("stranger.target").await.unwrap();
        assert!(
            !details.summary.status.iter().any(|s| s == "locked"),
            "{details:?}"
        );
        // Only five of the twelve guesses were checked.
        let checked = bank
            .bank()
            .audit_list(Some("stranger.target"), 1000)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.outcome == "failed: wrong password")
            .count();
        assert_eq!(checked, 5);
        // The owner's session lives on, and the key still logs in.
        assert!(owner.call(Request::Overview {}).await.is_ok());
        let mut again = bank.key_login(&holder, "10.10.0.2").await;
        assert!(again.call(Request::Overview {}).await.is_ok());
        // Whoever holds the key still locks the account by guessing, as before.
        for _ in 0..5 {
            let mut c = bank.with_key(&holder, "10.10.0.3").await.unwrap();
            c.login("stranger.target", "guess", None, None)
                .await
                .unwrap_err();
        }
        let details = bank.bank().show_user("stranger.target").await.unwrap();
        assert!(details.summary.status.iter().any(|s| s == "locked"));
    }
);

// ---------------------------------------------------------------------------------------------
// Finding 8: data at rest.

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_folder_and_database_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    use tresor_bank::storage::{SchemaPolicy, Store};
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    // A folder and database an older version left readable by everyone.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let files = tresor_bank::data::open_or_create(
        &dir,
        "Test Bank",
        &[],
        &[],
        std::time::SystemTime::now(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(mode(&dir), 0o700);
    let store = Store::open_sqlite(&dir, SchemaPolicy::Create)
        .await
        .unwrap();
    let bank = tresor_bank::bank::Bank::new(
        store,
        files.ca.clone(),
        &files.secrets,
        Policy::default(),
        std::sync::Arc::new(tresor_bank::clock::SystemClock),
        "Test Bank",
    )
    .await
    .unwrap();
    bank.add_user("admin:test", "mode.check", "Mode Check")
        .await
        .unwrap();
    for name in [
        "tresor.db",
        "tresor.db-wal",
        "secrets.key",
        "bank-ca-key.pem",
        "server-key.pem",
    ] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    drop(bank);
    // Opening again tightens what was loosened.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.join("tresor.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    tresor_bank::data::open(&dir, &Default::default()).unwrap();
    Store::open_sqlite(&dir, SchemaPolicy::Current)
        .await
        .unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("tresor.db")), 0o600);
}

// ---------------------------------------------------------------------------------------------
// Finding 10: signatures whose signer was revoked or lost the right still counted.

on_both!(
    a_revoked_or_rightless_signer_no_longer_counts,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(4, 1_000_000).await;
        bank.bank()
            .set_signatures_required("admin:test", &iban, 2)
            .await
            .unwrap();
        let a = bank.enrolled_user("sign.a", &[(iban.as_str(), ALL)]).await;
        let b = bank.enrolled_user("sign.b", &[(iban.as_str(), ALL)]).await;
        let o = order(&iban, 10_000);
        let mut sa = bank.key_login(&a, "10.11.0.1").await;
        let id = match sa
            .call(Request::PrepareOrder { order: o.clone() })
            .await
            .unwrap()
        {
            Reply::Order(v) => v.id,
            other => panic!("{other:?}"),
        };
        for (who, ip) in [(&a, "10.11.0.1"), (&b, "10.11.0.2")] {
            let mut s = bank.key_login(who, ip).await;
            s.call(Request::SignOrder {
                id,
                version: 1,
                signature: payment::sign(&who.key, id, 1, &o),
            })
            .await
            .unwrap();
        }
        // b's key is reported lost after signing: the order needs another signature.
        let serial = tresor_core::pki::serial_hex(b.cert.tbs_certificate().serial_number());
        bank.bank()
            .revoke_certificate("admin:test", &serial)
            .await
            .unwrap();
        let mut sa = bank.key_login(&a, "10.11.0.1").await;
        assert_eq!(
            code(&sa.call(Request::SendOrder { id }).await),
            ErrorCode::NotAllowed
        );
        // And a signer whose sign right was taken away counts no more than one revoked.
        bank.bank()
            .change_rights(
                "admin:test",
                "sign.a",
                &iban,
                rights(false, false, true, false),
                false,
            )
            .await
            .unwrap();
        bank.bank()
            .change_rights(
                "admin:test",
                "sign.a",
                &iban,
                rights(false, false, false, true),
                true,
            )
            .await
            .unwrap();
        let mut sa = bank.key_login(&a, "10.11.0.1").await;
        assert_eq!(
            code(&sa.call(Request::SendOrder { id }).await),
            ErrorCode::NotAllowed
        );
        match sa.call(Request::GetOrder { id }).await.unwrap() {
            Reply::Order(v) => assert_ne!(v.status, OrderStatus::Accepted),
            other => panic!("{other:?}"),
        }
    }
);

/// A handshake whose ClientHello goes to `hello_to` and whose ClientFinish goes to
/// `finish_to` with the ticket it was given (or `ticket` instead, if one is passed): the
/// Accept or Alert, the ClientFinish, the ticket, and the client waiting for the Accept.
struct Split {
    finish: Vec<u8>,
    ticket: Vec<u8>,
    await_accept: client::AwaitAccept,
}

async fn split_hello(
    bank: &TestBank,
    hello_to: &tresor_bank::server::BankChannel,
    ip: &str,
) -> Split {
    let peer = std::net::SocketAddr::new(ip.parse().unwrap(), 40000);
    let (await_hello, hello) = client::start(ClientAuthentication::Anonymous);
    let reply = hello_to
        .handshake_with(&hello, None, bank.clock_now(), Some(peer))
        .await;
    let ticket = reply
        .ticket
        .expect("a bank on a database hands out tickets");
    let (await_accept, finish) = await_hello
        .receive(&reply.body, &bank.ca, std::time::SystemTime::now())
        .unwrap();
    Split {
        finish,
        ticket,
        await_accept,
    }
}

async fn finish_at(
    bank: &TestBank,
    to: &tresor_bank::server::BankChannel,
    finish: &[u8],
    ticket: Option<&[u8]>,
    ip: &str,
) -> Vec<u8> {
    let peer = std::net::SocketAddr::new(ip.parse().unwrap(), 40000);
    to.handshake_with(finish, ticket, bank.clock_now(), Some(peer))
        .await
        .body
}

fn alert(reply: &[u8]) -> AlertCode {
    Alert::decode(reply).expect("an alert").code
}

on_both!(
    a_handshake_finishes_on_another_instance_with_its_ticket_once,
    |db: Db| async move {
        // No affinity: the ClientFinish may reach another instance than the ClientHello,
        // which finishes it from the ticket the client carries. A handshake opens one
        // session, wherever its ClientFinish is sent again, also after the session ended.
        let bank = TestBank::shared(db).await;
        let second = bank.second_instance().await;
        let ip = "10.81.0.1";
        let s = split_hello(&bank, &bank.channel, ip).await;
        // Without its ticket, the other instance knows nothing of it.
        assert_eq!(
            alert(&finish_at(&bank, &second, &s.finish, None, ip).await),
            AlertCode::UnknownSession
        );
        let accept = finish_at(&bank, &second, &s.finish, Some(&s.ticket), ip).await;
        let session = s.await_accept.receive(&accept).unwrap();
        let mut c = Client {
            session,
            channel: second.clone(),
            peer: std::net::SocketAddr::new(ip.parse().unwrap(), 40000),
        };
        assert!(matches!(
            c.call(Request::BankInfo {}).await,
            Ok(Reply::BankInfo(_))
        ));
        c.channel = bank.channel.clone();
        assert!(matches!(
            c.call(Request::BankInfo {}).await,
            Ok(Reply::BankInfo(_))
        ));
        // Sent again: to the instance that still keeps it pending, and with the ticket to
        // either; while the session lives, and after it closed. (From addresses of their
        // own: refusals count against an address, which would soon be blocked.)
        let mut replayer = 0;
        for round in ["open", "closed"] {
            for (to, ticket) in [
                (&second, Some(s.ticket.as_slice())),
                (&bank.channel, None),
                (&bank.channel, Some(s.ticket.as_slice())),
            ] {
                replayer += 1;
                let from = format!("10.81.1.{replayer}");
                assert_eq!(
                    alert(&finish_at(&bank, to, &s.finish, ticket, &from).await),
                    AlertCode::UnknownSession,
                    "{round}"
                );
            }
            if round == "open" {
                let close = c.session.seal_close().unwrap();
                c.channel.record(&close, Some(c.peer)).await;
            }
        }
        assert_eq!(
            scalar_i64(&bank, "SELECT COUNT(*) FROM channel_sessions").await,
            0
        );
    }
);

on_both!(
    a_forged_stale_or_borrowed_ticket_opens_nothing,
    |db: Db| async move {
        let bank = TestBank::shared(db).await;
        let second = bank.second_instance().await;
        let ip = "10.82.0.1";
        let s = split_hello(&bank, &bank.channel, ip).await;
        let other = split_hello(&bank, &bank.channel, ip).await;
        let mut flipped = s.ticket.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        // Any changed byte, a ticket of another handshake, or none that decodes: refused,
        // and the genuine ticket still finishes afterwards.
        for bad in [
            &flipped[..],
            &other.ticket[..],
            &s.ticket[..40],
            b"".as_slice(),
        ] {
            assert_eq!(
                alert(&finish_at(&bank, &second, &s.finish, Some(bad), ip).await),
                AlertCode::UnknownSession
            );
        }
        let accept = finish_at(&bank, &second, &s.finish, Some(&s.ticket), ip).await;
        s.await_accept.receive(&accept).unwrap();
        // Past the handshake timeout, a genuine ticket is stale.
        let late = split_hello(&bank, &bank.channel, ip).await;
        advance(
            &bank,
            tresor_core::channel::server::HANDSHAKE_TIMEOUT + Duration::from_secs(1),
        );
        assert_eq!(
            alert(&finish_at(&bank, &second, &late.finish, Some(&late.ticket), ip).await),
            AlertCode::UnknownSession
        );
    }
);

on_both!(
    a_queued_mail_is_sealed_and_a_planted_one_is_never_sent,
    |db: Db| async move {
        // `user add --email` queues the initial password for the user; the database holds
        // it sealed under the bank's key, and a row the database-only attacker writes is
        // refused by the mailer before any SMTP.
        let bank = TestBank::new(db).await;
        let to = bank
            .bank()
            .add_user_by_mail(
                "admin:test",
                "mailed.user",
                "Mailed User",
                "mailed@example.com",
            )
            .await
            .unwrap();
        assert_eq!(to, "m•••@example.com");
        let (id, sealed): (String, Vec<u8>) = sqlx::query_as("SELECT id, sealed FROM mail_outbox")
            .fetch_one(bank.store().pool())
            .await
            .unwrap();
        let files = tresor_bank::data::open(bank.dir.path(), &Default::default()).unwrap();
        let vault = tresor_bank::mailer::vault(&files.secrets);
        let mail = tresor_bank::mail::open(&vault, &id, &sealed).unwrap();
        assert_eq!(mail.to, "mailed@example.com");
        let password = mail
            .text
            .lines()
            .find_map(|l| l.strip_prefix("Initial password: "))
            .unwrap()
            .to_owned();
        assert!(
            !sealed
                .windows(password.len())
                .any(|w| w == password.as_bytes())
        );
        // The mailed password is the user's one-time password.
        let mut c = bank.anonymous("10.90.0.1").await;
        match c.login("mailed.user", &password, None, None).await {
            Ok(Reply::LoggedIn(info)) => assert_eq!(info.stage, Stage::ChangePassword),
            other => panic!("{other:?}"),
        }
        // Planted: a row whose seal is not the bank's.
        sqlx::query(
            "INSERT INTO mail_outbox (id, sealed, created_at, next_attempt) \
             VALUES ('planted', $1, 0, 0)",
        )
        .bind(b"to: attacker@example.com".to_vec())
        .execute(bank.store().pool())
        .await
        .unwrap();
        // A mail server that is not there: the genuine mail fails to connect, the planted
        // one never gets that far.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = tresor_bank::config::MailConfig {
            smtp: Some("127.0.0.1".into()),
            port: Some(closed),
            security: tresor_bank::config::MailSecurity::None,
            from: "bank@example.com".into(),
            ..Default::default()
        };
        let mailer = tresor_bank::mailer::Mailer::new(
            &config,
            bank.store().clone(),
            &files.secrets,
            std::sync::Arc::new(tresor_bank::clock::SystemClock),
        )
        .unwrap()
        .unwrap();
        assert_eq!(mailer.send_due().await.unwrap(), 0);
        let errors: Vec<(String, Option<String>, i64)> =
            sqlx::query_as("SELECT id, last_error, attempts FROM mail_outbox ORDER BY id")
                .fetch_all(bank.store().pool())
                .await
                .unwrap();
        assert_eq!(errors.len(), 2);
        for (id, error, attempts) in errors {
            let error = error.unwrap_or_default();
            assert_eq!(attempts, 1);
            assert_eq!(
                error.contains("not sealed by this bank"),
                id == "planted",
                "{id}: {error}"
            );
        }
    }
);
