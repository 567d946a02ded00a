//! The Cedar entities and context of a request. Names only ever enter Cedar here, as entity
//! ids and attribute values built through Cedar's API.

use std::collections::{HashMap, HashSet};

use cedar_policy::{Context, Entities, Entity, EntityUid, Request, RestrictedExpression};

use crate::actions::{Action, ResourceKind};

use super::{
    AccessRequest, DecisionError, PolicyEngine, Principal, RequestContext, Resource, SERVICE_ID,
    uid,
};

impl PolicyEngine {
    /// The Cedar entity a principal acts as (a limited principal acts as its owner; the limits
    /// are decided separately).
    pub(super) fn principal_uid(&self, p: &Principal) -> EntityUid {
        let t = &self.types;
        match p.unlimited() {
            Principal::Root(name) => uid(&t.root, name),
            Principal::User { name, .. } => uid(&t.user, name),
            Principal::Anonymous | Principal::Limited { .. } => uid(&t.anonymous, "anonymous"),
            Principal::ShareLink(link) => uid(&t.share_link, &link.id),
        }
    }

    /// The Cedar context of a request. Building one costs more than the rest of a decision's
    /// setup (Cedar parses the `ip` extension's name on every `new_ip`), and consecutive
    /// requests on a worker thread usually carry the same facts (one client, one second), so
    /// the last one built on each thread is kept and reused when the facts are equal.
    pub(super) fn context(&self, c: &RequestContext) -> Result<Context, DecisionError> {
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
        let ctx = self.build_context(c)?;
        LAST.set(Some((c.clone(), ctx.clone())));
        Ok(ctx)
    }

    fn build_context(&self, c: &RequestContext) -> Result<Context, DecisionError> {
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
        if let Some(v) = &c.server_side_encryption {
            pairs.push((
                "server_side_encryption".into(),
                RestrictedExpression::new_string(v.clone()),
            ));
        }
        if let Some(v) = &c.version_id {
            pairs.push((
                "version_id".into(),
                RestrictedExpression::new_string(v.clone()),
            ));
        }
        for (name, v) in c.headers.present() {
            pairs.push((name.into(), RestrictedExpression::new_string(v.clone())));
        }
        if let Some(tags) = &c.headers.request_tags {
            pairs.push((
                "request_tags".into(),
                RestrictedExpression::new_entity_uid(self.request_tags_uid()),
            ));
            pairs.push((
                "request_tag_keys".into(),
                RestrictedExpression::new_set(
                    tags.iter()
                        .map(|(k, _)| RestrictedExpression::new_string(k.clone())),
                ),
            ));
        }
        Context::from_pairs(pairs).map_err(DecisionError::from)
    }

    /// The one `RequestTags` entity a request's context names.
    fn request_tags_uid(&self) -> EntityUid {
        uid(&self.types.request_tags, "request")
    }

    /// Pushes the request's `RequestTags` entity (the tags a write asks for), if it has one.
    fn push_request_tags(
        &self,
        req: &AccessRequest,
        list: &mut Vec<Entity>,
    ) -> Result<(), DecisionError> {
        if let Some(tags) = &req.context.headers.request_tags {
            let tags = tags
                .iter()
                .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
            list.push(
                Entity::new_with_tags(
                    self.request_tags_uid(),
                    HashMap::new(),
                    HashSet::new(),
                    tags,
                )
                .map_err(DecisionError::from)?,
            );
        }
        Ok(())
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
    pub(super) fn entities(
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
        (bucket, key): (&str, &str),
        object_tags: &[(String, String)],
        owner: Option<&str>,
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
        let mut attrs = HashMap::from([
            (
                "bucket".into(),
                RestrictedExpression::new_string(bucket.to_owned()),
            ),
            (
                "key".into(),
                RestrictedExpression::new_string(key.to_owned()),
            ),
        ]);
        attrs.extend(self.owner_attr(owner));
        list.push(
            Entity::new_with_tags(o.clone(), attrs, parents, tags).map_err(DecisionError::from)?,
        );
        Ok(o)
    }

    /// The `owner` attribute of a bucket (and its objects) owned by a user.
    fn owner_attr(&self, owner: Option<&str>) -> Option<(String, RestrictedExpression)> {
        owner.map(|o| {
            (
                "owner".to_owned(),
                RestrictedExpression::new_entity_uid(uid(&self.types.user, o)),
            )
        })
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
        type Last = Option<(u64, Principal, Action, String, Option<String>, Entities)>;
        thread_local! {
            static LAST: std::cell::RefCell<Last> = const { std::cell::RefCell::new(None) };
        }
        let principal = req.principal.unlimited();
        let hit = LAST.with_borrow(|last| {
            last.as_ref()
                .filter(|(id, p, a, b, o, _)| {
                    *id == self.actions_id
                        && p == principal
                        && *a == req.action
                        && b == bucket
                        && *o == req.bucket_owner
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
                    bucket_owner: req.bucket_owner.clone(),
                };
                let (list, ..) = self.entity_list_as(&bucket_only, ResourceKind::Bucket)?;
                let e = self.action_entities(req.action)?;
                let e = e.add_entities(list, None).map_err(DecisionError::from)?;
                LAST.set(Some((
                    self.actions_id,
                    principal.clone(),
                    req.action,
                    bucket.to_owned(),
                    req.bucket_owner.clone(),
                    e.clone(),
                )));
                e
            }
        };
        let mut list = Vec::new();
        let o = self.push_object(
            (bucket, key),
            &req.object_tags,
            req.bucket_owner.as_deref(),
            uid(&self.types.bucket, bucket),
            &mut list,
        )?;
        self.push_request_tags(req, &mut list)?;
        let entities = base.add_entities(list, None).map_err(DecisionError::from)?;
        Ok((entities, self.principal_uid(principal), o))
    }

    pub(super) fn action_entities(&self, action: Action) -> Result<Entities, DecisionError> {
        self.actions
            .get(&action)
            .cloned()
            .ok_or(DecisionError::ActionNotInSchema(action.cedar_name()))
    }

    /// The entities of a request: its principal's, its resource's and its request tags'.
    fn entity_list(
        &self,
        req: &AccessRequest,
    ) -> Result<(Vec<Entity>, EntityUid, EntityUid), DecisionError> {
        let (mut list, principal, resource) =
            self.entity_list_as(req, req.action.resource_kind())?;
        self.push_request_tags(req, &mut list)?;
        Ok((list, principal, resource))
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
            Principal::ShareLink(link) => {
                self.push_share_link(link, principal.clone(), &mut list)?
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
            let attrs: HashMap<String, RestrictedExpression> = self
                .owner_attr(req.bucket_owner.as_deref())
                .into_iter()
                .collect();
            list.push(Entity::new(b.clone(), attrs, parents).map_err(DecisionError::from)?);
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
                self.push_object(
                    (bucket, key),
                    &req.object_tags,
                    req.bucket_owner.as_deref(),
                    b,
                    &mut list,
                )?
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

    /// A share link's entity, with its creator's (and the creator's groups) when a user made it.
    fn push_share_link(
        &self,
        link: &crate::engine::request::ShareLink,
        me: EntityUid,
        list: &mut Vec<Entity>,
    ) -> Result<(), DecisionError> {
        let t = &self.types;
        let string = |v: &str| RestrictedExpression::new_string(v.to_owned());
        let mut attrs = HashMap::from([
            (
                "creator_name".to_owned(),
                string(link.creator.display_name()),
            ),
            ("bucket".to_owned(), string(&link.bucket)),
            ("key".to_owned(), string(&link.key)),
            (
                "folder".to_owned(),
                RestrictedExpression::new_bool(link.folder),
            ),
            (
                "upload_only".to_owned(),
                RestrictedExpression::new_bool(link.upload_only),
            ),
            (
                "has_password".to_owned(),
                RestrictedExpression::new_bool(link.has_password),
            ),
            (
                "created".to_owned(),
                RestrictedExpression::new_long(link.created),
            ),
            (
                "expires".to_owned(),
                RestrictedExpression::new_long(link.expires),
            ),
        ]);
        if let Some(m) = link.max_uses {
            attrs.insert("max_uses".to_owned(), RestrictedExpression::new_long(m));
        }
        if let Principal::User { name, groups, .. } = link.creator.unlimited() {
            let creator = uid(&t.user, name);
            attrs.insert(
                "creator".to_owned(),
                RestrictedExpression::new_entity_uid(creator.clone()),
            );
            let parents: HashSet<EntityUid> = groups.iter().map(|g| uid(&t.group, g)).collect();
            for g in &parents {
                list.push(Entity::with_uid(g.clone()));
            }
            list.push(Entity::new_no_attrs(creator, parents));
        }
        list.push(Entity::new(me, attrs, HashSet::new()).map_err(DecisionError::from)?);
        Ok(())
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
}
