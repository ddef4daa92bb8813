//! The rules of the bank's mail to its users: when a certificate's reminder is due, how long
//! a one-time code lives, which notices a user may turn off.

use tresor_core::api::profile::NoticeKind;

/// Days before a certificate's expiry on which its holder is reminded.
pub const REMINDER_DAYS: [u32; 5] = [30, 14, 7, 3, 1];

/// How long a mailed code may be used, in seconds.
pub const CODE_SECONDS: i64 = 15 * 60;

/// How soon another code may be asked for, in seconds: a mailbox is not to be flooded.
pub const RESEND_SECONDS: i64 = 60;

/// Digits in a mailed code.
pub const CODE_DIGITS: usize = 8;

/// The reminder due for a certificate valid until `not_after`, at `now`: the nearest of
/// [`REMINDER_DAYS`] at or above the days left (counted up, so that 29.5 days is "30"). A
/// bank that was down over a threshold sends only the one due now, not the missed ones.
pub fn reminder_due(not_after: i64, now: i64) -> Option<u32> {
    if not_after <= now {
        return None;
    }
    let left = u32::try_from((not_after - now + 86_399) / 86_400).ok()?;
    REMINDER_DAYS.into_iter().rev().find(|&d| d >= left)
}

/// Whether a code made at `created_at` still blocks a new one at `now`.
pub fn too_soon_for_another_code(created_at: i64, now: i64) -> bool {
    now.saturating_sub(created_at) < RESEND_SECONDS
}

/// The notice kinds a user turned off, as stored; unknown names (from a newer bank) are
/// skipped.
pub fn parse_quiet(stored: &str) -> Vec<NoticeKind> {
    let mut kinds: Vec<NoticeKind> = stored.split(',').filter_map(NoticeKind::parse).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// The notice kinds to store as turned off; the first security kind asked for is refused.
pub fn quiet_to_store(kinds: &[NoticeKind]) -> Result<String, NoticeKind> {
    if let Some(k) = kinds.iter().find(|k| k.is_security()) {
        return Err(*k);
    }
    let mut kinds = kinds.to_vec();
    kinds.sort_unstable();
    kinds.dedup();
    Ok(kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(","))
}

/// Whether a notice of `kind` (none: a code the user asked for) goes to a user who turned
/// off `quiet`. Security notices always go.
pub fn wanted(kind: Option<NoticeKind>, quiet: &[NoticeKind]) -> bool {
    match kind {
        None => true,
        Some(k) => k.is_security() || !quiet.contains(&k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn reminders_fall_due_on_their_days_and_only_then() {
        let now = 1_000_000_000;
        let cases = [
            (now + 60 * DAY, None),
            (now + 31 * DAY, None),
            (now + 30 * DAY, Some(30)),
            (now + 29 * DAY + DAY / 2, Some(30)),
            (now + 15 * DAY, Some(30)),
            (now + 14 * DAY, Some(14)),
            (now + 8 * DAY, Some(14)),
            (now + 7 * DAY, Some(7)),
            (now + 4 * DAY, Some(7)),
            (now + 3 * DAY, Some(3)),
            (now + 2 * DAY, Some(3)),
            (now + DAY, Some(1)),
            (now + 1, Some(1)),
            (now, None),
            (now - DAY, None),
        ];
        for (not_after, want) in cases {
            assert_eq!(reminder_due(not_after, now), want, "{}", not_after - now);
        }
    }

    #[test]
    fn codes_wait_a_minute_between_them() {
        let cases = [(0, 0, true), (0, 59, true), (0, 60, false), (100, 10, true)];
        for (made, now, want) in cases {
            assert_eq!(too_soon_for_another_code(made, now), want, "{made} {now}");
        }
    }

    #[test]
    fn only_ordinary_notices_can_be_turned_off() {
        use NoticeKind::*;
        let cases: [(&[NoticeKind], Result<&str, NoticeKind>); 5] = [
            (&[], Ok("")),
            (
                &[IncomingPayment, OrderRejected, IncomingPayment],
                Ok("order_rejected,incoming_payment"),
            ),
            (&[CertificateExpiry], Ok("certificate_expiry")),
            (&[OrderRejected, Lockout], Err(Lockout)),
            (&[NewAddress], Err(NewAddress)),
        ];
        for (kinds, want) in cases {
            assert_eq!(
                quiet_to_store(kinds).as_deref().map_err(|k| *k),
                want,
                "{kinds:?}"
            );
        }
        assert_eq!(
            parse_quiet("incoming_payment,someday_kind,order_rejected"),
            [OrderRejected, IncomingPayment]
        );
        assert_eq!(parse_quiet(""), []);
        let quiet = [OrderRejected];
        let cases = [
            (None, true),
            (Some(OrderRejected), false),
            (Some(IncomingPayment), true),
            (Some(Lockout), true),
        ];
        for (kind, want) in cases {
            assert_eq!(wanted(kind, &quiet), want, "{kind:?}");
        }
        // A planted security kind in the stored list silences nothing.
        assert!(wanted(Some(NewAddress), &parse_quiet("new_address")));
    }
}
