//! The bank's rules, each shown on SQLite and on PostgreSQL, through the real channel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{ALL, Db, Holder, TestBank, advance, code, order, rights, totp_code};
use tresor_bank::audit::Tampering;
use tresor_bank::config::Policy;
use tresor_core::api::{ErrorCode, OrderStatus, Reply, Request, Stage};
use tresor_core::channel::{AlertCode, ChannelError};
use tresor_core::payment;
use tresor_core::{Password, PrivateKey};

fn order_of(r: &Reply) -> (u64, u32, OrderStatus) {
    match r {
        Reply::Order(o) => (o.id, o.version, o.status),
        other => panic!("{other:?}"),
    }
}

async fn failed_logins(bank: &TestBank, login: &str) -> (i64, bool) {
    let d = bank.bank().show_user(login).await.unwrap();
    (
        i64::from(d.failed_logins),
        d.summary.status.iter().any(|s| s == "locked"),
    )
}

on_both!(
    lockout_is_exact_at_five_under_fifty_concurrent_wrong_attempts,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let who = bank.enrolled_user("olena.k", &[]).await;
        // Four wrong, then the right password: not locked, counter reset.
        for i in 0..4 {
            let mut c = bank.with_key(&who, &format!("10.1.0.{i}")).await.unwrap();
            assert_eq!(
                code(&c.login(&who.login, "wrong password!", None, None).await),
                ErrorCode::LoginFailed
            );
        }
        assert_eq!(failed_logins(&bank, &who.login).await, (4, false));
        bank.key_login(&who, "10.1.1.1").await;
        assert_eq!(failed_logins(&bank, &who.login).await, (0, false));

        // Fifty at once, each from its own address so that IP penalties stay out of the way.
        let mut clients = Vec::new();
        for i in 0..50 {
            clients.push(
                bank.with_key(&who, &format!("10.2.{}.{}", i / 200, i % 200 + 1))
                    .await
                    .unwrap(),
            );
        }
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|mut c| {
                let login = who.login.clone();
                tokio::spawn(async move { c.login(&login, "wrong password!", None, None).await })
            })
            .collect();
        // A key session that finds the account already locked hears so (only the key's
        // holder can); the others hear the generic refusal, or, beyond what the Argon2 queue
        // holds, "busy" at once.
        let mut generic = 0;
        for t in tasks {
            match code(&t.await.unwrap()) {
                ErrorCode::LoginFailed => generic += 1,
                other => assert!(
                    matches!(other, ErrorCode::AccountLocked | ErrorCode::Busy),
                    "{other:?}"
                ),
            }
        }
        assert!(generic >= 5, "{generic}");
        assert_eq!(
            failed_logins(&bank, &who.login).await,
            (5, true),
            "locked at exactly five"
        );
        let audit = bank
            .bank()
            .audit_list(Some(&who.login), 1000)
            .await
            .unwrap();
        let counted = audit
            .iter()
            .filter(|r| r.outcome == "failed: wrong password")
            .count();
        let lockouts = audit.iter().filter(|r| r.event == "lockout").count();
        // 4 before the reset, 5 counted now; the other 45 were refused as locked, and logged.
        assert_eq!((counted, lockouts), (9, 1));
        assert_eq!(
            audit
                .iter()
                .filter(|r| r.outcome == "refused: account locked")
                .count(),
            45
        );

        // The right password no longer helps. With the key, the user hears that the account
        // is locked, whatever the password; without it, the same generic error as anyone.
        let mut c = bank.with_key(&who, "10.3.0.1").await.unwrap();
        let r = c.login(&who.login, &who.password, None, None).await;
        assert_eq!(code(&r), ErrorCode::AccountLocked);
        let mut c = bank.with_key(&who, "10.3.0.4").await.unwrap();
        let wrong = c.login(&who.login, "wrong password!", None, None).await;
        assert_eq!(wrong.unwrap_err(), r.unwrap_err());
        let mut c = bank.anonymous("10.3.0.5").await;
        let r = c
            .login(&who.login, &who.password, Some("123456"), None)
            .await;
        assert_eq!(r.unwrap_err().message, {
            let mut c = bank.anonymous("10.3.0.2").await;
            c.login("nobody.here", "whatever", None, None)
                .await
                .unwrap_err()
                .message
        });
        // A temporary password unlocks; it must be changed at once.
        let temp = bank
            .bank()
            .temporary_password("admin:test", &who.login)
            .await
            .unwrap();
        let mut c = bank.with_key(&who, "10.3.0.3").await.unwrap();
        let r = c
            .login(&who.login, temp.expose(), None, None)
            .await
            .unwrap();
        assert!(matches!(r, Reply::LoggedIn(ref i) if i.stage == Stage::ChangePassword));
        assert_eq!(
            code(&c.call(Request::Overview {}).await),
            ErrorCode::NotAllowed
        );
        let r = c
            .call(Request::ChangePassword {
                current: temp,
                new: Password::from("a brand new passphrase"),
            })
            .await;
        assert_eq!(r.unwrap(), Reply::PasswordChanged { next: Stage::Key });
        assert!(matches!(
            c.call(Request::Overview {}).await.unwrap(),
            Reply::Overview(_)
        ));
    }
);

on_both!(
    ip_penalty_points_expire_and_block_with_an_injected_clock,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let ip = "192.0.2.7";
        async fn fail(bank: &TestBank, ip: &str) -> tresor_core::api::Response {
            let mut c = bank.anonymous(ip).await;
            c.login("no.such.user", "guess", None, None).await
        }
        // Five points: still allowed.
        for _ in 0..5 {
            assert_eq!(code(&fail(&bank, ip).await), ErrorCode::LoginFailed);
        }
        // Ten minutes later the five have expired: five more are allowed.
        advance(&bank, Duration::from_secs(601));
        for _ in 0..5 {
            assert_eq!(code(&fail(&bank, ip).await), ErrorCode::LoginFailed);
        }
        assert!(
            bank.bank()
                .ip_blocked(ip, bank.clock_now())
                .await
                .unwrap()
                .is_none()
        );
        // The sixth valid point blocks the address for 15 minutes; other addresses are not.
        assert_eq!(code(&fail(&bank, ip).await), ErrorCode::LoginFailed);
        assert_eq!(code(&fail(&bank, ip).await), ErrorCode::AddressBlocked);
        let mut other = bank.anonymous("192.0.2.8").await;
        assert_eq!(
            code(&other.login("no.such.user", "guess", None, None).await),
            ErrorCode::LoginFailed
        );
        // Even the right password is refused from a blocked address.
        let who = bank.enrolled_user("petro.s", &[]).await;
        let mut c = bank.with_key(&who, ip).await.unwrap();
        assert_eq!(
            code(&c.login(&who.login, &who.password, None, None).await),
            ErrorCode::AddressBlocked
        );
        advance(&bank, Duration::from_secs(14 * 60));
        assert_eq!(code(&fail(&bank, ip).await), ErrorCode::AddressBlocked);
        advance(&bank, Duration::from_secs(61));
        let mut c = bank.with_key(&who, ip).await.unwrap();
        assert!(c.login(&who.login, &who.password, None, None).await.is_ok());
    }
);

on_both!(
    one_time_passwords_are_single_use_and_expire,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        // Initial: works once; a second login with it fails even though it is "right".
        let initial = bank
            .bank()
            .add_user("admin:test", "ivan.p", "Ivan P")
            .await
            .unwrap();
        let mut c = bank.anonymous("10.4.0.1").await;
        assert!(
            c.login("ivan.p", initial.expose(), None, None)
                .await
                .is_ok()
        );
        let mut c2 = bank.anonymous("10.4.0.2").await;
        assert_eq!(
            code(&c2.login("ivan.p", initial.expose(), None, None).await),
            ErrorCode::LoginFailed
        );
        // Initial passwords expire after 7 days.
        let late = bank
            .bank()
            .add_user("admin:test", "late.user", "Late")
            .await
            .unwrap();
        advance(&bank, Duration::from_secs(7 * 24 * 3600 + 1));
        let mut c3 = bank.anonymous("10.4.0.3").await;
        assert_eq!(
            code(&c3.login("late.user", late.expose(), None, None).await),
            ErrorCode::LoginFailed
        );
        let shown = bank.bank().show_user("late.user").await.unwrap();
        assert!(
            shown
                .summary
                .status
                .iter()
                .any(|s| s == "one-time password expired")
        );

        // Temporary: single use, expires after 3 days.
        let who = bank.enrolled_user("maria.t", &[]).await;
        let temp = bank
            .bank()
            .temporary_password("admin:test", &who.login)
            .await
            .unwrap();
        advance(&bank, Duration::from_secs(3 * 24 * 3600 + 1));
        let mut c = bank.with_key(&who, "10.4.1.1").await.unwrap();
        assert_eq!(
            code(&c.login(&who.login, temp.expose(), None, None).await),
            ErrorCode::LoginFailed
        );
        let temp = bank
            .bank()
            .temporary_password("admin:test", &who.login)
            .await
            .unwrap();
        let mut c = bank.with_key(&who, "10.4.1.2").await.unwrap();
        assert!(c.login(&who.login, temp.expose(), None, None).await.is_ok());
        let mut c = bank.with_key(&who, "10.4.1.3").await.unwrap();
        assert_eq!(
            code(&c.login(&who.login, temp.expose(), None, None).await),
            ErrorCode::LoginFailed
        );

        // Emergency: single use, 24 hours, rights view-only until recovery completes.
        let iban = bank.account(1, 100_000).await;
        let who = bank.enrolled_user("oksana.r", &[(&iban, ALL)]).await;
        let emergency = bank
            .bank()
            .emergency_password("admin:test", &who.login)
            .await
            .unwrap();
        let mut c = bank.key_login(&who, "10.4.2.1").await;
        match c.call(Request::Overview {}).await.unwrap() {
            Reply::Overview(o) => {
                assert!(o.restricted);
                assert_eq!(o.accounts[0].rights, rights(true, false, false, false));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            code(
                &c.call(Request::PrepareOrder {
                    order: order(&iban, 100)
                })
                .await
            ),
            ErrorCode::NotAllowed
        );
        advance(&bank, Duration::from_secs(24 * 3600 + 1));
        let mut r = bank.anonymous("10.4.2.2").await;
        assert_eq!(
            code(
                &r.login(&who.login, &who.password, None, Some(emergency.expose()))
                    .await
            ),
            ErrorCode::LoginFailed
        );
        let emergency = bank
            .bank()
            .emergency_password("admin:test", &who.login)
            .await
            .unwrap();
        let mut r = bank.anonymous("10.4.2.3").await;
        let reply = r
            .login(&who.login, &who.password, None, Some(emergency.expose()))
            .await
            .unwrap();
        assert!(matches!(reply, Reply::LoggedIn(ref i) if i.stage == Stage::Recovery));
        // Recovery: a new key; the old certificate is revoked, rights come back.
        let new_key = PrivateKey::generate();
        let new_cert = r.request_certificate(&new_key, &who.login).await.unwrap();
        let mut again = bank.anonymous("10.4.2.4").await;
        assert_eq!(
            code(
                &again
                    .login(&who.login, &who.password, None, Some(emergency.expose()))
                    .await
            ),
            ErrorCode::LoginFailed
        );
        let old = bank
            .with_key(&who, "10.4.2.5")
            .await
            .err()
            .expect("old certificate refused");
        assert_eq!(old.alert(), AlertCode::CertificateRevoked);
        let recovered = Holder {
            key: new_key,
            cert: new_cert,
            ..who.clone()
        };
        let mut c = bank.key_login(&recovered, "10.4.2.6").await;
        match c.call(Request::Overview {}).await.unwrap() {
            Reply::Overview(o) => assert!(!o.restricted && o.accounts[0].rights == ALL),
            other => panic!("{other:?}"),
        }
    }
);

on_both!(
    rights_and_the_two_signature_rule_hold_on_every_endpoint,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(2, 1_000_000).await;
        let other = bank.account(3, 1_000_000).await;
        bank.bank()
            .set_signatures_required("admin:test", &iban, 2)
            .await
            .unwrap();
        let viewer = bank
            .enrolled_user("viewer.v", &[(&iban, rights(true, false, false, false))])
            .await;
        let preparer = bank
            .enrolled_user("prep.p", &[(&iban, rights(true, true, false, false))])
            .await;
        let signer1 = bank
            .enrolled_user("first.s", &[(&iban, rights(true, false, true, false))])
            .await;
        let signer2 = bank
            .enrolled_user("second.s", &[(&iban, rights(true, false, true, true))])
            .await;
        let outsider = bank.enrolled_user("out.o", &[(&other, ALL)]).await;

        let mut prep = bank.key_login(&preparer, "10.5.0.1").await;
        let (id, v, status) = order_of(
            &prep
                .call(Request::PrepareOrder {
                    order: order(&iban, 50_000),
                })
                .await
                .unwrap(),
        );
        assert_eq!((v, status), (1, OrderStatus::Draft));

        // view: the outsider sees nothing of it; listing filters it out.
        let mut out = bank.key_login(&outsider, "10.5.0.2").await;
        assert_eq!(
            code(&out.call(Request::GetOrder { id }).await),
            ErrorCode::NotFound
        );
        assert!(
            matches!(out.call(Request::ListOrders { account: None }).await.unwrap(), Reply::Orders { orders } if orders.is_empty())
        );
        assert_eq!(
            code(
                &out.call(Request::ListOrders {
                    account: Some(iban.clone())
                })
                .await
            ),
            ErrorCode::Forbidden
        );
        // prepare and edit: not for the viewer, nor on accounts without the right.
        let mut view = bank.key_login(&viewer, "10.5.0.3").await;
        assert!(view.call(Request::GetOrder { id }).await.is_ok());
        assert_eq!(
            code(
                &view
                    .call(Request::PrepareOrder {
                        order: order(&iban, 1)
                    })
                    .await
            ),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(
                &view
                    .call(Request::EditOrder {
                        id,
                        version: 1,
                        order: order(&iban, 2)
                    })
                    .await
            ),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(
                &prep
                    .call(Request::PrepareOrder {
                        order: order(&other, 1)
                    })
                    .await
            ),
            ErrorCode::Forbidden
        );
        // sign: not for the preparer, whose key signs well but has no right.
        let o = order(&iban, 50_000);
        let sig = payment::sign(&preparer.key, id, 1, &o);
        assert_eq!(
            code(
                &prep
                    .call(Request::SignOrder {
                        id,
                        version: 1,
                        signature: sig
                    })
                    .await
            ),
            ErrorCode::Forbidden
        );
        // A signature by another key, or over another version, is refused.
        let mut s1 = bank.key_login(&signer1, "10.5.0.4").await;
        let forged = payment::sign(&signer2.key, id, 1, &o);
        assert_eq!(
            code(
                &s1.call(Request::SignOrder {
                    id,
                    version: 1,
                    signature: forged
                })
                .await
            ),
            ErrorCode::Invalid
        );
        let sig1 = payment::sign(&signer1.key, id, 1, &o);
        let (_, _, status) = order_of(
            &s1.call(Request::SignOrder {
                id,
                version: 1,
                signature: sig1.clone(),
            })
            .await
            .unwrap(),
        );
        assert_eq!(status, OrderStatus::PartlySigned);
        // The same user cannot give the second signature; send is refused until it is there.
        assert_eq!(
            code(
                &s1.call(Request::SignOrder {
                    id,
                    version: 1,
                    signature: sig1
                })
                .await
            ),
            ErrorCode::Forbidden
        );
        let mut s2 = bank.key_login(&signer2, "10.5.0.5").await;
        assert_eq!(
            code(&s2.call(Request::SendOrder { id }).await),
            ErrorCode::NotAllowed
        );
        // Editing drops the signatures; the old signature is for the old version.
        let edited = order(&iban, 60_000);
        let (_, v2, status) = order_of(
            &prep
                .call(Request::EditOrder {
                    id,
                    version: 1,
                    order: edited.clone(),
                })
                .await
                .unwrap(),
        );
        assert_eq!((v2, status), (2, OrderStatus::Draft));
        assert_eq!(
            code(
                &prep
                    .call(Request::EditOrder {
                        id,
                        version: 1,
                        order: edited.clone()
                    })
                    .await
            ),
            ErrorCode::Conflict
        );
        let stale = payment::sign(&signer2.key, id, 1, &o);
        assert_eq!(
            code(
                &s2.call(Request::SignOrder {
                    id,
                    version: 1,
                    signature: stale
                })
                .await
            ),
            ErrorCode::Conflict
        );
        for (client, who) in [(&mut s1, &signer1), (&mut s2, &signer2)] {
            let sig = payment::sign(&who.key, id, 2, &edited);
            client
                .call(Request::SignOrder {
                    id,
                    version: 2,
                    signature: sig,
                })
                .await
                .unwrap();
        }
        // send: not for the first signer (no right), then once for the second, idempotent.
        assert_eq!(
            code(&s1.call(Request::SendOrder { id }).await),
            ErrorCode::Forbidden
        );
        let (_, _, status) = order_of(&s2.call(Request::SendOrder { id }).await.unwrap());
        assert_eq!(status, OrderStatus::Accepted);
        let (_, _, status) = order_of(&s2.call(Request::SendOrder { id }).await.unwrap());
        assert_eq!(status, OrderStatus::Accepted);
        match s2.call(Request::Overview {}).await.unwrap() {
            Reply::Overview(o) => {
                assert_eq!(o.accounts[0].balance, 1_000_000 - 60_000, "debited once")
            }
            other => panic!("{other:?}"),
        }
        // A sent order cannot be edited. An order the balance does not cover is rejected.
        assert_eq!(
            code(
                &prep
                    .call(Request::EditOrder {
                        id,
                        version: 2,
                        order: edited
                    })
                    .await
            ),
            ErrorCode::NotAllowed
        );
        bank.bank()
            .set_signatures_required("admin:test", &iban, 1)
            .await
            .unwrap();
        let big = order(&iban, 5_000_000);
        let (id2, _, _) = order_of(
            &prep
                .call(Request::PrepareOrder { order: big.clone() })
                .await
                .unwrap(),
        );
        s2.call(Request::SignOrder {
            id: id2,
            version: 1,
            signature: payment::sign(&signer2.key, id2, 1, &big),
        })
        .await
        .unwrap();
        match s2.call(Request::SendOrder { id: id2 }).await.unwrap() {
            Reply::Order(o) => assert_eq!(
                (o.status, o.reject_reason.as_deref()),
                (OrderStatus::Rejected, Some("insufficient funds"))
            ),
            other => panic!("{other:?}"),
        }
        // Limited menus: view only, whatever the grant.
        bank.bank()
            .set_menus(
                "admin:test",
                &signer2.login,
                tresor_core::api::Menus::Limited,
            )
            .await
            .unwrap();
        // The change ended the signer's sessions; the next one gets the limited menus.
        let mut s2 = bank.key_login(&signer2, "10.5.0.5").await;
        assert_eq!(
            code(&s2.call(Request::SendOrder { id: id2 }).await),
            ErrorCode::Forbidden
        );
        // Invalid content is refused with the reason.
        let mut bad = order(&iban, 100);
        bad.payee_iban = "UA213223130000026007233566002".into();
        let e = prep
            .call(Request::PrepareOrder { order: bad })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert!(e.message.contains("checksum"), "{}", e.message);
        // Nothing but login works before login.
        let mut anon = bank.anonymous("10.5.0.9").await;
        for req in [
            Request::Overview {},
            Request::GetOrder { id },
            Request::SendOrder { id },
            Request::ListOrders { account: None },
        ] {
            assert_eq!(code(&anon.call(req).await), ErrorCode::NotAllowed);
        }
    }
);

on_both!(
    an_otp_session_views_and_prepares_but_never_signs,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(4, 100_000).await;
        let who = bank.enrolled_user("otp.user", &[(&iban, ALL)]).await;
        let mut k = bank.key_login(&who, "10.6.0.1").await;
        let secret = k.start_totp().await;
        let now = tresor_bank::storage::unix(bank.clock_now()) as u64;
        let code_now = |t: u64| totp_code(&secret, t);
        assert_eq!(
            code(
                &k.call(Request::TotpConfirm {
                    code: "000000".into()
                })
                .await
            )
            .clone(),
            ErrorCode::Invalid
        );
        k.call(Request::TotpConfirm {
            code: code_now(now),
        })
        .await
        .unwrap();
        // The code used to confirm cannot log in; the next one can, once.
        advance(&bank, Duration::from_secs(30));
        let mut o = bank.anonymous("10.6.0.2").await;
        assert_eq!(
            code(
                &o.login(&who.login, &who.password, Some(&code_now(now)), None)
                    .await
            ),
            ErrorCode::LoginFailed
        );
        let next = code_now(now + 30);
        let r = o
            .login(&who.login, &who.password, Some(&next), None)
            .await
            .unwrap();
        assert!(matches!(r, Reply::LoggedIn(ref i) if i.stage == Stage::Otp));
        let mut o2 = bank.anonymous("10.6.0.3").await;
        assert_eq!(
            code(&o2.login(&who.login, &who.password, Some(&next), None).await),
            ErrorCode::LoginFailed
        );
        // View and prepare: yes. Sign and send: no, even with a valid signature made elsewhere.
        match o.call(Request::Overview {}).await.unwrap() {
            Reply::Overview(ov) => {
                assert_eq!(ov.accounts[0].rights, rights(true, true, false, false))
            }
            other => panic!("{other:?}"),
        }
        let body = order(&iban, 1_000);
        let (id, _, _) = order_of(
            &o.call(Request::PrepareOrder {
                order: body.clone(),
            })
            .await
            .unwrap(),
        );
        let sig = payment::sign(&who.key, id, 1, &body);
        assert_eq!(
            code(
                &o.call(Request::SignOrder {
                    id,
                    version: 1,
                    signature: sig.clone()
                })
                .await
            ),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(&o.call(Request::SendOrder { id }).await),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(&o.call(Request::TotpEnroll {}).await),
            ErrorCode::NotAllowed
        );
        // The key session signs the same order.
        k.call(Request::SignOrder {
            id,
            version: 1,
            signature: sig,
        })
        .await
        .unwrap();
        // OTP failures have their own counter: five wrong codes stop OTP logins, not the password.
        for i in 0..5 {
            let mut c = bank.anonymous(&format!("10.6.1.{i}")).await;
            assert_eq!(
                code(
                    &c.login(&who.login, &who.password, Some("000000"), None)
                        .await
                ),
                ErrorCode::LoginFailed
            );
        }
        advance(&bank, Duration::from_secs(30));
        let mut c = bank.anonymous("10.6.2.1").await;
        let good = code_now(now + 60);
        assert_eq!(
            code(&c.login(&who.login, &who.password, Some(&good), None).await),
            ErrorCode::LoginFailed
        );
        assert_eq!(failed_logins(&bank, &who.login).await, (0, false));
        bank.key_login(&who, "10.6.2.2").await;
    }
);

on_both!(
    certificates_are_issued_renewed_and_revoked,
    |db: Db| async move {
        let policy = Policy {
            certificate_days: 40,
            ..Policy::default()
        };
        let bank = TestBank::with_policy(db, policy).await;
        let who = bank.enrolled_user("anna.c", &[]).await;
        let certs = bank
            .bank()
            .list_certificates(Some(&who.login))
            .await
            .unwrap();
        assert_eq!((certs.len(), certs[0].purpose.as_str()), (1, "enroll"));
        // The first certificate cannot be requested twice.
        let mut c = bank.key_login(&who, "10.7.0.1").await;
        // Renewal: refused outside the window, refused with the same key, accepted inside.
        let e = c
            .request_certificate(&PrivateKey::generate(), &who.login)
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::NotAllowed);
        advance(&bank, Duration::from_secs(11 * 24 * 3600));
        // Eleven days idle: that session is over.
        assert!(c.raw(b"{}").await.1.len() < 16, "an alert, not a reply");
        let mut c = bank.key_login(&who, "10.7.0.1").await;
        let e = c
            .request_certificate(&who.key, &who.login)
            .await
            .unwrap_err();
        assert!(e.message.contains("new key"), "{}", e.message);
        let e = c
            .request_certificate(&PrivateKey::generate(), "someone.else")
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        let new_key = PrivateKey::generate();
        let renewed = c.request_certificate(&new_key, &who.login).await.unwrap();
        // Both work until the old one expires or is revoked.
        let next = Holder {
            key: new_key,
            cert: renewed,
            ..who.clone()
        };
        bank.key_login(&next, "10.7.0.2").await;
        bank.key_login(&who, "10.7.0.3").await;
        // Anonymous enrollment is refused while a valid certificate exists.
        let temp = bank
            .bank()
            .temporary_password("admin:test", &who.login)
            .await
            .unwrap();
        let mut a = bank.anonymous("10.7.0.4").await;
        a.login(&who.login, temp.expose(), None, None)
            .await
            .unwrap();
        let r = a
            .call(Request::ChangePassword {
                current: temp,
                new: Password::from("yet another passphrase"),
            })
            .await;
        assert_eq!(
            r.unwrap(),
            Reply::PasswordChanged {
                next: Stage::Reconnect
            }
        );
        assert_eq!(
            a.request_certificate(&PrivateKey::generate(), &who.login)
                .await
                .unwrap_err()
                .code,
            ErrorCode::NotAllowed
        );
        // Revocation by serial: that certificate can no longer open a session; the other can.
        let serial = tresor_core::pki::serial_hex(who.cert.tbs_certificate().serial_number());
        bank.bank()
            .revoke_certificate("admin:test", &serial)
            .await
            .unwrap();
        let e = bank
            .with_key(&who, "10.7.0.5")
            .await
            .err()
            .expect("revoked");
        assert!(
            matches!(e, ChannelError::PeerAlert(AlertCode::CertificateRevoked)),
            "{e:?}"
        );
        let mut n = bank.with_key(&next, "10.7.0.6").await.unwrap();
        assert!(
            n.login(&next.login, "yet another passphrase", None, None)
                .await
                .is_ok()
        );
        // A certificate from another CA, or unknown to the bank's database, is refused too.
        let stranger = tresor_core::testkit::TestBank::new("Other").client("anna.c");
        let e = bank
            .connect(stranger.auth(), "10.7.0.7")
            .await
            .err()
            .expect("foreign CA");
        assert_eq!(e.alert(), AlertCode::BadCertificate);
    }
);

on_both!(
    password_changes_follow_the_policy_and_count_wrong_guesses,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let who = bank.enrolled_user("taras.h", &[]).await;
        let mut c = bank.key_login(&who, "10.8.0.1").await;
        let change = |current: &str, new: &str| Request::ChangePassword {
            current: Password::from(current),
            new: Password::from(new),
        };
        for weak in [
            "short",
            "password1234",
            "taras.h is my name",
            "aaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(
                code(&c.call(change(&who.password, weak)).await),
                ErrorCode::PasswordPolicy,
                "{weak}"
            );
        }
        assert_eq!(
            code(&c.call(change(&who.password, &who.password)).await),
            ErrorCode::PasswordPolicy
        );
        assert_eq!(
            code(
                &c.call(change("not my password", "a fine new passphrase"))
                    .await
            ),
            ErrorCode::Forbidden
        );
        assert_eq!(failed_logins(&bank, &who.login).await, (1, false));
        assert_eq!(
            c.call(change(&who.password, "a fine new passphrase"))
                .await
                .unwrap(),
            Reply::PasswordChanged { next: Stage::Key }
        );
        let mut d = bank.with_key(&who, "10.8.0.2").await.unwrap();
        assert_eq!(
            code(&d.login(&who.login, &who.password, None, None).await),
            ErrorCode::LoginFailed
        );
        let mut d = bank.with_key(&who, "10.8.0.3").await.unwrap();
        assert!(
            d.login(&who.login, "a fine new passphrase", None, None)
                .await
                .is_ok()
        );
        let events: Vec<_> = bank
            .bank()
            .audit_list(Some(&who.login), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.event, r.outcome))
            .collect();
        assert!(events.contains(&("password_change".into(), "refused: policy".into())));
        assert!(events.contains(&("password_change".into(), "failed: wrong password".into())));
        assert!(events.contains(&("password_change".into(), "ok".into())));
    }
);

on_both!(
    audit_verify_catches_edited_deleted_inserted_and_truncated_records,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        bank.enrolled_user("audit.me", &[]).await;
        let mut c = bank.anonymous("10.9.0.1").await;
        c.login("audit.me", "wrong", None, None).await.unwrap_err();
        let n = bank.bank().audit_verify().await.unwrap().unwrap();
        assert!(n >= 5, "{n}");
        let pool = bank.store().pool();
        let exec = |sql: String| async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .unwrap();
        };
        // Edited.
        exec("UPDATE audit SET outcome = 'forged' WHERE seq = 3".into()).await;
        assert_eq!(
            bank.bank().audit_verify().await.unwrap(),
            Err(Tampering::Altered(3))
        );
        // Put back by copying the original row from a backup is the only way to repair; here a
        // fresh bank for each case keeps the cases apart.
        let bank = TestBank::new(db).await;
        bank.enrolled_user("audit.me", &[]).await;
        let pool = bank.store().pool();
        sqlx::query("DELETE FROM audit WHERE seq = 2")
            .execute(pool)
            .await
            .unwrap();
        assert_eq!(
            bank.bank().audit_verify().await.unwrap(),
            Err(Tampering::Deleted(2))
        );

        // Inserted: a record with a well-formed chain hash, appended after the anchored head.
        let bank = TestBank::new(db).await;
        bank.enrolled_user("audit.me", &[]).await;
        let pool = bank.store().pool();
        let n = bank.bank().audit_verify().await.unwrap().unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit (seq, at, actor, login, ip, event, outcome, detail, prev_hash, hash) \
         SELECT seq + 1, at, actor, login, ip, event, outcome, detail, hash, hash FROM audit WHERE seq = {n}"
    )))
    .execute(pool)
    .await
    .unwrap();
        assert!(
            matches!(bank.bank().audit_verify().await.unwrap(), Err(Tampering::AfterHead(s)) if s == n + 1)
        );

        // Truncated: the newest records deleted; only the anchor shows it.
        let bank = TestBank::new(db).await;
        bank.enrolled_user("audit.me", &[]).await;
        let pool = bank.store().pool();
        let n = bank.bank().audit_verify().await.unwrap().unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM audit WHERE seq >= {}",
            n - 1
        )))
        .execute(pool)
        .await
        .unwrap();
        assert_eq!(
            bank.bank().audit_verify().await.unwrap(),
            Err(Tampering::Truncated {
                found: n - 2,
                anchored: n
            })
        );
        // Moving the anchor back without the bank's key is caught as forgery.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE audit_head SET seq = {}",
            n - 2
        )))
        .execute(pool)
        .await
        .unwrap();
        assert_eq!(
            bank.bank().audit_verify().await.unwrap(),
            Err(Tampering::ForgedHead)
        );
    }
);

on_both!(
    two_instances_serve_one_session_alternately_with_replay_protection,
    |db: Db| async move {
        let bank = TestBank::shared(db).await;
        let iban = bank.account(5, 100_000).await;
        let who = bank.enrolled_user("scale.out", &[(&iban, ALL)]).await;
        let second = bank.second_instance().await;
        let first = bank.channel.clone();
        let mut c = bank.key_login(&who, "10.10.0.1").await;
        let mut replay = None;
        for i in 0..6 {
            c.channel = if i % 2 == 0 {
                second.clone()
            } else {
                first.clone()
            };
            let payload = serde_json::to_vec(&Request::Overview {}).unwrap();
            let (record, reply) = c.raw(&payload).await;
            assert!(
                matches!(
                    c.session.open(&reply),
                    Ok(tresor_core::channel::client::Reply::Data(_))
                ),
                "request {i}"
            );
            replay = Some(record);
        }
        // The last record, replayed on either instance, is refused.
        let record = replay.unwrap();
        for instance in [&first, &second] {
            let reply = instance.record(&record, Some(c.peer)).await;
            let alert = tresor_core::channel::wire::Alert::decode(&reply).unwrap();
            assert_eq!(alert.code, AlertCode::BadRecord, "{alert:?}");
        }
        // And the session goes on.
        c.channel = second.clone();
        assert!(matches!(
            c.call(Request::Overview {}).await.unwrap(),
            Reply::Overview(_)
        ));
    }
);

on_both!(
    demo_seed_and_admin_commands_work_on_the_same_data,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let (login, initial) = bank.bank().seed_demo("admin:test").await.unwrap().unwrap();
        assert!(
            bank.bank().seed_demo("admin:test").await.unwrap().is_none(),
            "seeding twice adds nothing"
        );
        let accounts = bank.bank().list_accounts().await.unwrap();
        assert_eq!(accounts.len(), 2);
        assert!(
            accounts
                .iter()
                .all(|a| a.currency == "UAH" && a.balance > 0)
        );
        let mut c = bank.anonymous("10.11.0.1").await;
        assert!(c.login(&login, initial.expose(), None, None).await.is_ok());
        bank.bank().lock_user("admin:test", &login).await.unwrap();
        assert!(
            bank.bank()
                .show_user(&login)
                .await
                .unwrap()
                .summary
                .status
                .iter()
                .any(|s| s == "locked")
        );
        bank.bank().unlock_user("admin:test", &login).await.unwrap();
        assert!(
            bank.bank()
                .add_user("admin:test", &login, "Again")
                .await
                .is_err()
        );
        assert!(
            bank.bank()
                .add_account("admin:test", &accounts[0].iban, "X", "UAH", 1)
                .await
                .is_err()
        );
        assert!(
            bank.bank()
                .add_account("admin:test", "UA213223130000026007233566002", "X", "UAH", 1)
                .await
                .is_err()
        );
        assert!(
            bank.bank()
                .change_rights("admin:test", &login, "UA00", ALL, true)
                .await
                .is_err()
        );
        let admin_events = bank.bank().audit_list(None, 100).await.unwrap();
        assert!(
            admin_events
                .iter()
                .any(|r| r.event == "lock" && r.actor == "admin:test")
        );
        assert!(
            admin_events
                .iter()
                .all(|r| !r.detail.contains(initial.expose())),
            "no secret in the audit log"
        );
    }
);

on_both!(
    a_session_idle_past_its_timeout_ends_though_its_state_is_in_memory,
    |db: Db| async move {
        // The instance that opened the session keeps its state, so the idle timeout is
        // checked on the activity the accepting statement replaced.
        let bank = TestBank::new(db).await;
        let mut c = bank.anonymous("10.13.0.1").await;
        let payload = serde_json::to_vec(&Request::BankInfo {}).unwrap();
        for _ in 0..2 {
            advance(&bank, Duration::from_secs(299));
            let (_, reply) = c.raw(&payload).await;
            assert!(c.session.open(&reply).is_ok(), "active within the timeout");
        }
        advance(&bank, Duration::from_secs(301));
        let (_, reply) = c.raw(&payload).await;
        let alert = tresor_core::channel::wire::Alert::decode(&reply).expect("an alert");
        assert_eq!(alert.code, AlertCode::UnknownSession);
        assert_eq!(bank.channel.session_count().await.unwrap(), 0);
    }
);
