//! A request's policy set: the file policies and the indexed grants and bucket policies that
//! can apply to one (principal, groups, bucket, action), less those whose scope cannot match;
//! and whether it decides every object of the bucket alike (`bucket_wide`).

use std::collections::HashMap;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Entities, EntityUid, Policy, PolicySet, PrincipalConstraint,
    ResourceConstraint,
};

use crate::actions::Action;

use super::Types;

/// Assembled request sets, by (principal, groups, bucket, action). Dropped with the engine,
/// which is rebuilt on every change; cleared when it holds `SET_CACHE_MAX` entries.
pub(super) type SetCache = std::sync::Mutex<HashMap<SetKey, Arc<RequestSet>>>;
pub(super) type SetKey = (EntityUid, Vec<String>, String, Action);
pub(super) const SET_CACHE_MAX: usize = 16_384;

/// The policies that can apply to one (principal, groups, bucket, action), and whether they
/// decide every object of the bucket alike.
#[derive(Debug)]
pub(super) struct RequestSet {
    pub(super) policies: PolicySet,
    /// Every policy is `bucket_wide`: an object request's decision depends only on who asks,
    /// the action and the bucket, so it is kept (`decisions`) and reused for other keys.
    pub(super) bucket_wide: bool,
}

/// True when `p` decides an object request the same whatever the object's key, tags and
/// prefixes and whatever the request's context: its resource scope names nothing below a
/// bucket, and its conditions read neither `context` nor `resource`, except to test
/// `resource in` a bucket or the service (what fsgate appends to bucket policies). Anything
/// else, or a policy that cannot be read back as JSON, is taken to depend on the object.
pub(super) fn bucket_wide(p: &Policy, types: &Types) -> bool {
    let above_object =
        |u: &EntityUid| u.type_name() == &types.bucket || u.type_name() == &types.service;
    let scope = match p.resource_constraint() {
        ResourceConstraint::Any | ResourceConstraint::Is(_) => true,
        ResourceConstraint::In(u) | ResourceConstraint::Eq(u) | ResourceConstraint::IsIn(_, u) => {
            above_object(&u)
        }
    };
    if !scope {
        return false;
    }
    if !p.has_non_scope_constraint() {
        return true;
    }
    let Ok(json) = p.to_json() else {
        return false;
    };
    let above = [types.bucket.to_string(), types.service.to_string()];
    json.get("conditions")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|conds| {
            conds.iter().all(|c| {
                c.get("body")
                    .is_some_and(|b| !reads_request_facts(b, &above))
            })
        })
}

/// Whether a condition (Cedar's JSON form) reads `context`, or `resource` other than as
/// `resource in <entity of a type in above>` or its owner (`resource.owner`, `resource has
/// owner`: a bucket's, the same for every object in it).
fn reads_request_facts(e: &serde_json::Value, above: &[String]) -> bool {
    use serde_json::Value;
    match e {
        Value::Object(m) => {
            if let Some(Value::String(var)) = m.get("Var") {
                return var == "resource" || var == "context";
            }
            // An object's owner is its bucket's: reading it tells no two objects apart.
            for op in ["has", "."] {
                if let Some(Value::Object(e)) = m.get(op)
                    && m.len() == 1
                    && e.get("left") == Some(&serde_json::json!({"Var": "resource"}))
                    && e.get("attr").and_then(Value::as_str) == Some("owner")
                {
                    return false;
                }
            }
            if let Some(Value::Object(op)) = m.get("in")
                && m.len() == 1
                && op.get("left") == Some(&serde_json::json!({"Var": "resource"}))
                && op
                    .get("right")
                    .and_then(|r| r.get("Value"))
                    .and_then(|v| v.get("__entity"))
                    .and_then(|v| v.get("type"))
                    .and_then(Value::as_str)
                    .is_some_and(|t| above.iter().any(|a| a == t))
            {
                return false;
            }
            m.values().any(|v| reads_request_facts(v, above))
        }
        Value::Array(a) => a.iter().any(|v| reads_request_facts(v, above)),
        _ => false,
    }
}

/// False only when `p`'s scope cannot match: a principal `==` another entity or `is` another
/// type, or an action that is neither the request's action nor one of its groups. `in` an
/// entity other than an action group is left to Cedar (group membership is the request's).
pub(super) fn scope_may_match(
    p: &Policy,
    principal: &EntityUid,
    action: &EntityUid,
    action_groups: Option<&Entities>,
) -> bool {
    let principal_ok = match p.principal_constraint() {
        PrincipalConstraint::Any | PrincipalConstraint::In(_) => true,
        PrincipalConstraint::Eq(u) => &u == principal,
        PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => &t == principal.type_name(),
    };
    // Without the action's groups at hand (never expected), assume any `in` may match.
    let action_in = |group: &EntityUid| {
        group == action || action_groups.is_none_or(|e| e.is_ancestor_of(group, action))
    };
    let action_ok = match p.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => &a == action,
        ActionConstraint::In(groups) => groups.iter().any(action_in),
    };
    principal_ok && action_ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    pub(super) fn wide(text: &str) -> bool {
        let p = Policy::parse(None, text).unwrap();
        bucket_wide(&p, &Types::new().unwrap())
    }

    /// What the per-thread decisions may be kept for: policies that cannot tell two objects of
    /// a bucket, or two moments, apart.
    #[test]
    fn bucket_wide_policies_read_nothing_below_the_bucket() {
        for text in [
            r#"permit(principal, action, resource);"#,
            r#"permit(principal, action, resource in Bucket::"b");"#,
            r#"permit(principal, action, resource is Object in Bucket::"b");"#,
            r#"permit(principal, action, resource is Object);"#,
            r#"permit(principal, action, resource in Service::"fsgate");"#,
            // What fsgate appends to a bucket policy, and conditions on the principal.
            r#"permit(principal, action, resource) when { resource in Bucket::"b" };"#,
            r#"forbid(principal, action, resource) unless { principal is Root } when { resource in Bucket::"b" };"#,
            r#"permit(principal, action, resource) when { principal.hasTag("team") && principal.getTag("team") == "x" };"#,
            // The owner role: an object's owner is its bucket's.
            r#"permit(principal, action, resource) when { resource has owner && resource.owner == principal };"#,
        ] {
            assert!(wide(text), "{text}");
        }
        for text in [
            r#"permit(principal, action, resource in Prefix::"b/p/");"#,
            r#"permit(principal, action, resource == Object::"b/k");"#,
            r#"permit(principal, action, resource is Object in Prefix::"b/p/");"#,
            r#"permit(principal, action, resource) when { resource.key like "pub/*" };"#,
            r#"permit(principal, action, resource) when { resource in Prefix::"b/p/" };"#,
            r#"permit(principal, action, resource) when { resource in Bucket::"b" && resource.key == "k" };"#,
            r#"permit(principal, action, resource) when { resource.hasTag("class") };"#,
            r#"permit(principal, action, resource) when { context.source_ip.isInRange(ip("10.0.0.0/8")) };"#,
            r#"permit(principal, action, resource) when { context.now < 1800000000 };"#,
            r#"permit(principal, action, resource) when { principal == resource };"#,
            r#"permit(principal, action, resource) when { resource has key && resource.key == "k" };"#,
        ] {
            assert!(!wide(text), "{text}");
        }
    }
}
