//! Requests racing each other on one bank, on SQLite and PostgreSQL: what reads, decides and
//! writes does so in one transaction, so that concurrency never lets more through than one
//! request at a time would.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use support::*;
use tokio::task::JoinSet;
use tresor_bank::storage::mail::Channel;
use tresor_core::api::{ErrorCode, OrderStatus, Reply, Request, Stage};
use tresor_core::payment::{self, Iban, PaymentOrder};

fn order(payer: &str, amount: u64) -> PaymentOrder {
    PaymentOrder {
        payer_iban: payer.to_owned(),
        payee_name: "Supplier LLC".into(),
        payee_tax_code: "12345678".into(),
        payee_iban: Iban::ua_from_parts("300001", "26000000009999")
            .unwrap()
            .to_string(),
        amount,
        currency: "UAH".into(),
        purpose: "Invoice 17".into(),
    }
}

fn order_view(r: &tresor_core::api::Response) -> tresor_core::api::OrderView {
    match r {
        Ok(Reply::Order(v)) => v.clone(),
        other => panic!("{other:?}"),
    }
}

/// How many audit records have this event and an outcome starting with `prefix`.
async fn audited(bank: &TestBank, event: &str, prefix: &str) -> usize {
    bank.bank()
        .audit_list(None, 100_000)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.event == event && r.outcome.starts_with(prefix))
        .count()
}

on_both!(
    fifty_logins_with_one_initial_password_let_one_in,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let initial = bank
            .bank()
            .add_user("admin:test", "race.initial", "Race Initial")
            .await
            .unwrap();
        let mut clients = Vec::new();
        for i in 0..50 {
            clients.push(
                bank.anonymous(&format!("10.50.{}.{}", i / 200, i % 200 + 1))
                    .await,
            );
        }
        let mut tasks = JoinSet::new();
        for mut c in clients {
            let password = initial.expose().to_owned();
            tasks.spawn(async move { c.login("race.initial", &password, None, None).await });
        }
        let mut ok = 0;
        while let Some(r) = tasks.join_next().await {
            match r.unwrap() {
                Ok(Reply::LoggedIn(info)) => {
                    assert_eq!(info.stage, Stage::ChangePassword);
                    ok += 1;
                }
                Err(e) => assert_eq!(e.code, ErrorCode::LoginFailed, "{e:?}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ok, 1, "exactly one login may use the initial password");
        assert_eq!(audited(&bank, "login", "ok").await, 1);
    }
);

on_both!(
    sixty_concurrent_wrong_totp_codes_check_no_more_than_the_limit,
    |db: Db| async move {
        // The per-account throttle of anonymous password checks stays out of the way: the
        // race under test is the OTP limit's.
        let policy = tresor_bank::config::Policy {
            anonymous_guesses: 1_000,
            ..Default::default()
        };
        let bank = TestBank::with_policy(db, policy).await;
        let limit = bank.bank().policy().otp_lockout_threshold as usize;
        let iban = bank.account(60, 100_000).await;
        let who = bank.enrolled_user("race.otp", &[(&iban, ALL)]).await;
        let mut k = bank.key_login(&who, "10.60.0.1").await;
        let secret = k.start_totp().await;
        let now = tresor_bank::storage::unix(bank.clock_now()) as u64;
        let right = totp_code(&secret, now);
        k.call(Request::TotpConfirm {
            code: right.clone(),
        })
        .await
        .unwrap();
        // A code that is wrong now and in the steps around it.
        let wrong = (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .find(|c| {
                [now - 30, now, now + 30]
                    .iter()
                    .all(|t| *c != totp_code(&secret, *t))
            })
            .unwrap();
        let mut clients = Vec::new();
        for i in 0..60 {
            // One address each, so that IP penalties do not stop them first.
            clients.push(
                bank.anonymous(&format!("10.61.{}.{}", i / 200, i % 200 + 1))
                    .await,
            );
        }
        let mut tasks = JoinSet::new();
        for mut c in clients {
            let (login, password, code) = (who.login.clone(), who.password.clone(), wrong.clone());
            tasks.spawn(async move { c.login(&login, &password, Some(&code), None).await });
        }
        while let Some(r) = tasks.join_next().await {
            assert_eq!(code(&r.unwrap()), ErrorCode::LoginFailed);
        }
        let checked = audited(&bank, "login", "failed: OTP").await;
        let refused = audited(&bank, "login", "refused: OTP locked").await;
        assert_eq!(checked, limit, "codes checked: {checked}, limit {limit}");
        let outcomes: Vec<String> = bank
            .bank()
            .audit_list(Some(&who.login), 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| format!("{}: {}", r.event, r.outcome))
            .collect();
        assert_eq!(checked + refused, 60, "{outcomes:#?}");
        // Locked for OTP now: even the right code is not checked.
        let mut o = bank.anonymous("10.62.0.1").await;
        assert_eq!(
            code(&o.login(&who.login, &who.password, Some(&right), None).await),
            ErrorCode::LoginFailed
        );
        assert_eq!(audited(&bank, "login", "failed: OTP").await, limit);
    }
);

on_both!(
    an_edit_racing_a_signature_never_leaves_the_new_version_signed,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(70, 1_000_000).await;
        let who = bank.enrolled_user("race.sign", &[(&iban, ALL)]).await;
        let mut k = bank.key_login(&who, "10.70.0.1").await;
        let o = order(&iban, 1_000);
        let v = order_view(&k.call(Request::PrepareOrder { order: o.clone() }).await);
        let signature = payment::sign(&who.key, v.id, v.version, &o);

        // Widen the window: another writer holds the order (a row lock on PostgreSQL, the
        // write lock on SQLite) while the signature arrives, then edits it and commits.
        let pool = bank.store().pool().clone();
        let mut editor = match db {
            Db::Postgres => {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT id FROM orders WHERE id = {} FOR UPDATE",
                    v.id
                )))
                .execute(&mut *tx)
                .await
                .unwrap();
                tx
            }
            Db::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await.unwrap(),
        };
        let id = v.id;
        let signing = tokio::spawn(async move {
            k.call(Request::SignOrder {
                id,
                version: 1,
                signature,
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE orders SET version = version + 1, amount = amount + 1 WHERE id = {id}"
        )))
        .execute(&mut *editor)
        .await
        .unwrap();
        editor.commit().await.unwrap();
        let signed = signing.await.unwrap();
        assert_eq!(code(&signed), ErrorCode::Conflict);
        let mut k = bank.key_login(&who, "10.70.0.2").await;
        let now = order_view(&k.call(Request::GetOrder { id }).await);
        assert_eq!((now.version, now.status), (2, OrderStatus::Draft));
        assert!(now.signatures.is_empty());

        // And through the bank's own requests, many times over: whatever the order, a signed
        // order is at the version that was signed.
        let mut e = bank.key_login(&who, "10.70.0.3").await;
        for round in 0..10u64 {
            let o = order(&iban, 2_000 + round);
            let v = order_view(&k.call(Request::PrepareOrder { order: o.clone() }).await);
            let signature = payment::sign(&who.key, v.id, 1, &o);
            let mut edited = o.clone();
            edited.amount += 1;
            let (signed, edit) = tokio::join!(
                k.call(Request::SignOrder {
                    id: v.id,
                    version: 1,
                    signature,
                }),
                e.call(Request::EditOrder {
                    id: v.id,
                    version: 1,
                    order: edited.clone(),
                })
            );
            let end = order_view(&k.call(Request::GetOrder { id: v.id }).await);
            match (signed.is_ok(), edit.is_ok()) {
                // Signed first, then edited: the signature went with the old version.
                (true, true) => {
                    assert_eq!((end.version, end.status), (2, OrderStatus::Draft));
                    assert!(end.signatures.is_empty());
                }
                (true, false) => panic!("the edit of a signed order was refused: {edit:?}"),
                (false, true) => {
                    assert_eq!(code(&signed), ErrorCode::Conflict);
                    assert_eq!((end.version, end.status), (2, OrderStatus::Draft));
                }
                (false, false) => panic!("{signed:?} {edit:?}"),
            }
            assert_eq!(end.order, edited);
        }
    }
);

on_both!(
    fifty_concurrent_sends_of_one_order_debit_once,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(80, 1_000_000).await;
        let who = bank.enrolled_user("race.send", &[(&iban, ALL)]).await;
        let mut k = bank.key_login(&who, "10.80.0.1").await;
        let o = order(&iban, 12_345);
        let v = order_view(&k.call(Request::PrepareOrder { order: o.clone() }).await);
        let signature = payment::sign(&who.key, v.id, v.version, &o);
        k.call(Request::SignOrder {
            id: v.id,
            version: v.version,
            signature,
        })
        .await
        .unwrap();
        let mut clients = Vec::new();
        for i in 0..50 {
            clients.push(bank.key_login(&who, &format!("10.81.0.{}", i + 1)).await);
        }
        let mut tasks = JoinSet::new();
        for mut c in clients {
            let id = v.id;
            tasks.spawn(async move { c.call(Request::SendOrder { id }).await });
        }
        while let Some(r) = tasks.join_next().await {
            assert_eq!(order_view(&r.unwrap()).status, OrderStatus::Accepted);
        }
        let accounts = bank.bank().list_accounts().await.unwrap();
        let account = accounts.iter().find(|a| a.iban == iban).unwrap();
        assert_eq!(account.balance, 1_000_000 - 12_345);
        assert_eq!(audited(&bank, "order_send", "accepted").await, 1);
        assert!(bank.bank().audit_verify().await.unwrap().is_ok());
    }
);

on_both!(
    forty_concurrent_anonymous_guesses_check_no_more_than_the_throttle,
    |db: Db| async move {
        let policy = tresor_bank::config::Policy {
            anonymous_guesses: 5,
            ip_max_points: 10_000,
            ..Default::default()
        };
        let bank = TestBank::with_policy(db, policy).await;
        let who = bank.enrolled_user("race.stranger", &[]).await;
        let mut clients = Vec::new();
        for i in 0..40 {
            clients.push(bank.anonymous(&format!("10.63.0.{}", i + 1)).await);
        }
        let mut tasks = JoinSet::new();
        for mut c in clients {
            let login = who.login.clone();
            tasks.spawn(async move { c.login(&login, "a stranger's guess", None, None).await });
        }
        while let Some(r) = tasks.join_next().await {
            assert_eq!(code(&r.unwrap()), ErrorCode::LoginFailed);
        }
        // Each check was reserved before the password was looked at: five checked, however
        // many arrived at once; none of them locks the account.
        assert_eq!(audited(&bank, "login", "failed: wrong password").await, 5);
        assert_eq!(
            audited(&bank, "login", "refused: anonymous guesses throttled").await,
            35
        );
        let d = bank.bank().show_user(&who.login).await.unwrap();
        assert!(!d.summary.status.iter().any(|s| s == "locked"), "{d:?}");
    }
);

on_both!(
    one_record_sent_forty_times_at_once_to_two_instances_is_answered_once,
    |db: Db| async move {
        // The seq is accepted by one conditioned statement (`accept_seq`), without a read
        // before it: of forty copies of a record racing on two instances, one is answered;
        // the others are refused as out of sequence, and the session goes on.
        let bank = TestBank::shared(db).await;
        let second = bank.second_instance().await;
        let mut c = bank.anonymous("10.77.0.1").await;
        let payload = serde_json::to_vec(&Request::BankInfo {}).unwrap();
        // Both instances have opened the session's state: the fast path on each.
        for channel in [second.clone(), bank.channel.clone()] {
            c.channel = channel;
            let (_, reply) = c.raw(&payload).await;
            assert!(c.session.open(&reply).is_ok());
        }
        let record = c.session.seal(&payload).unwrap();
        let mut racing = JoinSet::new();
        for i in 0..40 {
            let channel = if i % 2 == 0 {
                bank.channel.clone()
            } else {
                second.clone()
            };
            let (record, peer) = (record.clone(), c.peer);
            racing.spawn(async move { channel.record(&record, Some(peer)).await });
        }
        let mut replies = Vec::new();
        let mut refused = 0;
        while let Some(reply) = racing.join_next().await {
            let reply = reply.unwrap();
            match tresor_core::channel::wire::Alert::decode(&reply) {
                Ok(alert) => {
                    assert_eq!(alert.code, tresor_core::channel::AlertCode::BadRecord);
                    refused += 1;
                }
                Err(_) => replies.push(reply),
            }
        }
        assert_eq!((replies.len(), refused), (1, 39));
        assert!(c.session.open(&replies[0]).is_ok());
        c.channel = second;
        assert!(matches!(
            c.call(Request::BankInfo {}).await,
            Ok(Reply::BankInfo(_))
        ));
    }
);

on_both!(
    one_client_finish_sent_twenty_times_at_once_to_two_instances_opens_one_session,
    |db: Db| async move {
        // A handshake's id is marked spent in the transaction that inserts its session
        // (`spend_handshake`, a conditioned insert): of twenty copies of a ClientFinish racing
        // on the instance that keeps the handshake and, with its ticket, on another, one
        // opens a session.
        let bank = TestBank::shared(db).await;
        let second = bank.second_instance().await;
        let (await_hello, hello) = tresor_core::channel::client::start(
            tresor_core::channel::client::ClientAuthentication::Anonymous,
        );
        let reply = bank
            .channel
            .handshake_with(&hello, None, bank.clock_now(), None)
            .await;
        let ticket = reply.ticket.unwrap();
        let (await_accept, finish) = await_hello
            .receive(&reply.body, &bank.ca, std::time::SystemTime::now())
            .unwrap();
        let mut racing = JoinSet::new();
        for i in 0..20u8 {
            let channel = if i % 2 == 0 {
                bank.channel.clone()
            } else {
                second.clone()
            };
            let (finish, ticket, now) = (finish.clone(), ticket.clone(), bank.clock_now());
            // Each from an address of its own, so that no refusal blocks the next.
            let peer = std::net::SocketAddr::new([10, 78, 0, i + 1].into(), 40000);
            racing.spawn(async move {
                channel
                    .handshake_with(&finish, Some(&ticket), now, Some(peer))
                    .await
                    .body
            });
        }
        let mut accepts = Vec::new();
        while let Some(reply) = racing.join_next().await {
            let reply = reply.unwrap();
            match tresor_core::channel::wire::Alert::decode(&reply) {
                Ok(alert) => {
                    assert_eq!(alert.code, tresor_core::channel::AlertCode::UnknownSession)
                }
                Err(_) => accepts.push(reply),
            }
        }
        assert_eq!(accepts.len(), 1);
        await_accept.receive(&accepts[0]).unwrap();
        assert_eq!(bank.channel.session_count().await.unwrap(), 1);
    }
);

on_both!(
    ten_mailers_racing_claim_each_due_mail_once,
    |db: Db| async move {
        // Each mail is claimed by an update conditioned on the attempt time it was read
        // with (`claim_mail`): of ten instances' mailers claiming at once, one gets each.
        let bank = TestBank::new(db).await;
        let mut tx = bank.store().begin().await.unwrap();
        for i in 0..30 {
            tx.enqueue_mail(&format!("mail-{i}"), b"sealed", 1_000)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let mut racing = JoinSet::new();
        for _ in 0..10 {
            let store = bank.store().clone();
            racing.spawn(async move {
                let mut conn = store.read().await.unwrap();
                conn.claim_mail(Channel::Mail, 2_000, 5_000, 100)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|m| m.id)
                    .collect::<Vec<_>>()
            });
        }
        let mut claimed = Vec::new();
        while let Some(ids) = racing.join_next().await {
            claimed.extend(ids.unwrap());
        }
        claimed.sort();
        let mut want: Vec<String> = (0..30).map(|i| format!("mail-{i}")).collect();
        want.sort();
        assert_eq!(claimed, want);
        // Claimed: due again only when the claim lapses.
        let mut conn = bank.store().read().await.unwrap();
        assert!(
            conn.claim_mail(Channel::Mail, 4_999, 9_000, 100)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            conn.claim_mail(Channel::Mail, 5_000, 9_000, 100)
                .await
                .unwrap()
                .len(),
            30
        );
    }
);

/// The embedded database: one serving process, which holds its sessions' seqs in memory.
mod held {
    use super::*;
    use tresor_bank::sessions::{DbSessions, HoldError};
    use tresor_bank::storage::{SchemaPolicy, Store};
    use tresor_core::channel::AlertCode;
    use tresor_core::channel::wire::Alert;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_record_sent_forty_times_at_once_is_answered_once() {
        // The seq moves on under the held map's lock only if it still is the record's: of
        // forty copies racing, on a logged-in session (whose login each reads) and on an
        // anonymous one (which reads nothing), one is answered.
        let bank = TestBank::new(Db::Sqlite).await;
        assert!(bank.holds_seqs());
        let who = bank.enrolled_user("held.race", &[]).await;
        let key = bank.key_login(&who, "10.78.0.1").await;
        let anonymous = bank.anonymous("10.78.0.2").await;
        for mut c in [key, anonymous] {
            let payload = serde_json::to_vec(&Request::BankInfo {}).unwrap();
            let record = c.session.seal(&payload).unwrap();
            let mut racing = JoinSet::new();
            for _ in 0..40 {
                let (channel, record, peer) = (c.channel.clone(), record.clone(), c.peer);
                racing.spawn(async move { channel.record(&record, Some(peer)).await });
            }
            let mut replies = Vec::new();
            while let Some(reply) = racing.join_next().await {
                let reply = reply.unwrap();
                match Alert::decode(&reply) {
                    Ok(alert) => assert_eq!(alert.code, AlertCode::BadRecord),
                    Err(_) => replies.push(reply),
                }
            }
            assert_eq!(replies.len(), 1);
            assert!(c.session.open(&replies[0]).is_ok());
            assert!(matches!(
                c.call(Request::BankInfo {}).await,
                Ok(Reply::BankInfo(_))
            ));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_ended_by_another_process_is_refused_at_its_next_record() {
        // An admin command runs in a process of its own on the same database: it ends a
        // user's sessions there, and the serving process, which holds their seqs, refuses
        // the next record, since a logged-in session's record reads its login.
        let bank = TestBank::new(Db::Sqlite).await;
        let who = bank.enrolled_user("held.locked", &[]).await;
        let mut c = bank.key_login(&who, "10.78.1.1").await;
        assert!(c.call(Request::Overview {}).await.is_ok());
        let admin_process = tresor_bank::bank::Bank::new(
            Store::connect(&bank.url, SchemaPolicy::Current)
                .await
                .unwrap(),
            tresor_bank::data::open(bank.dir.path(), &Default::default())
                .unwrap()
                .ca
                .clone(),
            &tresor_bank::data::open(bank.dir.path(), &Default::default())
                .unwrap()
                .secrets,
            bank.bank().policy().clone(),
            bank.clock.clone(),
            "Test Bank",
        )
        .await
        .unwrap();
        admin_process
            .lock_user("admin:test", "held.locked")
            .await
            .unwrap();
        let record = c
            .session
            .seal(&serde_json::to_vec(&Request::Overview {}).unwrap());
        let reply = c.channel.record(&record.unwrap(), Some(c.peer)).await;
        assert_eq!(
            Alert::decode(&reply).expect("refused").code,
            AlertCode::UnknownSession
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_process_cannot_serve_the_embedded_database() {
        // Two processes holding seqs of one database would each accept a record the other
        // took: the data folder's lock lets one serve.
        let bank = TestBank::new(Db::Sqlite).await;
        let secrets = tresor_bank::data::open(bank.dir.path(), &Default::default())
            .unwrap()
            .secrets;
        let second = DbSessions::held(bank.store().clone(), &secrets, bank.dir.path());
        assert!(
            matches!(second, Err(HoldError::Serving(_))),
            "{:?}",
            second.err()
        );
    }
}

/// PostgreSQL: each session held by the instance that serves it, asked for by another.
mod held_on_postgres {
    use super::*;
    use tresor_core::channel::AlertCode;
    use tresor_core::channel::wire::Alert;

    /// Sends `record` until an answer other than "busy" (an instance waiting for another to
    /// let the session go answers busy for up to a second).
    async fn settled(c: &Client, record: &[u8]) -> Vec<u8> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let reply = c.channel.record(record, Some(c.peer)).await;
            match Alert::decode(&reply) {
                Ok(a) if a.code == AlertCode::ServerBusy => {
                    assert!(std::time::Instant::now() < deadline, "busy for ever");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ => return reply,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_that_dies_takes_its_sessions_with_it() {
        // The instance holding a session dies (its listener connection closes with it): its
        // seq is lost, so the instance a record then reaches ends the session, and a record
        // that instance had answered is not answered again anywhere.
        let bank = TestBank::new(Db::Postgres).await;
        let second = bank.second_instance().await;
        let mut c = bank.anonymous("10.79.0.1").await;
        c.channel = second;
        let payload = serde_json::to_vec(&Request::BankInfo {}).unwrap();
        let (answered, reply) = c.raw(&payload).await;
        assert!(c.session.open(&reply).is_ok());
        // The second instance stops: its memory, listener and name go.
        c.channel = bank.channel.clone();
        let next = c.session.seal(&payload).unwrap();
        for record in [answered, next] {
            let reply = settled(&c, &record).await;
            assert_eq!(
                Alert::decode(&reply).expect("refused").code,
                AlertCode::UnknownSession
            );
        }
        // New sessions go on.
        let mut fresh = bank.anonymous("10.79.0.2").await;
        assert!(fresh.call(Request::BankInfo {}).await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_listener_lets_the_sessions_go_with_their_seqs() {
        // The connection that names an instance breaks (a database restart, the network):
        // its name is over, so it writes its sessions back, held by no one, and takes them
        // up again under its new name: the session goes on, and a replay is refused.
        let bank = TestBank::new(Db::Postgres).await;
        let mut c = bank.anonymous("10.79.1.1").await;
        let payload = serde_json::to_vec(&Request::BankInfo {}).unwrap();
        let (answered, reply) = c.raw(&payload).await;
        assert!(c.session.open(&reply).is_ok());
        let pid: i32 = sqlx::query_scalar(
            "SELECT CAST(split_part(holder, ' ', 2) AS INTEGER) FROM channel_sessions",
        )
        .fetch_one(bank.store().pool())
        .await
        .unwrap();
        let _: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(bank.store().pool())
            .await
            .unwrap();
        // Let go: the row is held by no one, or already by the instance's new name.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let holder: Option<String> = sqlx::query_scalar("SELECT holder FROM channel_sessions")
                .fetch_one(bank.store().pool())
                .await
                .unwrap();
            if holder.is_none_or(|h| !h.contains(&format!(" {pid} "))) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never let go");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let reply = settled(&c, &answered).await;
        assert_eq!(
            Alert::decode(&reply).expect("a replay is refused").code,
            AlertCode::BadRecord
        );
        let next = c.session.seal(&payload).unwrap();
        let reply = settled(&c, &next).await;
        assert!(c.session.open(&reply).is_ok(), "the session goes on");
    }
}
