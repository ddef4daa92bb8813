//! The signature queue, batch signing and deleting drafts, on SQLite and PostgreSQL: the queue
//! holds what each user may still sign; a batch takes each signature as one-by-one signing
//! would, each alone; a batch racing edits never leaves a signature on a version that is not
//! the order's.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use support::*;
use tokio::task::JoinSet;
use tresor_core::api::{
    ErrorCode, OrderSignature, OrderStatus, OrderView, QUEUE_PAGE, Reply, Request, SignResult,
};
use tresor_core::payment::{self, PaymentOrder};

fn view(r: &tresor_core::api::Response) -> OrderView {
    match r {
        Ok(Reply::Order(v)) => v.clone(),
        other => panic!("{other:?}"),
    }
}

async fn queue(c: &mut Client) -> Vec<u64> {
    match c
        .call(Request::SignatureQueue { after: None })
        .await
        .unwrap()
    {
        Reply::Orders { orders } => orders.iter().map(|o| o.id).collect(),
        other => panic!("{other:?}"),
    }
}

async fn prepare(c: &mut Client, o: &PaymentOrder) -> u64 {
    view(&c.call(Request::PrepareOrder { order: o.clone() }).await).id
}

fn signature(who: &Holder, id: u64, version: u32, o: &PaymentOrder) -> OrderSignature {
    OrderSignature {
        id,
        version,
        signature: payment::sign(&who.key, id, version, o),
    }
}

async fn sign_batch(c: &mut Client, signatures: Vec<OrderSignature>) -> Vec<SignResult> {
    match c.call(Request::SignOrders { signatures }).await.unwrap() {
        Reply::Signed { results } => results,
        other => panic!("{other:?}"),
    }
}

on_both!(
    the_queue_holds_what_each_user_may_still_sign,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let single = bank.account(1, 1_000_000).await;
        let double = bank.account(2, 1_000_000).await;
        bank.bank()
            .set_signatures_required("admin:test", &double, 2)
            .await
            .unwrap();
        let a = bank
            .enrolled_user("queue.a", &[(&single, ALL), (&double, ALL)])
            .await;
        let b = bank.enrolled_user("queue.b", &[(&double, ALL)]).await;
        let c = bank
            .enrolled_user("queue.c", &[(&single, rights(true, true, false, false))])
            .await;
        let mut sa = bank.key_login(&a, "10.8.0.1").await;
        let mut sb = bank.key_login(&b, "10.8.0.2").await;
        let mut sc = bank.key_login(&c, "10.8.0.3").await;
        let (o1, o2) = (order(&single, 100), order(&double, 200));
        let id1 = prepare(&mut sa, &o1).await;
        let id2 = prepare(&mut sa, &o2).await;
        assert_eq!(queue(&mut sa).await, [id1, id2]);
        assert_eq!(queue(&mut sb).await, [id2]);
        assert!(queue(&mut sc).await.is_empty(), "no sign right, no queue");
        // A's signature takes o2 out of A's queue only: it still needs B's.
        let results = sign_batch(&mut sa, vec![signature(&a, id2, 1, &o2)]).await;
        assert_eq!(results[0].status, Some(OrderStatus::PartlySigned));
        assert_eq!(queue(&mut sa).await, [id1]);
        assert_eq!(queue(&mut sb).await, [id2]);
        sign_batch(&mut sb, vec![signature(&b, id2, 1, &o2)]).await;
        assert!(queue(&mut sb).await.is_empty());
        // Sent orders leave every queue; so does a deleted draft.
        sa.call(Request::SendOrder { id: id2 }).await.unwrap();
        sa.call(Request::DeleteOrder {
            id: id1,
            version: 1,
        })
        .await
        .unwrap();
        assert!(queue(&mut sa).await.is_empty());
    }
);

on_both!(
    a_batch_takes_each_signature_as_one_by_one_would,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(1, 1_000_000).await;
        let other = bank.account(2, 1_000_000).await;
        let who = bank.enrolled_user("batch.user", &[(&iban, ALL)]).await;
        let outsider = bank.enrolled_user("batch.other", &[(&other, ALL)]).await;
        let mut s = bank.key_login(&who, "10.8.0.4").await;
        let mut so = bank.key_login(&outsider, "10.8.0.5").await;
        let orders: Vec<PaymentOrder> = (0..4).map(|n| order(&iban, 1_000 + n)).collect();
        let mut ids = Vec::new();
        for o in &orders {
            ids.push(prepare(&mut s, o).await);
        }
        let foreign = order(&other, 5);
        let foreign_id = prepare(&mut so, &foreign).await;
        let results = sign_batch(
            &mut s,
            vec![
                signature(&who, ids[0], 1, &orders[0]),
                // Over another order's content.
                signature(&who, ids[1], 1, &orders[2]),
                // Over a version that is not the order's.
                signature(&who, ids[2], 2, &orders[2]),
                // On an account without the sign right.
                signature(&who, foreign_id, 1, &foreign),
                signature(&who, ids[3], 1, &orders[3]),
            ],
        )
        .await;
        let got: Vec<(u64, Option<OrderStatus>, Option<ErrorCode>)> = results
            .iter()
            .map(|r| (r.id, r.status, r.error.as_ref().map(|e| e.code)))
            .collect();
        assert_eq!(
            got,
            [
                (ids[0], Some(OrderStatus::Signed), None),
                (ids[1], None, Some(ErrorCode::Invalid)),
                (ids[2], None, Some(ErrorCode::Conflict)),
                (foreign_id, None, Some(ErrorCode::Forbidden)),
                (ids[3], Some(OrderStatus::Signed), None),
            ]
        );
        // Each signature was audited as a one-by-one signature is.
        let signed = bank
            .bank()
            .audit_list(None, 1000)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.event == "order_sign" && r.outcome == "ok")
            .count();
        assert_eq!(signed, 2);
        // An empty batch, or one over the limit, is refused whole.
        let e = s
            .call(Request::SignOrders { signatures: vec![] })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        // Not on a session without the key: every signature refused.
        let mut anon = bank.anonymous("10.8.0.6").await;
        assert_eq!(
            code(
                &anon
                    .call(Request::SignOrders {
                        signatures: vec![signature(&who, ids[1], 1, &orders[1])]
                    })
                    .await
            ),
            ErrorCode::NotAllowed
        );
    }
);

on_both!(
    only_unsent_orders_are_deleted_at_the_version_seen,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(1, 1_000_000).await;
        let who = bank.enrolled_user("delete.user", &[(&iban, ALL)]).await;
        let viewer = bank
            .enrolled_user(
                "delete.viewer",
                &[(&iban, rights(true, false, false, false))],
            )
            .await;
        let mut s = bank.key_login(&who, "10.8.0.7").await;
        let mut sv = bank.key_login(&viewer, "10.8.0.8").await;
        let o = order(&iban, 700);
        let id = prepare(&mut s, &o).await;
        let edited = order(&iban, 800);
        s.call(Request::EditOrder {
            id,
            version: 1,
            order: edited.clone(),
        })
        .await
        .unwrap();
        let del = |version| Request::DeleteOrder { id, version };
        assert_eq!(
            code(&s.call(del(1)).await),
            ErrorCode::Conflict,
            "edited since"
        );
        assert_eq!(
            code(&sv.call(del(2)).await),
            ErrorCode::Forbidden,
            "no prepare right"
        );
        // A signed draft can still be deleted; the signature goes with it.
        sign_batch(&mut s, vec![signature(&who, id, 2, &edited)]).await;
        assert_eq!(s.call(del(2)).await.unwrap(), Reply::Done);
        assert_eq!(
            code(&s.call(Request::GetOrder { id }).await),
            ErrorCode::NotFound
        );
        // A sent order stays.
        let sent = prepare(&mut s, &o).await;
        sign_batch(&mut s, vec![signature(&who, sent, 1, &o)]).await;
        s.call(Request::SendOrder { id: sent }).await.unwrap();
        assert_eq!(
            code(
                &s.call(Request::DeleteOrder {
                    id: sent,
                    version: 1
                })
                .await
            ),
            ErrorCode::NotAllowed
        );
        let deleted = bank
            .bank()
            .audit_list(None, 100)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.event == "order_delete")
            .count();
        assert_eq!(deleted, 1);
    }
);

on_both!(
    a_batch_racing_edits_never_signs_a_version_that_is_gone,
    |db: Db| async move {
        let bank = TestBank::new(db).await;
        let iban = bank.account(1, 1_000_000).await;
        let who = bank.enrolled_user("race.batch", &[(&iban, ALL)]).await;
        let mut s = bank.key_login(&who, "10.8.0.9").await;
        let orders: Vec<PaymentOrder> = (0..20).map(|n| order(&iban, 10 + n)).collect();
        let mut ids = Vec::new();
        for o in &orders {
            ids.push(prepare(&mut s, o).await);
        }
        let batch: Vec<OrderSignature> = ids
            .iter()
            .zip(&orders)
            .map(|(id, o)| signature(&who, *id, 1, o))
            .collect();
        let mut tasks = JoinSet::new();
        let mut signer = bank.key_login(&who, "10.8.0.10").await;
        tasks.spawn(async move {
            sign_batch(&mut signer, batch).await;
        });
        for (n, id) in ids.iter().enumerate() {
            if n % 2 == 0 {
                let mut editor = bank.key_login(&who, "10.8.0.11").await;
                let (id, edited) = (*id, order(&iban, 5_000 + n as u64));
                tasks.spawn(async move {
                    let _ = editor
                        .call(Request::EditOrder {
                            id,
                            version: 1,
                            order: edited,
                        })
                        .await;
                });
            }
        }
        while let Some(t) = tasks.join_next().await {
            t.unwrap();
        }
        for id in ids {
            let o = view(&s.call(Request::GetOrder { id }).await);
            match o.version {
                1 => assert_eq!(o.status, OrderStatus::Signed, "#{id}: unedited, signed"),
                2 => assert_eq!(
                    (o.status, o.signatures.len()),
                    (OrderStatus::Draft, 0),
                    "#{id}: edited, so unsigned"
                ),
                v => panic!("#{id}: version {v}"),
            }
        }
    }
);

on_both!(the_queue_comes_in_pages, |db: Db| async move {
    let bank = TestBank::new(db).await;
    let iban = bank.account(1, 0).await;
    let who = bank.enrolled_user("queue.pages", &[(&iban, ALL)]).await;
    let mut s = bank.key_login(&who, "10.8.0.12").await;
    let date = tresor_core::date::Day::parse("2026-11-30").unwrap();
    let orders = (0..QUEUE_PAGE as u64 + 100)
        .map(|n| tresor_core::api::ledger::ImportedOrder {
            order: order(&iban, 1 + n),
            number: n.to_string(),
            date,
        })
        .collect();
    s.call(Request::ImportOrders { orders }).await.unwrap();
    let page = |after| Request::SignatureQueue { after };
    let first = match s.call(page(None)).await.unwrap() {
        Reply::Orders { orders } => orders,
        other => panic!("{other:?}"),
    };
    assert_eq!(first.len(), QUEUE_PAGE);
    let second = match s.call(page(Some(first.last().unwrap().id))).await.unwrap() {
        Reply::Orders { orders } => orders,
        other => panic!("{other:?}"),
    };
    assert_eq!(second.len(), 100);
    assert!(second[0].id > first.last().unwrap().id);
});
