//! Accountable admins, on SQLite and PostgreSQL, through the real channel: admin keys and
//! client keys never stand in for each other, every admin endpoint checks the admin's roles,
//! four eyes hold (no self-approval, no late approval, one approval of a request however many
//! race), a database-only attacker can neither make an admin nor add a role nor change a
//! request, and every admin action's audit record names its admin.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use support::*;
use tokio::task::JoinSet;
use tresor_core::api::admin::{AdminAction, ApprovalView, Role};
use tresor_core::api::{ErrorCode, Menus, Reply, Request, Response, Stage};
use tresor_core::pki;

async fn exec(bank: &TestBank, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(bank.store().pool())
        .await
        .unwrap();
}

/// A one-byte blob literal, as each database writes it.
fn junk_blob(db: Db) -> &'static str {
    match db {
        Db::Sqlite => "X'00'",
        Db::Postgres => "'\\x00'::bytea",
    }
}

fn requested(r: &Response) -> ApprovalView {
    match r {
        Ok(Reply::Requested(v)) => v.clone(),
        other => panic!("expected a filed request, got {other:?}"),
    }
}

/// A bank with one admin per role (two security officers), an account and a client user.
struct Staff {
    bank: TestBank,
    helpdesk: Holder,
    officer: Holder,
    officer2: Holder,
    manager: Holder,
    auditor: Holder,
    iban: String,
    client: Holder,
}

async fn staff(db: Db) -> Staff {
    let bank = TestBank::new(db).await;
    let iban = bank.account(1, 1_000_000).await;
    let client = bank
        .enrolled_user("client.user", &[(&iban, rights(true, true, false, false))])
        .await;
    Staff {
        helpdesk: bank.enrolled_admin("help.desk", &[Role::Helpdesk]).await,
        officer: bank
            .enrolled_admin("sec.one", &[Role::SecurityOfficer])
            .await,
        officer2: bank
            .enrolled_admin("sec.two", &[Role::SecurityOfficer])
            .await,
        manager: bank
            .enrolled_admin("acc.manager", &[Role::AccountManager])
            .await,
        auditor: bank.enrolled_admin("the.auditor", &[Role::Auditor]).await,
        bank,
        iban,
        client,
    }
}

/// One action of each admin operation, safe to try on the staff bank.
fn sample_actions(s: &Staff) -> Vec<(&'static str, AdminAction)> {
    vec![
        ("whoami", AdminAction::WhoAmI {}),
        ("find", AdminAction::FindUsers { query: None }),
        (
            "show",
            AdminAction::ShowUser {
                login: "client.user".into(),
            },
        ),
        (
            "add_user",
            AdminAction::AddUser {
                login: "new.client".into(),
                name: "New Client".into(),
                email: None,
            },
        ),
        (
            "unlock",
            AdminAction::UnlockUser {
                login: "client.user".into(),
            },
        ),
        (
            "menus",
            AdminAction::SetMenus {
                login: "client.user".into(),
                menus: Menus::Full,
            },
        ),
        (
            "temp_password",
            AdminAction::TempPassword {
                login: "client.user".into(),
            },
        ),
        (
            "emergency_password",
            AdminAction::EmergencyPassword {
                login: "client.user".into(),
            },
        ),
        ("accounts", AdminAction::ListAccounts {}),
        (
            "signatures",
            AdminAction::SetSignatures {
                iban: s.iban.clone(),
                count: 2,
            },
        ),
        (
            "rights",
            AdminAction::ChangeRights {
                login: "client.user".into(),
                iban: s.iban.clone(),
                rights: rights(true, false, false, false),
                grant: true,
            },
        ),
        ("certs", AdminAction::ListCertificates { login: None }),
        (
            "revoke",
            AdminAction::RevokeCertificate {
                serial: "00".into(),
            },
        ),
        (
            "audit",
            AdminAction::AuditList {
                login: None,
                event: None,
                from: None,
                until: None,
                limit: 5,
            },
        ),
        ("audit_verify", AdminAction::AuditVerify {}),
        ("admins", AdminAction::ListAdmins {}),
        (
            "add_admin",
            AdminAction::AddAdmin {
                login: "new.admin".into(),
                name: "New Admin".into(),
                roles: vec![Role::Auditor],
            },
        ),
        (
            "set_roles",
            AdminAction::SetRoles {
                login: "help.desk".into(),
                roles: vec![Role::Helpdesk, Role::Auditor],
            },
        ),
        (
            "break_glass",
            AdminAction::BreakGlass {
                reason: "drill".into(),
            },
        ),
        ("requests", AdminAction::ListRequests {}),
        (
            "activate",
            AdminAction::ActivateCertificate {
                login: "client.user".into(),
                fingerprint: "00".into(),
            },
        ),
        // Last: it suspends the client for the rest of the run.
        (
            "suspend",
            AdminAction::SuspendUser {
                login: "client.user".into(),
            },
        ),
    ]
}

/// Which roles may send each sample action: the expected matrix, written out here rather
/// than taken from the rules, so that a change to either shows.
fn allowed(name: &str) -> &'static [Role] {
    use Role::{AccountManager as Am, Auditor, Helpdesk, SecurityOfficer as So};
    match name {
        "whoami" | "requests" => &[Helpdesk, So, Am, Auditor],
        "find" | "show" => &[Helpdesk, So, Am],
        "unlock" | "temp_password" | "certs" | "suspend" => &[Helpdesk, So],
        "emergency_password" | "revoke" | "admins" | "add_admin" | "set_roles" | "break_glass"
        | "activate" => &[So],
        "add_user" | "menus" | "accounts" | "signatures" | "rights" => &[Am],
        "audit" | "audit_verify" => &[Auditor],
        other => panic!("no expectation for {other}"),
    }
}

on_both!(
    every_admin_endpoint_checks_the_role_of_the_admin,
    |db: Db| async move {
        let s = staff(db).await;
        let before = s.bank.bank().audit_list(None, 1).await.unwrap()[0].seq;
        let by_role = [
            (Role::Helpdesk, &s.helpdesk),
            (Role::SecurityOfficer, &s.officer),
            (Role::AccountManager, &s.manager),
            (Role::Auditor, &s.auditor),
        ];
        for (role, who) in by_role {
            let mut c = s.bank.key_login(who, "10.1.0.1").await;
            for (name, action) in sample_actions(&s) {
                let r = c.admin(action).await;
                let refused = matches!(&r, Err(e) if e.code == ErrorCode::Forbidden);
                assert_eq!(
                    refused,
                    !allowed(name).contains(&role),
                    "{role:?} {name}: {r:?}"
                );
            }
        }
        // Every refusal was audited, naming the admin and the operation.
        let refused = s
            .bank
            .bank()
            .audit_list(None, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event == "admin_refused")
            .count();
        let expected: usize = [
            Role::Helpdesk,
            Role::SecurityOfficer,
            Role::AccountManager,
            Role::Auditor,
        ]
        .iter()
        .map(|role| {
            sample_actions(&s)
                .iter()
                .filter(|(n, _)| !allowed(n).contains(role))
                .count()
        })
        .sum();
        assert_eq!(refused, expected);
        // Every record an admin action wrote names that admin, the certificate they signed
        // with and their address.
        let serials: Vec<String> = [&s.helpdesk, &s.officer, &s.manager, &s.auditor]
            .iter()
            .map(|h| {
                format!(
                    "admin:{}@{}",
                    h.login,
                    pki::serial_hex(h.cert.tbs_certificate().serial_number())
                )
            })
            .collect();
        let written: Vec<_> = s
            .bank
            .bank()
            .audit_list(None, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.seq > before && r.actor != "user")
            .collect();
        assert!(written.len() > 10, "{written:?}");
        for r in &written {
            assert!(serials.contains(&r.actor), "{r:?}");
            assert_eq!(r.ip, "10.1.0.1", "{r:?}");
        }
    }
);

on_both!(
    an_admin_account_is_handled_by_a_security_officer_only,
    |db: Db| async move {
        let s = staff(db).await;
        let mut help = s.bank.key_login(&s.helpdesk, "10.1.0.2").await;
        for action in [
            AdminAction::UnlockUser {
                login: "sec.one".into(),
            },
            AdminAction::TempPassword {
                login: "sec.one".into(),
            },
        ] {
            assert_eq!(code(&help.admin(action).await), ErrorCode::Forbidden);
        }
        let mut so = s.bank.key_login(&s.officer, "10.1.0.3").await;
        assert!(
            so.admin(AdminAction::UnlockUser {
                login: "help.desk".into()
            })
            .await
            .is_ok()
        );
        // An admin account holds no rights on accounts, even approved.
        let mut am = s.bank.key_login(&s.manager, "10.1.0.4").await;
        let r = am
            .admin(AdminAction::ChangeRights {
                login: "sec.two".into(),
                iban: s.iban.clone(),
                rights: rights(true, false, false, false),
                grant: true,
            })
            .await;
        assert_eq!(code(&r), ErrorCode::Invalid, "{r:?}");
    }
);

on_both!(
    admin_and_client_keys_never_stand_in_for_each_other,
    |db: Db| async move {
        let s = staff(db).await;
        // The certificates say which they are; openssl reads the admin EKU in the e2e test.
        let client_kind = pki::validate_client_certificate(
            &s.client.cert,
            &s.bank.ca,
            &tresor_core::Login::new("client.user").unwrap(),
            s.bank.clock_now(),
            &pki::NoRevocationList,
        )
        .unwrap()
        .kind;
        let admin_kind = pki::validate_client_certificate(
            &s.officer.cert,
            &s.bank.ca,
            &tresor_core::Login::new("sec.one").unwrap(),
            s.bank.clock_now(),
            &pki::NoRevocationList,
        )
        .unwrap()
        .kind;
        assert_eq!(
            (client_kind, admin_kind),
            (pki::CertKind::Client, pki::CertKind::Admin)
        );

        // A client's key session does no admin work, however it is asked.
        let mut client = s.bank.key_login(&s.client, "10.2.0.1").await;
        let r = client.admin(AdminAction::WhoAmI {}).await;
        assert_eq!(code(&r), ErrorCode::NotAllowed, "{r:?}");
        // An admin's key session does no client work.
        let mut admin = s.bank.key_login(&s.officer, "10.2.0.2").await;
        assert_eq!(
            code(&admin.call(Request::Overview {}).await),
            ErrorCode::NotAllowed
        );
        assert_eq!(
            code(&admin.call(Request::TotpEnroll {}).await),
            ErrorCode::NotAllowed
        );
        // An anonymous session, logged in with an admin's one-time password, does none.
        let initial = s
            .bank
            .bank()
            .add_admin("break-glass:test", "fresh.admin", "Fresh", &[Role::Auditor])
            .await
            .unwrap();
        let mut anon = s.bank.anonymous("10.2.0.3").await;
        let r = anon
            .login("fresh.admin", initial.expose(), None, None)
            .await
            .unwrap();
        assert!(matches!(r, Reply::LoggedIn(ref i) if i.stage == Stage::ChangePassword));
        assert_eq!(
            code(&anon.admin(AdminAction::WhoAmI {}).await),
            ErrorCode::NotAllowed
        );

        // A database-only attacker makes the client an admin: the row has no valid MAC, and
        // the client's certificate is still a client's.
        exec(
            &s.bank,
            &format!(
                "INSERT INTO admins (user_id, roles, tag) SELECT id, 'security_officer', \
                 {} FROM users WHERE login = 'client.user'",
                junk_blob(s.bank.db)
            ),
        )
        .await;
        let mut client = s.bank.key_login(&s.client, "10.2.0.4").await;
        assert_eq!(
            code(&client.admin(AdminAction::ListAdmins {}).await),
            ErrorCode::NotAllowed
        );
        // ... and gives the helpdesk admin a role: the roles' MAC no longer holds, so the
        // account is no admin at all.
        exec(
            &s.bank,
            "UPDATE admins SET roles = 'helpdesk,security_officer' WHERE user_id = \
             (SELECT id FROM users WHERE login = 'help.desk')",
        )
        .await;
        let mut help = s.bank.with_key(&s.helpdesk, "10.2.0.5").await.unwrap();
        let r = help
            .login(&s.helpdesk.login, &s.helpdesk.password, None, None)
            .await;
        assert_eq!(code(&r), ErrorCode::LoginFailed, "{r:?}");
    }
);

on_both!(
    an_emergency_password_takes_two_security_officers_and_only_the_approver_sees_it,
    |db: Db| async move {
        let s = staff(db).await;
        let mut one = s.bank.key_login(&s.officer, "10.3.0.1").await;
        let filed = requested(
            &one.admin(AdminAction::EmergencyPassword {
                login: "client.user".into(),
            })
            .await,
        );
        assert_eq!(filed.status, "pending");
        assert_eq!(filed.requested_by, "sec.one");
        // Nothing happened yet: the client still logs in with the key.
        s.bank.key_login(&s.client, "10.3.0.2").await;
        // The requester cannot approve it.
        let r = one.admin(AdminAction::Approve { id: filed.id }).await;
        assert_eq!(code(&r), ErrorCode::Forbidden, "{r:?}");
        // Nor can a helpdesk admin.
        let mut help = s.bank.key_login(&s.helpdesk, "10.3.0.3").await;
        let r = help.admin(AdminAction::Approve { id: filed.id }).await;
        assert_eq!(code(&r), ErrorCode::Forbidden, "{r:?}");
        // The second officer can, and is shown the secret.
        let mut two = s.bank.key_login(&s.officer2, "10.3.0.4").await;
        let (request, secret) = match two.admin(AdminAction::Approve { id: filed.id }).await {
            Ok(Reply::Approved { request, secret }) => (request, secret.unwrap()),
            other => panic!("{other:?}"),
        };
        assert_eq!(request.status, "approved");
        assert_eq!(request.decided_by.as_deref(), Some("sec.two"));
        assert_eq!(secret.kind, "emergency");
        // Approving again changes nothing.
        assert_eq!(
            code(&two.admin(AdminAction::Approve { id: filed.id }).await),
            ErrorCode::Conflict
        );
        // The secret is nowhere in the request list.
        let listed = format!("{:?}", two.admin(AdminAction::ListRequests {}).await);
        assert!(!listed.contains(secret.secret.expose()));
        // The user recovers with it.
        let mut c = s.bank.anonymous("10.3.0.5").await;
        let r = c
            .login(
                "client.user",
                &s.client.password,
                None,
                Some(secret.secret.expose()),
            )
            .await
            .unwrap();
        assert!(matches!(r, Reply::LoggedIn(ref i) if i.stage == Stage::Recovery));

        // The audit log has both steps, each naming its admin, certificate and address.
        let records = s.bank.bank().audit_list(None, 10_000).await.unwrap();
        let serial = |h: &Holder| pki::serial_hex(h.cert.tbs_certificate().serial_number());
        let filed_rec = records
            .iter()
            .find(|r| r.event == "approval_request")
            .unwrap();
        assert_eq!(
            filed_rec.actor,
            format!("admin:sec.one@{}", serial(&s.officer))
        );
        assert_eq!(filed_rec.ip, "10.3.0.1");
        let issued = records
            .iter()
            .find(|r| r.event == "emergency_password")
            .unwrap();
        assert_eq!(
            issued.actor,
            format!("admin:sec.two@{}", serial(&s.officer2))
        );
        assert_eq!(issued.ip, "10.3.0.4");
        assert!(issued.detail.contains("request #"), "{issued:?}");
        assert!(
            records
                .iter()
                .any(|r| r.event == "approval" && r.outcome.starts_with("refused")),
            "the self-approval is audited"
        );
        assert!(
            records
                .iter()
                .all(|r| !r.detail.contains(secret.secret.expose()))
        );
    }
);

on_both!(
    an_approval_after_the_deadline_is_refused,
    |db: Db| async move {
        let s = staff(db).await;
        let mut one = s.bank.key_login(&s.officer, "10.4.0.1").await;
        let filed = requested(
            &one.admin(AdminAction::AddAdmin {
                login: "late.admin".into(),
                name: "Late".into(),
                roles: vec![Role::Helpdesk],
            })
            .await,
        );
        let window = s.bank.bank().policy().approval_seconds;
        advance(&s.bank, Duration::from_secs(window + 1));
        let mut two = s.bank.key_login(&s.officer2, "10.4.0.2").await;
        let r = two.admin(AdminAction::Approve { id: filed.id }).await;
        assert_eq!(code(&r), ErrorCode::Forbidden, "{r:?}");
        assert!(r.unwrap_err().message.contains("expired"));
        assert!(
            !s.bank
                .bank()
                .list_admins()
                .await
                .unwrap()
                .iter()
                .any(|a| a.login == "late.admin")
        );
        // The list shows it expired; the requester may withdraw it.
        match two.admin(AdminAction::ListRequests {}).await {
            Ok(Reply::Requests { requests }) => {
                assert!(
                    requests
                        .iter()
                        .any(|r| r.id == filed.id && r.status == "expired")
                );
            }
            other => panic!("{other:?}"),
        }
        let mut one = s.bank.key_login(&s.officer, "10.4.0.3").await;
        assert_eq!(
            one.admin(AdminAction::Reject { id: filed.id }).await,
            Ok(Reply::Done)
        );
    }
);

on_both!(
    granting_sign_and_lowering_signatures_wait_for_a_second_account_manager,
    |db: Db| async move {
        let s = staff(db).await;
        let manager2 = s
            .bank
            .enrolled_admin("acc.manager2", &[Role::AccountManager])
            .await;
        let mut am = s.bank.key_login(&s.manager, "10.5.0.1").await;
        // Raising signatures and granting view are done at once.
        assert_eq!(
            am.admin(AdminAction::SetSignatures {
                iban: s.iban.clone(),
                count: 2
            })
            .await,
            Ok(Reply::Done)
        );
        // Lowering waits.
        let lower = requested(
            &am.admin(AdminAction::SetSignatures {
                iban: s.iban.clone(),
                count: 1,
            })
            .await,
        );
        let grant = requested(
            &am.admin(AdminAction::ChangeRights {
                login: "client.user".into(),
                iban: s.iban.clone(),
                rights: rights(false, false, true, true),
                grant: true,
            })
            .await,
        );
        let accounts = s.bank.bank().list_accounts().await.unwrap();
        assert_eq!(accounts[0].signatures_required, 2);
        let shown = s.bank.bank().show_user("client.user").await.unwrap();
        assert!(!shown.rights[0].1.sign);
        // A security officer is not the right second pair of eyes.
        let mut so = s.bank.key_login(&s.officer, "10.5.0.2").await;
        assert_eq!(
            code(&so.admin(AdminAction::Approve { id: grant.id }).await),
            ErrorCode::Forbidden
        );
        let mut am2 = s.bank.key_login(&manager2, "10.5.0.3").await;
        for id in [lower.id, grant.id] {
            let r = am2.admin(AdminAction::Approve { id }).await;
            assert!(
                matches!(r, Ok(Reply::Approved { secret: None, .. })),
                "{r:?}"
            );
        }
        let accounts = s.bank.bank().list_accounts().await.unwrap();
        assert_eq!(accounts[0].signatures_required, 1);
        let shown = s.bank.bank().show_user("client.user").await.unwrap();
        assert!(shown.rights[0].1.sign && shown.rights[0].1.send);
    }
);

on_both!(
    racing_approvals_of_one_request_carry_it_out_once,
    |db: Db| async move {
        let s = staff(db).await;
        let mut extra = Vec::new();
        for i in 0..4 {
            extra.push(
                s.bank
                    .enrolled_admin(&format!("sec.extra{i}"), &[Role::SecurityOfficer])
                    .await,
            );
        }
        let mut one = s.bank.key_login(&s.officer, "10.6.0.1").await;
        let filed = requested(
            &one.admin(AdminAction::TempPassword {
                login: "client.user".into(),
            })
            .await,
        );
        let mut sessions = vec![s.bank.key_login(&s.officer2, "10.6.0.2").await];
        for (i, h) in extra.iter().enumerate() {
            sessions.push(s.bank.key_login(h, &format!("10.6.1.{}", i + 1)).await);
        }
        let mut tasks = JoinSet::new();
        for mut c in sessions {
            let id = filed.id;
            tasks.spawn(async move { c.admin(AdminAction::Approve { id }).await });
        }
        let mut approved = 0;
        while let Some(r) = tasks.join_next().await {
            match r.unwrap() {
                Ok(Reply::Approved {
                    secret: Some(_), ..
                }) => approved += 1,
                Err(e) => assert_eq!(e.code, ErrorCode::Conflict, "{e:?}"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(approved, 1);
        let issued = s
            .bank
            .bank()
            .audit_list(Some("client.user"), 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event == "temporary_password")
            .count();
        assert_eq!(issued, 1);
    }
);

on_both!(
    a_request_changed_in_the_database_is_not_carried_out,
    |db: Db| async move {
        let s = staff(db).await;
        let mut one = s.bank.key_login(&s.officer, "10.7.0.1").await;
        let filed = requested(
            &one.admin(AdminAction::SetRoles {
                login: "help.desk".into(),
                roles: vec![Role::Helpdesk],
            })
            .await,
        );
        // A database-only attacker rewrites the pending request to give the helpdesk every
        // role, hoping the approver reads only the summary.
        exec(
            &s.bank,
            &format!(
                "UPDATE approvals SET params = '{{\"roles\":[\"helpdesk\",\"security_officer\"]}}' \
                 WHERE id = {}",
                filed.id
            ),
        )
        .await;
        let mut two = s.bank.key_login(&s.officer2, "10.7.0.2").await;
        let r = two.admin(AdminAction::Approve { id: filed.id }).await;
        assert_eq!(code(&r), ErrorCode::Internal, "{r:?}");
        let help = s
            .bank
            .bank()
            .list_admins()
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.login == "help.desk")
            .unwrap();
        assert_eq!(help.roles, vec![Role::Helpdesk]);
        // ... nor does a request forged whole, nor a decision written without the bank.
        let junk = junk_blob(s.bank.db);
        exec(
            &s.bank,
            &format!(
                "INSERT INTO approvals (action, target, params, requested_by, requested_at, \
                 expires_at, tag, status, decided_by, decided_at, decision_tag) SELECT \
                 'break_glass', '', '{{\"reason\":\"x\"}}', id, 1, 9999999999, {junk}, \
                 'approved', id, 1, {junk} FROM users WHERE login = 'sec.one'"
            ),
        )
        .await;
        let r = s.bank.bank().open_break_glass("mallory", "forged").await;
        assert!(r.is_err(), "{r:?}");
    }
);

on_both!(
    break_glass_needs_a_window_once_there_are_two_security_officers,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        // A new bank: no officers, break-glass runs alone and is audited.
        let actor = bank
            .bank()
            .open_break_glass("operator", "bootstrap")
            .await
            .unwrap();
        assert_eq!(actor.name(), "break-glass:operator");
        let one = bank
            .enrolled_admin("sec.one", &[Role::SecurityOfficer])
            .await;
        bank.bank()
            .open_break_glass("operator", "still one")
            .await
            .unwrap();
        let two = bank
            .enrolled_admin("sec.two", &[Role::SecurityOfficer])
            .await;
        let r = bank.bank().open_break_glass("operator", "alone").await;
        assert!(r.is_err(), "{r:?}");
        // One asks, the other approves: one use.
        let mut a = bank.key_login(&one, "10.8.0.1").await;
        let filed = requested(
            &a.admin(AdminAction::BreakGlass {
                reason: "database maintenance".into(),
            })
            .await,
        );
        let mut b = bank.key_login(&two, "10.8.0.2").await;
        assert!(b.admin(AdminAction::Approve { id: filed.id }).await.is_ok());
        bank.bank()
            .open_break_glass("operator", "maintenance")
            .await
            .unwrap();
        assert!(
            bank.bank()
                .open_break_glass("operator", "again")
                .await
                .is_err()
        );
        let records = bank.bank().audit_list(None, 1000).await.unwrap();
        let glass: Vec<_> = records
            .iter()
            .filter(|r| r.event == "break_glass")
            .map(|r| (r.outcome.as_str(), r.detail.as_str()))
            .collect();
        assert_eq!(glass.iter().filter(|(o, _)| *o == "opened").count(), 3);
        assert_eq!(
            glass
                .iter()
                .filter(|(o, _)| o.starts_with("refused"))
                .count(),
            2
        );
        assert!(
            glass.iter().any(|(_, d)| d.contains("approved by sec.two")),
            "{glass:?}"
        );
    }
);

on_both!(
    with_key_letters_a_certificate_opens_no_session_until_a_security_officer_activates_it,
    |db: Db| async move {
        let policy = tresor_bank::config::Policy {
            activation: tresor_bank::config::Activation::Letter,
            ..Default::default()
        };
        let bank = TestBank::with_policy(db, policy).await;
        // Admins' certificates are not held for a letter.
        let officer = bank
            .enrolled_admin("sec.one", &[Role::SecurityOfficer])
            .await;
        let helpdesk = bank.enrolled_admin("help.desk", &[Role::Helpdesk]).await;
        let iban = bank.account(1, 1000).await;
        let client = bank.enrolled_user("client.user", &[(&iban, ALL)]).await;
        let refused = |r: Result<Client, tresor_core::channel::ChannelError>| match r {
            Ok(_) => panic!("the handshake was accepted"),
            Err(e) => alert_of(&e),
        };
        assert_eq!(
            refused(bank.with_key(&client, "10.9.0.1").await),
            tresor_core::channel::AlertCode::CertificateNotActivated
        );
        let shown = bank.bank().show_user("client.user").await.unwrap();
        assert_eq!(shown.certificates[0].activation, "pending");

        let fingerprint = pki::fingerprint_text(&pki::key_fingerprint(&client.cert).unwrap());
        // A helpdesk admin may not activate; a wrong fingerprint is refused and audited.
        let mut help = bank.key_login(&helpdesk, "10.9.0.2").await;
        let r = help
            .admin(AdminAction::ActivateCertificate {
                login: "client.user".into(),
                fingerprint: fingerprint.clone(),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::Forbidden);
        let mut so = bank.key_login(&officer, "10.9.0.3").await;
        let wrong = pki::fingerprint_text(&pki::key_fingerprint(&officer.cert).unwrap());
        let r = so
            .admin(AdminAction::ActivateCertificate {
                login: "client.user".into(),
                fingerprint: wrong,
            })
            .await;
        assert_eq!(code(&r), ErrorCode::Invalid, "{r:?}");
        assert_eq!(
            refused(bank.with_key(&client, "10.9.0.4").await),
            tresor_core::channel::AlertCode::CertificateNotActivated
        );
        // A database-only attacker marks it activated: the state's MAC no longer holds.
        exec(
            &bank,
            "UPDATE certificates SET activation = 'activated' WHERE user_id = \
             (SELECT id FROM users WHERE login = 'client.user')",
        )
        .await;
        assert_eq!(
            refused(bank.with_key(&client, "10.9.0.5").await),
            tresor_core::channel::AlertCode::CertificateRevoked
        );
        exec(
            &bank,
            "UPDATE certificates SET activation = 'pending' WHERE user_id = \
             (SELECT id FROM users WHERE login = 'client.user')",
        )
        .await;
        // The right fingerprint, typed as from paper (lower case, no spaces), activates it.
        let typed = fingerprint.replace(' ', "").to_lowercase();
        let r = so
            .admin(AdminAction::ActivateCertificate {
                login: "client.user".into(),
                fingerprint: typed,
            })
            .await;
        assert!(matches!(r, Ok(Reply::Certificates { .. })), "{r:?}");
        bank.key_login(&client, "10.9.0.6").await;
        let records = bank
            .bank()
            .audit_list(Some("client.user"), 1000)
            .await
            .unwrap();
        let activations: Vec<_> = records
            .iter()
            .filter(|r| r.event == "key_activation")
            .map(|r| r.outcome.as_str())
            .collect();
        assert_eq!(activations.len(), 2, "{activations:?}");
        assert!(activations.contains(&"ok"));
        assert!(activations.iter().any(|o| o.starts_with("refused")));
    }
);

on_both!(
    a_blocked_key_opens_nothing_until_a_recovery_by_four_eyes,
    |db: Db| async move {
        let s = staff(db).await;
        let mut open = s.bank.key_login(&s.client, "10.10.0.1").await;
        // A wrong password blocks nothing (and counts as a failed login).
        let mut anon = s.bank.anonymous("10.10.0.2").await;
        let r = anon
            .call(Request::BlockKey {
                login: "client.user".into(),
                password: "not the password".into(),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::LoginFailed);
        assert!(open.call(Request::Overview {}).await.is_ok());
        // With the password, from an anonymous session: blocked.
        let r = anon
            .call(Request::BlockKey {
                login: "client.user".into(),
                password: s.client.password.as_str().into(),
            })
            .await;
        assert_eq!(r, Ok(Reply::Done));
        // The open session is gone, the key opens no session, and no login but recovery
        // works.
        let payload = serde_json::to_vec(&Request::Overview {}).unwrap();
        let (_, reply) = open.raw(&payload).await;
        assert!(open.session.open(&reply).is_err());
        match s.bank.with_key(&s.client, "10.10.0.3").await {
            Ok(_) => panic!("a suspended certificate opened a session"),
            Err(e) => assert_eq!(
                alert_of(&e),
                tresor_core::channel::AlertCode::CertificateRevoked
            ),
        }
        let shown = s.bank.bank().show_user("client.user").await.unwrap();
        assert!(
            shown
                .certificates
                .iter()
                .all(|c| c.revoked.as_ref().is_some_and(|r| r.1 == "suspended"))
        );
        // Two officers issue an emergency password; the user recovers and is back.
        let mut one = s.bank.key_login(&s.officer, "10.10.0.4").await;
        let filed = requested(
            &one.admin(AdminAction::EmergencyPassword {
                login: "client.user".into(),
            })
            .await,
        );
        let mut two = s.bank.key_login(&s.officer2, "10.10.0.5").await;
        let secret = match two.admin(AdminAction::Approve { id: filed.id }).await {
            Ok(Reply::Approved {
                secret: Some(secret),
                ..
            }) => secret,
            other => panic!("{other:?}"),
        };
        let mut c = s.bank.anonymous("10.10.0.6").await;
        let r = c
            .login(
                "client.user",
                &s.client.password,
                None,
                Some(secret.secret.expose()),
            )
            .await
            .unwrap();
        assert!(matches!(r, Reply::LoggedIn(ref i) if i.stage == Stage::Recovery));
        let key = tresor_core::PrivateKey::generate();
        let cert = c.request_certificate(&key, "client.user").await.unwrap();
        let recovered = Holder {
            cert,
            key,
            ..s.client.clone()
        };
        s.bank.key_login(&recovered, "10.10.0.7").await;

        // The helpdesk suspends on a phone call, with the same effect.
        let mut help = s.bank.key_login(&s.helpdesk, "10.10.0.8").await;
        assert_eq!(
            help.admin(AdminAction::SuspendUser {
                login: "client.user".into()
            })
            .await,
            Ok(Reply::Done)
        );
        assert!(s.bank.with_key(&recovered, "10.10.0.9").await.is_err());
        let suspensions = s
            .bank
            .bank()
            .audit_list(Some("client.user"), 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event == "suspension" && r.outcome == "ok")
            .count();
        assert_eq!(suspensions, 2);
    }
);

on_both!(
    an_account_manager_adds_a_user_by_mail_and_sees_only_where_it_went,
    |db: Db| async move {
        let s = staff(db).await;
        let mut am = s.bank.key_login(&s.manager, "10.9.0.1").await;
        let r = am
            .admin(AdminAction::AddUser {
                login: "New.Mailed".into(),
                name: "New Mailed".into(),
                email: Some("new.mailed@example.com".into()),
            })
            .await;
        match r {
            Ok(Reply::Mailed { login, to }) => {
                assert_eq!(login, "new.mailed");
                assert_eq!(to, "n•••@example.com");
            }
            other => panic!("{other:?}"),
        }
        // A bad address is refused, and nothing is created or queued.
        let r = am
            .admin(AdminAction::AddUser {
                login: "bad.mail".into(),
                name: "Bad Mail".into(),
                email: Some("not an address".into()),
            })
            .await;
        assert_eq!(code(&r), ErrorCode::Invalid, "{r:?}");
        assert!(s.bank.bank().show_user("bad.mail").await.is_err());
        let queued = s
            .bank
            .store()
            .read()
            .await
            .unwrap()
            .unsent_mail()
            .await
            .unwrap();
        assert_eq!(queued, 1);
    }
);
