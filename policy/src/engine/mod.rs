//! The authorizer: decides one access against the policies that can apply to it.
//!
//! - `request.rs`: what the gateway asks about (principal, action, resource, context);
//! - `entities.rs`: the Cedar entities and context built for a request;
//! - `grants.rs`: grants and bucket policies, indexed by whom and what they can apply to;
//! - `sets.rs`: a request's policy set (file policies plus the indexed ones that can apply),
//!   assembled once per principal, groups, bucket and action, and whether it decides every
//!   object of a bucket alike;
//! - `decisions.rs`: the last decisions of such bucket-wide sets, kept per worker thread;
//! - this file: the engine, loading and validation, and the decision itself.

mod decisions;
mod entities;
mod grants;
mod request;
mod sets;

pub use self::grants::{Changes, Grant, GrantPolicy, GrantTarget};
pub use self::request::{
    AccessRequest, Limit, Principal, RequestContext, RequestHeaders, Resource, ShareLink,
};

use self::grants::{PolicyIndex, add_indexed};
use self::sets::{RequestSet, SET_CACHE_MAX, SetCache, SetKey, bucket_wide, scope_may_match};

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicyId, PolicySet, Request, Schema,
};

use crate::actions::{Action, ResourceKind};
use crate::load::{self, PolicyError, PolicyFile};

/// True when a policy set reads entity tags. Whitespace is ignored (Cedar allows
/// `hasTag ("k")`); a false positive only costs a metadata read, a false negative would let a
/// tag-based forbid see no tags.
fn reads_tags(set: &PolicySet) -> bool {
    // Template links read what their template reads: the templates are checked, not each of
    // (possibly ten thousand) links.
    set.policies()
        .filter(|p| p.template_id().is_none())
        .map(ToString::to_string)
        .chain(set.templates().map(ToString::to_string))
        .any(|text| reads_tags_text(&text))
}

/// True when a policy's text reads resource owners (`resource.owner`, `has owner`).
fn reads_owners_text(text: &str) -> bool {
    let text: String = text.split_whitespace().collect();
    text.contains(".owner") || text.contains("hasowner")
}

fn reads_tags_text(text: &str) -> bool {
    let text: String = text.split_whitespace().collect();
    text.contains("hasTag(") || text.contains("getTag(")
}

/// Parses Cedar text that may hold policies but no templates (bucket policies, limits);
/// `name` says what it is in errors.
fn parse_without_templates(text: &str, name: &str) -> Result<PolicySet, PolicyError> {
    let set = PolicySet::from_str(text)
        .map_err(|e| PolicyError::one(load::describe(&e, name, Some(text))))?;
    if set.templates().next().is_some() {
        return Err(PolicyError::one(format!(
            "{name}: templates are not allowed"
        )));
    }
    Ok(set)
}

/// Why a request could not be put to Cedar. Never an answer to the client: a decision that
/// meets one is a deny carrying it in [`Decision::errors`].
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// A policy set could not be assembled (a grant or bucket policy that no longer links).
    #[error("policy set: {0}")]
    PolicySet(Box<cedar_policy::PolicySetError>),
    /// An entity's attributes or tags could not be built.
    #[error("entity: {0}")]
    Entity(Box<cedar_policy::EntityAttrEvaluationError>),
    /// The entities do not form a valid store (or do not conform to the schema).
    #[error("entities: {0}")]
    Entities(Box<cedar_policy::entities_errors::EntitiesError>),
    /// The request's context could not be built.
    #[error("context: {0}")]
    Context(Box<cedar_policy::ContextCreationError>),
    /// The request does not conform to the schema.
    #[error("request: {0}")]
    Request(Box<cedar_policy::RequestValidationError>),
    /// The action has no entity in the schema.
    #[error("{0} is not in the schema")]
    ActionNotInSchema(&'static str),
    /// The request names a resource of another kind than its action applies to.
    #[error("{action} applies to a {kind:?}, not to {resource}")]
    WrongResource {
        /// The action's Cedar name.
        action: &'static str,
        /// The kind of resource the action applies to.
        kind: ResourceKind,
        /// The resource the request named.
        resource: String,
    },
}

/// Cedar's errors are large; boxed, a `Result` costs no more than its value on the hot path.
macro_rules! boxed_from {
    ($($variant:ident($cedar:ty)),* $(,)?) => {
        $(impl From<$cedar> for DecisionError {
            fn from(e: $cedar) -> Self {
                Self::$variant(Box::new(e))
            }
        })*
    };
}

boxed_from!(
    PolicySet(cedar_policy::PolicySetError),
    Entity(cedar_policy::EntityAttrEvaluationError),
    Entities(cedar_policy::entities_errors::EntitiesError),
    Context(cedar_policy::ContextCreationError),
    Request(cedar_policy::RequestValidationError),
);

/// The outcome. A deny is a value, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// True only when a policy permits and none forbids, with no evaluation error.
    pub allowed: bool,
    /// Ids of the policies that determined the decision.
    pub policies: Vec<String>,
    /// Evaluation errors (each one forces a deny).
    pub errors: Vec<String>,
}

impl Decision {
    fn deny_with_error(e: DecisionError) -> Self {
        Self {
            allowed: false,
            policies: Vec::new(),
            errors: vec![e.to_string()],
        }
    }
}

/// Built-in role names.
pub const ROLES: [&str; 6] = [
    "readonly",
    "readwrite",
    "writeonly",
    "admin",
    "owner",
    "diagnostics",
];

/// The Cedar id of the service entity.
pub const SERVICE_ID: &str = "fsgate";

#[derive(Debug, Clone)]
struct Types {
    service: EntityTypeName,
    group: EntityTypeName,
    user: EntityTypeName,
    root: EntityTypeName,
    anonymous: EntityTypeName,
    prefix: EntityTypeName,
    bucket: EntityTypeName,
    object: EntityTypeName,
    action: EntityTypeName,
    request_tags: EntityTypeName,
    share_link: EntityTypeName,
}

impl Types {
    fn new() -> Result<Self, PolicyError> {
        let t = |s: &str| EntityTypeName::from_str(s).map_err(|e| PolicyError::one(e.to_string()));
        Ok(Self {
            service: t("Service")?,
            group: t("Group")?,
            user: t("User")?,
            root: t("Root")?,
            anonymous: t("Anonymous")?,
            prefix: t("Prefix")?,
            bucket: t("Bucket")?,
            object: t("Object")?,
            action: t("Action")?,
            request_tags: t("RequestTags")?,
            share_link: t("ShareLink")?,
        })
    }
}

fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

/// The decision of one Cedar response: any evaluation error is a deny.
fn outcome(response: &cedar_policy::Response) -> Decision {
    let errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(ToString::to_string)
        .collect();
    let mut policies: Vec<String> = if errors.is_empty() {
        response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect()
    } else {
        // The erroring policies are what decided this deny.
        response
            .diagnostics()
            .errors()
            .map(|e| match e {
                cedar_policy::AuthorizationError::PolicyEvaluationError(p) => {
                    p.policy_id().to_string()
                }
            })
            .collect()
    };
    policies.sort();
    policies.dedup();
    Decision {
        // An erroring policy is skipped by Cedar; an erroring forbid would then fail open.
        // Any error is a deny.
        allowed: response.decision() == CedarDecision::Allow && errors.is_empty(),
        policies,
        errors,
    }
}

/// The schema, the policy set in force (files + grants), and what the entity builder needs.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    schema: Schema,
    /// Per action, its entity and its ancestors (action groups) from the schema: the base a
    /// request's entities extend. Only the request's own action is included, so the
    /// transitive closure computed per request stays a handful of entities however many
    /// actions the schema has.
    actions: Arc<HashMap<Action, Entities>>,
    /// Identifies `actions` (a schema loaded once) in per-thread caches of entities.
    actions_id: u64,
    types: Types,
    files: Vec<PolicyFile>,
    origin: HashMap<String, String>,
    base: PolicySet,
    /// Granted prefixes per bucket: objects and listings under them are placed in the
    /// matching `Prefix` entities.
    /// Granted prefixes per bucket, with how many grants name each.
    prefix_grants: HashMap<String, std::collections::BTreeMap<String, usize>>,
    grant_text: HashMap<String, String>,
    /// Some policy reads entity tags, so object requests must carry the object's tags.
    tag_aware: bool,
    /// Some policy in force reads bucket owners (`resource.owner`: a link of the `owner`
    /// role, or a policy that names it), so requests must carry their bucket's owner.
    owner_aware: bool,
    /// Grants and bucket policies by the principal or bucket they can apply to.
    index: Arc<PolicyIndex>,
    /// Request sets already assembled from `base` and `index`.
    cache: Arc<SetCache>,
    /// Identifies this engine's policies (each change makes a new engine) in the per-thread
    /// cache of decisions.
    instance: u64,
    /// (role template, principal type, resource type) whose links have validated: a link is
    /// its template with typed slot values, so a combination validated once needs no second
    /// check. Shared by the engines derived from one `load`.
    checked_links: Arc<std::sync::Mutex<HashSet<(String, String, String)>>>,
}

impl PolicyEngine {
    /// Loads a schema (the one file named `*.cedarschema`) and policy files, validating every
    /// policy strictly. Errors name file, line and reason.
    pub fn load(files: &[PolicyFile]) -> Result<Self, PolicyError> {
        let schema_file = files
            .iter()
            .find(|f| f.name.ends_with(".cedarschema"))
            .ok_or_else(|| PolicyError::one("no *.cedarschema file among the policies"))?;
        let schema = load::parse_schema(schema_file)?;
        let policy_files: Vec<PolicyFile> = files
            .iter()
            .filter(|f| f.name.ends_with(".cedar"))
            .cloned()
            .collect();
        let (base, origin) = load::parse_files(&policy_files)?;
        let origin: HashMap<String, String> = origin.into_iter().collect();
        let all_actions = schema
            .action_entities()
            .map_err(|e| PolicyError::one(format!("schema actions: {e}")))?;
        let types = Types::new()?;
        let mut actions = HashMap::new();
        for a in crate::actions::ALL {
            let id = uid(&types.action, a.cedar_name());
            let mut subset: Vec<Entity> = all_actions.get(&id).cloned().into_iter().collect();
            for anc in all_actions.ancestors(&id).into_iter().flatten() {
                subset.extend(all_actions.get(anc).cloned());
            }
            let entities = Entities::from_entities(subset, None)
                .map_err(|e| PolicyError::one(format!("schema actions: {e}")))?;
            actions.insert(*a, entities);
        }
        let actions = Arc::new(actions);
        static SCHEMAS_LOADED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let engine = Self {
            schema,
            actions,
            actions_id: SCHEMAS_LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            types,
            files: policy_files,
            origin,
            base,
            prefix_grants: HashMap::new(),
            grant_text: HashMap::new(),
            tag_aware: false,
            owner_aware: false,
            index: Arc::default(),
            cache: Arc::default(),
            instance: next_instance(),
            checked_links: Arc::default(),
        };
        let owner_aware = engine
            .base
            .policies()
            .filter(|p| p.template_id().is_none())
            .any(|p| reads_owners_text(&p.to_string()));
        let engine = Self {
            tag_aware: reads_tags(&engine.base),
            owner_aware,
            ..engine
        };
        engine.validate()?;
        for role in ROLES {
            let id = PolicyId::new(format!("role-{role}"));
            if engine.base.template(&id).is_none() {
                return Err(PolicyError::one(format!(
                    "role template role-{role} is missing"
                )));
            }
        }
        Ok(engine)
    }

    /// The built-in policies (`policies/` compiled into the binary).
    pub fn builtin() -> Result<Self, PolicyError> {
        let files: Vec<PolicyFile> = load::BUILTIN_FILES
            .iter()
            .map(|(name, text)| PolicyFile {
                name: (*name).to_owned(),
                text: (*text).to_owned(),
            })
            .collect();
        Self::load(&files)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let source_of = |id: &str| -> Option<(String, String)> {
            if let Some(file) = self.origin.get(id) {
                let text = self.files.iter().find(|f| &f.name == file)?.text.clone();
                return Some((file.clone(), text));
            }
            self.grant_text
                .get(id)
                .map(|t| (format!("attached policy {id}"), t.clone()))
        };
        load::validate(&self.schema, &self.base, &source_of)
    }

    /// True when some policy reads entity tags (`hasTag`, `getTag`): only then does a request
    /// on an object need the object's tags, which cost a metadata read.
    #[must_use]
    pub fn uses_object_tags(&self) -> bool {
        self.tag_aware
    }

    /// True when some policy in force reads bucket owners: only then does a request need its
    /// bucket's owner (`AccessRequest::bucket_owner`), which costs a metadata read.
    #[must_use]
    pub fn uses_bucket_owners(&self) -> bool {
        self.owner_aware
    }

    /// Decides one access. Never fails: anything that prevents a clean decision is a deny
    /// carrying the reason in `errors`. An object request whose policies decide the whole
    /// bucket alike (`RequestSet::bucket_wide`) is answered from the worker thread's last
    /// decisions for that principal, action and bucket (`decisions`) when there is one.
    #[must_use]
    pub fn decide(&self, req: &AccessRequest) -> Decision {
        if let Principal::ShareLink(link) = &req.principal {
            return self.decide_share_link(link, req);
        }
        // Only an unlimited principal's object requests are kept: a limit is a policy set of
        // its own, which the request set's analysis does not cover.
        let keep = req.action.resource_kind() == ResourceKind::Object
            && !matches!(req.principal, Principal::Limited { .. });
        let bucket = match &req.resource {
            Resource::Object { bucket, .. } if keep => bucket.as_str(),
            _ => {
                return match self.request_set(req) {
                    Ok(set) => self.decide_in(req, &set.policies, true),
                    Err(e) => Decision::deny_with_error(e),
                };
            }
        };
        let owner = req.bucket_owner.as_deref();
        if let Some(d) = decisions::find(self.instance, &req.principal, req.action, (bucket, owner))
        {
            return d;
        }
        match self.request_set(req) {
            Ok(set) => {
                let d = self.decide_in(req, &set.policies, true);
                if set.bucket_wide && d.errors.is_empty() {
                    decisions::keep(
                        self.instance,
                        &req.principal,
                        req.action,
                        (bucket, owner),
                        d.clone(),
                    );
                }
                d
            }
            Err(e) => Decision::deny_with_error(e),
        }
    }

    /// A share link's access: within its object or folder, permitted to the link by the file
    /// policies (`share-link-*` in `default.cedar`, and any forbid an admin adds), and
    /// permitted to its creator as the creator is now (roles, attachments, bucket policies,
    /// with this request's context). The first of the three that refuses decides.
    fn decide_share_link(&self, link: &request::ShareLink, req: &AccessRequest) -> Decision {
        if !link.covers(&req.resource, req.context.prefix.as_deref()) {
            return Decision {
                allowed: false,
                policies: vec!["share-link:outside-its-object".to_owned()],
                errors: Vec::new(),
            };
        }
        let own = self.decide_in(req, &self.base, false);
        if !own.allowed {
            return own;
        }
        let creator = self.decide(&AccessRequest {
            principal: link.creator.clone(),
            ..req.clone()
        });
        if !creator.allowed {
            let mut policies = vec!["share-link:creator-denied".to_owned()];
            policies.extend(creator.policies);
            return Decision {
                policies,
                ..creator
            };
        }
        let mut policies = own.policies;
        policies.extend(creator.policies.into_iter().map(|p| format!("creator:{p}")));
        Decision {
            allowed: true,
            policies,
            errors: Vec::new(),
        }
    }

    /// Decides against every policy in force, without the index: what `decide` must always
    /// agree with (tests compare the two).
    #[doc(hidden)]
    #[must_use]
    pub fn decide_unindexed(&self, req: &AccessRequest) -> Decision {
        let mut whole = self.base.clone();
        match add_indexed(&mut whole, self.index.entries()) {
            Ok(()) => self.decide_in(req, &whole, false),
            Err(e) => Decision::deny_with_error(e),
        }
    }

    fn decide_in(&self, req: &AccessRequest, set: &PolicySet, reuse: bool) -> Decision {
        let (entities, principal, resource) = match self.entities(req, reuse) {
            Ok(x) => x,
            Err(e) => return Decision::deny_with_error(e),
        };
        let action = uid(&self.types.action, req.action.cedar_name());
        let context = match self.context(&req.context) {
            Ok(c) => c,
            Err(e) => return Decision::deny_with_error(e),
        };
        // Built by this module for schema types (checked by `conforms` in tests), so the
        // per-request schema validation is skipped: it cost more than the decision itself.
        let request = match Request::new(principal, action, resource, context, None) {
            Ok(r) => r,
            Err(e) => return Decision::deny_with_error(e.into()),
        };
        let authorizer = Authorizer::new();
        let decision = outcome(&authorizer.is_authorized(&request, set, &entities));
        let Principal::Limited { limits, .. } = &req.principal else {
            return decision;
        };
        if !decision.allowed {
            return decision;
        }
        // Every limit must permit the access as well; the first that does not decides.
        for limit in limits {
            let d = outcome(&authorizer.is_authorized(&request, &limit.set, &entities));
            if !d.allowed {
                let mut policies = d.policies;
                if policies.is_empty() {
                    policies.push(format!("{}:not-permitted", limit.id));
                }
                return Decision { policies, ..d };
            }
        }
        decision
    }

    /// The policies that can apply to `req`: the file policies, the grants of its user and the
    /// user's groups, and its bucket's policies (see `PolicyIndex`), less those whose scope
    /// cannot match the request's principal or action (see `scope_may_match`); assembled once
    /// per (principal, groups, bucket, action) and cached.
    fn request_set(&self, req: &AccessRequest) -> Result<Arc<RequestSet>, DecisionError> {
        let unlimited = req.principal.unlimited();
        let (user, mut groups) = match unlimited {
            Principal::User { name, groups, .. } => (name.as_str(), groups.clone()),
            // Grants name users and groups: none applies to root or anonymous callers.
            _ => ("", Vec::new()),
        };
        groups.sort();
        groups.dedup();
        let bucket = match &req.resource {
            Resource::Bucket(b) | Resource::Object { bucket: b, .. } => b.clone(),
            Resource::Service | Resource::User(_) => String::new(),
        };
        let key: SetKey = (self.principal_uid(unlimited), groups, bucket, req.action);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(set) = cached {
            return Ok(set);
        }
        let (principal, groups, bucket, action) = &key;
        let mut whole = self.base.clone();
        let entries = self
            .index
            .by_user
            .get(user)
            .into_iter()
            .chain(groups.iter().filter_map(|g| self.index.by_group.get(g)))
            .chain(self.index.by_bucket.get(bucket))
            .flat_map(|l| l.iter())
            .chain(
                self.index
                    .by_acl
                    .get(bucket)
                    .into_iter()
                    .flat_map(|m| m.values().flatten()),
            );
        add_indexed(&mut whole, entries)?;
        let policies = self.slice(&whole, principal, *action)?;
        let bucket_wide = policies.policies().all(|p| bucket_wide(p, &self.types));
        let set = Arc::new(RequestSet {
            policies,
            bucket_wide,
        });
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= SET_CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, set.clone());
        Ok(set)
    }

    /// The policies of `set` whose scope may match `principal` doing `action`. Cedar checks a
    /// policy's scope before its conditions and stops at the first part that is false, so a
    /// policy left out here is one that could neither apply nor fail to evaluate: the decision
    /// is the same, and Cedar evaluates only the few policies left (it rebuilds every
    /// policy's scope expression on each request, so each one costs).
    fn slice(
        &self,
        set: &PolicySet,
        principal: &EntityUid,
        action: Action,
    ) -> Result<PolicySet, DecisionError> {
        let action_uid = uid(&self.types.action, action.cedar_name());
        let action_groups = self.actions.get(&action);
        let mut sliced = PolicySet::new();
        for t in set.templates() {
            sliced
                .add_template(t.clone())
                .map_err(DecisionError::from)?;
        }
        for p in set.policies() {
            if !scope_may_match(p, principal, &action_uid, action_groups) {
                continue;
            }
            match (p.template_id(), p.template_links()) {
                (Some(t), Some(vals)) => sliced
                    .link(t.clone(), p.id().clone(), vals)
                    .map_err(DecisionError::from)?,
                _ => sliced.add(p.clone()).map_err(DecisionError::from)?,
            }
        }
        Ok(sliced)
    }

    /// A limit (session policy, service account policy) from Cedar text, validated strictly
    /// against the schema. `id` names it in decisions and errors.
    pub fn limit(&self, id: &str, text: &str) -> Result<Limit, PolicyError> {
        let name = format!("policy of {id}");
        // An AWS IAM JSON policy is translated first, as for attachments.
        let text = &crate::bucket_policy::translate_identity(text)
            .map_err(|e| PolicyError::one(format!("{name}: {e}")))?;
        let parsed = parse_without_templates(text, &name)?;
        if parsed.policies().next().is_none() {
            return Err(PolicyError::one(format!("{name}: no policy")));
        }
        let mut set = PolicySet::new();
        for (i, p) in parsed.policies().enumerate() {
            set.add(p.new_id(PolicyId::new(format!("{id}-{i}"))))
                .map_err(|e| PolicyError::one(format!("{name}: {e}")))?;
        }
        load::validate(&self.schema, &set, &|_| {
            Some((name.clone(), text.to_owned()))
        })?;
        Ok(Limit {
            id: id.to_owned(),
            set: Arc::new(set),
        })
    }

    /// True when the object `key` of `bucket` has an ACL of its own in force (a record, even
    /// one whose grants decide nothing): a write that resets it must take it out.
    #[must_use]
    pub fn has_object_acl(&self, bucket: &str, key: &str) -> bool {
        self.index
            .by_acl
            .get(bucket)
            .is_some_and(|m| m.contains_key(&Some(key.to_owned())))
    }

    /// Ids of every policy and template link in force.
    #[must_use]
    pub fn policy_ids(&self) -> Vec<String> {
        let indexed = self.index.entries().map(|e| e.id().to_string());
        let mut ids: Vec<String> = self
            .base
            .policies()
            .map(|p| p.id().to_string())
            .chain(indexed)
            .collect();
        ids.sort();
        ids
    }
}

/// A number no other engine in this process has.
fn next_instance() -> u64 {
    static ENGINES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    ENGINES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
