//! Cluster membership: who the servers are and which of them vote.

use std::fmt;

/// The most servers one configuration may list: [`Configuration::validate`]
/// refuses more, and the codec refuses to decode more.
pub const SERVERS_MAX: usize = 1024;

/// A server's stable identity, unique within a cluster.
///
/// It never changes for the life of a server, even when its address does.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct ServerId(pub String);

/// Where a server can be reached by the [`Transport`](crate::Transport) in use.
///
/// For the TCP transport this is `host:port`; for the in-memory transport any
/// unique name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
pub struct ServerAddress(pub String);

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// Creates it from anything string-like.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }
    };
}

string_newtype!(ServerId);
string_newtype!(ServerAddress);

/// Whether a server's vote counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Suffrage {
    /// Votes in elections and counts toward the commit quorum.
    Voter,
    /// Receives log entries but neither votes nor counts toward the quorum.
    Nonvoter,
}

/// One member of a [`Configuration`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Server {
    /// Whether the server votes.
    pub suffrage: Suffrage,
    /// The server's stable identity.
    pub id: ServerId,
    /// Where the server is reached.
    pub address: ServerAddress,
}

impl Server {
    /// A voting member.
    pub fn voter(id: impl Into<ServerId>, address: impl Into<ServerAddress>) -> Self {
        Self { suffrage: Suffrage::Voter, id: id.into(), address: address.into() }
    }

    /// A non-voting member.
    pub fn nonvoter(id: impl Into<ServerId>, address: impl Into<ServerAddress>) -> Self {
        Self { suffrage: Suffrage::Nonvoter, id: id.into(), address: address.into() }
    }
}

/// The membership of a cluster at one point of its log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Configuration {
    /// The members, in no particular order; ids and addresses are unique.
    pub servers: Vec<Server>,
}

/// Why a [`Configuration`] is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigurationError {
    /// Two servers share an id.
    #[error("server id {0} appears more than once")]
    DuplicateId(ServerId),
    /// Two servers share an address.
    #[error("server address {0} appears more than once")]
    DuplicateAddress(ServerAddress),
    /// A server has an empty id.
    #[error("a server has an empty id")]
    EmptyId,
    /// A server has an empty address.
    #[error("server {0} has an empty address")]
    EmptyAddress(ServerId),
    /// The configuration has no voter, so it could never elect a leader.
    #[error("the configuration has no voter")]
    NoVoter,
    /// More servers than a configuration may hold ([`SERVERS_MAX`]).
    #[error("the configuration lists {count} servers, more than the {max} allowed")]
    TooManyServers {
        /// How many it lists.
        count: usize,
        /// The most allowed.
        max: usize,
    },
}

/// One single-server change to a [`Configuration`], as the membership calls
/// of [`Raft`](crate::Raft) make.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigurationChange {
    /// Add a server as a voter, or promote a non-voter (updating its address).
    AddVoter {
        /// The server.
        id: ServerId,
        /// Its address.
        address: ServerAddress,
    },
    /// Add a server as a non-voter; a member keeps its suffrage and gets the new address.
    AddNonvoter {
        /// The server.
        id: ServerId,
        /// Its address.
        address: ServerAddress,
    },
    /// Make a voter a non-voter (a server that is not a member stays out).
    DemoteVoter {
        /// The server.
        id: ServerId,
    },
    /// Remove a server (removing one that is not a member changes nothing).
    RemoveServer {
        /// The server.
        id: ServerId,
    },
}

impl ConfigurationChange {
    /// The server the change is about.
    pub fn id(&self) -> &ServerId {
        match self {
            ConfigurationChange::AddVoter { id, .. }
            | ConfigurationChange::AddNonvoter { id, .. }
            | ConfigurationChange::DemoteVoter { id }
            | ConfigurationChange::RemoveServer { id } => id,
        }
    }
}

impl Configuration {
    /// A configuration of the given servers.
    pub fn new(servers: Vec<Server>) -> Self {
        Self { servers }
    }

    /// Checks that ids and addresses are unique and non-empty and that at least
    /// one server votes.
    pub fn validate(&self) -> Result<(), ConfigurationError> {
        let max = SERVERS_MAX;
        if self.servers.len() > max {
            return Err(ConfigurationError::TooManyServers { count: self.servers.len(), max });
        }
        let mut ids = std::collections::HashSet::new();
        let mut addresses = std::collections::HashSet::new();
        for server in &self.servers {
            if server.id.0.is_empty() {
                return Err(ConfigurationError::EmptyId);
            }
            if server.address.0.is_empty() {
                return Err(ConfigurationError::EmptyAddress(server.id.clone()));
            }
            if !ids.insert(&server.id) {
                return Err(ConfigurationError::DuplicateId(server.id.clone()));
            }
            if !addresses.insert(&server.address) {
                return Err(ConfigurationError::DuplicateAddress(server.address.clone()));
            }
        }
        if self.voters().next().is_none() {
            return Err(ConfigurationError::NoVoter);
        }
        Ok(())
    }

    /// The servers whose votes count.
    pub fn voters(&self) -> impl Iterator<Item = &Server> {
        self.servers.iter().filter(|s| s.suffrage == Suffrage::Voter)
    }

    /// The server with this id, if it is a member.
    pub fn server(&self, id: &ServerId) -> Option<&Server> {
        self.servers.iter().find(|s| &s.id == id)
    }

    /// Whether the server with this id is a voter here.
    pub fn is_voter(&self, id: &ServerId) -> bool {
        self.server(id).is_some_and(|s| s.suffrage == Suffrage::Voter)
    }

    /// The configuration after `change`, validated.
    pub fn apply_change(&self, change: &ConfigurationChange) -> Result<Configuration, ConfigurationError> {
        let mut next = self.clone();
        let position = next.servers.iter().position(|s| s.id == *change.id());
        match (change, position) {
            (ConfigurationChange::AddVoter { address, .. }, Some(at)) => {
                next.servers[at].suffrage = Suffrage::Voter;
                next.servers[at].address = address.clone();
            }
            (ConfigurationChange::AddVoter { id, address }, None) => {
                next.servers.push(Server::voter(id.clone(), address.clone()));
            }
            (ConfigurationChange::AddNonvoter { address, .. }, Some(at)) => {
                next.servers[at].address = address.clone();
            }
            (ConfigurationChange::AddNonvoter { id, address }, None) => {
                next.servers.push(Server::nonvoter(id.clone(), address.clone()));
            }
            (ConfigurationChange::DemoteVoter { .. }, Some(at)) => {
                next.servers[at].suffrage = Suffrage::Nonvoter
            }
            (ConfigurationChange::RemoveServer { .. }, Some(at)) => {
                next.servers.remove(at);
            }
            // As in hashicorp/raft: nothing to change, and not an error, so
            // a retried removal succeeds.
            (ConfigurationChange::DemoteVoter { .. } | ConfigurationChange::RemoveServer { .. }, None) => {}
        }
        next.validate()?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_give_the_next_configuration() {
        use ConfigurationChange::*;
        let base = Configuration::new(vec![Server::voter("a", "1"), Server::nonvoter("b", "2")]);
        let add = |id: &str, addr: &str| AddVoter { id: id.into(), address: addr.into() };
        let table: Vec<(ConfigurationChange, Result<Vec<Server>, ConfigurationError>)> = vec![
            (
                add("c", "3"),
                Ok(vec![Server::voter("a", "1"), Server::nonvoter("b", "2"), Server::voter("c", "3")]),
            ),
            (add("b", "9"), Ok(vec![Server::voter("a", "1"), Server::voter("b", "9")])),
            (
                AddNonvoter { id: "c".into(), address: "3".into() },
                Ok(vec![Server::voter("a", "1"), Server::nonvoter("b", "2"), Server::nonvoter("c", "3")]),
            ),
            (
                AddNonvoter { id: "a".into(), address: "7".into() },
                Ok(vec![Server::voter("a", "7"), Server::nonvoter("b", "2")]),
            ),
            (DemoteVoter { id: "a".into() }, Err(ConfigurationError::NoVoter)),
            (RemoveServer { id: "b".into() }, Ok(vec![Server::voter("a", "1")])),
            (RemoveServer { id: "a".into() }, Err(ConfigurationError::NoVoter)),
            (RemoveServer { id: "z".into() }, Ok(vec![Server::voter("a", "1"), Server::nonvoter("b", "2")])),
            (DemoteVoter { id: "z".into() }, Ok(vec![Server::voter("a", "1"), Server::nonvoter("b", "2")])),
            (add("c", "2"), Err(ConfigurationError::DuplicateAddress("2".into()))),
        ];
        for (change, expected) in table {
            assert_eq!(base.apply_change(&change).map(|c| c.servers), expected, "{change:?}");
        }
    }

    #[test]
    fn validate_names_what_is_wrong() {
        let dup = Configuration::new(vec![Server::voter("a", "1"), Server::voter("a", "2")]);
        assert_eq!(dup.validate(), Err(ConfigurationError::DuplicateId("a".into())));
        let dup_addr = Configuration::new(vec![Server::voter("a", "1"), Server::voter("b", "1")]);
        assert_eq!(dup_addr.validate(), Err(ConfigurationError::DuplicateAddress("1".into())));
        let none = Configuration::new(vec![Server::nonvoter("a", "1")]);
        assert_eq!(none.validate(), Err(ConfigurationError::NoVoter));
        let empty = Configuration::new(vec![Server::voter("", "1")]);
        assert_eq!(empty.validate(), Err(ConfigurationError::EmptyId));
        let ok = Configuration::new(vec![Server::voter("a", "1"), Server::nonvoter("b", "2")]);
        assert_eq!(ok.validate(), Ok(()));
    }
}
