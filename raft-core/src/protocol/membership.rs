//! A leader's membership decisions, one server at a time: whether a change
//! may start now, wait, or must be refused, and how it goes — a new voter
//! joins as a non-voter first and is promoted once it has caught up, so
//! adding a fresh node never stalls commits.

use super::core::Configurations;
use crate::error::RaftError;
use crate::{Configuration, ConfigurationChange};

/// What the leader is doing besides, when a change is asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Busy {
    /// A leadership transfer is under way.
    pub(crate) transfer: bool,
    /// Another change is under way.
    pub(crate) change: bool,
}

/// Whether a leader may start a configuration change: the latest
/// configuration is committed, and so is an entry of the leader's own term
/// (its first, at `start_index`), without which a single-server change can
/// lose a committed configuration (Ongaro, raft-dev, 2015).
pub(crate) fn configuration_stable(
    configurations: &Configurations,
    commit_index: u64,
    start_index: u64,
) -> bool {
    configurations.latest_index <= commit_index && commit_index >= start_index
}

/// How a change asked for goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChangePlan {
    /// Nothing else is under way but the configuration is not stable yet (a
    /// new leader): wait until it is.
    Defer,
    /// A new voter: append `staging` (it as a non-voter) if it is not a
    /// member yet, then promote it once it holds the log through the
    /// leader's last index now.
    CatchUp { staging: Option<Configuration> },
    /// Append `next` and answer once it commits.
    Commit { next: Configuration },
}

/// Decides a change asked for with `prev_index` (0: whatever the latest
/// configuration is) while the leader is `busy`.
pub(crate) fn plan_change(
    configurations: &Configurations,
    commit_index: u64,
    stable: bool,
    busy: Busy,
    change: &ConfigurationChange,
    prev_index: u64,
) -> Result<ChangePlan, RaftError> {
    if !busy.transfer && !busy.change && !stable {
        return Ok(ChangePlan::Defer);
    }
    let latest = &configurations.latest;
    let latest_index = configurations.latest_index;
    if busy.transfer {
        return Err(RaftError::LeadershipTransferInProgress);
    }
    if busy.change || latest_index > commit_index {
        return Err(RaftError::ConfigurationChangeInProgress);
    }
    if prev_index != 0 && prev_index != latest_index {
        return Err(RaftError::ConfigurationChanged { prev_index, latest_index });
    }
    let next = latest.apply_change(change)?;
    match change {
        ConfigurationChange::AddVoter { id, address } if !latest.is_voter(id) => {
            let staging = match latest.server(id) {
                Some(_) => None,
                None => {
                    let as_nonvoter =
                        ConfigurationChange::AddNonvoter { id: id.clone(), address: address.clone() };
                    latest.apply_change(&as_nonvoter).ok()
                }
            };
            Ok(ChangePlan::CatchUp { staging })
        }
        _ => Ok(ChangePlan::Commit { next }),
    }
}

/// Whether a new voter that holds the log through `matched` has caught up
/// with `target` (the leader's last index when the change began, or its last
/// index now if that is lower).
pub(crate) fn caught_up(matched: u64, target: u64, last_index: u64) -> bool {
    matched >= target.min(last_index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Server, ServerAddress, ServerId};

    fn configurations(voters: &[&str], nonvoters: &[&str], latest_index: u64) -> Configurations {
        let mut servers: Vec<Server> =
            voters.iter().map(|id| Server::voter(ServerId::from(*id), ServerAddress::from(*id))).collect();
        servers.extend(
            nonvoters.iter().map(|id| Server::nonvoter(ServerId::from(*id), ServerAddress::from(*id))),
        );
        Configurations { latest: Configuration::new(servers), latest_index, ..Default::default() }
    }

    fn add_voter(id: &str) -> ConfigurationChange {
        ConfigurationChange::AddVoter { id: ServerId::from(id), address: ServerAddress::from(id) }
    }

    #[test]
    fn a_configuration_is_stable_once_it_and_an_entry_of_this_term_commit() {
        let c = configurations(&["a"], &[], 5);
        assert!(!configuration_stable(&c, 4, 3), "the latest configuration is not committed");
        assert!(!configuration_stable(&c, 6, 7), "nothing of this term is committed");
        assert!(configuration_stable(&c, 7, 7));
    }

    #[test]
    fn changes_wait_are_refused_or_go_by_stage() {
        let c = configurations(&["a", "b", "c"], &["n"], 5);
        let idle = Busy::default();
        let plan =
            |stable, busy, change: &ConfigurationChange, prev| plan_change(&c, 9, stable, busy, change, prev);
        assert!(matches!(plan(false, idle, &add_voter("d"), 0), Ok(ChangePlan::Defer)));
        let transfer = Busy { transfer: true, change: false };
        assert!(matches!(
            plan(true, transfer, &add_voter("d"), 0),
            Err(RaftError::LeadershipTransferInProgress)
        ));
        let change = Busy { transfer: false, change: true };
        assert!(matches!(
            plan(false, change, &add_voter("d"), 0),
            Err(RaftError::ConfigurationChangeInProgress)
        ));
        assert!(matches!(
            plan(true, idle, &add_voter("d"), 4),
            Err(RaftError::ConfigurationChanged { prev_index: 4, latest_index: 5 })
        ));
        // A new server joins as a non-voter first; a non-voter is promoted
        // after catching up; removing one commits directly.
        let staging = c.latest.apply_change(&ConfigurationChange::AddNonvoter {
            id: ServerId::from("d"),
            address: ServerAddress::from("d"),
        });
        assert_eq!(
            plan(true, idle, &add_voter("d"), 5).ok(),
            Some(ChangePlan::CatchUp { staging: staging.ok() })
        );
        assert_eq!(plan(true, idle, &add_voter("n"), 0).ok(), Some(ChangePlan::CatchUp { staging: None }));
        let remove = ConfigurationChange::RemoveServer { id: ServerId::from("c") };
        let next = c.latest.apply_change(&remove).expect("remove");
        assert_eq!(plan(true, idle, &remove, 0).ok(), Some(ChangePlan::Commit { next }));
        // The latest configuration is not committed yet.
        let unstable = plan_change(&c, 4, true, idle, &remove, 0);
        assert!(matches!(unstable, Err(RaftError::ConfigurationChangeInProgress)));
    }

    #[test]
    fn a_new_voter_has_caught_up_at_the_target_or_the_leaders_end() {
        assert!(!caught_up(9, 10, 12));
        assert!(caught_up(10, 10, 12));
        assert!(caught_up(8, 10, 8), "the leader's log is shorter than the target now");
    }
}
