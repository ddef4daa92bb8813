//! Finding 5 of the security review (docs/THREAT_MODEL.md, attacker 4): timing must not tell
//! a right password from a wrong one on the recovery path. A binary of its own, so that no
//! other test's Argon2 work shares the CPUs with the two series it compares.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::time::{Duration, Instant};

use support::{Db, TestBank, code};
use tresor_bank::config::Policy;
use tresor_core::api::ErrorCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_logins_take_as_long_with_a_right_or_a_wrong_password() {
    let policy = Policy {
        ip_max_points: 10_000,
        anonymous_guesses: 10_000,
        ..Policy::default()
    };
    let bank = TestBank::with_policy(Db::Sqlite, policy).await;
    let holder = bank.enrolled_user("timing.target", &[]).await;
    bank.bank()
        .emergency_password("admin:test", "timing.target")
        .await
        .unwrap();
    let mut right = Vec::new();
    let mut wrong = Vec::new();
    // Interleaved, so that anything else the machine does falls on both alike.
    for i in 0..15 {
        for (password, times) in [
            (holder.password.as_str(), &mut right),
            ("not the password", &mut wrong),
        ] {
            let mut c = bank.anonymous(&format!("10.9.{i}.1")).await;
            let started = Instant::now();
            let r = c
                .login("timing.target", password, None, Some("wrong-emergency"))
                .await;
            times.push(started.elapsed());
            assert_eq!(code(&r), ErrorCode::LoginFailed);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let (r, w) = (median(&mut right), median(&mut wrong));
    assert!(
        (r - w).abs() <= 0.15 * r.max(w),
        "median with the right password {r:.3} s, with a wrong one {w:.3} s"
    );
}
