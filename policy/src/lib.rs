//! Cedar policy layer for fsgate: the schema, the built-in policies and role templates, the
//! entities and context built for each request, and the authorizer that decides it.
//!
//! This crate must not depend on hyper, http, s3s or fsgate-store: the gateway describes each
//! request as an [`AccessRequest`] and receives a [`Decision`].
//!
//! The one thing a newcomer must not break: a Cedar policy that errors during evaluation is
//! silently skipped by Cedar, so an erroring `forbid` would fail open. Every policy is validated
//! strictly against the schema when loaded, and any evaluation error turns the decision into a
//! deny. Names (buckets, keys, users) only ever enter Cedar as entity ids and attribute values
//! built through the API, never spliced into policy text — except in the translation of AWS
//! bucket and identity policies to Cedar (`bucket_policy`), which writes every name and value through one
//! escaping function.

mod acl;
mod actions;
pub mod bucket_policy;
mod engine;
mod load;

pub use self::acl::{AclChange, AclGrant, AclGrantee, AclPermission};
pub use self::actions::{ALL as ALL_ACTIONS, Action, ResourceKind};
pub use self::engine::{
    AccessRequest, Changes, Decision, Grant, GrantPolicy, GrantTarget, Limit, PolicyEngine,
    Principal, RequestContext, RequestHeaders, Resource, ShareLink,
};
pub use self::load::{BUILTIN_FILES, PolicyError, PolicyFile};
