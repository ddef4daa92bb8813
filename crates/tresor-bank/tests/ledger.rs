//! The ledger and statements, on SQLite and PostgreSQL: every payment that changes a balance
//! leaves a movement and keeps balance = opening + movements; statements for a period add up;
//! `verify_ledger` finds a balance or a movement edited in the database; imports are all or
//! nothing and flag duplicates.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::Duration;

use support::*;
use tokio::task::JoinSet;
use tresor_bank::ledger::IncomingPayment;
use tresor_core::api::ledger::{
    Direction, ImportOutcome, ImportedOrder, MovementKind, StatementPage,
};
use tresor_core::api::{ErrorCode, OrderStatus, OrderView, Reply, Request};
use tresor_core::date::Day;
use tresor_core::payment::{self, PaymentOrder};

fn view(r: &tresor_core::api::Response) -> OrderView {
    match r {
        Ok(Reply::Order(v)) => v.clone(),
        other => panic!("{other:?}"),
    }
}

fn page(r: tresor_core::api::Response) -> StatementPage {
    match r {
        Ok(Reply::Statement(p)) => p,
        other => panic!("{other:?}"),
    }
}

/// Prepares, signs and sends an order on a key session of `who`; the order as sent.
async fn pay(client: &mut Client, who: &Holder, order: PaymentOrder) -> OrderView {
    let o = view(
        &client
            .call(Request::PrepareOrder {
                order: order.clone(),
            })
            .await,
    );
    client
        .call(Request::SignOrder {
            id: o.id,
            version: o.version,
            signature: payment::sign(&who.key, o.id, o.version, &order),
        })
        .await
        .unwrap();
    view(&client.call(Request::SendOrder { id: o.id }).await)
}

fn to(payer: &str, payee: &str, amount: u64) -> PaymentOrder {
    PaymentOrder {
        payee_iban: payee.to_owned(),
        payee_name: "Test LLC".into(),
        ..order(payer, amount)
    }
}

fn incoming(account: &str, amount: u64, number: &str) -> IncomingPayment {
    IncomingPayment {
        account: account.to_owned(),
        amount,
        currency: None,
        payer_name: "ТОВ Покупець".into(),
        payer_iban: "UA903052992990004149123456789".into(),
        payer_tax_code: "32855961".into(),
        purpose: "Оплата за рахунком 7".into(),
        number: number.to_owned(),
    }
}

/// Today by the bank's clock.
fn today(bank: &TestBank) -> Day {
    let now = bank
        .clock_now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Day::of_unix(i64::try_from(now.as_secs()).unwrap())
}

async fn assert_ledger_holds(bank: &TestBank) {
    let check = bank.bank().verify_ledger().await.unwrap();
    assert_eq!(check.problem, None, "{check:?}");
}

/// Every movement of a statement, page by page.
async fn statement(
    client: &mut Client,
    iban: &str,
    from: Day,
    to: Day,
    limit: u32,
) -> (StatementPage, Vec<tresor_core::api::ledger::Movement>) {
    let mut cursor = None;
    let mut all = Vec::new();
    loop {
        let p = page(
            client
                .call(Request::Statement {
                    account: iban.to_owned(),
                    from,
                    to,
                    cursor: cursor.clone(),
                    limit: Some(limit),
                })
                .await,
        );
        assert!(p.movements.len() <= limit as usize);
        all.extend(p.movements.iter().cloned());
        match &p.next {
            Some(next) => cursor = Some(next.clone()),
            None => return (p, all),
        }
    }
}

on_both!(
    every_payment_leaves_a_movement_and_the_ledger_holds,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let a = bank.account(1, 1_000_000).await;
        let b = bank.account(2, 0).await;
        let who = bank
            .enrolled_user(
                "ledger.user",
                &[(&a, ALL), (&b, rights(true, false, false, false))],
            )
            .await;
        assert_ledger_holds(&bank).await;
        let mut c = bank.key_login(&who, "10.9.0.1").await;

        // To another bank: one debit.
        let sent = pay(&mut c, &who, order(&a, 100_000)).await;
        assert_eq!(sent.status, OrderStatus::Accepted);
        assert_ledger_holds(&bank).await;
        // To an account of this bank: a debit and a credit, in one transaction.
        let internal = pay(&mut c, &who, to(&a, &b, 250_000)).await;
        assert_eq!(internal.status, OrderStatus::Accepted);
        assert_ledger_holds(&bank).await;
        // From another bank.
        bank.bank()
            .incoming_payments("clearing:test", &[incoming(&a, 5_000, "77")])
            .await
            .unwrap();
        assert_ledger_holds(&bank).await;
        // Rejected: no movement, nothing changes.
        let rejected = pay(&mut c, &who, order(&a, 10_000_000)).await;
        assert_eq!(
            (rejected.status, rejected.reject_reason.as_deref()),
            (OrderStatus::Rejected, Some("insufficient funds"))
        );
        assert_ledger_holds(&bank).await;

        let today = today(&bank);
        let (p, movements) = statement(&mut c, &a, today, today, 2).await;
        assert_eq!(
            (p.opening, p.credits, p.debits, p.closing),
            (0, 1_005_000, 350_000, 655_000)
        );
        assert_eq!(p.opening + p.credits - p.debits, p.closing);
        let kinds: Vec<(MovementKind, Direction, u64)> = movements
            .iter()
            .map(|m| (m.kind, m.direction, m.amount))
            .collect();
        assert_eq!(
            kinds,
            [
                (MovementKind::Opening, Direction::Credit, 1_000_000),
                (MovementKind::Order, Direction::Debit, 100_000),
                (MovementKind::Internal, Direction::Debit, 250_000),
                (MovementKind::Incoming, Direction::Credit, 5_000),
            ]
        );
        assert_eq!(movements.last().unwrap().balance_after, 655_000);
        assert_eq!(movements[1].order_id, Some(sent.id));
        assert_eq!(movements[1].doc_number, sent.id.to_string());
        assert_eq!(movements[3].counterparty_name, "ТОВ Покупець");
        // The payee's side of the internal transfer names the payer's account.
        let (pb, mb) = statement(&mut c, &b, today, today, 100).await;
        assert_eq!(
            (pb.opening, pb.credits, pb.debits, pb.closing),
            (0, 250_000, 0, 250_000)
        );
        assert_eq!(
            (mb[0].kind, mb[0].counterparty_iban.as_str(), mb[0].order_id),
            (MovementKind::Internal, a.as_str(), Some(internal.id))
        );
        match c.call(Request::Overview {}).await.unwrap() {
            Reply::Overview(o) => {
                let balance =
                    |iban: &str| o.accounts.iter().find(|x| x.iban == iban).unwrap().balance;
                assert_eq!((balance(&a), balance(&b)), (655_000, 250_000));
            }
            other => panic!("{other:?}"),
        }
    }
);

on_both!(
    statements_for_a_period_add_up_page_by_page,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let a = bank.account(1, 10_000).await;
        let who = bank.enrolled_user("period.user", &[(&a, ALL)]).await;
        let day = today;
        let first = day(&bank);
        // Five days, each with two payments in and one out.
        for n in 0..5u64 {
            bank.bank()
                .incoming_payments(
                    "clearing:test",
                    &[
                        incoming(&a, 1_000 + n, &format!("{n}a")),
                        incoming(&a, 2_000, &format!("{n}b")),
                    ],
                )
                .await
                .unwrap();
            let mut c = bank.key_login(&who, "10.9.0.2").await;
            pay(&mut c, &who, order(&a, 500)).await;
            advance(&bank, Duration::from_secs(86_400));
        }
        let mut c = bank.key_login(&who, "10.9.0.2").await;
        let (d1, d3) = (first.next(), first.next().next().next());
        let (p, movements) = statement(&mut c, &a, d1, d3, 2).await;
        // Days 1 to 3: the opening is the balance after day 0.
        assert_eq!(p.opening, 10_000 + 1_000 + 2_000 - 500);
        assert_eq!(
            p.credits,
            (1_001 + 2_000) + (1_002 + 2_000) + (1_003 + 2_000)
        );
        assert_eq!(p.debits, 1_500);
        assert_eq!(p.opening + p.credits - p.debits, p.closing);
        assert_eq!(
            movements.len(),
            9,
            "three a day, each once, across pages of two"
        );
        let ids: Vec<u64> = movements.iter().map(|m| m.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted, "oldest first, no repeats");
        assert!(movements.iter().all(|m| (d1..=d3).contains(&m.value_date)));
        assert_eq!(movements.last().unwrap().balance_after, p.closing);
        // The whole history: from the opening to today.
        let (all, _) = statement(&mut c, &a, first, day(&bank), 1000).await;
        assert_eq!(
            (all.opening, all.closing),
            (0, 10_000 + 5 * 3_000 + 10 - 5 * 500)
        );
        // A period with nothing in it still has its balances.
        let later = day(&bank).next().next();
        let (empty, none) = statement(&mut c, &a, later, later, 10).await;
        assert!(none.is_empty());
        assert_eq!(
            (empty.opening, empty.closing, empty.debits, empty.credits),
            (all.closing, all.closing, 0, 0)
        );
        // Bad requests are refused and say why.
        for (from, to_, cursor, limit) in [
            (d3, d1, None, None),
            (d1, d3, None, Some(0)),
            (d1, d3, None, Some(1001)),
            (d1, d3, Some("not-a-cursor".to_owned()), None),
        ] {
            assert_eq!(
                code(
                    &c.call(Request::Statement {
                        account: a.clone(),
                        from,
                        to: to_,
                        cursor,
                        limit
                    })
                    .await
                ),
                ErrorCode::Invalid
            );
        }
    }
);

on_both!(statements_need_the_view_right, |db: Db| async move {
    let bank = TestBank::new(db).await;
    let a = bank.account(1, 10_000).await;
    let b = bank.account(2, 10_000).await;
    let who = bank
        .enrolled_user("viewer.user", &[(&a, rights(true, false, false, false))])
        .await;
    let mut c = bank.key_login(&who, "10.9.0.3").await;
    let today = today(&bank);
    let ask = |account: &str| Request::Statement {
        account: account.to_owned(),
        from: today,
        to: today,
        cursor: None,
        limit: None,
    };
    assert!(c.call(ask(&a)).await.is_ok());
    // Another company's account, and one that does not exist, answer the same.
    assert_eq!(code(&c.call(ask(&b)).await), ErrorCode::Forbidden);
    assert_eq!(
        code(&c.call(ask("UA213223130000026007233566001")).await),
        ErrorCode::Forbidden
    );
    // Not before logging in.
    let mut anon = bank.anonymous("10.9.0.4").await;
    assert_eq!(code(&anon.call(ask(&a)).await), ErrorCode::NotAllowed);
});

on_both!(
    ledger_verify_catches_what_the_database_alone_changes,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let a = bank.account(1, 100_000).await;
        let b = bank.account(2, 100_000).await;
        let who = bank.enrolled_user("tamper.user", &[(&a, ALL)]).await;
        let mut c = bank.key_login(&who, "10.9.0.5").await;
        pay(&mut c, &who, order(&a, 1_000)).await;
        pay(&mut c, &who, order(&a, 2_000)).await;
        assert_ledger_holds(&bank).await;
        let pool = bank.store().pool();

        // A balance raised in the database: found, and never spent.
        sqlx::query("UPDATE accounts SET balance = balance + 1000000 WHERE iban = $1")
            .bind(&a)
            .execute(pool)
            .await
            .unwrap();
        let check = bank.bank().verify_ledger().await.unwrap();
        let (iban, problem) = check.problem.expect("found");
        assert_eq!(iban, a);
        assert!(problem.contains("movements add up to"), "{problem}");
        let spend = order(&a, 50_000);
        let v = view(
            &c.call(Request::PrepareOrder {
                order: spend.clone(),
            })
            .await,
        );
        c.call(Request::SignOrder {
            id: v.id,
            version: 1,
            signature: payment::sign(&who.key, v.id, 1, &spend),
        })
        .await
        .unwrap();
        assert_eq!(
            code(&c.call(Request::SendOrder { id: v.id }).await),
            ErrorCode::Internal,
            "a balance its ledger does not back is not booked on"
        );
        assert_eq!(
            view(&c.call(Request::GetOrder { id: v.id }).await).status,
            OrderStatus::Signed,
            "the refused send changed nothing"
        );
        sqlx::query("UPDATE accounts SET balance = balance - 1000000 WHERE iban = $1")
            .bind(&a)
            .execute(pool)
            .await
            .unwrap();

        // A movement edited to match an edited balance: its MAC no longer holds.
        sqlx::query(
            "UPDATE movements SET amount = 1, balance_after = balance_after + 999, \
         debits_after = debits_after - 999 WHERE iban = $1 AND kind = 'order' AND amount = 1000",
        )
        .bind(&a)
        .execute(pool)
        .await
        .unwrap();
        let (iban, problem) = bank
            .bank()
            .verify_ledger()
            .await
            .unwrap()
            .problem
            .expect("found");
        assert_eq!(iban, a);
        assert!(problem.contains("MAC does not hold"), "{problem}");

        // A movement removed from the middle of another account's chain.
        bank.bank()
            .incoming_payments(
                "clearing:test",
                &[incoming(&b, 10, "1"), incoming(&b, 20, "2")],
            )
            .await
            .unwrap();
        sqlx::query("DELETE FROM movements WHERE iban = $1 AND doc_number = '1'")
            .bind(&b)
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("UPDATE accounts SET balance = balance - 10 WHERE iban = $1")
            .bind(&b)
            .execute(pool)
            .await
            .unwrap();
        // Both accounts now disagree; the check reports the first by IBAN, which is b's.
        assert!(b < a);
        let (iban, problem) = bank
            .bank()
            .verify_ledger()
            .await
            .unwrap()
            .problem
            .expect("found");
        assert_eq!(iban, b);
        assert!(problem.contains("MAC does not hold"), "{problem}");
    }
);

on_both!(
    incoming_payments_are_checked_and_all_or_nothing,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let a = bank.account(1, 0).await;
        let b = bank.account(2, 0).await;
        let bad = [
            IncomingPayment {
                payer_iban: b.clone(),
                ..incoming(&a, 100, "1")
            },
            IncomingPayment {
                currency: Some("EUR".into()),
                ..incoming(&a, 100, "1")
            },
            IncomingPayment {
                payer_tax_code: "12".into(),
                ..incoming(&a, 100, "1")
            },
            incoming(&a, 0, "1"),
            incoming(&a, 100, ""),
            incoming("UA213223130000026007233566001", 100, "1"),
        ];
        for p in bad {
            let e = bank
                .bank()
                .incoming_payments("clearing:test", &[incoming(&a, 7, "ok"), p.clone()])
                .await
                .expect_err("refused");
            assert!(
                e.to_string().starts_with("payment 2: ") || e.to_string().starts_with("no account"),
                "{p:?}: {e}"
            );
        }
        // Nothing of any refused batch was booked.
        let accounts = bank.bank().list_accounts().await.unwrap();
        assert!(accounts.iter().all(|x| x.balance == 0), "{accounts:?}");
        assert_eq!(bank.bank().verify_ledger().await.unwrap().movements, 0);
        bank.bank()
            .incoming_payments("clearing:test", &[incoming(&a, 7, "ok")])
            .await
            .unwrap();
        let records = bank.bank().audit_list(None, 1).await.unwrap();
        assert_eq!(
            (records[0].event.as_str(), records[0].actor.as_str()),
            ("payment_incoming", "clearing:test")
        );
    }
);

on_both!(
    transfers_racing_both_ways_keep_the_ledger,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let a = bank.account(1, 1_000_000).await;
        let b = bank.account(2, 1_000_000).await;
        let who = bank
            .enrolled_user("race.ledger", &[(&a, ALL), (&b, ALL)])
            .await;
        // Signed orders both ways, then sent all at once from sessions of their own.
        let mut c = bank.key_login(&who, "10.9.0.6").await;
        let mut ids = Vec::new();
        for n in 0..12u64 {
            let (from, into) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
            let o = to(from, into, 1_000 + n);
            let v = view(&c.call(Request::PrepareOrder { order: o.clone() }).await);
            c.call(Request::SignOrder {
                id: v.id,
                version: 1,
                signature: payment::sign(&who.key, v.id, 1, &o),
            })
            .await
            .unwrap();
            ids.push(v.id);
        }
        let mut tasks = JoinSet::new();
        for id in ids {
            let mut s = bank.key_login(&who, "10.9.0.7").await;
            tasks.spawn(async move { view(&s.call(Request::SendOrder { id }).await).status });
        }
        while let Some(status) = tasks.join_next().await {
            assert_eq!(status.unwrap(), OrderStatus::Accepted);
        }
        assert_ledger_holds(&bank).await;
        let total: u64 = bank
            .bank()
            .list_accounts()
            .await
            .unwrap()
            .iter()
            .map(|x| x.balance)
            .sum();
        assert_eq!(
            total, 2_000_000,
            "internal transfers move money, never make it"
        );
    }
);

on_both!(
    imports_are_all_or_nothing_and_flag_duplicates,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let a = bank.account(1, 0).await;
        let b = bank.account(2, 0).await;
        let who = bank.enrolled_user("import.user", &[(&a, ALL)]).await;
        let mut c = bank.key_login(&who, "10.9.0.8").await;
        let date = Day::parse("2026-11-30").unwrap();
        let item = |payer: &str, amount: u64, number: &str| ImportedOrder {
            order: order(payer, amount),
            number: number.to_owned(),
            date,
        };
        // One order on an account the user may not prepare on refuses the whole import.
        let bad = vec![item(&a, 100, "1"), item(&b, 200, "2"), item(&a, 300, "3")];
        let e = c
            .call(Request::ImportOrders { orders: bad })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
        assert!(e.message.starts_with("order 2: "), "{}", e.message);
        let mut zero = item(&a, 100, "1");
        zero.order.amount = 0;
        let e = c
            .call(Request::ImportOrders {
                orders: vec![item(&a, 100, "1"), zero],
            })
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.starts_with("order 2: ")),
            (ErrorCode::Invalid, true)
        );
        match c.call(Request::ListOrders { account: None }).await.unwrap() {
            Reply::Orders { orders } => assert!(orders.is_empty(), "nothing imported"),
            other => panic!("{other:?}"),
        }
        // A good file imports; the same file again, and a repeated line, are flagged.
        let good = vec![item(&a, 100, "1"), item(&a, 200, "2"), item(&a, 100, "1")];
        let outcomes = match c
            .call(Request::ImportOrders {
                orders: good.clone(),
            })
            .await
            .unwrap()
        {
            Reply::Imported { outcomes } => outcomes,
            other => panic!("{other:?}"),
        };
        let ImportOutcome::Prepared { id: first } = outcomes[0] else {
            panic!("{outcomes:?}")
        };
        assert!(matches!(outcomes[1], ImportOutcome::Prepared { .. }));
        assert_eq!(outcomes[2], ImportOutcome::Duplicate { existing: first });
        let again = match c
            .call(Request::ImportOrders { orders: good })
            .await
            .unwrap()
        {
            Reply::Imported { outcomes } => outcomes,
            other => panic!("{other:?}"),
        };
        assert!(
            again
                .iter()
                .all(|o| matches!(o, ImportOutcome::Duplicate { .. })),
            "{again:?}"
        );
        let imported = view(&c.call(Request::GetOrder { id: first }).await);
        assert_eq!(imported.status, OrderStatus::Draft);
        // Sent, it carries its document number to the statement.
        c.call(Request::SignOrder {
            id: first,
            version: 1,
            signature: payment::sign(&who.key, first, 1, &imported.order),
        })
        .await
        .unwrap();
        assert_eq!(
            view(&c.call(Request::SendOrder { id: first }).await).status,
            OrderStatus::Rejected,
            "no money on the account"
        );
        bank.bank()
            .incoming_payments("clearing:test", &[incoming(&a, 1_000, "9")])
            .await
            .unwrap();
        let second = match &outcomes[1] {
            ImportOutcome::Prepared { id } => *id,
            other => panic!("{other:?}"),
        };
        let o = view(&c.call(Request::GetOrder { id: second }).await);
        c.call(Request::SignOrder {
            id: second,
            version: 1,
            signature: payment::sign(&who.key, second, 1, &o.order),
        })
        .await
        .unwrap();
        assert_eq!(
            view(&c.call(Request::SendOrder { id: second }).await).status,
            OrderStatus::Accepted
        );
        let (_, movements) = statement(&mut c, &a, today(&bank), today(&bank), 100).await;
        assert_eq!(movements.last().unwrap().doc_number, "2");
    }
);
