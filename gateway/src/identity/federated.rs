//! What an identity provider vouches for (an OpenID Connect token, an LDAP bind), and the
//! principal name it becomes.

use fsgate_store::model::SessionSource;

/// The principal name of a provider's user: `PROVIDER:USER`. Local names cannot hold `:`,
/// so a federated identity never takes a local user's grants or revocations, and two
/// providers' users of one name stay apart.
#[must_use]
pub fn federated_name(provider: &str, user: &str) -> String {
    format!("{provider}:{user}")
}

/// What an identity provider vouched for.
#[derive(Debug, Clone)]
pub struct FederatedIdentity {
    /// Provider name.
    pub provider: String,
    /// The principal name, `PROVIDER:USER` ([`federated_name`]).
    pub user: String,
    /// When the provider issued the credential (a token's `iat`; for LDAP, now: the password
    /// was just proven); `None` counts as before any revocation.
    pub issued_ns: Option<u64>,
    /// Groups (fsgate groups of the same names).
    pub groups: Vec<String>,
    /// Principal tags.
    pub tags: Vec<(String, String)>,
    /// Token subject or directory DN.
    pub subject: String,
    /// Token audience (web identity only).
    pub audience: String,
    /// Where the session comes from.
    pub source: SessionSource,
}
