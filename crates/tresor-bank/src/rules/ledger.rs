//! The ledger's arithmetic: what a movement does to an account's balance and totals, and
//! whether a stored movement follows the one before it.

use tresor_core::api::ledger::Direction;

/// An account's balance and its debit and credit totals since it was opened, after a
/// movement: balance = credits − debits, always.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// The balance.
    pub balance: i64,
    /// Every debit so far.
    pub debits: i64,
    /// Every credit so far.
    pub credits: i64,
}

/// Why a movement cannot be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingRefusal {
    /// The balance does not cover a debit.
    InsufficientFunds,
    /// Not a positive amount, or a total would leave the range the database stores.
    OutOfRange,
}

/// The totals after a movement of `amount` in `direction`.
pub fn book(before: Totals, direction: Direction, amount: i64) -> Result<Totals, BookingRefusal> {
    if amount <= 0 {
        return Err(BookingRefusal::OutOfRange);
    }
    match direction {
        Direction::Debit => {
            if before.balance < amount {
                return Err(BookingRefusal::InsufficientFunds);
            }
            Ok(Totals {
                balance: before.balance - amount,
                debits: before
                    .debits
                    .checked_add(amount)
                    .ok_or(BookingRefusal::OutOfRange)?,
                credits: before.credits,
            })
        }
        Direction::Credit => Ok(Totals {
            balance: before
                .balance
                .checked_add(amount)
                .ok_or(BookingRefusal::OutOfRange)?,
            debits: before.debits,
            credits: before
                .credits
                .checked_add(amount)
                .ok_or(BookingRefusal::OutOfRange)?,
        }),
    }
}

/// Whether a stored movement's totals are what booking it after `before` gives.
pub fn follows(before: Totals, direction: Direction, amount: i64, stored: Totals) -> bool {
    book(before, direction, amount) == Ok(stored)
}

/// A statement's turnovers for a period: what changed between the totals before its first
/// day and the totals at the end of its last day.
pub fn turnovers(opening: Totals, closing: Totals) -> Option<(i64, i64)> {
    let debits = closing.debits.checked_sub(opening.debits)?;
    let credits = closing.credits.checked_sub(opening.credits)?;
    (debits >= 0
        && credits >= 0
        && opening.balance.checked_add(credits)?.checked_sub(debits)? == closing.balance)
        .then_some((debits, credits))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn t(balance: i64, debits: i64, credits: i64) -> Totals {
        Totals {
            balance,
            debits,
            credits,
        }
    }

    #[test]
    fn booking() {
        use BookingRefusal::*;
        use Direction::*;
        let cases = [
            (t(0, 0, 0), Credit, 100, Ok(t(100, 0, 100))),
            (t(100, 0, 100), Debit, 40, Ok(t(60, 40, 100))),
            (t(100, 0, 100), Debit, 100, Ok(t(0, 100, 100))),
            (t(100, 0, 100), Debit, 101, Err(InsufficientFunds)),
            (t(0, 0, 0), Debit, 1, Err(InsufficientFunds)),
            (t(5, 0, 5), Credit, 0, Err(OutOfRange)),
            (t(5, 0, 5), Debit, -1, Err(OutOfRange)),
            (t(i64::MAX, 0, i64::MAX), Credit, 1, Err(OutOfRange)),
        ];
        for (before, direction, amount, want) in cases {
            assert_eq!(
                book(before, direction, amount),
                want,
                "{before:?} {direction:?} {amount}"
            );
        }
    }

    #[test]
    fn a_stored_movement_follows_only_with_its_own_totals() {
        let before = t(100, 0, 100);
        assert!(follows(before, Direction::Debit, 30, t(70, 30, 100)));
        for wrong in [
            t(71, 30, 100),
            t(70, 29, 100),
            t(70, 30, 101),
            t(130, 0, 130),
        ] {
            assert!(!follows(before, Direction::Debit, 30, wrong), "{wrong:?}");
        }
    }

    #[test]
    fn turnovers_of_a_period() {
        let cases = [
            (t(0, 0, 0), t(0, 0, 0), Some((0, 0))),
            (t(100, 0, 100), t(70, 50, 120), Some((50, 20))),
            // Totals that went back, or a closing balance that the turnovers do not give.
            (t(100, 50, 150), t(100, 40, 140), None),
            (t(100, 0, 100), t(90, 50, 120), None),
        ];
        for (opening, closing, want) in cases {
            assert_eq!(turnovers(opening, closing), want, "{opening:?} {closing:?}");
        }
    }
}
