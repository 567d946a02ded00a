//! Grants (a role or Cedar text attached to a user or group) and bucket policies, indexed by
//! the principal or bucket they can apply to.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cedar_policy::{Effect, EntityUid, Policy, PolicyId, PolicySet, Schema, SlotId};

use crate::acl::{AclChange, grant_policy};
use crate::load::{self, PolicyError};

use super::{
    DecisionError, PolicyEngine, ROLES, SERVICE_ID, next_instance, parse_without_templates,
    reads_owners_text, reads_tags, reads_tags_text, uid,
};

/// Adds indexed grants and bucket policies to a set (links linked again).
pub(super) fn add_indexed<'a>(
    set: &mut PolicySet,
    entries: impl Iterator<Item = &'a Indexed>,
) -> Result<(), DecisionError> {
    for e in entries {
        match e {
            Indexed::Static(p) => set.add((**p).clone()).map_err(DecisionError::from)?,
            Indexed::Link { template, id, vals } => set
                .link(template.clone(), id.clone(), vals.clone())
                .map_err(DecisionError::from)?,
        }
    }
    Ok(())
}

/// Who a grant is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantTarget {
    /// A user.
    User(String),
    /// A group.
    Group(String),
}

/// What a grant gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantPolicy {
    /// A built-in role with its scope.
    Role {
        /// `readonly`, `readwrite`, `writeonly` or `admin`.
        role: String,
        /// One bucket, or all when `None`.
        bucket: Option<String>,
        /// One prefix of that bucket.
        prefix: Option<String>,
    },
    /// A custom Cedar policy; its principal is scoped to the target.
    Cedar(String),
}

/// A policy attached to a user or group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Unique id; the Cedar policy id is `att-<id>`.
    pub id: String,
    /// To whom.
    pub target: GrantTarget,
    /// What.
    pub policy: GrantPolicy,
}

/// One change to the grants and bucket policies of an engine (`PolicyEngine::with_changes`).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Grant ids to take out.
    pub removed_grants: Vec<String>,
    /// Grants to put in, each replacing any grant with its id.
    pub grants: Vec<Grant>,
    /// Bucket policies to put in place of each bucket's current ones (None: removed).
    pub bucket_policies: Vec<(String, Option<String>)>,
    /// ACL grants to put in force or take out.
    pub acls: Vec<AclChange>,
}

/// A grant or bucket policy as stored in the index: a role template link (linked again into a
/// request's set) or a static policy.
#[derive(Debug, Clone)]
pub(super) enum Indexed {
    Static(Box<Policy>),
    Link {
        template: PolicyId,
        id: PolicyId,
        vals: HashMap<SlotId, EntityUid>,
    },
}

impl PolicyIndex {
    /// Every grant and bucket policy in the index.
    pub(super) fn entries(&self) -> impl Iterator<Item = &Indexed> {
        self.by_user
            .values()
            .chain(self.by_group.values())
            .chain(self.by_bucket.values())
            .flat_map(|l| l.iter())
            .chain(self.by_acl.values().flat_map(|m| m.values().flatten()))
    }

    /// The static policies (Cedar grants, bucket policies): what tag detection reads.
    fn statics(&self) -> impl Iterator<Item = &Policy> {
        self.entries().filter_map(|e| match e {
            Indexed::Static(p) => Some(&**p),
            Indexed::Link { .. } => None,
        })
    }
}

/// The role whose links read bucket owners.
const OWNER_ROLE: &str = "owner";

impl Indexed {
    /// Whether it reads bucket owners (a link of the owner role, or a policy naming them).
    fn reads_owners(&self) -> bool {
        match self {
            Indexed::Link { template, .. } => template.to_string() == format!("role-{OWNER_ROLE}"),
            Indexed::Static(p) => reads_owners_text(&p.to_string()),
        }
    }

    pub(super) fn id(&self) -> &PolicyId {
        match self {
            Indexed::Static(p) => p.id(),
            Indexed::Link { id, .. } => id,
        }
    }
}

/// Which policies can apply to whom and to what. Every grant is scoped to its user or group
/// (`principal in …`, enforced when it is attached) and every bucket policy to its bucket
/// (`resource in Bucket::…`, appended when it is loaded), so a request's set — the file
/// policies, the grants of its user and that user's groups, and its bucket's policies — decides
/// exactly as the whole set would, at a cost that does not grow with the number of users and
/// buckets.
#[derive(Debug, Clone, Default)]
pub(super) struct PolicyIndex {
    pub(super) by_user: HashMap<String, Arc<Vec<Indexed>>>,
    pub(super) by_group: HashMap<String, Arc<Vec<Indexed>>>,
    pub(super) by_bucket: HashMap<String, Arc<Vec<Indexed>>>,
    /// ACL grants per bucket: the bucket's own (`None`) and its objects'. An object with an
    /// ACL record has an entry, possibly empty (see `PolicyEngine::has_object_acl`).
    pub(super) by_acl: HashMap<String, Arc<AclEntries>>,
}

/// The ACL policies of one bucket, by object key (`None`: the bucket's ACL).
pub(super) type AclEntries = BTreeMap<Option<String>, Vec<Indexed>>;

impl PolicyEngine {
    fn target_uid(&self, t: &GrantTarget) -> EntityUid {
        match t {
            GrantTarget::User(n) => uid(&self.types.user, n),
            GrantTarget::Group(n) => uid(&self.types.group, n),
        }
    }

    /// A new engine with the file policies plus `grants` (no bucket policies). Fails, naming
    /// the grant and the reason, when any grant is invalid; the caller keeps the engine it had.
    pub fn with_grants(&self, grants: &[Grant]) -> Result<Self, PolicyError> {
        let empty = Self {
            prefix_grants: HashMap::new(),
            grant_text: HashMap::new(),
            index: Arc::default(),
            cache: Arc::default(),
            instance: next_instance(),
            tag_aware: reads_tags(&self.base),
            ..self.clone()
        };
        empty.with_changes(&Changes {
            grants: grants.to_vec(),
            ..Changes::default()
        })
    }

    /// A new engine with these bucket policies (bucket name, Cedar text) in place of any the
    /// buckets had. Each policy is confined to its bucket (`when { resource in Bucket::"b" }`
    /// is appended) and a `forbid` never stops root from reading, replacing or deleting the
    /// bucket policy itself, so a bad policy can always be repaired. Fails, naming the bucket,
    /// when any is invalid.
    pub fn with_bucket_policies(&self, docs: &[(String, String)]) -> Result<Self, PolicyError> {
        self.with_changes(&Changes {
            bucket_policies: docs
                .iter()
                .map(|(b, t)| (b.clone(), Some(t.clone())))
                .collect(),
            ..Changes::default()
        })
    }

    /// A new engine with `changes` applied to this one: what one IAM change costs, whatever
    /// the size of the policy base. Only the policies the change brings are validated (Cedar
    /// validates each policy on its own, and those already here were validated when they
    /// came); the index is updated in place of being rebuilt. Fails, naming the grant or
    /// bucket and the reason, when a new policy is invalid; `self` is untouched.
    pub fn with_changes(&self, changes: &Changes) -> Result<Self, PolicyError> {
        let mut next = Self {
            cache: Arc::default(),
            instance: next_instance(),
            ..self.clone()
        };
        let mut index = (*self.index).clone();
        let mut removed_any = false;
        for id in changes
            .removed_grants
            .iter()
            .chain(changes.grants.iter().map(|g| &g.id))
        {
            removed_any |= next.remove_grant(&mut index, id);
        }
        // The new policies, with the file templates they link, to validate on their own.
        let mut added = PolicySet::new();
        let mut new_combos = Vec::new();
        for (bucket, text) in &changes.bucket_policies {
            removed_any |= next.remove_bucket_policy(&mut index, bucket);
            if let Some(text) = text {
                next.add_bucket_policy(&mut index, &mut added, bucket, text)?;
            }
        }
        for g in &changes.grants {
            next.add_grant(&mut index, &mut added, &mut new_combos, g)?;
        }
        for c in &changes.acls {
            removed_any |= apply_acl(&mut index, &mut added, c)?;
        }
        // Whether some policy reads tags: what is added can only turn it on; after a removal
        // it is worked out again.
        next.tag_aware = if removed_any {
            reads_tags(&self.base) || index.statics().any(|p| reads_tags_text(&p.to_string()))
        } else {
            self.tag_aware || reads_tags(&added)
        };
        // Whether some policy reads owners: worked out the same way.
        next.owner_aware = if removed_any {
            self.base
                .policies()
                .filter(|p| p.template_id().is_none())
                .any(|p| reads_owners_text(&p.to_string()))
                || index.entries().any(Indexed::reads_owners)
        } else {
            self.owner_aware
                || changes.grants.iter().any(
                    |g| matches!(&g.policy, GrantPolicy::Role { role, .. } if role == OWNER_ROLE),
                )
                || added
                    .policies()
                    .filter(|p| p.template_id().is_none())
                    .any(|p| reads_owners_text(&p.to_string()))
        };
        next.index = Arc::new(index);
        let source_of = |id: &str| {
            if let Some(file) = next.origin.get(id) {
                let text = next.files.iter().find(|f| &f.name == file)?.text.clone();
                return Some((file.clone(), text));
            }
            next.grant_text.get(id).map(|t| {
                let what = if id.starts_with("bucket-") {
                    "bucket policy"
                } else {
                    "attached policy"
                };
                (format!("{what} {id}"), t.clone())
            })
        };
        if added.policies().next().is_some() {
            load::validate(&next.schema, &added, &source_of)?;
        }
        self.checked_links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(new_combos);
        Ok(next)
    }

    /// Files a grant in the index; what needs validating goes into `added` (a link only when
    /// its combination of template and slot types is new, noted in `combos`).
    fn add_grant(
        &mut self,
        index: &mut PolicyIndex,
        added: &mut PolicySet,
        combos: &mut Vec<(String, String, String)>,
        g: &Grant,
    ) -> Result<(), PolicyError> {
        let pid = format!("att-{}", g.id);
        let principal = self.target_uid(&g.target);
        let entry = match &g.policy {
            GrantPolicy::Role {
                role,
                bucket,
                prefix,
            } => {
                if !ROLES.contains(&role.as_str()) {
                    return Err(PolicyError::one(format!(
                        "{pid}: unknown role '{role}' (roles: {})",
                        ROLES.join(", ")
                    )));
                }
                let resource = match (bucket, prefix) {
                    (None, None) => uid(&self.types.service, SERVICE_ID),
                    (Some(b), None) => uid(&self.types.bucket, b),
                    (Some(b), Some(p)) => {
                        *self
                            .prefix_grants
                            .entry(b.clone())
                            .or_default()
                            .entry(p.clone())
                            .or_default() += 1;
                        uid(&self.types.prefix, &format!("{b}/{p}"))
                    }
                    (None, Some(_)) => {
                        return Err(PolicyError::one(format!("{pid}: a prefix needs a bucket")));
                    }
                };
                let template = PolicyId::new(format!("role-{role}"));
                let combo = (
                    template.to_string(),
                    principal.type_name().to_string(),
                    resource.type_name().to_string(),
                );
                let vals = HashMap::from([
                    (SlotId::principal(), principal),
                    (SlotId::resource(), resource),
                ]);
                let checked = self
                    .checked_links
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .contains(&combo);
                if !checked && !combos.contains(&combo) {
                    if added.template(&template).is_none() {
                        let t = self.base.template(&template).cloned().ok_or_else(|| {
                            PolicyError::one(format!("{pid}: no template {template}"))
                        })?;
                        added
                            .add_template(t)
                            .map_err(|e| PolicyError::one(format!("{pid}: {e}")))?;
                    }
                    added
                        .link(template.clone(), PolicyId::new(&pid), vals.clone())
                        .map_err(|e| PolicyError::one(format!("{pid}: {e}")))?;
                    combos.push(combo);
                }
                Indexed::Link {
                    template,
                    id: PolicyId::new(&pid),
                    vals,
                }
            }
            GrantPolicy::Cedar(text) => {
                return self.add_cedar_grant(index, added, g, &pid, text, &principal);
            }
        };
        let list = match &g.target {
            GrantTarget::User(n) => index.by_user.entry(n.clone()).or_default(),
            GrantTarget::Group(n) => index.by_group.entry(n.clone()).or_default(),
        };
        Arc::make_mut(list).push(entry);
        Ok(())
    }

    /// Files a custom grant: Cedar text, or an AWS IAM JSON identity policy translated to
    /// Cedar. Its policies are `att-ID`, `att-ID#1`, ... in the order written.
    fn add_cedar_grant(
        &mut self,
        index: &mut PolicyIndex,
        added: &mut PolicySet,
        g: &Grant,
        pid: &str,
        text: &str,
        principal: &EntityUid,
    ) -> Result<(), PolicyError> {
        let cedar = crate::bucket_policy::translate_identity(text)
            .map_err(|e| PolicyError::one(format!("attached policy {pid}: {e}")))?;
        // One Cedar policy as written keeps its own text, for errors that point at it.
        let texts: Vec<String> = if cedar == text && cedar.matches(';').count() <= 1 {
            vec![cedar.clone()]
        } else {
            let set = parse_without_templates(&cedar, &format!("attached policy {pid}"))?;
            let mut written: Vec<(String, String)> = set
                .policies()
                .map(|p| (p.id().to_string(), p.to_string()))
                .collect();
            // Cedar numbers the policies of a text in order: `policy0`, `policy1`, ...
            written.sort_by_key(|(id, _)| {
                id.trim_start_matches("policy")
                    .parse::<usize>()
                    .unwrap_or(usize::MAX)
            });
            written.into_iter().map(|(_, t)| t).collect()
        };
        if texts.is_empty() {
            return Err(PolicyError::one(format!(
                "attached policy {pid}: no policy"
            )));
        }
        let mut entries = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            let id = if i == 0 {
                pid.to_owned()
            } else {
                format!("{pid}#{i}")
            };
            let policy = scoped_policy(&id, t, principal, &self.schema)?;
            self.grant_text.insert(id.clone(), t.clone());
            added
                .add(policy.clone())
                .map_err(|e| PolicyError::one(format!("{id}: {e}")))?;
            entries.push(Indexed::Static(Box::new(policy)));
        }
        let list = match &g.target {
            GrantTarget::User(n) => index.by_user.entry(n.clone()).or_default(),
            GrantTarget::Group(n) => index.by_group.entry(n.clone()).or_default(),
        };
        Arc::make_mut(list).extend(entries);
        Ok(())
    }

    /// Takes the grant with this id (if any) out of the index and the prefixes; true when
    /// there was one.
    fn remove_grant(&mut self, index: &mut PolicyIndex, id: &str) -> bool {
        let pid = PolicyId::new(format!("att-{id}"));
        let more = format!("att-{id}#");
        let mut gone: Option<Indexed> = None;
        for lists in [&mut index.by_user, &mut index.by_group] {
            lists.retain(|_, list| {
                if let Some(at) = list.iter().position(|e| e.id() == &pid) {
                    gone = Some(Arc::make_mut(list).remove(at));
                }
                // The further policies of a translated grant (`att-ID#N`).
                if list.iter().any(|e| e.id().to_string().starts_with(&more)) {
                    let grant_text = &mut self.grant_text;
                    Arc::make_mut(list).retain(|e| {
                        let keep = !e.id().to_string().starts_with(&more);
                        if !keep {
                            grant_text.remove(&e.id().to_string());
                        }
                        keep
                    });
                }
                !list.is_empty()
            });
        }
        match gone {
            Some(Indexed::Link { vals, .. }) => {
                if let Some(r) = vals.get(&SlotId::resource())
                    && r.type_name() == &self.types.prefix
                {
                    let full = r.id().unescaped().to_owned();
                    if let Some((bucket, prefix)) = full.split_once('/')
                        && let Some(counts) = self.prefix_grants.get_mut(bucket)
                    {
                        if let Some(n) = counts.get_mut(prefix) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                counts.remove(prefix);
                            }
                        }
                        if counts.is_empty() {
                            self.prefix_grants.remove(bucket);
                        }
                    }
                }
            }
            Some(Indexed::Static(_)) => {
                self.grant_text.remove(&pid.to_string());
            }
            None => return false,
        }
        true
    }

    fn add_bucket_policy(
        &mut self,
        index: &mut PolicyIndex,
        added: &mut PolicySet,
        bucket: &str,
        text: &str,
    ) -> Result<(), PolicyError> {
        let name = format!("bucket policy of {bucket}");
        let set = parse_without_templates(text, &name)?;
        let bucket_uid = uid(&self.types.bucket, bucket);
        for (i, p) in set.policies().enumerate() {
            let pid = format!("bucket-{bucket}-{i}");
            let body = p.to_string();
            let body = body.trim_end().trim_end_matches(';');
            let guard = if p.effect() == Effect::Forbid {
                "\nunless { principal is Root && action in [Action::\"s3:GetBucketPolicy\", Action::\"s3:PutBucketPolicy\", Action::\"s3:DeleteBucketPolicy\"] }"
            } else {
                ""
            };
            let scoped = format!("{body}\nwhen {{ resource in {bucket_uid} }}{guard};");
            let policy = Policy::parse(Some(PolicyId::new(&pid)), &scoped)
                .map_err(|e| PolicyError::one(load::describe(&e, &name, Some(&scoped))))?;
            self.grant_text.insert(pid.clone(), scoped);
            added
                .add(policy.clone())
                .map_err(|e| PolicyError::one(format!("{name}: {e}")))?;
            Arc::make_mut(index.by_bucket.entry(bucket.to_owned()).or_default())
                .push(Indexed::Static(Box::new(policy)));
        }
        Ok(())
    }

    /// Takes a bucket's policies (if any) out of the index; true when it had some.
    fn remove_bucket_policy(&mut self, index: &mut PolicyIndex, bucket: &str) -> bool {
        let Some(gone) = index.by_bucket.remove(bucket) else {
            return false;
        };
        for entry in gone.iter() {
            self.grant_text.remove(&entry.id().to_string());
        }
        true
    }
}

/// Applies one ACL change to the index; new policies go into `added` to be validated. True
/// when policies were taken out.
fn apply_acl(
    index: &mut PolicyIndex,
    added: &mut PolicySet,
    change: &AclChange,
) -> Result<bool, PolicyError> {
    match change {
        AclChange::DropBucket(bucket) => Ok(index.by_acl.remove(bucket).is_some()),
        AclChange::Remove { bucket, key } => {
            let Some(entries) = index.by_acl.get_mut(bucket) else {
                return Ok(false);
            };
            let gone = Arc::make_mut(entries).remove(&Some(key.clone())).is_some();
            if entries.is_empty() {
                index.by_acl.remove(bucket);
            }
            Ok(gone)
        }
        AclChange::Set {
            bucket,
            key,
            grants,
        } => {
            let mut policies = Vec::new();
            for (n, g) in grants.iter().enumerate() {
                if crate::acl::actions(g.permission, key.is_some()).is_empty() {
                    continue;
                }
                let p = grant_policy(bucket, key.as_deref(), n, g)?;
                added
                    .add(p.clone())
                    .map_err(|e| PolicyError::one(format!("ACL of {bucket}: {e}")))?;
                policies.push(Indexed::Static(Box::new(p)));
            }
            let entries = Arc::make_mut(index.by_acl.entry(bucket.clone()).or_default());
            // A bucket's ACL that decides nothing needs no record (its owner's is the default).
            let old = if key.is_none() && policies.is_empty() {
                entries.remove(&None)
            } else {
                entries.insert(key.clone(), policies)
            };
            if entries.is_empty() {
                index.by_acl.remove(bucket);
            }
            Ok(old.is_some_and(|o| !o.is_empty()))
        }
    }
}

/// Parses a custom policy attached to `target` and scopes its principal to it: an
/// unconstrained principal becomes `principal in target`; any other constraint must already
/// name the target.
fn scoped_policy(
    pid: &str,
    text: &str,
    target: &EntityUid,
    schema: &Schema,
) -> Result<Policy, PolicyError> {
    let name = format!("attached policy {pid}");
    let policy = Policy::parse(Some(PolicyId::new(pid)), text)
        .map_err(|e| PolicyError::one(load::describe(&e, &name, Some(text))))?;
    // Validate the text as written, so that errors point at its lines; scoping the principal
    // afterwards only narrows it.
    let mut alone = PolicySet::new();
    alone
        .add(policy.clone())
        .map_err(|e| PolicyError::one(format!("{pid}: {e}")))?;
    load::validate(schema, &alone, &|_| Some((name.clone(), text.to_owned())))?;
    let mut json = policy
        .to_json()
        .map_err(|e| PolicyError::one(format!("{pid}: {e}")))?;
    let target_json = serde_json::json!({
        "type": target.type_name().to_string(),
        "id": target.id().unescaped(),
    });
    let principal = json.get("principal").cloned().unwrap_or_default();
    let op = principal.get("op").and_then(|v| v.as_str()).unwrap_or("");
    match op {
        "All" => {
            if let Some(obj) = json.as_object_mut() {
                obj.insert(
                    "principal".into(),
                    serde_json::json!({ "op": "in", "entity": target_json }),
                );
            }
        }
        "==" | "in" if principal.get("entity") == Some(&target_json) => {}
        _ => {
            return Err(PolicyError::one(format!(
                "{pid}: a policy attached to {target} must leave `principal` unconstrained \
                 (fsgate scopes it to {target})"
            )));
        }
    }
    Policy::from_json(Some(PolicyId::new(pid)), json)
        .map_err(|e| PolicyError::one(format!("{pid}: {e}")))
}
