//! The mass-removal guard (`sync-semantics.md` §5). Nothing is sent when a plan would remove
//! more members than the thresholds allow, when a complete read suddenly yields no active users,
//! or, when the sync can remove people, when the directory shrank past the same thresholds.

use crate::api::GuardSpec;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardInput {
    /// Removals the request causes (exact with a member listing, else an upper bound).
    pub removals: u64,
    /// Removals that wait for `removalGracePeriod`: counted too, so the pending list stays
    /// as small as the limits.
    pub pending: u64,
    /// The organization's current member count, when it could be listed.
    pub current_members: Option<u64>,
    /// Members that carry an external id (synced by a connector), when listed.
    pub external_members: Option<u64>,
    /// Active users in this sync's request.
    pub active_users: u64,
    /// Active users of the last successful sync.
    pub last_active_users: Option<u64>,
    /// `overwriteExisting` or `removeOutOfScope` is on.
    pub can_remove: bool,
    /// The read was complete (not incremental).
    pub complete: bool,
}

/// `Some(why)` when the guard trips.
pub fn check(guard: &GuardSpec, input: &GuardInput) -> Option<String> {
    let over = |count: u64, of: Option<u64>| -> bool {
        count > u64::from(guard.max_removals)
            && match of {
                Some(total) => count * 100 > u64::from(guard.max_removal_percent) * total,
                // Without a size to compare with, the count alone decides.
                None => true,
            }
    };
    let percent = |count: u64, of: u64| (count * 100).checked_div(of).unwrap_or(100);

    if input.complete && input.active_users == 0 {
        let had = input
            .last_active_users
            .unwrap_or(0)
            .max(input.external_members.unwrap_or(0));
        if had > 0 || input.can_remove {
            return Some(format!(
                "the directory returned no active users (the last sync had {}, the organization has {} synced members)",
                input.last_active_users.unwrap_or(0),
                input
                    .external_members
                    .map_or("an unknown number of".to_string(), |n| n.to_string())
            ));
        }
    }
    let base = input.current_members.or(input.last_active_users);
    let removals = input.removals + input.pending;
    if over(removals, base) {
        let of = match base {
            Some(total) => format!(" ({}% of {total})", percent(removals, total)),
            None => String::new(),
        };
        let pending = match input.pending {
            0 => String::new(),
            n => format!(", {n} of them pending (removalGracePeriod)"),
        };
        return Some(format!(
            "the sync would remove {removals} members{of}{pending}, more than guard.maxRemovals ({}) and \
             guard.maxRemovalPercent ({}%)",
            guard.max_removals, guard.max_removal_percent
        ));
    }
    if input.can_remove
        && input.complete
        && let Some(last) = input.last_active_users
        && last > input.active_users
    {
        let drop = last - input.active_users;
        if over(drop, Some(last)) {
            return Some(format!(
                "the directory yields {drop} fewer active users than the last successful sync ({} now, {last} then, {}%), \
                 more than guard.maxRemovals ({}) and guard.maxRemovalPercent ({}%)",
                input.active_users,
                percent(drop, last),
                guard.max_removals,
                guard.max_removal_percent
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> GuardSpec {
        GuardSpec {
            max_removals: 10,
            max_removal_percent: 5,
        }
    }

    fn input() -> GuardInput {
        GuardInput {
            removals: 0,
            pending: 0,
            current_members: Some(1000),
            external_members: Some(900),
            active_users: 900,
            last_active_users: Some(900),
            can_remove: false,
            complete: true,
        }
    }

    #[test]
    fn removals_trip_only_past_both_thresholds() {
        let cases = [
            // (removals, members, trips)
            (10, Some(1000), false), // not more than 10
            (11, Some(1000), false), // 1.1% is not more than 5%
            (51, Some(1000), true),  // 51 > 10 and 5.1% > 5%
            (50, Some(1000), false), // exactly 5% is not more
            (11, Some(100), true),
            (11, None, true),  // no size known: the count decides
            (10, None, false), // ...and exactly maxRemovals is not more
            (11, Some(0), true),
        ];
        for (removals, members, trips) in cases {
            let i = GuardInput {
                removals,
                current_members: members,
                last_active_users: None,
                ..input()
            };
            assert_eq!(check(&guard(), &i).is_some(), trips, "{removals} of {members:?}");
        }
    }

    /// Pending removals (removalGracePeriod) count with the removals of this sync: 40 now and 20
    /// waiting is 60 of 1000, over 5%, though neither alone is.
    #[test]
    fn pending_removals_count_towards_the_limit() {
        let i = GuardInput {
            removals: 40,
            pending: 20,
            ..input()
        };
        let why = check(&guard(), &i).expect("40 + 20 pending of 1000 trips");
        assert!(why.contains("remove 60 members"), "{why}");
        assert!(why.contains("20 of them pending"), "{why}");
        for (removals, pending) in [(40, 0), (20, 20)] {
            let i = GuardInput {
                removals,
                pending,
                ..input()
            };
            assert_eq!(check(&guard(), &i), None, "{removals} + {pending} pending");
        }
    }

    #[test]
    fn the_last_sync_size_is_the_base_without_a_member_listing() {
        let i = GuardInput {
            removals: 20,
            current_members: None,
            last_active_users: Some(1000),
            ..input()
        };
        assert_eq!(check(&guard(), &i), None);
        let i = GuardInput {
            removals: 60,
            current_members: None,
            last_active_users: Some(1000),
            ..input()
        };
        assert!(check(&guard(), &i).unwrap().contains("60 members (6% of 1000)"));
    }

    #[test]
    fn an_empty_directory_always_trips_when_there_was_something() {
        let i = GuardInput {
            active_users: 0,
            ..input()
        };
        assert!(check(&guard(), &i).unwrap().contains("no active users"));
        // First sync into an empty organization, nothing can be removed: fine.
        let i = GuardInput {
            active_users: 0,
            external_members: Some(0),
            last_active_users: None,
            current_members: Some(1),
            ..input()
        };
        assert_eq!(check(&guard(), &i), None);
        // ...but when the sync can remove people, an empty directory always trips.
        let i = GuardInput { can_remove: true, ..i };
        assert!(check(&guard(), &i).is_some());
        // An incremental read that found no changes is not an empty directory.
        let i = GuardInput {
            active_users: 0,
            complete: false,
            ..input()
        };
        assert_eq!(check(&guard(), &i), None);
    }

    #[test]
    fn a_shrinking_directory_trips_only_when_the_sync_can_remove() {
        let shrunk = GuardInput {
            active_users: 800,
            ..input()
        };
        assert_eq!(check(&guard(), &shrunk), None);
        let i = GuardInput {
            can_remove: true,
            ..shrunk
        };
        assert!(check(&guard(), &i).unwrap().contains("100 fewer active users"));
        let small = GuardInput {
            can_remove: true,
            active_users: 880,
            ..input()
        };
        assert_eq!(check(&guard(), &small), None, "20 of 900 is 2.2%");
        let partial = GuardInput { complete: false, ..i };
        assert_eq!(check(&guard(), &partial), None);
    }
}
