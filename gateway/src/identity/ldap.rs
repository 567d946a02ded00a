//! LDAP identities for `AssumeRoleWithLDAPIdentity`: search-then-bind.
//!
//! With the provider's service account fsgate searches `user_base` for exactly one entry
//! matching `user_filter` (`%s` = the user name), binds as that entry's DN with the password
//! given (proving it), then searches `group_base` with `group_filter` (`%d` = the user's DN,
//! `%s` = the user name) and takes each group's `group_attribute` as an fsgate group name.
//! Every value put into a filter goes through RFC 4515 escaping, so `*`, `(`, `)`, `\` and NUL
//! in a user name match only themselves. An empty password is refused before any bind (an
//! empty-password simple bind is an anonymous bind that "succeeds").

use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};

use fsgate_store::model::{IdentityProvider, LdapProvider, SessionSource};

use crate::identity::federated::FederatedIdentity;
use crate::identity::iam::valid_name;

/// Why an LDAP login failed. Only [`LdapError::InvalidCredentials`]'s wording reaches the
/// client (STS answers every failure alike); the rest is for the log.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// No LDAP provider is configured.
    #[error("no LDAP identity provider is configured")]
    NotConfigured,
    /// Unknown user, wrong password, or a name or password that cannot be one.
    #[error("invalid user name or password")]
    InvalidCredentials,
    /// The user filter matched several entries.
    #[error("the user filter matches more than one entry")]
    AmbiguousUser,
    /// The entry's name is not a valid fsgate user name.
    #[error("'{0}' is not a valid fsgate user name")]
    InvalidName(String),
    /// The directory did not answer in time.
    #[error("LDAP server {0} timed out")]
    TimedOut(String),
    /// The directory could not be reached.
    #[error("connecting to {url}: {source}")]
    Connect {
        /// The directory's URL.
        url: String,
        /// What the connection attempt met.
        source: ldap3::LdapError,
    },
    /// A step of the login failed at the directory.
    #[error("{step} failed: {source}")]
    Directory {
        /// The step: the service account's bind, the user search, the group search.
        step: &'static str,
        /// What the directory answered.
        source: ldap3::LdapError,
    },
}

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_NAME: usize = 256;

/// Authenticates `user` with `password` against the first LDAP provider.
pub async fn authenticate(
    providers: &[IdentityProvider],
    user: &str,
    password: &str,
) -> Result<FederatedIdentity, LdapError> {
    let p = providers
        .iter()
        .find_map(|p| match p {
            IdentityProvider::Ldap(l) => Some(l),
            IdentityProvider::Oidc(_) => None,
        })
        .ok_or(LdapError::NotConfigured)?;
    if user.is_empty() || user.len() > MAX_NAME || password.is_empty() {
        return Err(LdapError::InvalidCredentials);
    }
    tokio::time::timeout(TIMEOUT, search_then_bind(p, user, password))
        .await
        .map_err(|_| LdapError::TimedOut(p.server.clone()))?
}

async fn connect(p: &LdapProvider) -> Result<ldap3::Ldap, LdapError> {
    let scheme = if p.tls == "tls" { "ldaps" } else { "ldap" };
    let settings = LdapConnSettings::new()
        .set_conn_timeout(TIMEOUT)
        .set_starttls(p.tls == "starttls")
        .set_no_tls_verify(p.tls_insecure);
    let url = format!("{scheme}://{}", p.server);
    let (conn, ldap) = LdapConnAsync::with_settings(settings, &url)
        .await
        .map_err(|source| LdapError::Connect {
            url: url.clone(),
            source,
        })?;
    ldap3::drive!(conn);
    Ok(ldap)
}

async fn search_then_bind(
    p: &LdapProvider,
    user: &str,
    password: &str,
) -> Result<FederatedIdentity, LdapError> {
    let mut ldap = connect(p).await?;
    ldap.simple_bind(&p.bind_dn, &p.bind_password)
        .await
        .and_then(ldap3::LdapResult::success)
        .map_err(|source| LdapError::Directory {
            step: "service account bind",
            source,
        })?;
    let escaped = ldap_escape(user);
    let filter = p.user_filter.replace("%s", &escaped);
    // The name the entry itself holds, not the one typed: directories match `uid=ALICE` to
    // `uid: alice`, and per-user grants and revocations must not be escaped by case.
    let name_attribute = filter_attribute(&p.user_filter);
    let attrs = name_attribute.map_or_else(|| vec!["1.1"], |a| vec![a]);
    let (entries, _) = ldap
        .search(&p.user_base, Scope::Subtree, &filter, attrs)
        .await
        .and_then(ldap3::SearchResult::success)
        .map_err(|source| LdapError::Directory {
            step: "user search",
            source,
        })?;
    let entry = match entries.as_slice() {
        [one] => SearchEntry::construct(one.clone()),
        [] => return Err(LdapError::InvalidCredentials),
        _ => return Err(LdapError::AmbiguousUser),
    };
    let canonical = canonical_name(&entry, name_attribute, user);
    let dn = entry.dn;
    // The password is proven on a connection of its own, so the service account's searches
    // never run with the user's rights.
    let mut as_user = connect(p).await?;
    let bound = as_user
        .simple_bind(&dn, password)
        .await
        .and_then(ldap3::LdapResult::success);
    let _ = as_user.unbind().await;
    if bound.is_err() {
        return Err(LdapError::InvalidCredentials);
    }
    let group_filter = p
        .group_filter
        .replace("%d", &ldap_escape(dn.as_str()))
        .replace("%s", &escaped);
    let (groups, _) = ldap
        .search(
            &p.group_base,
            Scope::Subtree,
            &group_filter,
            vec![p.group_attribute.as_str()],
        )
        .await
        .and_then(ldap3::SearchResult::success)
        .map_err(|source| LdapError::Directory {
            step: "group search",
            source,
        })?;
    let _ = ldap.unbind().await;
    let mut names: Vec<String> = groups
        .into_iter()
        .map(SearchEntry::construct)
        .flat_map(|e| e.attrs.get(&p.group_attribute).cloned().unwrap_or_default())
        .filter(|g| valid_name(g))
        .collect();
    names.sort();
    names.dedup();
    if !valid_name(&canonical) {
        return Err(LdapError::InvalidName(canonical));
    }
    Ok(FederatedIdentity {
        provider: p.name.clone(),
        user: crate::identity::federated::federated_name(&p.name, &canonical),
        // The password was proven just now.
        issued_ns: Some(fsgate_store::now_ns()),
        groups: names,
        tags: Vec::new(),
        subject: dn.clone(),
        audience: String::new(),
        source: SessionSource::Ldap {
            provider: p.name.clone(),
            dn,
        },
    })
}

/// The attribute a user filter matches the typed name against: `uid` in
/// `(&(objectClass=person)(uid=%s))`.
fn filter_attribute(filter: &str) -> Option<&str> {
    let (before, _) = filter.split_once("=%s")?;
    let attr = before.rsplit('(').next()?.trim();
    (!attr.is_empty() && attr.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then_some(attr)
}

/// The entry's own spelling of the user's name: the filter attribute's value that matches
/// what was typed (ignoring case), else the value of the DN's first component.
fn canonical_name(entry: &SearchEntry, attribute: Option<&str>, typed: &str) -> String {
    let from_attribute = attribute.and_then(|a| {
        let values = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(a))
            .map(|(_, v)| v)?;
        values
            .iter()
            .find(|v| v.eq_ignore_ascii_case(typed))
            .or_else(|| values.first())
            .cloned()
    });
    from_attribute.unwrap_or_else(|| {
        entry
            .dn
            .split(',')
            .next()
            .and_then(|rdn| rdn.split_once('='))
            .map_or_else(|| typed.to_owned(), |(_, v)| v.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_names_the_attribute() {
        assert_eq!(filter_attribute("(uid=%s)"), Some("uid"));
        assert_eq!(
            filter_attribute("(&(objectClass=inetOrgPerson)(sAMAccountName=%s))"),
            Some("sAMAccountName")
        );
        assert_eq!(filter_attribute("(|(mail=%s)(cn=x))"), Some("mail"));
        assert_eq!(filter_attribute("(uid=*)"), None);
    }

    #[test]
    fn the_entry_spells_the_name() {
        let entry = SearchEntry {
            dn: "uid=alice,ou=people,dc=example,dc=org".into(),
            attrs: [("uid".to_owned(), vec!["alice".to_owned()])].into(),
            bin_attrs: std::collections::HashMap::new(),
        };
        assert_eq!(canonical_name(&entry, Some("uid"), "ALICE"), "alice");
        assert_eq!(canonical_name(&entry, None, "ALICE"), "alice");
    }
}
