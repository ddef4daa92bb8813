//! The bank's voice: the self-service password reset with a mailed code, the address
//! change, and the notices, read back from the outbox with the bank's key (the tests with a
//! real SMTP server are in tests/e2e/mail.rs). On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use support::{ALL, Client, Db, TestBank, advance, code, mailed_code, order, rights, texted_code};
use tresor_core::Password;
use tresor_core::api::profile::{Language, NoticeKind};
use tresor_core::api::{ErrorCode, OrderStatus, Reply, Request, Stage};

const NEW_PASSWORD: &str = "Quartz mango lantern 51";

fn forgot(login: &str) -> Request {
    Request::ForgotPassword {
        login: login.into(),
    }
}

fn reset(login: &str, code: &str, new: &str) -> Request {
    Request::ResetPassword {
        login: login.into(),
        code: Password::from(code),
        new: Password::from(new),
    }
}

async fn failed_logins(bank: &TestBank, login: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT failed_logins FROM users WHERE login = '{login}'"
    )))
    .fetch_one(bank.store().pool())
    .await
    .unwrap()
}

on_both!(
    a_key_holder_resets_the_password_with_the_mailed_code,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let user = bank
            .mailed_user("reset.me", "reset.me@example.com", &[])
            .await;
        // From the address of the first login: no new-address notice.
        let mut old = bank.key_login(&user, "10.0.0.1").await;

        // Without the key: the generic refusal, no mail.
        let mut anonymous = bank.anonymous("10.1.0.2").await;
        assert_eq!(
            code(&anonymous.call(forgot("reset.me")).await),
            ErrorCode::LoginFailed
        );
        assert!(bank.mailbox().await.is_empty());

        // With the key, before any login: a code to the verified address.
        let mut c = bank.with_key(&user, "10.1.0.3").await.unwrap();
        match c.call(forgot("reset.me")).await.unwrap() {
            Reply::Mailed { to, .. } => assert_eq!(to, "r•••@example.com"),
            other => panic!("{other:?}"),
        }
        let mails = bank.mailbox().await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].to, "reset.me@example.com");
        let sent = mailed_code(&mails[0]);
        assert_eq!(sent.len(), 8);
        // Another within the minute: refused, no mail.
        assert_eq!(code(&c.call(forgot("reset.me")).await), ErrorCode::Conflict);
        assert!(bank.mailbox().await.is_empty());

        // A new password the policy refuses spends neither a guess nor the code.
        assert_eq!(
            code(&c.call(reset("reset.me", &sent, "short")).await),
            ErrorCode::PasswordPolicy
        );
        // A wrong code counts as a wrong password.
        let wrong = if sent == "00000000" {
            "11111111"
        } else {
            "00000000"
        };
        assert_eq!(
            code(&c.call(reset("reset.me", wrong, NEW_PASSWORD)).await),
            ErrorCode::Forbidden
        );
        assert_eq!(failed_logins(&bank, "reset.me").await, 1);

        // The right one: logged in with the key, every other session ended, the old
        // password gone, a security notice mailed.
        match c
            .call(reset("reset.me", &sent, NEW_PASSWORD))
            .await
            .unwrap()
        {
            Reply::LoggedIn(info) => assert_eq!(info.stage, Stage::Key),
            other => panic!("{other:?}"),
        }
        assert_eq!(failed_logins(&bank, "reset.me").await, 0);
        assert!(c.call(Request::Overview {}).await.is_ok());
        let (_, reply) = old
            .raw(&serde_json::to_vec(&Request::Overview {}).unwrap())
            .await;
        assert!(
            old.session.open(&reply).is_err(),
            "the old session still answers"
        );
        let notices = bank.mailbox().await;
        assert_eq!(notices.len(), 1);
        assert!(
            notices[0].subject.contains("пароль змінено"),
            "{}",
            notices[0].subject
        );
        let mut again = bank.with_key(&user, "10.1.0.3").await.unwrap();
        assert_eq!(
            code(&again.login("reset.me", &user.password, None, None).await),
            ErrorCode::LoginFailed
        );
        let mut again = bank.with_key(&user, "10.1.0.3").await.unwrap();
        assert!(
            again
                .login("reset.me", NEW_PASSWORD, None, None)
                .await
                .is_ok()
        );

        // The code was used once.
        let mut d = bank.with_key(&user, "10.1.0.3").await.unwrap();
        assert_eq!(
            code(
                &d.call(reset("reset.me", &sent, "Another fine password 77"))
                    .await
            ),
            ErrorCode::Forbidden
        );
        // A code expires after 15 minutes.
        advance(&bank, Duration::from_secs(61));
        assert!(matches!(
            d.call(forgot("reset.me")).await,
            Ok(Reply::Mailed { .. })
        ));
        let late = mailed_code(&bank.mailbox().await[0]);
        advance(&bank, Duration::from_secs(15 * 60 + 1));
        let mut e = bank.with_key(&user, "10.1.0.3").await.unwrap();
        assert_eq!(
            code(
                &e.call(reset("reset.me", &late, "Another fine password 77"))
                    .await
            ),
            ErrorCode::Forbidden
        );
    }
);

on_both!(
    wrong_codes_lock_the_account_and_the_lockout_is_mailed_once,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let user = bank.mailed_user("guess.me", "guess@example.com", &[]).await;
        let mut c = bank.with_key(&user, "10.2.0.1").await.unwrap();
        assert!(matches!(
            c.call(forgot("guess.me")).await,
            Ok(Reply::Mailed { .. })
        ));
        let sent = mailed_code(&bank.mailbox().await[0]);
        let wrong = if sent == "12345678" {
            "87654321"
        } else {
            "12345678"
        };
        for _ in 0..5 {
            let r = c.call(reset("guess.me", wrong, NEW_PASSWORD)).await;
            assert_eq!(code(&r), ErrorCode::Forbidden);
        }
        // Locked: the right code no longer helps, and the key's holder hears why.
        let mut d = bank.with_key(&user, "10.2.0.2").await.unwrap();
        assert_eq!(
            code(&d.call(reset("guess.me", &sent, NEW_PASSWORD)).await),
            ErrorCode::AccountLocked
        );
        let mails = bank.mailbox().await;
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert!(
            mails[0].subject.contains("login locked"),
            "{}",
            mails[0].subject
        );
        assert_eq!(mails[0].to, "guess@example.com");
    }
);

on_both!(
    concurrent_resets_with_one_code_set_one_password,
    |db: Db| async move {
        let bank = TestBank::shared(db).await;
        let user = bank
            .mailed_user("race.reset", "race@example.com", &[])
            .await;
        let mut c = bank.with_key(&user, "10.3.0.1").await.unwrap();
        assert!(matches!(
            c.call(forgot("race.reset")).await,
            Ok(Reply::Mailed { .. })
        ));
        let sent = mailed_code(&bank.mailbox().await[0]);
        let second = bank.second_instance().await;
        let mut tasks = Vec::new();
        // Four: the losers' tries count as wrong codes, and five would lock the account.
        for i in 0..4 {
            let mut s = bank.with_key(&user, "10.3.0.2").await.unwrap();
            if i % 2 == 1 {
                s.channel = second.clone();
            }
            let sent = sent.clone();
            tasks.push(tokio::spawn(async move {
                s.call(reset(
                    "race.reset",
                    &sent,
                    &format!("Racing password number {i}"),
                ))
                .await
            }));
        }
        let mut won = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(Reply::LoggedIn(_)) => won.push(i),
                Err(e) => assert!(
                    matches!(e.code, ErrorCode::Conflict | ErrorCode::Forbidden),
                    "{e:?}"
                ),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(won.len(), 1, "{won:?}");
        let mut check = bank.with_key(&user, "10.3.0.3").await.unwrap();
        let winner = format!("Racing password number {}", won[0]);
        assert!(check.login("race.reset", &winner, None, None).await.is_ok());
    }
);

on_both!(
    without_a_verified_address_a_reset_needs_the_bank,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let user = bank.enrolled_user("no.mail", &[]).await;
        let mut c = bank.with_key(&user, "10.4.0.1").await.unwrap();
        let r = c.call(forgot("no.mail")).await;
        assert_eq!(code(&r), ErrorCode::NotAllowed);
        assert!(r.unwrap_err().message.contains("temporary password"));
        assert!(bank.mailbox().await.is_empty());
        // Another login's key does not ask for this one.
        let other = bank.mailed_user("has.mail", "has@example.com", &[]).await;
        assert_eq!(
            code(&c.call(forgot("has.mail")).await),
            ErrorCode::LoginFailed
        );
        let mut o = bank.with_key(&other, "10.4.0.2").await.unwrap();
        assert_eq!(
            code(&o.call(forgot("no.mail")).await),
            ErrorCode::LoginFailed
        );
        assert!(bank.mailbox().await.is_empty());
    }
);

on_both!(
    an_address_change_is_confirmed_by_a_code_and_told_to_the_old_address,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let user = bank.mailed_user("moves.mail", "old@example.com", &[]).await;
        let mut c = bank.key_login(&user, "10.0.0.1").await;
        match c.call(Request::Profile {}).await.unwrap() {
            Reply::Profile(p) => {
                assert_eq!(p.email.as_deref(), Some("old@example.com"));
                assert_eq!(p.pending_email, None);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            code(
                &c.call(Request::SetEmail {
                    email: "not an address".into()
                })
                .await
            ),
            ErrorCode::Invalid
        );
        match c
            .call(Request::SetEmail {
                email: "new@example.org".into(),
            })
            .await
            .unwrap()
        {
            Reply::Mailed { to, .. } => assert_eq!(to, "n•••@example.org"),
            other => panic!("{other:?}"),
        }
        let mails = bank.mailbox().await;
        assert_eq!(mails.len(), 2);
        let code_mail = mails.iter().find(|m| m.to == "new@example.org").unwrap();
        let told = mails.iter().find(|m| m.to == "old@example.com").unwrap();
        assert!(told.text.contains("n•••@example.org"), "{}", told.text);
        assert!(!told.text.contains(&mailed_code(code_mail)));
        // Until confirmed, the old address stays.
        match c.call(Request::Profile {}).await.unwrap() {
            Reply::Profile(p) => {
                assert_eq!(p.email.as_deref(), Some("old@example.com"));
                assert_eq!(p.pending_email.as_deref(), Some("n•••@example.org"));
            }
            other => panic!("{other:?}"),
        }
        let wrong = Password::from("99999999");
        assert_eq!(
            code(&c.call(Request::ConfirmEmail { code: wrong }).await),
            ErrorCode::Forbidden
        );
        assert_eq!(failed_logins(&bank, "moves.mail").await, 1);
        let right = Password::from(mailed_code(code_mail).as_str());
        match c.call(Request::ConfirmEmail { code: right }).await.unwrap() {
            Reply::Profile(p) => assert_eq!(p.email.as_deref(), Some("new@example.org")),
            other => panic!("{other:?}"),
        }
        let mails = bank.mailbox().await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].to, "old@example.com");
        assert!(
            mails[0].subject.contains("address changed"),
            "{}",
            mails[0].subject
        );
        // Without the key (an OTP session may view), no change.
        let mut otp_like = bank.anonymous("10.5.0.2").await;
        assert_eq!(
            code(
                &otp_like
                    .call(Request::SetEmail {
                        email: "x@example.com".into()
                    })
                    .await
            ),
            ErrorCode::NotAllowed
        );
    }
);

on_both!(
    notices_arrive_once_each_in_the_users_language_and_can_be_turned_off,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(1, 1_000).await;
        let user = bank
            .mailed_user("told.user", "told@example.com", &[(iban.as_str(), ALL)])
            .await;
        // A viewer without an address, and one with: only the latter is written to.
        bank.enrolled_user(
            "quiet.viewer",
            &[(iban.as_str(), rights(true, false, false, false))],
        )
        .await;
        assert!(
            bank.mailbox().await.is_empty(),
            "the first login tells nothing"
        );

        // The first key login from the enrollment's address: known, nothing.
        let mut c = bank.key_login(&user, "10.0.0.1").await;
        assert!(bank.mailbox().await.is_empty());
        // From a new address: told once; from it again: nothing.
        let _ = bank.key_login(&user, "198.51.100.7").await;
        let _ = bank.key_login(&user, "198.51.100.7").await;
        let mails = bank.mailbox().await;
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert!(mails[0].text.contains("198.51.100.7"));
        // Not knowing the language, the bank writes both.
        assert!(
            mails[0]
                .subject
                .contains("вхід з нової адреси / login from a new address")
        );

        // English only from now on.
        match c
            .call(Request::SetPreferences {
                language: Some(Language::En),
                quiet: vec![],
            })
            .await
            .unwrap()
        {
            Reply::Profile(p) => assert_eq!(p.language, Some(Language::En)),
            other => panic!("{other:?}"),
        }
        // An order rejected for want of funds.
        let o = match c
            .call(Request::PrepareOrder {
                order: order(&iban, 5_000),
            })
            .await
            .unwrap()
        {
            Reply::Order(o) => o,
            other => panic!("{other:?}"),
        };
        let o = sign_and_send(&mut c, &user, o).await;
        assert_eq!(o.status, OrderStatus::Rejected);
        let mails = bank.mailbox().await;
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert_eq!(
            mails[0].subject,
            format!("Test Bank: payment order {} rejected", o.id)
        );
        assert!(mails[0].text.contains("insufficient funds"));
        assert!(!mails[0].text.contains("відхилено"), "English only");

        // Money in.
        bank.bank()
            .incoming_payments("admin:test", &[incoming(&iban, 2_500)])
            .await
            .unwrap();
        let mails = bank.mailbox().await;
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert!(
            mails[0].text.contains("25.00 UAH came into account"),
            "{}",
            mails[0].text
        );

        // Turned off: no more mail of that kind; security notices cannot be turned off.
        assert_eq!(
            code(
                &c.call(Request::SetPreferences {
                    language: None,
                    quiet: vec![NoticeKind::NewAddress],
                })
                .await
            ),
            ErrorCode::Invalid
        );
        assert!(
            c.call(Request::SetPreferences {
                language: Some(Language::Uk),
                quiet: vec![NoticeKind::IncomingPayment, NoticeKind::OrderRejected],
            })
            .await
            .is_ok()
        );
        bank.bank()
            .incoming_payments("admin:test", &[incoming(&iban, 100)])
            .await
            .unwrap();
        assert!(bank.mailbox().await.is_empty());
        let _ = bank.key_login(&user, "203.0.113.50").await;
        let mails = bank.mailbox().await;
        assert_eq!(mails.len(), 1);
        assert!(
            mails[0].subject.ends_with("вхід з нової адреси"),
            "{}",
            mails[0].subject
        );
    }
);

on_both!(
    expiry_reminders_go_once_on_each_day_by_the_banks_clock,
    |db: Db| async move {
        let bank = TestBank::shared(db).await;
        let user = bank.mailed_user("expiring", "exp@example.com", &[]).await;
        let second = bank.second_instance().await;
        let not_after = tresor_core::pki::not_after(&user.cert);
        let left = not_after
            .duration_since(bank.clock_now())
            .unwrap()
            .as_secs();
        let mut seen = Vec::new();
        for days in [30u64, 14, 7, 3, 1] {
            let now = not_after
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                - days * 86_400
                + 60;
            let here = bank
                .clock_now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            advance(&bank, Duration::from_secs(now - here));
            // Both instances look; one reminder goes.
            let (a, b) = tokio::join!(
                bank.bank().remind_expiring(),
                second.handler().remind_expiring()
            );
            assert_eq!(a.unwrap() + b.unwrap(), 1, "{days} days");
            assert_eq!(bank.bank().remind_expiring().await.unwrap(), 0);
            let mails = bank.mailbox().await;
            assert_eq!(mails.len(), 1, "{days} days: {mails:?}");
            assert!(
                mails[0]
                    .subject
                    .contains(&format!("expires in {days} day(s)")),
                "{}",
                mails[0].subject
            );
            seen.push(days);
        }
        assert_eq!(seen, [30, 14, 7, 3, 1]);
        assert!(left > 30 * 86_400);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_reminders_and_a_new_address_reach_a_real_smtp_server_once_each() {
    use std::os::unix::fs::PermissionsExt as _;
    use tresor_tests::smtp;

    let bank = TestBank::new(Db::Sqlite).await;
    let user = bank
        .mailed_user("clock.user", "clock@example.com", &[])
        .await;
    // The bank's SMTP client, on the bank's clock, to a server that wants STARTTLS and AUTH.
    let tls = tempfile::tempdir().unwrap();
    smtp::certificates(tls.path());
    let out = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = smtp::Smtp::start(out.path(), port, tls.path());
    let password_file = tls.path().join("smtp-password");
    std::fs::write(&password_file, smtp::PASSWORD).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = tresor_bank::config::MailConfig {
        smtp: Some("localhost".into()),
        port: Some(port),
        from: "Test Bank <noreply@bank.example>".into(),
        username: Some("bank".into()),
        password_file: Some(password_file),
        ca_file: Some(tls.path().join("ca.pem")),
        ..Default::default()
    };
    let files = tresor_bank::data::open(bank.dir.path(), &Default::default()).unwrap();
    let mailer = tresor_bank::mailer::Mailer::new(
        &config,
        bank.store().clone(),
        &files.secrets,
        bank.clock.clone(),
    )
    .unwrap()
    .unwrap();

    let not_after = tresor_core::pki::not_after(&user.cert)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (n, days) in [30u64, 14, 7, 3, 1].into_iter().enumerate() {
        let here = bank
            .clock_now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        advance(
            &bank,
            Duration::from_secs(not_after - days * 86_400 + 60 - here),
        );
        bank.bank().remind_expiring().await.unwrap();
        bank.bank().remind_expiring().await.unwrap();
        assert_eq!(mailer.send_due().await.unwrap(), 1, "{days} days");
        let mails = smtp::wait_for(out.path(), n + 1, Duration::from_secs(30));
        let (to, subject, text) = &mails[n];
        assert_eq!(to, "clock@example.com");
        assert!(
            subject.contains(&format!("expires in {days} day(s)")),
            "{subject}"
        );
        assert!(text.contains("renew"), "{text}");
    }
    // A day before expiry nothing more is due, and nothing was sent twice.
    assert_eq!(bank.bank().remind_expiring().await.unwrap(), 0);
    assert_eq!(mailer.send_due().await.unwrap(), 0);
    assert_eq!(smtp::received(out.path()).len(), 5);

    // A login from an address the user never logged in from arrives too, once.
    bank.key_login(&user, "198.51.100.20").await;
    bank.key_login(&user, "198.51.100.20").await;
    assert_eq!(mailer.send_due().await.unwrap(), 1);
    let mails = smtp::wait_for(out.path(), 6, Duration::from_secs(30));
    let (to, subject, text) = &mails[5];
    assert_eq!(to, "clock@example.com");
    assert!(subject.contains("login from a new address"), "{subject}");
    assert!(text.contains("198.51.100.20"), "{text}");
    assert_eq!(mailer.send_due().await.unwrap(), 0);
    assert_eq!(smtp::received(out.path()).len(), 6);
}

on_both!(
    a_database_attacker_cannot_plant_a_reset_code_or_redirect_the_mail,
    |db: Db| async move {
        // THREAT_MODEL, attacker 6: the database-only attacker writes a code of their own for
        // the victim, points the victim's address at their mailbox, or copies another user's
        // bound address: the code opens nothing and no mail goes to the attacker.
        let bank = TestBank::new(db).await;
        let victim = bank
            .mailed_user("mail.victim", "victim@example.com", &[])
            .await;
        let _other = bank
            .mailed_user("mail.other", "other@example.com", &[])
            .await;
        let mut c = bank.with_key(&victim, "10.77.0.1").await.unwrap();
        let now = bank
            .clock_now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let victim_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE login = 'mail.victim'")
            .fetch_one(bank.store().pool())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO user_codes (user_id, purpose, target, expires, created_at, tag) \
             VALUES ($1, 'reset', '', $2, $3, $4)",
        )
        .bind(victim_id)
        .bind(i64::try_from(now).unwrap() + 600)
        .bind(i64::try_from(now).unwrap())
        .bind(vec![0u8; 32])
        .execute(bank.store().pool())
        .await
        .unwrap();
        let r = c
            .call(Request::ResetPassword {
                login: "mail.victim".into(),
                code: Password::from("12345678"),
                new: Password::from("Attacker chosen password 1"),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::Forbidden);

        // The address rewritten: no longer a verified one.
        sqlx::query("UPDATE users SET email = 'attacker@example.net' WHERE login = 'mail.victim'")
            .execute(bank.store().pool())
            .await
            .unwrap();
        let r = c
            .call(Request::ForgotPassword {
                login: "mail.victim".into(),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::NotAllowed);
        // Another user's bound address and its MAC copied over: bound to that user.
        sqlx::query(
            "UPDATE users SET email = (SELECT email FROM users WHERE login = 'mail.other'), \
             email_tag = (SELECT email_tag FROM users WHERE login = 'mail.other') \
             WHERE login = 'mail.victim'",
        )
        .execute(bank.store().pool())
        .await
        .unwrap();
        let r = c
            .call(Request::ForgotPassword {
                login: "mail.victim".into(),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::NotAllowed);
        // Nor do notices go there: a lockout of the victim mails nobody.
        for _ in 0..5 {
            let mut k = bank.with_key(&victim, "10.77.0.2").await.unwrap();
            let _ = k
                .login("mail.victim", "wrong password here", None, None)
                .await;
        }
        let mails = bank.mailbox().await;
        assert!(
            mails
                .iter()
                .all(|m| m.to != "attacker@example.net" && m.to != "other@example.com"),
            "{mails:?}"
        );
        let locked: i64 =
            sqlx::query_scalar("SELECT locked FROM users WHERE login = 'mail.victim'")
                .fetch_one(bank.store().pool())
                .await
                .unwrap();
        assert_eq!(locked, 1);
    }
);

fn sms_policy() -> tresor_bank::config::Policy {
    tresor_bank::config::Policy {
        login_second_step: tresor_bank::config::SecondStep::Sms,
        ..Default::default()
    }
}

on_both!(
    with_the_sms_step_a_key_login_needs_the_texted_code_once,
    |db: Db| async move {
        let bank = TestBank::with_policy(db, sms_policy()).await;
        let user = bank.mailed_user("texted", "texted@example.com", &[]).await;
        bank.bank()
            .set_phone("admin:test", "texted", Some("+380441234567"))
            .await
            .unwrap();
        let told = bank.mailbox().await;
        assert_eq!(told.len(), 1, "the number's change is told by mail");
        assert!(told[0].text.contains("•••567"), "{}", told[0].text);

        // Key and password right: the session waits for the code, and may do nothing else.
        let mut c = bank.with_key(&user, "10.0.0.1").await.unwrap();
        match c.login("texted", &user.password, None, None).await.unwrap() {
            Reply::LoggedIn(info) => assert_eq!(info.stage, Stage::SmsCode),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            code(&c.call(Request::Overview {}).await),
            ErrorCode::NotAllowed
        );
        let texts = bank.texts().await;
        assert_eq!(texts.len(), 1);
        assert_eq!(texts[0].to, "+380441234567");
        let sent = texted_code(&texts[0]);
        // A wrong code counts as a wrong password.
        let wrong = if sent == "000000" { "111111" } else { "000000" };
        assert_eq!(
            code(
                &c.call(Request::ConfirmLogin {
                    code: Password::from(wrong)
                })
                .await
            ),
            ErrorCode::Forbidden
        );
        assert_eq!(failed_logins(&bank, "texted").await, 1);
        // Another session of the same key cannot use this session's code.
        let mut other = bank.with_key(&user, "10.0.0.1").await.unwrap();
        assert_eq!(
            code(
                &other
                    .call(Request::ConfirmLogin {
                        code: Password::from(sent.as_str())
                    })
                    .await
            ),
            ErrorCode::NotAllowed
        );
        match c
            .call(Request::ConfirmLogin {
                code: Password::from(sent.as_str()),
            })
            .await
            .unwrap()
        {
            Reply::LoggedIn(info) => assert_eq!(info.stage, Stage::Key),
            other => panic!("{other:?}"),
        }
        assert!(c.call(Request::Overview {}).await.is_ok());
        // The login is complete: the wrong code's count is cleared.
        assert_eq!(failed_logins(&bank, "texted").await, 0);

        // The code was used: on the next login, it is refused (and counted).
        let mut d = bank.with_key(&user, "10.0.0.1").await.unwrap();
        d.login("texted", &user.password, None, None).await.unwrap();
        let fresh = texted_code(&bank.texts().await[0]);
        if fresh != sent {
            assert_eq!(
                code(
                    &d.call(Request::ConfirmLogin {
                        code: Password::from(sent.as_str())
                    })
                    .await
                ),
                ErrorCode::Forbidden
            );
        }
        // Five minutes, and the fresh one is gone too (the session kept alive meanwhile).
        advance(&bank, Duration::from_secs(4 * 60));
        assert_eq!(
            code(&d.call(Request::Overview {}).await),
            ErrorCode::NotAllowed
        );
        advance(&bank, Duration::from_secs(61));
        assert_eq!(
            code(
                &d.call(Request::ConfirmLogin {
                    code: Password::from(fresh.as_str())
                })
                .await
            ),
            ErrorCode::Forbidden
        );
        // An OTP login is not a key login: no SMS step (and it may not sign anyway).
        // Without a number, a key login is refused, and says why.
        bank.bank()
            .set_phone("admin:test", "texted", None)
            .await
            .unwrap();
        let mut e = bank.with_key(&user, "10.0.0.1").await.unwrap();
        let r = e.login("texted", &user.password, None, None).await;
        assert_eq!(code(&r), ErrorCode::NotAllowed);
        assert!(bank.texts().await.is_empty());
    }
);

on_both!(
    wrong_texted_codes_add_up_to_the_lockout_across_logins,
    |db: Db| async move {
        // A right password does not give a code guesser a fresh count: failures reset only
        // when the code is right.
        let bank = TestBank::with_policy(db, sms_policy()).await;
        let user = bank
            .mailed_user("guessed", "guessed@example.com", &[])
            .await;
        bank.bank()
            .set_phone("admin:test", "guessed", Some("+380441234567"))
            .await
            .unwrap();
        for n in 1..=5 {
            let mut c = bank.with_key(&user, "10.0.0.1").await.unwrap();
            let r = c.login("guessed", &user.password, None, None).await;
            assert!(
                matches!(r, Ok(Reply::LoggedIn(ref i)) if i.stage == Stage::SmsCode),
                "{n}: {r:?}"
            );
            let sent = texted_code(&bank.texts().await[0]);
            let wrong = if sent == "999999" { "888888" } else { "999999" };
            let r = c
                .call(Request::ConfirmLogin {
                    code: Password::from(wrong),
                })
                .await;
            assert_eq!(code(&r), ErrorCode::Forbidden, "{n}");
            assert_eq!(failed_logins(&bank, "guessed").await, n);
        }
        let mut c = bank.with_key(&user, "10.0.0.1").await.unwrap();
        assert_eq!(
            code(&c.login("guessed", &user.password, None, None).await),
            ErrorCode::AccountLocked
        );
        assert!(bank.texts().await.is_empty());
    }
);

on_both!(
    a_database_attacker_cannot_redirect_the_login_code,
    |db: Db| async move {
        let bank = TestBank::with_policy(db, sms_policy()).await;
        let user = bank
            .mailed_user("sms.victim", "victim@example.com", &[])
            .await;
        bank.bank()
            .set_phone("admin:test", "sms.victim", Some("+380441234567"))
            .await
            .unwrap();
        sqlx::query("UPDATE users SET phone = '+19005550100' WHERE login = 'sms.victim'")
            .execute(bank.store().pool())
            .await
            .unwrap();
        let mut c = bank.with_key(&user, "10.0.0.1").await.unwrap();
        let r = c.login("sms.victim", &user.password, None, None).await;
        assert_eq!(code(&r), ErrorCode::NotAllowed);
        assert!(
            bank.texts().await.is_empty(),
            "nothing sent to the planted number"
        );
        // A login code of the attacker's making opens nothing: the genuine number back, a
        // genuine code sent, and its MAC replaced by one the attacker computed for "123456".
        bank.bank()
            .set_phone("admin:test", "sms.victim", Some("+380441234567"))
            .await
            .unwrap();
        let mut c = bank.with_key(&user, "10.0.0.1").await.unwrap();
        c.login("sms.victim", &user.password, None, None)
            .await
            .unwrap();
        assert_eq!(bank.texts().await.len(), 1);
        sqlx::query("UPDATE user_codes SET tag = $1 WHERE purpose = 'login'")
            .bind(vec![1u8; 32])
            .execute(bank.store().pool())
            .await
            .unwrap();
        let r = c
            .call(Request::ConfirmLogin {
                code: Password::from("123456"),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::Forbidden);
        assert!(c.call(Request::Overview {}).await.is_err());
    }
);

fn incoming(iban: &str, amount: u64) -> tresor_bank::ledger::IncomingPayment {
    tresor_bank::ledger::IncomingPayment {
        account: iban.to_owned(),
        amount,
        currency: None,
        payer_name: "Customer LLC".into(),
        payer_iban: "UA213223130000026007233566001".into(),
        payer_tax_code: "14360570".into(),
        purpose: "Invoice 7".into(),
        number: "77".into(),
    }
}

/// Signs and sends a prepared order on a key session; the order as sent.
async fn sign_and_send(
    c: &mut Client,
    who: &support::Holder,
    o: tresor_core::api::OrderView,
) -> tresor_core::api::OrderView {
    let signature = tresor_core::payment::sign(&who.key, o.id, o.version, &o.order);
    c.call(Request::SignOrder {
        id: o.id,
        version: o.version,
        signature,
    })
    .await
    .unwrap();
    match c.call(Request::SendOrder { id: o.id }).await.unwrap() {
        Reply::Order(o) => o,
        other => panic!("{other:?}"),
    }
}
