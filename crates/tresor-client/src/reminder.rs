//! When to remind the user to renew the key: from 30 days before the certificate expires,
//! more insistently as the date nears (30, 14, 7, 3 and 1 days). Pure: the caller passes the
//! time, so that tests and the app's timer agree.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// Days before expiry at which the reminder steps up.
pub const THRESHOLDS_DAYS: [u64; 5] = [30, 14, 7, 3, 1];

const DAY: u64 = 24 * 3600;

/// A renewal reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Reminder {
    /// Whole days left, rounded up (0 once expired).
    pub days_left: u64,
    /// The threshold reached: 30, 14, 7, 3 or 1. The app shows the reminder again each time
    /// this changes, and at every login.
    pub threshold: u64,
    /// The certificate has expired: renewal is no longer possible, only recovery.
    pub expired: bool,
}

impl Reminder {
    /// What to tell the user.
    pub fn message(&self) -> String {
        match (self.expired, self.days_left) {
            (true, _) => "the certificate has expired: renewal is no longer possible; \
                          ask the bank for an emergency password and recover the key"
                .to_string(),
            (false, 1) => "the certificate expires within a day: renew the key now".to_string(),
            (false, d) => format!("the certificate expires in {d} days: renew the key"),
        }
    }
}

/// The reminder due at `now` for a certificate that expires at `not_after`, if any.
pub fn renewal_reminder(not_after: SystemTime, now: SystemTime) -> Option<Reminder> {
    let left = match not_after.duration_since(now) {
        Ok(left) if left > Duration::ZERO => left,
        _ => {
            return Some(Reminder {
                days_left: 0,
                threshold: 1,
                expired: true,
            });
        }
    };
    let days_left = left.as_secs().div_ceil(DAY).max(1);
    let threshold = THRESHOLDS_DAYS
        .iter()
        .rev()
        .copied()
        .find(|&t| days_left <= t)?;
    Some(Reminder {
        days_left,
        threshold,
        expired: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(days_before: f64) -> Option<Reminder> {
        let not_after = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 * DAY);
        let offset = Duration::from_secs_f64(days_before.abs() * DAY as f64);
        let now = if days_before >= 0.0 {
            not_after - offset
        } else {
            not_after + offset
        };
        renewal_reminder(not_after, now)
    }

    #[test]
    fn reminds_from_thirty_days_stepping_up_at_each_threshold() {
        assert_eq!(at(45.0), None);
        assert_eq!(at(30.5), None);
        let steps: Vec<(f64, u64, u64)> = vec![
            (30.0, 30, 30),
            (29.2, 30, 30),
            (15.0, 15, 30),
            (14.0, 14, 14),
            (8.0, 8, 14),
            (7.0, 7, 7),
            (3.5, 4, 7),
            (3.0, 3, 3),
            (1.5, 2, 3),
            (1.0, 1, 1),
            (0.01, 1, 1),
        ];
        for (days, left, threshold) in steps {
            let r = at(days).expect("a reminder");
            assert_eq!(
                (r.days_left, r.threshold, r.expired),
                (left, threshold, false),
                "{days}"
            );
        }
        let expired = at(-2.0).expect("a reminder");
        assert!(expired.expired);
        assert!(expired.message().contains("recover"));
        assert!(at(0.0).expect("a reminder").expired);
    }
}
