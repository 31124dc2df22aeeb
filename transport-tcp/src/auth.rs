//! Proof of the cluster secret in the handshake: each side sends an
//! HMAC-SHA256 over what both sides said so far (both nonces, both node
//! ids, the cluster id, the connection kind), under a label of its own, so a
//! proof can be neither replayed on another connection nor reflected back.

use crate::wire::MAC_LEN;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The shortest secret accepted, in bytes.
pub const SECRET_MIN: usize = 16;

/// A cluster's shared secret. Its `Debug` shows no byte of it.
#[derive(Clone)]
pub struct ClusterSecret(Vec<u8>);

impl ClusterSecret {
    /// A secret from its bytes; at least [`SECRET_MIN`] of them, or `None`.
    /// Make one with a random generator (32 bytes from `/dev/urandom`, say),
    /// and give every node of the cluster the same.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Self> {
        let bytes = bytes.into();
        (bytes.len() >= SECRET_MIN).then_some(Self(bytes))
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(label);
        for part in parts {
            mac.update(&(part.len() as u32).to_le_bytes());
            mac.update(part);
        }
        mac
    }

    /// The server's proof: over the client's hello and the server's welcome
    /// without its proof.
    pub(crate) fn server_proof(&self, hello: &[u8], welcome_unsigned: &[u8]) -> [u8; MAC_LEN] {
        self.mac(b"raft-kit/2 server", &[hello, welcome_unsigned]).finalize().into_bytes().into()
    }

    /// The client's proof: over the client's hello and the whole welcome.
    pub(crate) fn client_proof(&self, hello: &[u8], welcome: &[u8]) -> [u8; MAC_LEN] {
        self.mac(b"raft-kit/2 client", &[hello, welcome]).finalize().into_bytes().into()
    }

    /// Whether `proof` is the server's proof (compared in constant time).
    pub(crate) fn check_server(&self, hello: &[u8], welcome_unsigned: &[u8], proof: &[u8]) -> bool {
        self.mac(b"raft-kit/2 server", &[hello, welcome_unsigned]).verify_slice(proof).is_ok()
    }

    /// Whether `proof` is the client's proof (compared in constant time).
    pub(crate) fn check_client(&self, hello: &[u8], welcome: &[u8], proof: &[u8]) -> bool {
        self.mac(b"raft-kit/2 client", &[hello, welcome]).verify_slice(proof).is_ok()
    }
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterSecret({} bytes)", self.0.len())
    }
}

/// Fresh random bytes for a nonce.
pub(crate) fn nonce() -> [u8; crate::wire::NONCE_LEN] {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_depend_on_the_secret_the_side_and_every_byte() {
        let secret = ClusterSecret::new(vec![7u8; 32]).expect("long enough");
        let other = ClusterSecret::new(vec![8u8; 32]).expect("long enough");
        let server = secret.server_proof(b"hello", b"welcome");
        assert!(secret.check_server(b"hello", b"welcome", &server));
        assert!(!other.check_server(b"hello", b"welcome", &server), "another secret");
        assert!(!secret.check_server(b"hellp", b"welcome", &server), "another hello");
        assert!(
            !secret.check_client(b"hello", b"welcome", &server),
            "a server proof reflected as a client's"
        );
        assert!(!secret.check_server(b"hello", b"welcome", &server[..31]), "a short proof");
        assert!(ClusterSecret::new(vec![0u8; SECRET_MIN - 1]).is_none(), "a short secret");
        assert!(!format!("{secret:?}").contains('7'), "Debug leaks the secret");
    }
}
