//! The identity providers MinIO's settings describe: `MINIO_IDENTITY_OPENID_*` and
//! `MINIO_IDENTITY_LDAP_*` at start (`config::minio`), and the same keys in MinIO's admin API's
//! `set-config-kv identity_openid ...` (`admin::minio`).

use fsgate_store::model::{IdentityProvider, LdapProvider, OidcProvider};

fn on(v: Option<String>) -> bool {
    v.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "on" | "true" | "1" | "yes"))
}

/// The identity providers MinIO's settings configure: `openid` from
/// `MINIO_IDENTITY_OPENID_CONFIG_URL` (with `_CLIENT_ID`, `_CLAIM_NAME` as the groups claim,
/// `_CLAIM_USERNAME`), `ldap` from `MINIO_IDENTITY_LDAP_SERVER_ADDR` (with `_LOOKUP_BIND_DN`,
/// `_LOOKUP_BIND_PASSWORD`, `_USER_DN_SEARCH_BASE_DN`, `_USER_DN_SEARCH_FILTER`,
/// `_GROUP_SEARCH_BASE_DN`, `_GROUP_SEARCH_FILTER`, `_SERVER_INSECURE`, `_SERVER_STARTTLS`,
/// `_TLS_SKIP_VERIFY`).
#[must_use]
pub fn identity_providers(env: impl Fn(&str) -> Option<String>) -> Vec<IdentityProvider> {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    if let Some(url) = get("MINIO_IDENTITY_OPENID_CONFIG_URL") {
        let issuer = url
            .trim_end_matches('/')
            .trim_end_matches("/.well-known/openid-configuration")
            .to_owned();
        out.push(IdentityProvider::Oidc(OidcProvider {
            name: "openid".into(),
            issuer,
            client_id: get("MINIO_IDENTITY_OPENID_CLIENT_ID").unwrap_or_default(),
            groups_claim: get("MINIO_IDENTITY_OPENID_CLAIM_NAME")
                .unwrap_or_else(|| "policy".into()),
            user_claim: get("MINIO_IDENTITY_OPENID_CLAIM_USERNAME")
                .unwrap_or_else(|| "preferred_username".into()),
            tag_claims: Vec::new(),
        }));
    }
    if let Some(server) = get("MINIO_IDENTITY_LDAP_SERVER_ADDR") {
        let tls = if on(get("MINIO_IDENTITY_LDAP_SERVER_INSECURE")) {
            "none"
        } else if on(get("MINIO_IDENTITY_LDAP_SERVER_STARTTLS")) {
            "starttls"
        } else {
            "tls"
        };
        out.push(IdentityProvider::Ldap(LdapProvider {
            name: "ldap".into(),
            server,
            tls: tls.into(),
            tls_insecure: on(get("MINIO_IDENTITY_LDAP_TLS_SKIP_VERIFY")),
            bind_dn: get("MINIO_IDENTITY_LDAP_LOOKUP_BIND_DN").unwrap_or_default(),
            bind_password: get("MINIO_IDENTITY_LDAP_LOOKUP_BIND_PASSWORD").unwrap_or_default(),
            user_base: get("MINIO_IDENTITY_LDAP_USER_DN_SEARCH_BASE_DN").unwrap_or_default(),
            user_filter: get("MINIO_IDENTITY_LDAP_USER_DN_SEARCH_FILTER")
                .unwrap_or_else(|| "(uid=%s)".into()),
            group_base: get("MINIO_IDENTITY_LDAP_GROUP_SEARCH_BASE_DN").unwrap_or_default(),
            group_filter: get("MINIO_IDENTITY_LDAP_GROUP_SEARCH_FILTER")
                .unwrap_or_else(|| "(member=%d)".into()),
            group_attribute: "cn".into(),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minio_identity_settings_configure_providers() {
        let env = |k: &str| {
            [
                (
                    "MINIO_IDENTITY_OPENID_CONFIG_URL",
                    "https://kc.example/realms/main/.well-known/openid-configuration",
                ),
                ("MINIO_IDENTITY_OPENID_CLIENT_ID", "minio"),
                ("MINIO_IDENTITY_LDAP_SERVER_ADDR", "ldap.example:389"),
                ("MINIO_IDENTITY_LDAP_SERVER_INSECURE", "on"),
                ("MINIO_IDENTITY_LDAP_USER_DN_SEARCH_FILTER", "(uid=%s)"),
            ]
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
        };
        let p = identity_providers(env);
        assert!(
            matches!(&p[..], [IdentityProvider::Oidc(o), IdentityProvider::Ldap(l)]
            if o.issuer == "https://kc.example/realms/main" && o.client_id == "minio"
                && l.tls == "none" && l.server == "ldap.example:389")
        );
        assert!(identity_providers(|_| None).is_empty());
    }
}
