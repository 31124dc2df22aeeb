//! The admin token: when `serve` is given `--admin-token-file`, every call
//! that changes the cluster (join, remove, transfer) must carry
//! `Authorization: Bearer <token>`, as Consul's ACL token or etcd's auth
//! protect their operator calls. Reads and writes of keys do not need it.

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

/// The shortest token accepted.
pub const TOKEN_MIN_BYTES: usize = 16;

/// An admin token, kept as its SHA-256 digest.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
    token: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// A token from its text (surrounding white space is not part of it).
    pub fn new(text: &str) -> Result<Self, String> {
        let token = text.trim();
        if token.len() < TOKEN_MIN_BYTES {
            return Err(format!("the admin token must be at least {TOKEN_MIN_BYTES} characters"));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the admin token must be visible ASCII characters only".into());
        }
        Ok(Self { digest: Sha256::digest(token.as_bytes()).into(), token: token.to_owned() })
    }

    /// Reads a token from a file.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::new(&text).map_err(|reason| format!("{}: {reason}", path.display()))
    }

    /// Whether `headers` carry this token. The comparison takes the same
    /// time wherever a wrong token differs (digests compared in constant
    /// time, so not even the length leaks).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some(given) = given.strip_prefix("Bearer ") else { return false };
        let digest: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        digest.ct_eq(&self.digest).into()
    }

    /// The header value that carries the token (for this node's own join).
    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_is_admitted() {
        let token = AdminToken::new("  s3cret-token-0123456789\n").expect("token");
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
            headers
        };
        assert!(token.admits(&with("Bearer s3cret-token-0123456789")));
        assert!(!token.admits(&with("Bearer s3cret-token-012345678")));
        assert!(!token.admits(&with("Bearer s3cret-token-01234567890")));
        assert!(!token.admits(&with("s3cret-token-0123456789")));
        assert!(!token.admits(&HeaderMap::new()));
        assert!(AdminToken::new("short").is_err());
        assert!(AdminToken::new("has a space in it, long enough").is_err());
        assert_eq!(format!("{token:?}"), "AdminToken(..)");
    }
}
