//! Payment templates and the counterparty directory, on SQLite and PostgreSQL: shared by the
//! users with the prepare right on their account, checked as orders are, replaced by name or
//! IBAN, invisible and untouchable without the right.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use support::*;
use tresor_core::api::directory::{Counterparty, CounterpartyContent, Template, TemplateContent};
use tresor_core::api::{ErrorCode, Reply, Request};

fn content(account: &str, name: &str, amount: Option<u64>) -> TemplateContent {
    let o = order(account, 1);
    TemplateContent {
        name: name.to_owned(),
        payer_iban: o.payer_iban,
        payee_name: o.payee_name,
        payee_tax_code: o.payee_tax_code,
        payee_iban: o.payee_iban,
        amount,
        currency: o.currency,
        purpose: o.purpose,
    }
}

async fn templates(c: &mut Client, account: Option<&str>) -> Vec<Template> {
    match c
        .call(Request::ListTemplates {
            account: account.map(str::to_owned),
        })
        .await
        .unwrap()
    {
        Reply::Templates { templates } => templates,
        other => panic!("{other:?}"),
    }
}

async fn counterparties(c: &mut Client) -> Vec<Counterparty> {
    match c
        .call(Request::ListCounterparties { account: None })
        .await
        .unwrap()
    {
        Reply::Counterparties { counterparties } => counterparties,
        other => panic!("{other:?}"),
    }
}

on_both!(
    templates_are_shared_by_whoever_prepares_on_the_account,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let a = bank.account(1, 0).await;
        let b = bank.account(2, 0).await;
        let one = bank.enrolled_user("tpl.one", &[(&a, ALL)]).await;
        let two = bank
            .enrolled_user("tpl.two", &[(&a, rights(true, true, false, false))])
            .await;
        let viewer = bank
            .enrolled_user(
                "tpl.viewer",
                &[(&a, rights(true, false, false, false)), (&b, ALL)],
            )
            .await;
        let mut s1 = bank.key_login(&one, "10.7.0.1").await;
        let mut s2 = bank.key_login(&two, "10.7.0.2").await;
        let mut sv = bank.key_login(&viewer, "10.7.0.3").await;

        let saved = match s1
            .call(Request::SaveTemplate {
                template: content(&a, "Rent", Some(1_500_000)),
            })
            .await
            .unwrap()
        {
            Reply::Template(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(saved.saved_by, "tpl.one");
        // Shared with the other preparer; not shown to a viewer, who may not save one either.
        assert_eq!(templates(&mut s2, None).await, std::slice::from_ref(&saved));
        assert!(templates(&mut sv, None).await.is_empty());
        assert_eq!(
            code(
                &sv.call(Request::SaveTemplate {
                    template: content(&a, "Mine", None)
                })
                .await
            ),
            ErrorCode::Forbidden
        );
        // The same name replaces; the amount may be left out.
        s2.call(Request::SaveTemplate {
            template: content(&a, "Rent", None),
        })
        .await
        .unwrap();
        let now = templates(&mut s1, Some(&a)).await;
        assert_eq!(now.len(), 1);
        assert_eq!((now[0].id, now[0].content.amount), (saved.id, None));
        assert_eq!(now[0].saved_by, "tpl.two");
        // Content is checked as an order's.
        let mut bad = content(&a, "Bad", None);
        bad.payee_iban = "UA213223130000026007233566000".into();
        let mut wrong_currency = content(&a, "Euro", None);
        wrong_currency.currency = "EUR".into();
        for t in [
            bad,
            wrong_currency,
            content(&a, " spaced ", None),
            content(&a, "", None),
            content(&a, "Zero", Some(0)),
        ] {
            assert_eq!(
                code(
                    &s1.call(Request::SaveTemplate {
                        template: t.clone()
                    })
                    .await
                ),
                ErrorCode::Invalid,
                "{t:?}"
            );
        }
        // A viewer cannot delete it (as if it were not there); a preparer can.
        assert_eq!(
            code(&sv.call(Request::DeleteTemplate { id: saved.id }).await),
            ErrorCode::NotFound
        );
        assert_eq!(
            s2.call(Request::DeleteTemplate { id: saved.id })
                .await
                .unwrap(),
            Reply::Done
        );
        assert!(templates(&mut s1, None).await.is_empty());
        let events: Vec<String> = bank
            .bank()
            .audit_list(None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event.starts_with("template_"))
            .map(|r| r.event)
            .collect();
        assert_eq!(
            events,
            ["template_delete", "template_save", "template_save"]
        );
    }
);

on_both!(
    the_counterparty_directory_is_per_account,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let a = bank.account(1, 0).await;
        let b = bank.account(2, 0).await;
        let one = bank.enrolled_user("cp.one", &[(&a, ALL)]).await;
        let other = bank.enrolled_user("cp.other", &[(&b, ALL)]).await;
        let mut s1 = bank.key_login(&one, "10.7.0.4").await;
        let mut so = bank.key_login(&other, "10.7.0.5").await;
        let entry = |name: &str, purpose: &str| CounterpartyContent {
            account: a.clone(),
            name: name.to_owned(),
            tax_code: "14360570".into(),
            iban: "UA213223130000026007233566001".into(),
            purpose: purpose.to_owned(),
        };
        let saved = match s1
            .call(Request::SaveCounterparty {
                counterparty: entry("ТОВ Постачальник", ""),
            })
            .await
            .unwrap()
        {
            Reply::Counterparty(c) => c,
            other => panic!("{other:?}"),
        };
        // The same IBAN replaces the entry.
        s1.call(Request::SaveCounterparty {
            counterparty: entry("ТОВ Постачальник Плюс", "Оплата за товар"),
        })
        .await
        .unwrap();
        let list = counterparties(&mut s1).await;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, saved.id);
        assert_eq!(list[0].content.name, "ТОВ Постачальник Плюс");
        // Another company's user sees none of it and cannot add to it.
        assert!(counterparties(&mut so).await.is_empty());
        assert_eq!(
            code(
                &so.call(Request::SaveCounterparty {
                    counterparty: entry("X", "")
                })
                .await
            ),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(&so.call(Request::DeleteCounterparty { id: saved.id }).await),
            ErrorCode::NotFound
        );
        // Checked as an order's payee.
        let mut bad = entry("Bad", "");
        bad.tax_code = "123".into();
        assert_eq!(
            code(
                &s1.call(Request::SaveCounterparty { counterparty: bad })
                    .await
            ),
            ErrorCode::Invalid
        );
        s1.call(Request::DeleteCounterparty { id: saved.id })
            .await
            .unwrap();
        assert!(counterparties(&mut s1).await.is_empty());
    }
);
