//! The authorizer: builds the Cedar request and entities for one access, and decides it.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Effect, Entities, Entity,
    EntityId, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet, PrincipalConstraint, Request,
    ResourceConstraint, RestrictedExpression, Schema, SlotId,
};

use crate::actions::{Action, ResourceKind};
use crate::load::{self, PolicyError, PolicyFile};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The root credentials.
    Root(String),
    /// A user, with the groups it belongs to.
    User {
        /// User name.
        name: String,
        /// Group names.
        groups: Vec<String>,
        /// Principal tags (`principal.getTag("…")`): claims of a federated identity.
        tags: Vec<(String, String)>,
    },
    /// An unsigned request.
    Anonymous,
    /// A principal whose permissions are narrowed (an STS session with a session policy, a
    /// service account with a policy): allowed only what the principal may do and every limit
    /// permits.
    Limited {
        /// Who is acting.
        principal: Box<Principal>,
        /// The narrowing policy sets.
        limits: Vec<Limit>,
    },
}

/// A policy set that narrows what a principal may do. It never grants anything by itself:
/// an access is allowed only when the main policy set allows it and the limit permits it too.
#[derive(Debug, Clone)]
pub struct Limit {
    id: String,
    set: Arc<PolicySet>,
}

impl PartialEq for Limit {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Limit {}

impl Limit {
    /// The limit's name (its policies are `<name>-<n>`).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Principal {
    /// The name recorded in audit records.
    #[must_use]
    pub fn display_name(&self) -> &str {
        match self {
            Principal::Root(n) => n,
            Principal::User { name, .. } => name,
            Principal::Anonymous => "anonymous",
            Principal::Limited { principal, .. } => principal.display_name(),
        }
    }

    /// A user with groups and no tags.
    #[must_use]
    pub fn user(name: impl Into<String>, groups: Vec<String>) -> Self {
        Principal::User {
            name: name.into(),
            groups,
            tags: Vec::new(),
        }
    }

    /// This principal narrowed by `limits` (unchanged when there are none).
    #[must_use]
    pub fn limited(self, limits: Vec<Limit>) -> Self {
        match (self, limits.is_empty()) {
            (p, true) => p,
            (
                Principal::Limited {
                    principal,
                    limits: mut own,
                },
                false,
            ) => {
                own.extend(limits);
                Principal::Limited {
                    principal,
                    limits: own,
                }
            }
            (p, false) => Principal::Limited {
                principal: Box::new(p),
                limits,
            },
        }
    }

    /// The principal without its limits.
    #[must_use]
    pub fn unlimited(&self) -> &Principal {
        match self {
            Principal::Limited { principal, .. } => principal.unlimited(),
            p => p,
        }
    }
}

/// What is being accessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The service (ListBuckets, admin API).
    Service,
    /// A bucket.
    Bucket(String),
    /// An object.
    Object {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
    },
    /// A user as the subject of an action (its service accounts).
    User(String),
}

/// Request facts that conditions may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// Client address.
    pub source_ip: IpAddr,
    /// Whether the connection used TLS.
    pub secure_transport: bool,
    /// Current time, seconds since the Unix epoch.
    pub now: i64,
    /// List prefix (listings only).
    pub prefix: Option<String>,
    /// List delimiter (listings only).
    pub delimiter: Option<String>,
    /// List max-keys (listings only).
    pub max_keys: Option<i64>,
}

/// One access to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// Who.
    pub principal: Principal,
    /// What.
    pub action: Action,
    /// On what.
    pub resource: Resource,
    /// In which circumstances.
    pub context: RequestContext,
    /// The object's tags (Cedar entity tags on the `Object`), when the resource is an object
    /// and the policies read tags (`uses_object_tags`); empty otherwise.
    pub object_tags: Vec<(String, String)>,
}

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

/// Adds indexed grants and bucket policies to a set (links linked again).
fn add_indexed<'a>(
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
}

/// Built-in role names.
pub const ROLES: [&str; 4] = ["readonly", "readwrite", "writeonly", "admin"];

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

/// A grant or bucket policy as stored in the index: a role template link (linked again into a
/// request's set) or a static policy.
#[derive(Debug, Clone)]
enum Indexed {
    Static(Box<Policy>),
    Link {
        template: PolicyId,
        id: PolicyId,
        vals: HashMap<SlotId, EntityUid>,
    },
}

impl PolicyIndex {
    /// Every grant and bucket policy in the index.
    fn entries(&self) -> impl Iterator<Item = &Indexed> {
        self.by_user
            .values()
            .chain(self.by_group.values())
            .chain(self.by_bucket.values())
            .flat_map(|l| l.iter())
    }

    /// The static policies (Cedar grants, bucket policies): what tag detection reads.
    fn statics(&self) -> impl Iterator<Item = &Policy> {
        self.entries().filter_map(|e| match e {
            Indexed::Static(p) => Some(&**p),
            Indexed::Link { .. } => None,
        })
    }
}

impl Indexed {
    fn id(&self) -> &PolicyId {
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
struct PolicyIndex {
    by_user: HashMap<String, Arc<Vec<Indexed>>>,
    by_group: HashMap<String, Arc<Vec<Indexed>>>,
    by_bucket: HashMap<String, Arc<Vec<Indexed>>>,
}

/// Assembled request sets, by (principal, groups, bucket, action). Dropped with the engine,
/// which is rebuilt on every change; cleared when it holds `SET_CACHE_MAX` entries.
type SetCache = std::sync::Mutex<HashMap<SetKey, Arc<RequestSet>>>;
type SetKey = (EntityUid, Vec<String>, String, Action);
const SET_CACHE_MAX: usize = 16_384;

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
            index: Arc::default(),
            cache: Arc::default(),
            instance: next_instance(),
            checked_links: Arc::default(),
        };
        let engine = Self {
            tag_aware: reads_tags(&engine.base),
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
        // Whether some policy reads tags: what is added can only turn it on; after a removal
        // it is worked out again.
        next.tag_aware = if removed_any {
            reads_tags(&self.base) || index.statics().any(|p| reads_tags_text(&p.to_string()))
        } else {
            self.tag_aware || reads_tags(&added)
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
                let policy = scoped_policy(&pid, text, &principal, &self.schema)?;
                self.grant_text.insert(pid.clone(), text.clone());
                added
                    .add(policy.clone())
                    .map_err(|e| PolicyError::one(format!("{pid}: {e}")))?;
                Indexed::Static(Box::new(policy))
            }
        };
        let list = match &g.target {
            GrantTarget::User(n) => index.by_user.entry(n.clone()).or_default(),
            GrantTarget::Group(n) => index.by_group.entry(n.clone()).or_default(),
        };
        Arc::make_mut(list).push(entry);
        Ok(())
    }

    /// Takes the grant with this id (if any) out of the index and the prefixes; true when
    /// there was one.
    fn remove_grant(&mut self, index: &mut PolicyIndex, id: &str) -> bool {
        let pid = PolicyId::new(format!("att-{id}"));
        let mut gone: Option<Indexed> = None;
        for lists in [&mut index.by_user, &mut index.by_group] {
            lists.retain(|_, list| {
                if let Some(at) = list.iter().position(|e| e.id() == &pid) {
                    gone = Some(Arc::make_mut(list).remove(at));
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

    /// True when some policy reads entity tags (`hasTag`, `getTag`): only then does a request
    /// on an object need the object's tags, which cost a metadata read.
    #[must_use]
    pub fn uses_object_tags(&self) -> bool {
        self.tag_aware
    }

    /// Decides one access. Never fails: anything that prevents a clean decision is a deny
    /// carrying the reason in `errors`. An object request whose policies decide the whole
    /// bucket alike (`RequestSet::bucket_wide`) is answered from the worker thread's last
    /// decisions for that principal, action and bucket (`decisions`) when there is one.
    #[must_use]
    pub fn decide(&self, req: &AccessRequest) -> Decision {
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
        if let Some(d) = decisions::find(self.instance, &req.principal, req.action, bucket) {
            return d;
        }
        match self.request_set(req) {
            Ok(set) => {
                let d = self.decide_in(req, &set.policies, true);
                if set.bucket_wide && d.errors.is_empty() {
                    decisions::keep(self.instance, &req.principal, req.action, bucket, d.clone());
                }
                d
            }
            Err(e) => Decision::deny_with_error(e),
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
            .flat_map(|l| l.iter());
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

    /// The Cedar entity a principal acts as (a limited principal acts as its owner; the limits
    /// are decided separately).
    fn principal_uid(&self, p: &Principal) -> EntityUid {
        let t = &self.types;
        match p.unlimited() {
            Principal::Root(name) => uid(&t.root, name),
            Principal::User { name, .. } => uid(&t.user, name),
            Principal::Anonymous | Principal::Limited { .. } => uid(&t.anonymous, "anonymous"),
        }
    }

    /// A limit (session policy, service account policy) from Cedar text, validated strictly
    /// against the schema. `id` names it in decisions and errors.
    pub fn limit(&self, id: &str, text: &str) -> Result<Limit, PolicyError> {
        let name = format!("policy of {id}");
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

    /// The Cedar context of a request. Building one costs more than the rest of a decision's
    /// setup (Cedar parses the `ip` extension's name on every `new_ip`), and consecutive
    /// requests on a worker thread usually carry the same facts (one client, one second), so
    /// the last one built on each thread is kept and reused when the facts are equal.
    fn context(&self, c: &RequestContext) -> Result<Context, DecisionError> {
        thread_local! {
            static LAST: std::cell::RefCell<Option<(RequestContext, Context)>> =
                const { std::cell::RefCell::new(None) };
        }
        let hit = LAST.with_borrow(|last| {
            last.as_ref()
                .filter(|(facts, _)| facts == c)
                .map(|(_, ctx)| ctx.clone())
        });
        if let Some(ctx) = hit {
            return Ok(ctx);
        }
        let ctx = Self::build_context(c)?;
        LAST.set(Some((c.clone(), ctx.clone())));
        Ok(ctx)
    }

    fn build_context(c: &RequestContext) -> Result<Context, DecisionError> {
        let mut pairs: Vec<(String, RestrictedExpression)> = vec![
            (
                "source_ip".into(),
                RestrictedExpression::new_ip(c.source_ip.to_string()),
            ),
            (
                "secure_transport".into(),
                RestrictedExpression::new_bool(c.secure_transport),
            ),
            ("now".into(), RestrictedExpression::new_long(c.now)),
        ];
        if let Some(p) = &c.prefix {
            pairs.push(("prefix".into(), RestrictedExpression::new_string(p.clone())));
        }
        if let Some(d) = &c.delimiter {
            pairs.push((
                "delimiter".into(),
                RestrictedExpression::new_string(d.clone()),
            ));
        }
        if let Some(m) = c.max_keys {
            pairs.push(("max_keys".into(), RestrictedExpression::new_long(m)));
        }
        Context::from_pairs(pairs).map_err(DecisionError::from)
    }

    fn prefix_entity(&self, bucket: &str, prefix: &str) -> Result<Entity, DecisionError> {
        Entity::new(
            uid(&self.types.prefix, &format!("{bucket}/{prefix}")),
            HashMap::from([
                (
                    "bucket".into(),
                    RestrictedExpression::new_string(bucket.to_owned()),
                ),
                (
                    "prefix".into(),
                    RestrictedExpression::new_string(prefix.to_owned()),
                ),
            ]),
            HashSet::new(),
        )
        .map_err(DecisionError::from)
    }

    /// The entities of a request. `reuse`: take an object request's shared part from the
    /// per-thread cache (`object_entities`).
    fn entities(
        &self,
        req: &AccessRequest,
        reuse: bool,
    ) -> Result<(Entities, EntityUid, EntityUid), DecisionError> {
        if reuse
            && req.action.resource_kind() == ResourceKind::Object
            && let Resource::Object { bucket, key } = &req.resource
        {
            return self.object_entities(req, bucket, key);
        }
        let (list, principal, resource) = self.entity_list(req)?;
        let entities = self
            .action_entities(req.action)?
            .add_entities(list, None)
            .map_err(DecisionError::from)?;
        Ok((entities, principal, resource))
    }

    /// The granted prefixes of `bucket` that `name` (a key, or a listing's prefix) is under.
    fn granted_prefixes<'a>(
        &'a self,
        bucket: &str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a String> + 'a {
        self.prefix_grants
            .get(bucket)
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(move |p| name.starts_with(p.as_str()))
    }

    /// Pushes an object's entity, and the granted-prefix entities it is in, onto `list`.
    fn push_object(
        &self,
        bucket: &str,
        key: &str,
        object_tags: &[(String, String)],
        bucket_uid: EntityUid,
        list: &mut Vec<Entity>,
    ) -> Result<EntityUid, DecisionError> {
        let mut parents = HashSet::from([bucket_uid]);
        for p in self.granted_prefixes(bucket, key) {
            let pe = self.prefix_entity(bucket, p)?;
            parents.insert(pe.uid());
            list.push(pe);
        }
        let o = uid(&self.types.object, &format!("{bucket}/{key}"));
        let tags = object_tags
            .iter()
            .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
        list.push(
            Entity::new_with_tags(
                o.clone(),
                HashMap::from([
                    (
                        "bucket".into(),
                        RestrictedExpression::new_string(bucket.to_owned()),
                    ),
                    (
                        "key".into(),
                        RestrictedExpression::new_string(key.to_owned()),
                    ),
                ]),
                parents,
                tags,
            )
            .map_err(DecisionError::from)?,
        );
        Ok(o)
    }

    /// The entities of a request on an object. All but the object's own (and its granted
    /// prefixes') depend only on who asks, the action and the bucket: those are built with
    /// their transitive closure once and kept per worker thread for the last such triple, so
    /// a run of requests by one client on one bucket adds only the object each time. The
    /// result is the same as `entity_list`'s (`decide_unindexed` uses that one, and tests
    /// compare the two).
    fn object_entities(
        &self,
        req: &AccessRequest,
        bucket: &str,
        key: &str,
    ) -> Result<(Entities, EntityUid, EntityUid), DecisionError> {
        type Last = Option<(u64, Principal, Action, String, Entities)>;
        thread_local! {
            static LAST: std::cell::RefCell<Last> = const { std::cell::RefCell::new(None) };
        }
        let principal = req.principal.unlimited();
        let hit = LAST.with_borrow(|last| {
            last.as_ref()
                .filter(|(id, p, a, b, _)| {
                    *id == self.actions_id && p == principal && *a == req.action && b == bucket
                })
                .map(|(.., e)| e.clone())
        });
        let base = match hit {
            Some(e) => e,
            None => {
                let bucket_only = AccessRequest {
                    principal: principal.clone(),
                    action: req.action,
                    resource: Resource::Bucket(bucket.to_owned()),
                    context: req.context.clone(),
                    object_tags: Vec::new(),
                };
                let (list, ..) = self.entity_list_as(&bucket_only, ResourceKind::Bucket)?;
                let e = self.action_entities(req.action)?;
                let e = e.add_entities(list, None).map_err(DecisionError::from)?;
                LAST.set(Some((
                    self.actions_id,
                    principal.clone(),
                    req.action,
                    bucket.to_owned(),
                    e.clone(),
                )));
                e
            }
        };
        let mut list = Vec::new();
        let o = self.push_object(
            bucket,
            key,
            &req.object_tags,
            uid(&self.types.bucket, bucket),
            &mut list,
        )?;
        let entities = base.add_entities(list, None).map_err(DecisionError::from)?;
        Ok((entities, self.principal_uid(principal), o))
    }

    fn action_entities(&self, action: Action) -> Result<Entities, DecisionError> {
        self.actions
            .get(&action)
            .cloned()
            .ok_or(DecisionError::ActionNotInSchema(action.cedar_name()))
    }

    fn entity_list(
        &self,
        req: &AccessRequest,
    ) -> Result<(Vec<Entity>, EntityUid, EntityUid), DecisionError> {
        self.entity_list_as(req, req.action.resource_kind())
    }

    /// The entities of `req`, its resource taken as a `kind` (an object request's shared
    /// part is built as a request on its bucket).
    fn entity_list_as(
        &self,
        req: &AccessRequest,
        kind: ResourceKind,
    ) -> Result<(Vec<Entity>, EntityUid, EntityUid), DecisionError> {
        let t = &self.types;
        let mut list: Vec<Entity> = Vec::new();
        let principal = self.principal_uid(&req.principal);
        match req.principal.unlimited() {
            Principal::User { name, groups, tags } => {
                let mut parents: HashSet<EntityUid> =
                    groups.iter().map(|g| uid(&t.group, g)).collect();
                for g in &parents {
                    list.push(Entity::with_uid(g.clone()));
                }
                // Acting on itself: the one User entity is also the resource, in the Service.
                if req.resource == Resource::User(name.clone()) {
                    parents.insert(uid(&t.service, SERVICE_ID));
                }
                let tags = tags
                    .iter()
                    .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
                list.push(
                    Entity::new_with_tags(principal.clone(), HashMap::new(), parents, tags)
                        .map_err(DecisionError::from)?,
                );
            }
            Principal::Root(_) | Principal::Anonymous | Principal::Limited { .. } => {
                list.push(Entity::with_uid(principal.clone()));
            }
        }
        let service = uid(&t.service, SERVICE_ID);
        list.push(Entity::with_uid(service.clone()));
        let bucket_entity = |bucket: &str,
                             list: &mut Vec<Entity>,
                             under: Option<&str>|
         -> Result<EntityUid, DecisionError> {
            let b = uid(&t.bucket, bucket);
            let mut parents = HashSet::from([service.clone()]);
            if let Some(list_prefix) = under {
                for p in self.granted_prefixes(bucket, list_prefix) {
                    let pe = self.prefix_entity(bucket, p)?;
                    parents.insert(pe.uid());
                    list.push(pe);
                }
            }
            list.push(Entity::new_no_attrs(b.clone(), parents));
            Ok(b)
        };
        let resource = match (&req.resource, kind) {
            (Resource::Service, ResourceKind::Service) => service.clone(),
            // ListBuckets is also decided bucket by bucket, to filter the listing.
            (Resource::Bucket(b), ResourceKind::Service) if req.action == Action::ListBuckets => {
                bucket_entity(b, &mut list, None)?
            }
            (Resource::Bucket(b), ResourceKind::Bucket) => {
                let under = if req.action.is_listing() {
                    Some(req.context.prefix.as_deref().unwrap_or(""))
                } else {
                    None
                };
                bucket_entity(b, &mut list, under)?
            }
            (Resource::Object { bucket, key }, ResourceKind::Object) => {
                let b = bucket_entity(bucket, &mut list, None)?;
                self.push_object(bucket, key, &req.object_tags, b, &mut list)?
            }
            (Resource::User(name), ResourceKind::User) => {
                let u = uid(&t.user, name);
                if u != principal {
                    list.push(Entity::new_no_attrs(
                        u.clone(),
                        HashSet::from([service.clone()]),
                    ));
                }
                u
            }
            // Unsupported operations may name any resource; decide them on the service.
            (_, ResourceKind::Service) if req.action == Action::Unsupported => service.clone(),
            (r, kind) => {
                return Err(DecisionError::WrongResource {
                    action: req.action.cedar_name(),
                    kind,
                    resource: format!("{r:?}"),
                });
            }
        };
        Ok((list, principal, resource))
    }

    /// Checks that the Cedar request and entities built for `req` conform to the schema (the
    /// hot path skips this; tests run it over every action).
    pub fn conforms(&self, req: &AccessRequest) -> Result<(), DecisionError> {
        let (list, principal, resource) = self.entity_list(req)?;
        Entities::from_entities(list, Some(&self.schema)).map_err(DecisionError::from)?;
        let action = uid(&self.types.action, req.action.cedar_name());
        let context = self.context(&req.context)?;
        Request::new(principal, action, resource, context, Some(&self.schema))
            .map(|_| ())
            .map_err(DecisionError::from)
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

/// The policies that can apply to one (principal, groups, bucket, action), and whether they
/// decide every object of the bucket alike.
#[derive(Debug)]
struct RequestSet {
    policies: PolicySet,
    /// Every policy is `bucket_wide`: an object request's decision depends only on who asks,
    /// the action and the bucket, so it is kept (`decisions`) and reused for other keys.
    bucket_wide: bool,
}

/// True when `p` decides an object request the same whatever the object's key, tags and
/// prefixes and whatever the request's context: its resource scope names nothing below a
/// bucket, and its conditions read neither `context` nor `resource`, except to test
/// `resource in` a bucket or the service (what fsgate appends to bucket policies). Anything
/// else, or a policy that cannot be read back as JSON, is taken to depend on the object.
fn bucket_wide(p: &Policy, types: &Types) -> bool {
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
/// `resource in <entity of a type in above>`.
fn reads_request_facts(e: &serde_json::Value, above: &[String]) -> bool {
    use serde_json::Value;
    match e {
        Value::Object(m) => {
            if let Some(Value::String(var)) = m.get("Var") {
                return var == "resource" || var == "context";
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

/// The last decisions of bucket-wide request sets on this worker thread, by (engine, principal,
/// action, bucket): a run of requests by one client on one bucket decides once per engine.
/// An engine is never changed (a policy change makes a new one, with a new instance number),
/// so a kept decision stays right for as long as its engine is the one asked.
mod decisions {
    use std::cell::RefCell;

    use super::{Action, Decision, Principal};

    /// Decisions kept per thread; the oldest is replaced.
    const KEPT: usize = 16;

    struct Kept {
        instance: u64,
        principal: Principal,
        action: Action,
        bucket: String,
        decision: Decision,
    }

    #[derive(Default)]
    struct Cache {
        entries: Vec<Kept>,
        next: usize,
    }

    thread_local! {
        static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
    }

    pub(super) fn find(
        instance: u64,
        principal: &Principal,
        action: Action,
        bucket: &str,
    ) -> Option<Decision> {
        CACHE.with_borrow(|c| {
            c.entries
                .iter()
                .find(|k| {
                    k.instance == instance
                        && k.action == action
                        && k.bucket == bucket
                        && &k.principal == principal
                })
                .map(|k| k.decision.clone())
        })
    }

    pub(super) fn keep(
        instance: u64,
        principal: &Principal,
        action: Action,
        bucket: &str,
        decision: Decision,
    ) {
        CACHE.with_borrow_mut(|c| {
            let kept = Kept {
                instance,
                principal: principal.clone(),
                action,
                bucket: bucket.to_owned(),
                decision,
            };
            if c.entries.len() < KEPT {
                c.entries.push(kept);
            } else if let Some(slot) = c.entries.get_mut(c.next) {
                *slot = kept;
            }
            c.next = (c.next + 1) % KEPT;
        });
    }
}

/// A number no other engine in this process has.
fn next_instance() -> u64 {
    static ENGINES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    ENGINES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// False only when `p`'s scope cannot match: a principal `==` another entity or `is` another
/// type, or an action that is neither the request's action nor one of its groups. `in` an
/// entity other than an action group is left to Cedar (group membership is the request's).
fn scope_may_match(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn wide(text: &str) -> bool {
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
        ] {
            assert!(!wide(text), "{text}");
        }
    }
}
