//! The last decisions of bucket-wide request sets on this worker thread, by (engine, principal,
//! action, bucket, bucket owner): a run of requests by one client on one bucket decides once
//! per engine. (The owner is in the key because a bucket can be created, and so owned,
//! without any policy changing.)
//! An engine is never changed (a policy change makes a new one, with a new instance number),
//! so a kept decision stays right for as long as its engine is the one asked.

use std::cell::RefCell;

use super::{Action, Decision, Principal};

/// Decisions kept per thread; the oldest is replaced.
const KEPT: usize = 16;

struct Kept {
    pub(super) instance: u64,
    pub(super) principal: Principal,
    pub(super) action: Action,
    pub(super) bucket: String,
    pub(super) owner: Option<String>,
    pub(super) decision: Decision,
}

#[derive(Default)]
struct Cache {
    pub(super) entries: Vec<Kept>,
    pub(super) next: usize,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

pub(super) fn find(
    instance: u64,
    principal: &Principal,
    action: Action,
    (bucket, owner): (&str, Option<&str>),
) -> Option<Decision> {
    CACHE.with_borrow(|c| {
        c.entries
            .iter()
            .find(|k| {
                k.instance == instance
                    && k.action == action
                    && k.bucket == bucket
                    && k.owner.as_deref() == owner
                    && &k.principal == principal
            })
            .map(|k| k.decision.clone())
    })
}

pub(super) fn keep(
    instance: u64,
    principal: &Principal,
    action: Action,
    (bucket, owner): (&str, Option<&str>),
    decision: Decision,
) {
    CACHE.with_borrow_mut(|c| {
        let kept = Kept {
            instance,
            principal: principal.clone(),
            action,
            bucket: bucket.to_owned(),
            owner: owner.map(str::to_owned),
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
