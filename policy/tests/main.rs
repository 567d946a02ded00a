//! Decision tables over the real `policies/*.cedar`.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly"
)]

use std::net::IpAddr;

use fsgate_policy::{
    AccessRequest, Action, Changes, Grant, GrantPolicy, GrantTarget, PolicyEngine, PolicyFile,
    Principal, RequestContext, Resource,
};

fn ctx() -> RequestContext {
    RequestContext {
        source_ip: "10.1.2.3".parse::<IpAddr>().unwrap(),
        secure_transport: false,
        now: 1_700_000_000,
        prefix: None,
        delimiter: None,
        max_keys: None,
        version_id: None,
        server_side_encryption: None,
        headers: fsgate_policy::RequestHeaders::default(),
    }
}

fn user(name: &str, groups: &[&str]) -> Principal {
    Principal::user(name, groups.iter().map(|g| (*g).to_owned()).collect())
}

fn obj(b: &str, k: &str) -> Resource {
    Resource::Object {
        bucket: b.into(),
        key: k.into(),
    }
}

fn role(
    id: &str,
    target: GrantTarget,
    role: &str,
    bucket: Option<&str>,
    prefix: Option<&str>,
) -> Grant {
    Grant {
        id: id.into(),
        target,
        policy: GrantPolicy::Role {
            role: role.into(),
            bucket: bucket.map(Into::into),
            prefix: prefix.map(Into::into),
        },
    }
}

fn decide(e: &PolicyEngine, p: Principal, a: Action, r: Resource) -> fsgate_policy::Decision {
    e.decide(&AccessRequest {
        principal: p,
        action: a,
        resource: r,
        context: ctx(),
        object_tags: Vec::new(),
        bucket_owner: None,
    })
}

fn team_engine() -> PolicyEngine {
    PolicyEngine::builtin()
        .unwrap()
        .with_grants(&team_grants())
        .unwrap()
}

/// alice readwrite and bob readonly on `team`, group ops readonly everywhere, carol readwrite
/// under `team/home/carol/`.
fn team_grants() -> Vec<Grant> {
    vec![
        role(
            "alice-rw",
            GrantTarget::User("alice".into()),
            "readwrite",
            Some("team"),
            None,
        ),
        role(
            "bob-ro",
            GrantTarget::User("bob".into()),
            "readonly",
            Some("team"),
            None,
        ),
        role(
            "ops-ro",
            GrantTarget::Group("ops".into()),
            "readonly",
            None,
            None,
        ),
        role(
            "carol-home",
            GrantTarget::User("carol".into()),
            "readwrite",
            Some("team"),
            Some("home/carol/"),
        ),
    ]
}

#[test]
fn decision_table() {
    let e = team_engine();
    use Action::*;
    let rows: Vec<(Principal, Action, Resource, bool)> = vec![
        (
            Principal::Root("root".into()),
            PutObject,
            obj("any", "k"),
            true,
        ),
        (
            Principal::Root("root".into()),
            AdminAddUser,
            Resource::Service,
            true,
        ),
        (user("alice", &[]), PutObject, obj("team", "a.txt"), true),
        (user("alice", &[]), GetObject, obj("team", "a.txt"), true),
        (user("alice", &[]), PutObject, obj("other", "a.txt"), false),
        (user("alice", &[]), AdminAddUser, Resource::Service, false),
        (user("alice", &[]), ListBuckets, Resource::Service, false),
        (
            user("alice", &[]),
            ListBuckets,
            Resource::Bucket("team".into()),
            true,
        ),
        (
            user("alice", &[]),
            ListBuckets,
            Resource::Bucket("other".into()),
            false,
        ),
        (user("bob", &[]), GetObject, obj("team", "a.txt"), true),
        (user("bob", &[]), PutObject, obj("team", "a.txt"), false),
        (user("bob", &[]), DeleteObject, obj("team", "a.txt"), false),
        (
            user("dave", &["ops"]),
            GetObject,
            obj("anything", "x"),
            true,
        ),
        (
            user("dave", &["ops"]),
            PutObject,
            obj("anything", "x"),
            false,
        ),
        (user("dave", &["ops"]), ListBuckets, Resource::Service, true),
        (
            user("carol", &[]),
            PutObject,
            obj("team", "home/carol/x"),
            true,
        ),
        (
            user("carol", &[]),
            PutObject,
            obj("team", "home/carolyn/x"),
            false,
        ),
        (user("carol", &[]), GetObject, obj("team", "a.txt"), false),
        (Principal::Anonymous, GetObject, obj("team", "a.txt"), false),
        (user("nobody", &[]), GetObject, obj("team", "a.txt"), false),
    ];
    for (p, a, r, want) in rows {
        let d = decide(&e, p.clone(), a, r.clone());
        assert_eq!(d.allowed, want, "{p:?} {a:?} {r:?} -> {d:?}");
        assert!(d.errors.is_empty(), "{d:?}");
    }
}

#[test]
fn deciding_policies_are_reported() {
    let e = team_engine();
    let d = decide(&e, user("alice", &[]), Action::PutObject, obj("team", "k"));
    assert_eq!(d.policies, vec!["att-alice-rw".to_string()]);
    let d = decide(
        &e,
        Principal::Root("r".into()),
        Action::PutObject,
        obj("team", "k"),
    );
    assert_eq!(d.policies, vec!["root-all".to_string()]);
    let d = decide(&e, user("bob", &[]), Action::PutObject, obj("team", "k"));
    assert!(!d.allowed && d.policies.is_empty());
}

#[test]
fn prefix_grants_cover_listings_under_them_only() {
    let e = team_engine();
    let list = |prefix: &str| {
        e.decide(&AccessRequest {
            principal: user("carol", &[]),
            action: Action::ListObjectsV2,
            resource: Resource::Bucket("team".into()),
            context: RequestContext {
                prefix: Some(prefix.into()),
                ..ctx()
            },
            object_tags: Vec::new(),
            bucket_owner: None,
        })
        .allowed
    };
    assert!(list("home/carol/"));
    assert!(list("home/carol/docs/"));
    assert!(!list(""));
    assert!(!list("home/"));
}

// Regression: Cedar skips a policy that errors during evaluation, so an erroring forbid would
// turn into an allow. fsgate treats any evaluation error as a deny.
#[test]
fn erroring_forbid_denies() {
    let e = PolicyEngine::builtin()
        .unwrap()
        .with_grants(&[
            role("alice-rw", GrantTarget::User("alice".into()), "readwrite", None, None),
            Grant {
                id: "overflow".into(),
                target: GrantTarget::User("alice".into()),
                policy: GrantPolicy::Cedar(
                    "forbid(principal, action, resource) when { context.now + 9223372036854775807 > 0 };".into(),
                ),
            },
        ])
        .unwrap();
    let d = decide(&e, user("alice", &[]), Action::GetObject, obj("b", "k"));
    assert!(!d.allowed, "{d:?}");
    assert!(!d.errors.is_empty());
    // The erroring policy is reported as the one that decided.
    assert_eq!(d.policies, vec!["att-overflow".to_string()]);
}

/// S3 object tags are Cedar entity tags: a forbid on a tag value overrides a role, and the
/// engine says it needs tags only once a policy reads them.
#[test]
fn object_tags_are_entity_tags() {
    let base = PolicyEngine::builtin()
        .unwrap()
        .with_grants(&[role(
            "alice-rw",
            GrantTarget::User("alice".into()),
            "readwrite",
            None,
            None,
        )])
        .unwrap();
    assert!(!base.uses_object_tags());
    let e = base
        .with_grants(&[
            role("alice-rw", GrantTarget::User("alice".into()), "readwrite", None, None),
            Grant {
                id: "no-secrets".into(),
                target: GrantTarget::User("alice".into()),
                policy: GrantPolicy::Cedar(
                    r#"forbid(principal, action, resource) when { resource is Object && resource.hasTag("class") && resource.getTag("class") == "secret" };"#.into(),
                ),
            },
        ])
        .unwrap();
    assert!(e.uses_object_tags());
    // Cedar allows whitespace before the call's parenthesis; detection must too.
    let spaced = base
        .with_grants(&[Grant {
            id: "spaced".into(),
            target: GrantTarget::User("alice".into()),
            policy: GrantPolicy::Cedar(
                "forbid(principal, action, resource) when { resource is Object && resource.hasTag (\"class\") };".into(),
            ),
        }])
        .unwrap();
    assert!(spaced.uses_object_tags());
    let req = |tags: Vec<(String, String)>| AccessRequest {
        principal: user("alice", &[]),
        action: Action::GetObject,
        resource: obj("b", "k"),
        context: ctx(),
        object_tags: tags,
        bucket_owner: None,
    };
    assert!(e.decide(&req(Vec::new())).allowed);
    assert!(
        e.decide(&req(vec![("class".into(), "public".into())]))
            .allowed
    );
    let d = e.decide(&req(vec![("class".into(), "secret".into())]));
    assert!(!d.allowed);
    assert_eq!(d.policies, vec!["att-no-secrets".to_string()]);
}

#[test]
fn hostile_names_are_only_ids() {
    let e = team_engine();
    // Quotes, backslashes and Cedar syntax in names never change what a policy means.
    for name in [r#"alice" || true || ""#, r"alice\", "alice\n", "*"] {
        let d = decide(&e, user(name, &[]), Action::GetObject, obj("team", "k"));
        assert!(!d.allowed, "{name:?}");
    }
    let d = decide(
        &e,
        user("bob", &[]),
        Action::GetObject,
        obj("team", r#"k" }; permit(principal,action,resource); //"#),
    );
    assert!(d.allowed && d.errors.is_empty());
    // A group whose name looks like another one's does not inherit it.
    let d = decide(
        &e,
        user("x", &[r#"ops""#]),
        Action::GetObject,
        obj("b", "k"),
    );
    assert!(!d.allowed);
}

#[test]
fn strict_validation_rejects_bad_attached_policies() {
    let base = PolicyEngine::builtin().unwrap();
    let bad = |text: &str| {
        base.with_grants(&[Grant {
            id: "x".into(),
            target: GrantTarget::User("alice".into()),
            policy: GrantPolicy::Cedar(text.into()),
        }])
        .unwrap_err()
    };
    // Unknown attribute on a bucket.
    let err = bad(
        r#"permit(principal, action == Action::"s3:HeadBucket", resource) when { resource.key == "x" };"#,
    );
    assert!(err.to_string().contains("att-x"), "{err}");
    // Unguarded optional context attribute.
    bad(
        r#"permit(principal, action == Action::"s3:ListObjectsV2", resource) when { context.prefix == "x" };"#,
    );
    // A principal constraint naming someone else.
    let err = bad(r#"permit(principal == User::"bob", action, resource);"#);
    assert!(err.to_string().contains("unconstrained"), "{err}");
    // Syntax errors carry a line number.
    let err = bad("permit(principal, action, resource)\nwhen { ;");
    assert!(err.to_string().contains(":2:"), "{err}");
    // Unknown role.
    assert!(
        base.with_grants(&[role(
            "r",
            GrantTarget::User("a".into()),
            "superuser",
            None,
            None
        )])
        .is_err()
    );
}

#[test]
fn attached_policy_is_scoped_to_its_target() {
    let e = PolicyEngine::builtin()
        .unwrap()
        .with_grants(&[Grant {
            id: "c".into(),
            target: GrantTarget::User("alice".into()),
            policy: GrantPolicy::Cedar(
                r#"permit(principal, action == Action::"s3:GetObject", resource in Bucket::"pub");"#.into(),
            ),
        }])
        .unwrap();
    assert!(decide(&e, user("alice", &[]), Action::GetObject, obj("pub", "k")).allowed);
    assert!(!decide(&e, user("bob", &[]), Action::GetObject, obj("pub", "k")).allowed);
    assert!(!decide(&e, Principal::Anonymous, Action::GetObject, obj("pub", "k")).allowed);
}

#[test]
fn bad_policy_file_names_file_line_and_reason() {
    let mut files: Vec<PolicyFile> = fsgate_policy::BUILTIN_FILES
        .iter()
        .map(|(n, t)| PolicyFile {
            name: (*n).into(),
            text: (*t).into(),
        })
        .collect();
    files.push(PolicyFile {
        name: "extra.cedar".into(),
        text: "// ok\npermit(principal, action == Action::\"s3:NoSuchThing\", resource);\n".into(),
    });
    let err = PolicyEngine::load(&files).unwrap_err().to_string();
    assert!(err.starts_with("extra.cedar:2:"), "{err}");
    files.pop();
    files.push(PolicyFile {
        name: "syntax.cedar".into(),
        text: "\n\npermit(principal action, resource);".into(),
    });
    let err = PolicyEngine::load(&files).unwrap_err().to_string();
    assert!(err.starts_with("syntax.cedar:3:"), "{err}");
}

// The hot path skips per-request schema validation; this proves what it builds conforms, for
// every action with the resource kinds it is used with.
#[test]
fn requests_built_for_every_action_conform_to_the_schema() {
    let e = team_engine();
    for &action in fsgate_policy::ALL_ACTIONS {
        let mut resources = match action.resource_kind() {
            fsgate_policy::ResourceKind::Object => vec![obj("team", "home/carol/x")],
            fsgate_policy::ResourceKind::Bucket => vec![Resource::Bucket("team".into())],
            fsgate_policy::ResourceKind::Service => vec![Resource::Service],
            // Acting on itself (one User entity for both) and on someone else.
            fsgate_policy::ResourceKind::User => vec![
                Resource::User("carol".into()),
                Resource::User("dave".into()),
            ],
        };
        if action == Action::ListBuckets {
            resources.push(Resource::Bucket("team".into()));
        }
        for resource in resources {
            for principal in [
                user("carol", &["ops"]),
                Principal::User {
                    name: "carol".into(),
                    groups: vec!["ops".into()],
                    tags: vec![("department".into(), "finance".into())],
                },
                Principal::Root("r".into()),
                Principal::Anonymous,
            ] {
                let req = AccessRequest {
                    principal,
                    action,
                    resource: resource.clone(),
                    context: RequestContext {
                        prefix: Some("home/carol/".into()),
                        delimiter: Some("/".into()),
                        max_keys: Some(10),
                        ..ctx()
                    },
                    object_tags: vec![("class".into(), "secret".into())],
                    bucket_owner: None,
                };
                e.conforms(&req)
                    .unwrap_or_else(|err| panic!("{action:?} {resource:?}: {err}"));
            }
        }
    }
}

fn bucket_policy_engine(bucket: &str, doc: &str) -> PolicyEngine {
    let t = fsgate_policy::bucket_policy::translate(bucket, doc).unwrap();
    PolicyEngine::builtin()
        .unwrap()
        .with_bucket_policies(&[(bucket.into(), t.cedar)])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// An AWS public-read policy lets anyone read that bucket's objects and nothing else; its IP
/// condition and a Deny statement hold; root can always repair the policy.
#[test]
fn translated_bucket_policies_are_confined_to_their_bucket() {
    let e = bucket_policy_engine(
        "pub",
        r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"read","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"},
          {"Sid":"list-office","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::fsgate:user/alice"]},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::pub",
           "Condition":{"IpAddress":{"aws:SourceIp":"10.1.0.0/16"},"StringLike":{"s3:prefix":"docs/*"}}},
          {"Sid":"no-secrets","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::pub/secret/*"},
          {"Sid":"lock-policy","Effect":"Deny","Principal":"*","Action":"s3:PutBucketPolicy","Resource":"arn:aws:s3:::pub"}
        ]}"#,
    );
    let anon = Principal::Anonymous;
    assert!(decide(&e, anon.clone(), Action::GetObject, obj("pub", "a.txt")).allowed);
    assert!(decide(&e, anon.clone(), Action::HeadObject, obj("pub", "a.txt")).allowed);
    assert!(!decide(&e, anon.clone(), Action::GetObject, obj("other", "a.txt")).allowed);
    assert!(!decide(&e, anon.clone(), Action::PutObject, obj("pub", "a.txt")).allowed);
    let d = decide(&e, anon.clone(), Action::GetObject, obj("pub", "secret/x"));
    assert!(!d.allowed);
    assert!(
        d.policies.iter().all(|p| p.starts_with("bucket-pub-")),
        "{d:?}"
    );
    // Root is denied the secret objects too, but can still manage the policy.
    assert!(
        !decide(
            &e,
            Principal::Root("root".into()),
            Action::GetObject,
            obj("pub", "secret/x")
        )
        .allowed
    );
    assert!(
        decide(
            &e,
            Principal::Root("root".into()),
            Action::PutBucketPolicy,
            Resource::Bucket("pub".into())
        )
        .allowed
    );
    let listing = |who: Principal, ip: &str, prefix: &str| {
        e.decide(&AccessRequest {
            principal: who,
            action: Action::ListObjectsV2,
            resource: Resource::Bucket("pub".into()),
            context: RequestContext {
                source_ip: ip.parse().unwrap(),
                prefix: Some(prefix.into()),
                ..ctx()
            },
            object_tags: Vec::new(),
            bucket_owner: None,
        })
        .allowed
    };
    assert!(listing(user("alice", &[]), "10.1.9.9", "docs/2024/"));
    assert!(!listing(user("alice", &[]), "192.168.1.1", "docs/"));
    assert!(!listing(user("alice", &[]), "10.1.9.9", "private/"));
    assert!(!listing(user("bob", &[]), "10.1.9.9", "docs/"));
}

/// Regression: a Deny naming the account (`arn:aws:iam::<account>:root`) denied only root;
/// in AWS it covers every principal of the account. An Allow naming it grants users nothing.
#[test]
fn the_account_principal_in_a_deny_covers_every_user() {
    let e = PolicyEngine::builtin()
        .unwrap()
        .with_grants(&[role(
            "g1",
            GrantTarget::User("alice".into()),
            "readwrite",
            Some("acct"),
            None,
        )])
        .unwrap();
    let t = fsgate_policy::bucket_policy::translate(
        "acct",
        r#"{"Statement":[
          {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::acct/*"},
          {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::acct/open/*"}
        ]}"#,
    )
    .unwrap();
    let e = e.with_bucket_policies(&[("acct".into(), t.cedar)]).unwrap();
    let alice = user("alice", &[]);
    let federated = user("kc:alice", &["readers"]);
    assert!(decide(&e, alice.clone(), Action::PutObject, obj("acct", "k")).allowed);
    assert!(!decide(&e, alice, Action::DeleteObject, obj("acct", "k")).allowed);
    assert!(
        !decide(
            &e,
            federated.clone(),
            Action::DeleteObject,
            obj("acct", "k")
        )
        .allowed
    );
    assert!(
        !decide(
            &e,
            Principal::Root("root".into()),
            Action::DeleteObject,
            obj("acct", "k")
        )
        .allowed
    );
    // The Allow delegates to the account's grants: it gives bob (no grant) nothing.
    assert!(
        !decide(
            &e,
            user("bob", &[]),
            Action::GetObject,
            obj("acct", "open/x")
        )
        .allowed
    );
    assert!(!decide(&e, federated, Action::GetObject, obj("acct", "open/x")).allowed);
}

/// Regression: `DateNotEquals` with several values held when the time differed from any one
/// of them (OR); AWS: it holds when the time equals none of them.
#[test]
fn date_not_equals_with_several_values_is_and() {
    let now = ctx().now;
    let doc = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::d/*",
           "Condition":{{"DateNotEquals":{{"aws:CurrentTime":["{now}","{}"]}}}}}}]}}"#,
        now + 100
    );
    let e = bucket_policy_engine("d", &doc);
    assert!(!decide(&e, Principal::Anonymous, Action::GetObject, obj("d", "k")).allowed);
    let doc = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::d/*",
           "Condition":{{"DateNotEquals":{{"aws:CurrentTime":["{}","{}"]}}}}}}]}}"#,
        now + 50,
        now + 100
    );
    let e = bucket_policy_engine("d", &doc);
    assert!(decide(&e, Principal::Anonymous, Action::GetObject, obj("d", "k")).allowed);
}

/// Native Cedar bucket policies are confined to their bucket whatever they say.
#[test]
fn cedar_bucket_policies_cannot_reach_other_buckets() {
    let e = bucket_policy_engine("mine", r#"permit(principal, action, resource);"#);
    assert!(
        decide(
            &e,
            Principal::Anonymous,
            Action::DeleteObject,
            obj("mine", "k")
        )
        .allowed
    );
    assert!(
        !decide(
            &e,
            Principal::Anonymous,
            Action::DeleteObject,
            obj("yours", "k")
        )
        .allowed
    );
    assert!(
        !decide(
            &e,
            Principal::Anonymous,
            Action::ListBuckets,
            Resource::Service
        )
        .allowed
    );
    // Invalid Cedar is refused with the reason.
    let err = PolicyEngine::builtin()
        .unwrap()
        .with_bucket_policies(&[(
            "mine".into(),
            "permit(principal, action, resource) when { resource.nope };".into(),
        )])
        .unwrap_err();
    assert!(err.to_string().contains("mine"), "{err}");
}

fn access(principal: Principal, action: Action, resource: Resource) -> AccessRequest {
    AccessRequest {
        principal,
        action,
        resource,
        context: ctx(),
        object_tags: Vec::new(),
        bucket_owner: None,
    }
}

/// A limit (session or service account policy) only narrows: what it permits beyond the
/// principal's own rights stays denied, and what it does not permit is denied naming it.
#[test]
fn limits_only_narrow() {
    let e = team_engine();
    let read_only = e
        .limit(
            "session-x",
            "permit(principal, action in [Action::\"Read\"], resource);",
        )
        .unwrap();
    let everything = e
        .limit("session-y", "permit(principal, action, resource);")
        .unwrap();
    let carol = user("carol", &["ops"]);
    let get = Action::GetObject;
    let put = Action::PutObject;
    let own = obj("team", "home/carol/x");
    assert!(e.decide(&access(carol.clone(), put, own.clone())).allowed);
    let limited = carol.clone().limited(vec![read_only.clone()]);
    assert!(e.decide(&access(limited.clone(), get, own.clone())).allowed);
    let d = e.decide(&access(limited, put, own.clone()));
    assert!(!d.allowed);
    assert_eq!(d.policies, vec!["session-x:not-permitted".to_owned()]);
    // A permissive limit grants nothing the principal lacks.
    let other = obj("private", "x");
    assert!(!e.decide(&access(carol.clone(), put, other.clone())).allowed);
    let wide = carol.clone().limited(vec![everything.clone()]);
    assert!(!e.decide(&access(wide, put, other)).allowed);
    // Limits stack: every one must permit.
    let both = carol.limited(vec![everything, read_only]);
    assert!(!e.decide(&access(both, put, own)).allowed);
    // Invalid limits are refused when made.
    assert!(
        e.limit(
            "bad",
            "permit(principal, action == Action::\"nope\", resource);"
        )
        .is_err()
    );
    assert!(e.limit("empty", "").is_err());
}

/// Users manage their own service accounts by default, nobody else's.
#[test]
fn users_manage_only_their_own_service_accounts() {
    let e = team_engine();
    let carol = user("carol", &["ops"]);
    for a in [
        Action::AdminCreateServiceAccount,
        Action::AdminListServiceAccounts,
        Action::AdminDeleteServiceAccount,
    ] {
        assert!(
            e.decide(&access(carol.clone(), a, Resource::User("carol".into())))
                .allowed,
            "{a:?}"
        );
        assert!(
            !e.decide(&access(carol.clone(), a, Resource::User("dave".into())))
                .allowed,
            "{a:?}"
        );
        assert!(
            !e.decide(&access(
                Principal::Anonymous,
                a,
                Resource::User("carol".into())
            ))
            .allowed
        );
    }
    // STS for users, not for anonymous callers.
    assert!(
        e.decide(&access(carol, Action::StsAssumeRole, Resource::Service))
            .allowed
    );
    assert!(
        !e.decide(&access(
            Principal::Anonymous,
            Action::StsAssumeRole,
            Resource::Service
        ))
        .allowed
    );
}

/// A mixed scenario: grants on users, groups, buckets and prefixes, custom Cedar grants
/// (permit and forbid) and bucket policies (permit, forbid, anonymous).
fn scenario() -> (Vec<Grant>, Vec<(String, String)>) {
    let mut grants = team_grants();
    grants.push(role(
        "adm",
        GrantTarget::Group("admins".into()),
        "admin",
        None,
        None,
    ));
    grants.push(Grant {
        id: "no-secrets".into(),
        target: GrantTarget::Group("ops".into()),
        policy: GrantPolicy::Cedar(
            "forbid(principal, action, resource) when { resource is Object && resource.key like \"secret/*\" };".into(),
        ),
    });
    grants.push(Grant {
        id: "dave-put".into(),
        target: GrantTarget::User("dave".into()),
        policy: GrantPolicy::Cedar(
            "permit(principal, action == Action::\"s3:PutObject\", resource in Bucket::\"drop\");"
                .into(),
        ),
    });
    let docs = vec![
        (
            "public".to_owned(),
            "permit(principal, action == Action::\"s3:GetObject\", resource);".to_owned(),
        ),
        (
            "team".to_owned(),
            "forbid(principal, action == Action::\"s3:DeleteObject\", resource) unless { principal is Root };".to_owned(),
        ),
        // Scopes naming one principal, a principal type and an action group: the per-request
        // slicing of the policy set must keep each exactly where it can apply.
        (
            "drop".to_owned(),
            concat!(
                "forbid(principal == User::\"dave\", action in Action::\"Read\", resource);\n",
                "permit(principal is Anonymous, action in [Action::\"List\", Action::\"s3:HeadObject\"], resource);\n",
                "forbid(principal is Root, action == Action::\"s3:PutObjectTagging\", resource);",
            )
            .to_owned(),
        ),
    ];
    (grants, docs)
}

/// Every principal × action × resource of the scenario that fits the action's resource kind.
fn scenario_requests() -> Vec<AccessRequest> {
    let principals = [
        user("alice", &[]),
        user("bob", &["ops"]),
        user("carol", &["ops", "admins"]),
        user("dave", &[]),
        user("erin", &["nobody"]),
        Principal::Root("root".into()),
        Principal::Anonymous,
    ];
    let resources = [
        obj("team", "home/carol/x"),
        obj("team", "secret/plan"),
        obj("public", "index.html"),
        obj("drop", "in"),
        obj("other", "x"),
        Resource::Bucket("team".into()),
        Resource::Bucket("public".into()),
        Resource::Service,
        Resource::User("alice".into()),
    ];
    let mut out = Vec::new();
    for p in &principals {
        for &action in fsgate_policy::ALL_ACTIONS {
            for r in &resources {
                let kind_fits = matches!(
                    (action.resource_kind(), r),
                    (fsgate_policy::ResourceKind::Object, Resource::Object { .. })
                        | (fsgate_policy::ResourceKind::Bucket, Resource::Bucket(_))
                        | (fsgate_policy::ResourceKind::Service, Resource::Service)
                        | (fsgate_policy::ResourceKind::User, Resource::User(_))
                );
                if kind_fits {
                    out.push(AccessRequest {
                        principal: p.clone(),
                        action,
                        resource: r.clone(),
                        context: ctx(),
                        object_tags: Vec::new(),
                        bucket_owner: None,
                    });
                }
            }
        }
    }
    assert!(out.len() > 500, "{}", out.len());
    out
}

/// The index (a request is decided against the file policies, its user's and groups' grants
/// and its bucket's policies only) decides exactly as the whole set across the scenario.
#[test]
fn the_index_decides_as_the_whole_set() {
    let (grants, docs) = scenario();
    let e = engine_of(&grants, &docs);
    for req in scenario_requests() {
        decides_as_the_whole_set(&e, &req);
    }
}

/// An engine with the built-in policies, `grants` and the bucket policies `docs`.
fn engine_of(grants: &[Grant], docs: &[(String, String)]) -> PolicyEngine {
    PolicyEngine::builtin()
        .unwrap()
        .with_grants(grants)
        .unwrap()
        .with_bucket_policies(docs)
        .unwrap()
}

/// Requires `e` to decide `req` (indexed, and kept when it may be) as the whole set does.
fn decides_as_the_whole_set(e: &PolicyEngine, req: &AccessRequest) {
    let got = e.decide(req);
    let whole = e.decide_unindexed(req);
    assert_eq!(
        (got.allowed, &got.policies),
        (whole.allowed, &whole.policies),
        "{req:?}"
    );
}

/// A decision is kept per worker thread when the request's policies decide all of a bucket's
/// objects alike; a kept decision never stands in for one that reads the key, the context or
/// a policy that has since changed.
#[test]
fn kept_decisions_stay_within_what_the_policies_read() {
    let (mut grants, docs) = scenario();
    grants.push(Grant {
        id: "erin-office".into(),
        target: GrantTarget::User("erin".into()),
        policy: GrantPolicy::Cedar(
            "permit(principal, action == Action::\"s3:GetObject\", resource in Bucket::\"team\") when { context.source_ip.isInRange(ip(\"10.0.0.0/8\")) };".into(),
        ),
    });
    let e = engine_of(&grants, &docs);
    // Every scenario request, forwards and backwards, so each follows others on its bucket.
    let reqs = scenario_requests();
    for req in reqs.iter().chain(reqs.iter().rev()) {
        decides_as_the_whole_set(&e, req);
    }
    let get = |p: Principal, key: &str, ip: &str| AccessRequest {
        principal: p,
        action: Action::GetObject,
        resource: obj("team", key),
        context: RequestContext {
            source_ip: ip.parse().unwrap(),
            ..ctx()
        },
        object_tags: Vec::new(),
        bucket_owner: None,
    };
    // Pairs decided one after the other, twice over, each allowed then denied: a condition on
    // the key (ops may read team's objects, except under secret/), one on the context (erin
    // reads team only from 10.0.0.0/8) and a prefix grant (carol's rights end at home/carol/).
    let pairs = [
        (
            user("bob", &["ops"]),
            ("home/x", "10.1.2.3"),
            ("secret/x", "10.1.2.3"),
        ),
        (
            user("erin", &["nobody"]),
            ("a", "10.9.9.9"),
            ("a", "192.168.1.1"),
        ),
        (
            user("carol", &[]),
            ("home/carol/a", "10.1.2.3"),
            ("home/dave/a", "10.1.2.3"),
        ),
    ];
    for (p, (yes_key, yes_ip), (no_key, no_ip)) in &pairs {
        for _ in 0..2 {
            assert!(
                e.decide(&get(p.clone(), yes_key, yes_ip)).allowed,
                "{p:?} {yes_key}"
            );
            assert!(
                !e.decide(&get(p.clone(), no_key, no_ip)).allowed,
                "{p:?} {no_key}"
            );
        }
    }
    // Bucket-wide grants: alice's decision is the same for every key, and is kept; taking the
    // grant away makes a new engine, which decides afresh.
    assert!(e.decide(&get(user("alice", &[]), "k1", "10.1.2.3")).allowed);
    assert!(
        e.decide(&get(user("alice", &[]), "k2", "192.168.1.1"))
            .allowed
    );
    let revoked = e
        .with_changes(&Changes {
            removed_grants: vec!["alice-rw".into()],
            ..Changes::default()
        })
        .unwrap();
    assert!(
        !revoked
            .decide(&get(user("alice", &[]), "k1", "10.1.2.3"))
            .allowed
    );
    assert!(e.decide(&get(user("alice", &[]), "k1", "10.1.2.3")).allowed);
    // The same name with other groups is another principal.
    assert!(
        e.decide(&get(user("dave", &["ops"]), "k", "10.1.2.3"))
            .allowed
    );
    assert!(!e.decide(&get(user("dave", &[]), "k", "10.1.2.3")).allowed);
}

/// Requires `changed` (an engine changed in place) to decide every scenario request as
/// `rebuilt` (built from scratch with the same grants and bucket policies), indexed and whole.
fn same_decisions(changed: &PolicyEngine, rebuilt: &PolicyEngine) {
    let mut ids = changed.policy_ids();
    let mut want = rebuilt.policy_ids();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
    for req in scenario_requests() {
        let want = rebuilt.decide(&req);
        for got in [changed.decide(&req), changed.decide_unindexed(&req)] {
            assert_eq!(
                (got.allowed, &got.policies),
                (want.allowed, &want.policies),
                "{req:?}"
            );
        }
    }
}

/// The admin API changes the engine one grant or bucket policy at a time
/// (`PolicyEngine::with_changes`, validating only what is new): after any sequence of
/// additions, replacements and removals it decides exactly as an engine rebuilt from the
/// resulting grants and bucket policies, and a change that does not validate changes nothing.
#[test]
fn incremental_changes_decide_as_a_rebuild() {
    let base = PolicyEngine::builtin().unwrap();
    let (grants, docs) = scenario();
    let mut e = base.clone();
    for g in &grants {
        e = e
            .with_changes(&Changes {
                grants: vec![g.clone()],
                ..Changes::default()
            })
            .unwrap();
    }
    for (b, t) in &docs {
        e = e
            .with_changes(&Changes {
                bucket_policies: vec![(b.clone(), Some(t.clone()))],
                ..Changes::default()
            })
            .unwrap();
    }
    let rebuilt = base
        .with_grants(&grants)
        .unwrap()
        .with_bucket_policies(&docs)
        .unwrap();
    same_decisions(&e, &rebuilt);

    // Remove the prefix grant and a Cedar forbid, replace a role, drop one bucket policy and
    // put a new one in.
    let bob_rw = role(
        "bob-ro",
        GrantTarget::User("bob".into()),
        "readwrite",
        Some("team"),
        None,
    );
    let drop_doc = "permit(principal, action == Action::\"s3:GetObject\", resource);".to_owned();
    let e = e
        .with_changes(&Changes {
            removed_grants: vec!["carol-home".into(), "no-secrets".into()],
            grants: vec![bob_rw.clone()],
            bucket_policies: vec![
                ("team".into(), None),
                ("drop".into(), Some(drop_doc.clone())),
            ],
            ..Changes::default()
        })
        .unwrap();
    let grants2: Vec<Grant> = grants
        .iter()
        .filter(|g| !["carol-home", "no-secrets", "bob-ro"].contains(&g.id.as_str()))
        .cloned()
        .chain([bob_rw])
        .collect();
    let docs2 = vec![docs[0].clone(), ("drop".to_owned(), drop_doc)];
    let rebuilt2 = base
        .with_grants(&grants2)
        .unwrap()
        .with_bucket_policies(&docs2)
        .unwrap();
    same_decisions(&e, &rebuilt2);

    // Invalid additions are refused with the reason; the engine they were applied to is as it was.
    let bad = Changes {
        grants: vec![Grant {
            id: "bad".into(),
            target: GrantTarget::User("alice".into()),
            policy: GrantPolicy::Cedar(
                "permit(principal, action, resource) when { resource.nope };".into(),
            ),
        }],
        ..Changes::default()
    };
    let err = e.with_changes(&bad).unwrap_err().to_string();
    assert!(err.contains("att-bad"), "{err}");
    let bad_doc = Changes {
        bucket_policies: vec![(
            "team".into(),
            Some("permit(principal, action, resource) when { context.nope };".into()),
        )],
        ..Changes::default()
    };
    let err = e.with_changes(&bad_doc).unwrap_err().to_string();
    assert!(err.contains("bucket"), "{err}");
    same_decisions(&e, &rebuilt2);
}

/// `aws:PrincipalTag/<key>` reads the tags a user's session carries (OIDC or LDAP claims), and
/// `...IfExists` holds when the key is absent: a listing without a prefix, a user without the
/// tag; the plain operator does not.
#[test]
fn principal_tags_and_if_exists_conditions_decide() {
    let e = bucket_policy_engine(
        "team",
        r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"finance","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"StringEquals":{"aws:PrincipalTag/department":"finance"}}},
          {"Sid":"list","Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::team",
           "Condition":{"StringLikeIfExists":{"s3:prefix":"pub/*"},"NumericLessThanEqualsIfExists":{"s3:max-keys":"100"}}},
          {"Sid":"no-guests","Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"StringEquals":{"aws:PrincipalTag/role":"guest"}}}
        ]}"#,
    );
    let tagged = |tags: &[(&str, &str)]| Principal::User {
        name: "erin".into(),
        groups: Vec::new(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    let get = |p: Principal| decide(&e, p, Action::GetObject, obj("team", "a.txt")).allowed;
    assert!(get(tagged(&[("department", "finance")])));
    assert!(!get(tagged(&[("department", "sales")])));
    assert!(!get(tagged(&[])));
    assert!(!get(Principal::Anonymous));
    // The deny binds only users whose "role" tag is "guest".
    assert!(!get(tagged(&[
        ("department", "finance"),
        ("role", "guest")
    ])));
    assert!(get(tagged(&[("department", "finance"), ("role", "staff")])));
    let list = |prefix: Option<&str>, max_keys: Option<i64>| {
        e.decide(&AccessRequest {
            principal: Principal::Anonymous,
            action: Action::ListObjectsV2,
            resource: Resource::Bucket("team".into()),
            context: RequestContext {
                prefix: prefix.map(str::to_owned),
                max_keys,
                ..ctx()
            },
            object_tags: Vec::new(),
            bucket_owner: None,
        })
        .allowed
    };
    assert!(list(None, None));
    assert!(list(Some("pub/x"), Some(100)));
    assert!(!list(Some("private/"), None));
    assert!(!list(Some("pub/"), Some(1000)));
}

/// `s3:VersionId` reads the version a request names; a request naming none has no such key.
#[test]
fn version_id_conditions_decide() {
    let e = bucket_policy_engine(
        "team",
        r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"read","Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:GetObjectVersion"],"Resource":"arn:aws:s3:::team/*"},
          {"Sid":"hide-v1","Effect":"Deny","Principal":"*","Action":"s3:GetObjectVersion","Resource":"arn:aws:s3:::team/*",
           "Condition":{"StringEquals":{"s3:VersionId":"v1"}}}
        ]}"#,
    );
    let get = |action: Action, version: Option<&str>| {
        e.decide(&AccessRequest {
            principal: Principal::Anonymous,
            action,
            resource: obj("team", "a.txt"),
            context: RequestContext {
                version_id: version.map(str::to_owned),
                ..ctx()
            },
            object_tags: Vec::new(),
            bucket_owner: None,
        })
        .allowed
    };
    assert!(!get(Action::GetObjectVersion, Some("v1")));
    assert!(get(Action::GetObjectVersion, Some("v2")));
    assert!(get(Action::GetObject, None));
}

/// AWS's usual "encrypted uploads only" policy: a Deny on `s3:x-amz-server-side-encryption`
/// other than AES256, and a Deny when the header is missing (`Null`).
#[test]
fn encryption_header_conditions_decide() {
    let e = bucket_policy_engine(
        "team",
        r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"write","Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*"},
          {"Sid":"wrong","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"AES256"}}},
          {"Sid":"missing","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"Null":{"s3:x-amz-server-side-encryption":"true"}}}
        ]}"#,
    );
    let put = |sse: Option<&str>| {
        e.decide(&AccessRequest {
            principal: Principal::Anonymous,
            action: Action::PutObject,
            resource: obj("team", "a.txt"),
            context: RequestContext {
                server_side_encryption: sse.map(str::to_owned),
                ..ctx()
            },
            object_tags: Vec::new(),
            bucket_owner: None,
        })
        .allowed
    };
    assert!(put(Some("AES256")));
    assert!(!put(Some("aws:kms")));
    assert!(!put(None));
    let refused = fsgate_policy::bucket_policy::translate(
        "team",
        r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"Null":{"s3:x-amz-server-side-encryption":"maybe"}}}]}"#,
    );
    assert!(refused.is_err());
}

/// ACL grants decide as AWS documents each permission, for the grantee only, on their bucket
/// or object only; AuthenticatedUsers excludes anonymous callers; a bucket policy's Deny
/// still wins; taking an ACL out takes its grants out.
#[test]
fn acl_grants_decide() {
    use fsgate_policy::{AclChange, AclGrant, AclGrantee, AclPermission};
    let grant = |grantee, permission| AclGrant {
        grantee,
        permission,
    };
    let base = PolicyEngine::builtin().unwrap();
    let e = base
        .with_changes(&Changes {
            acls: vec![
                AclChange::Set {
                    bucket: "shared".into(),
                    key: None,
                    grants: vec![
                        grant(AclGrantee::User("bob".into()), AclPermission::Read),
                        grant(AclGrantee::AuthenticatedUsers, AclPermission::Write),
                    ],
                },
                AclChange::Set {
                    bucket: "shared".into(),
                    key: Some("pub".into()),
                    grants: vec![grant(AclGrantee::AllUsers, AclPermission::Read)],
                },
                AclChange::Set {
                    bucket: "shared".into(),
                    key: Some("mine".into()),
                    grants: Vec::new(),
                },
            ],
            ..Changes::default()
        })
        .unwrap();
    let bob = || user("bob", &[]);
    let carol = || user("carol", &[]);
    let bucket = || Resource::Bucket("shared".into());
    assert!(decide(&e, bob(), Action::ListObjectsV2, bucket()).allowed);
    assert!(!decide(&e, carol(), Action::ListObjectsV2, bucket()).allowed);
    assert!(!decide(&e, bob(), Action::GetBucketAcl, bucket()).allowed);
    assert!(
        !decide(
            &e,
            bob(),
            Action::ListObjectsV2,
            Resource::Bucket("other".into())
        )
        .allowed
    );
    // WRITE to authenticated users: any signed caller writes, anonymous does not.
    assert!(decide(&e, carol(), Action::PutObject, obj("shared", "x")).allowed);
    assert!(
        !decide(
            &e,
            Principal::Anonymous,
            Action::PutObject,
            obj("shared", "x")
        )
        .allowed
    );
    assert!(!decide(&e, carol(), Action::GetObject, obj("shared", "x")).allowed);
    // The object's READ to everyone: that object only.
    let d = decide(
        &e,
        Principal::Anonymous,
        Action::GetObject,
        obj("shared", "pub"),
    );
    assert!(d.allowed);
    assert_eq!(d.policies, vec!["acl:shared/pub#0".to_owned()]);
    assert!(
        !decide(
            &e,
            Principal::Anonymous,
            Action::GetObject,
            obj("shared", "pubx")
        )
        .allowed
    );
    assert!(
        !decide(
            &e,
            Principal::Anonymous,
            Action::PutObjectAcl,
            obj("shared", "pub")
        )
        .allowed
    );
    assert!(e.has_object_acl("shared", "mine") && e.has_object_acl("shared", "pub"));
    assert!(!e.has_object_acl("shared", "x"));
    decides_as_the_whole_set(
        &e,
        &access(
            Principal::Anonymous,
            Action::GetObject,
            obj("shared", "pub"),
        ),
    );

    // A bucket policy's Deny wins over an ACL grant.
    let denied = e
        .with_changes(&Changes {
            bucket_policies: vec![(
                "shared".into(),
                Some(r#"forbid(principal, action, resource);"#.into()),
            )],
            ..Changes::default()
        })
        .unwrap();
    assert!(!decide(&denied, bob(), Action::ListObjectsV2, bucket()).allowed);

    // Taken out: the object's, then the whole bucket's.
    let e = e
        .with_changes(&Changes {
            acls: vec![AclChange::Remove {
                bucket: "shared".into(),
                key: "pub".into(),
            }],
            ..Changes::default()
        })
        .unwrap();
    assert!(
        !decide(
            &e,
            Principal::Anonymous,
            Action::GetObject,
            obj("shared", "pub")
        )
        .allowed
    );
    assert!(decide(&e, bob(), Action::ListObjectsV2, bucket()).allowed);
    let e = e
        .with_changes(&Changes {
            acls: vec![AclChange::DropBucket("shared".into())],
            ..Changes::default()
        })
        .unwrap();
    assert!(!decide(&e, bob(), Action::ListObjectsV2, bucket()).allowed);
    assert!(!e.has_object_acl("shared", "mine"));
}

/// The owner role: full control of the buckets the user owns and their objects, creating
/// buckets, nothing of anyone else's.
#[test]
fn the_owner_role_gives_a_user_their_own_buckets() {
    let base = PolicyEngine::builtin().unwrap();
    assert!(!base.uses_bucket_owners());
    let e = base
        .with_grants(&[role(
            "tenants",
            GrantTarget::Group("tenants".into()),
            "owner",
            None,
            None,
        )])
        .unwrap();
    assert!(e.uses_bucket_owners());
    let ask = |who: &str, action: Action, resource: Resource, owner: Option<&str>| {
        let req = AccessRequest {
            bucket_owner: owner.map(str::to_owned),
            ..access(user(who, &["tenants"]), action, resource)
        };
        decides_as_the_whole_set(&e, &req);
        e.decide(&req).allowed
    };
    let bucket = || Resource::Bucket("alices".into());
    let object = || obj("alices", "k");
    for a in [
        Action::PutBucketPolicy,
        Action::ListObjectsV2,
        Action::DeleteBucket,
    ] {
        assert!(ask("alice", a, bucket(), Some("alice")), "{a:?}");
        assert!(!ask("bob", a, bucket(), Some("alice")), "{a:?}");
    }
    for a in [Action::GetObject, Action::PutObject, Action::PutObjectAcl] {
        assert!(ask("alice", a, object(), Some("alice")), "{a:?}");
        assert!(!ask("bob", a, object(), Some("alice")), "{a:?}");
    }
    // Creating any bucket (a taken name is the handler's BucketAlreadyExists).
    assert!(ask("alice", Action::CreateBucket, bucket(), None));
    assert!(ask("bob", Action::CreateBucket, bucket(), Some("alice")));
    assert!(!ask("alice", Action::GetObject, object(), None));
    // Nothing on the service, and nothing for a user outside the group.
    assert!(!ask("alice", Action::ListBuckets, Resource::Service, None));
    let outsider = AccessRequest {
        bucket_owner: Some("carol".into()),
        ..access(user("carol", &[]), Action::GetObject, obj("carols", "k"))
    };
    assert!(!e.decide(&outsider).allowed);
    // Removing the role turns owner reads off again.
    let e = e
        .with_changes(&Changes {
            removed_grants: vec!["tenants".into()],
            ..Changes::default()
        })
        .unwrap();
    assert!(!e.uses_bucket_owners());
}

/// The request-header condition keys: translated to the context attribute of each header,
/// absent when the request lacks it (so `...IfExists` and `Null` hold as AWS evaluates them),
/// and every header conforms to the schema.
#[test]
fn request_header_conditions_decide() {
    use fsgate_policy::RequestHeaders;
    let e = bucket_policy_engine(
        "team",
        r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"w","Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"StringEquals":{"s3:x-amz-acl":"bucket-owner-full-control"}}},
          {"Sid":"src","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"Null":{"s3:x-amz-copy-source":"false"},"StringNotLike":{"s3:x-amz-copy-source":"team/public/*"}}},
          {"Sid":"meta","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"StringEquals":{"s3:x-amz-metadata-directive":"REPLACE"}}},
          {"Sid":"ua","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"StringLike":{"aws:UserAgent":"*curl*"}}},
          {"Sid":"g","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"Null":{"s3:x-amz-grant-read":"false"}}}
        ]}"#,
    );
    let ask = |action: Action, headers: RequestHeaders| {
        let req = AccessRequest {
            context: RequestContext { headers, ..ctx() },
            ..access(Principal::Anonymous, action, obj("team", "k"))
        };
        e.conforms(&req).unwrap();
        e.decide(&req).allowed
    };
    let acl = |a: &str| RequestHeaders {
        acl: Some(a.into()),
        ..RequestHeaders::default()
    };
    assert!(ask(Action::PutObject, acl("bucket-owner-full-control")));
    assert!(!ask(Action::PutObject, acl("public-read")));
    assert!(!ask(Action::PutObject, RequestHeaders::default()));
    assert!(!ask(
        Action::PutObject,
        RequestHeaders {
            user_agent: Some("curl/8.0".into()),
            ..acl("bucket-owner-full-control")
        }
    ));
    assert!(!ask(
        Action::PutObject,
        RequestHeaders {
            grant_read: Some("id=x".into()),
            ..acl("bucket-owner-full-control")
        }
    ));
    let copy = |src: &str, directive: Option<&str>| RequestHeaders {
        copy_source: Some(src.into()),
        metadata_directive: directive.map(Into::into),
        ..acl("bucket-owner-full-control")
    };
    assert!(ask(Action::CopyObject, copy("team/public/a", None)));
    assert!(ask(Action::CopyObject, copy("team/public/a", Some("COPY"))));
    assert!(!ask(
        Action::CopyObject,
        copy("team/public/a", Some("REPLACE"))
    ));
    assert!(!ask(Action::CopyObject, copy("team/private/a", None)));
    // Every header at once conforms to the schema.
    let all = RequestHeaders {
        sse_kms_key_id: Some("k".into()),
        sse_customer_algorithm: Some("AES256".into()),
        grant_write: Some("x".into()),
        grant_read_acp: Some("x".into()),
        grant_write_acp: Some("x".into()),
        grant_full_control: Some("x".into()),
        referer: Some("https://example.com/".into()),
        ..copy("team/public/a", Some("COPY"))
    };
    ask(Action::CopyObject, all);
    // A multivalued key with a single-valued operator is refused, naming the key.
    let refused = fsgate_policy::bucket_policy::translate(
        "team",
        r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"StringEquals":{"s3:RequestObjectTagKeys":"x"}}}]}"#,
    )
    .unwrap_err();
    assert!(
        refused.to_string().contains("s3:RequestObjectTagKeys"),
        "{refused}"
    );
}

/// s3:RequestObjectTag/<key> and s3:RequestObjectTagKeys decide by the tags a write asks for.
#[test]
fn request_tag_conditions_decide() {
    use fsgate_policy::RequestHeaders;
    let e = bucket_policy_engine(
        "team",
        r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"w","Effect":"Allow","Principal":"*","Action":["s3:PutObject","s3:PutObjectTagging"],"Resource":"arn:aws:s3:::team/*",
           "Condition":{"StringLike":{"s3:RequestObjectTag/class":"pub*"},
                        "ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["class","owner"]}}},
          {"Sid":"d","Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::team/*",
           "Condition":{"ForAnyValue:StringEquals":{"s3:RequestObjectTagKeys":["secret"]}}}
        ]}"#,
    );
    let ask = |action: Action, tags: Option<&[(&str, &str)]>| {
        let headers = RequestHeaders {
            request_tags: tags.map(|t| {
                t.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            }),
            ..RequestHeaders::default()
        };
        let req = AccessRequest {
            context: RequestContext { headers, ..ctx() },
            ..access(Principal::Anonymous, action, obj("team", "k"))
        };
        e.conforms(&req).unwrap();
        decides_as_the_whole_set(&e, &req);
        e.decide(&req).allowed
    };
    assert!(ask(Action::PutObject, Some(&[("class", "public")])));
    assert!(ask(
        Action::PutObjectTagging,
        Some(&[("class", "public"), ("owner", "x")])
    ));
    assert!(!ask(Action::PutObject, Some(&[("class", "private")])));
    assert!(!ask(
        Action::PutObject,
        Some(&[("class", "public"), ("other", "x")])
    ));
    assert!(!ask(
        Action::PutObject,
        Some(&[("class", "public"), ("secret", "x")])
    ));
    assert!(!ask(Action::PutObject, None));
}

/// AWS IAM JSON identity policies: attached to users (several statements become several
/// Cedar policies, all taken out with the grant) and as limits, over any bucket's resources.
#[test]
fn iam_json_identity_policies_decide() {
    let doc = r#"{"Version":"2012-10-17","Statement":[
      {"Sid":"read","Effect":"Allow","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::team/reports/*"},
      {"Sid":"list","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::team"},
      {"Sid":"all","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::*/public/*"},
      {"Sid":"no","Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::team/reports/secret*"}
    ]}"#;
    let base = PolicyEngine::builtin().unwrap();
    let e = base
        .with_grants(&[Grant {
            id: "iam".into(),
            target: GrantTarget::User("alice".into()),
            policy: GrantPolicy::Cedar(doc.into()),
        }])
        .unwrap();
    let alice = || user("alice", &[]);
    assert!(
        decide(
            &e,
            alice(),
            Action::GetObject,
            obj("team", "reports/q3.pdf")
        )
        .allowed
    );
    assert!(
        !decide(
            &e,
            alice(),
            Action::GetObject,
            obj("team", "reports/secret.pdf")
        )
        .allowed
    );
    assert!(
        !decide(
            &e,
            alice(),
            Action::GetObject,
            obj("other", "reports/q3.pdf")
        )
        .allowed
    );
    assert!(decide(&e, alice(), Action::GetObject, obj("other", "public/x")).allowed);
    assert!(
        decide(
            &e,
            alice(),
            Action::ListObjectsV2,
            Resource::Bucket("team".into())
        )
        .allowed
    );
    assert!(
        !decide(
            &e,
            alice(),
            Action::ListObjectsV2,
            Resource::Bucket("other".into())
        )
        .allowed
    );
    assert!(
        !decide(
            &e,
            user("bob", &[]),
            Action::GetObject,
            obj("team", "reports/q3.pdf")
        )
        .allowed
    );
    assert!(
        e.policy_ids()
            .iter()
            .filter(|id| id.starts_with("att-iam"))
            .count()
            == 4
    );
    let e = e
        .with_changes(&Changes {
            removed_grants: vec!["iam".into()],
            ..Changes::default()
        })
        .unwrap();
    assert!(!e.policy_ids().iter().any(|id| id.starts_with("att-iam")));
    assert!(!decide(&e, alice(), Action::GetObject, obj("other", "public/x")).allowed);
    // Refused, naming the element: a Principal, a wildcard bucket name.
    for bad in [
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::team*"}]}"#,
    ] {
        let err = base
            .with_grants(&[Grant {
                id: "bad".into(),
                target: GrantTarget::User("alice".into()),
                policy: GrantPolicy::Cedar(bad.into()),
            }])
            .unwrap_err();
        assert!(
            err.to_string().contains("Principal") || err.to_string().contains("team*"),
            "{err}"
        );
    }
    // As a limit (a session or service account policy): only narrows.
    let limit = base
        .limit(
            "sess",
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::team/*"}]}"#,
        )
        .unwrap();
    let rw = base
        .with_grants(&[role(
            "rw",
            GrantTarget::User("alice".into()),
            "readwrite",
            None,
            None,
        )])
        .unwrap();
    let limited = || alice().limited(vec![limit.clone()]);
    assert!(decide(&rw, limited(), Action::GetObject, obj("team", "a")).allowed);
    assert!(!decide(&rw, limited(), Action::PutObject, obj("team", "a")).allowed);
    assert!(!decide(&rw, limited(), Action::GetObject, obj("other", "a")).allowed);
}
