//! Cedar decisions as the policy base grows: one GetObject decided by an engine holding N users
//! each with a role on their own bucket (N linked templates) plus a bucket policy per bucket.
//! Issue 7 asks that authorization not grow with the policy base (the engine decides against
//! an index of the policies that can apply). `build engine` measures a whole build (start-up,
//! SIGHUP); `change one grant` what an IAM change through the admin API costs
//! (`PolicyEngine::with_changes`: the new grant validated and filed in the index).

#![allow(clippy::panic, reason = "a benchmark fails loudly")]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fsgate_policy::{
    AccessRequest, Action, Changes, Grant, GrantPolicy, GrantTarget, PolicyEngine, Principal,
    RequestContext, Resource,
};

fn engine(users: usize, buckets: usize) -> PolicyEngine {
    let grants: Vec<Grant> = (0..users)
        .map(|i| Grant {
            id: format!("g{i}"),
            target: GrantTarget::User(format!("user{i}")),
            policy: GrantPolicy::Role {
                role: "readwrite".into(),
                bucket: Some(format!("bucket{}", i % buckets.max(1))),
                prefix: None,
            },
        })
        .collect();
    let docs: Vec<(String, String)> = (0..buckets)
        .map(|b| {
            (
                format!("bucket{b}"),
                "permit(principal, action == Action::\"s3:GetObject\", resource) when { context.secure_transport };".to_owned(),
            )
        })
        .collect();
    PolicyEngine::builtin()
        .and_then(|e| e.with_grants(&grants))
        .and_then(|e| e.with_bucket_policies(&docs))
        .unwrap_or_else(|e| panic!("engine: {e}"))
}

fn request() -> AccessRequest {
    AccessRequest {
        principal: Principal::user("user1", vec!["staff".into()]),
        action: Action::GetObject,
        resource: Resource::Object {
            bucket: "bucket1".into(),
            key: "reports/q3.pdf".into(),
        },
        context: RequestContext {
            source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            secure_transport: false,
            now: 1_790_000_000,
            prefix: None,
            delimiter: None,
            max_keys: None,
        },
        object_tags: Vec::new(),
    }
}

fn decide(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide GetObject");
    for (users, buckets) in [(10, 10), (1_000, 100), (10_000, 1_000)] {
        let e = engine(users, buckets);
        let req = request();
        assert!(e.decide(&req).allowed);
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{users} users, {buckets} buckets")),
            &req,
            |b, req| b.iter(|| black_box(e.decide(black_box(req)))),
        );
    }
    g.finish();
}

/// Building the engine (linking every grant, loading every bucket policy, validating them):
/// start-up and SIGHUP.
fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build engine");
    g.sample_size(10);
    for (users, buckets) in [(1_000, 100), (10_000, 1_000)] {
        g.bench_function(
            BenchmarkId::from_parameter(format!("{users} users, {buckets} buckets")),
            |b| b.iter(|| black_box(engine(users, buckets))),
        );
    }
    g.finish();
}

/// One grant added to a large engine (a Cedar grant, so it is validated every time).
fn change(c: &mut Criterion) {
    let mut g = c.benchmark_group("change one grant");
    for (users, buckets) in [(1_000, 100), (10_000, 1_000)] {
        let e = engine(users, buckets);
        let changes = Changes {
            grants: vec![Grant {
                id: "new".into(),
                target: GrantTarget::User("newcomer".into()),
                policy: GrantPolicy::Cedar(
                    "permit(principal, action == Action::\"s3:GetObject\", resource in Bucket::\"bucket1\");".into(),
                ),
            }],
            ..Changes::default()
        };
        g.bench_function(
            BenchmarkId::from_parameter(format!("{users} users, {buckets} buckets")),
            |b| b.iter(|| black_box(e.with_changes(&changes))),
        );
    }
    g.finish();
}

criterion_group!(benches, decide, build, change);
criterion_main!(benches);
