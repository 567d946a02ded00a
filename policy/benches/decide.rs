//! Cedar decisions as the policy base grows: one GetObject decided by an engine holding N users
//! each with a role on their own bucket (N linked templates) plus a bucket policy per bucket.
//! Issue 7 asks that authorization not grow with the policy base (the engine decides against
//! an index of the policies that can apply). `build engine` measures a whole build (start-up,
//! SIGHUP); `change one grant` what an IAM change through the admin API costs
//! (`PolicyEngine::with_changes`: the new grant validated and filed in the index). With
//! bucket-wide policies (nothing read below the bucket), a decision is kept per worker thread:
//! `decide GetObject, bucket-wide policies` measures that path.

#![allow(clippy::panic, reason = "a benchmark fails loudly")]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fsgate_policy::{
    AccessRequest, Action, Changes, Grant, GrantPolicy, GrantTarget, PolicyEngine, Principal,
    RequestContext, Resource,
};

/// The bucket policy of `engine`: it reads the request's context, so every decision is
/// evaluated by Cedar.
const CONTEXT_POLICY: &str = "permit(principal, action == Action::\"s3:GetObject\", resource) when { context.secure_transport };";

/// A bucket policy that reads nothing below the bucket: decisions are kept per thread.
const BUCKET_WIDE_POLICY: &str = "permit(principal, action == Action::\"s3:GetObject\", resource);";

fn engine(users: usize, buckets: usize) -> PolicyEngine {
    engine_with(users, buckets, CONTEXT_POLICY)
}

fn engine_with(users: usize, buckets: usize, bucket_policy: &str) -> PolicyEngine {
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
        .map(|b| (format!("bucket{b}"), bucket_policy.to_owned()))
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
            version_id: None,
            server_side_encryption: None,
            headers: fsgate_policy::RequestHeaders::default(),
        },
        object_tags: Vec::new(),
        bucket_owner: None,
    }
}

fn decide(c: &mut Criterion) {
    let sizes = [(10, 10), (1_000, 100), (10_000, 1_000)];
    decide_group(c, "decide GetObject", &sizes, CONTEXT_POLICY);
    // The same request when no policy that applies reads the key, tags or context: the
    // worker thread's kept decision answers.
    decide_group(
        c,
        "decide GetObject, bucket-wide policies",
        &sizes,
        BUCKET_WIDE_POLICY,
    );
}

fn decide_group(c: &mut Criterion, name: &str, sizes: &[(usize, usize)], bucket_policy: &str) {
    let mut g = c.benchmark_group(name);
    for &(users, buckets) in sizes {
        let e = engine_with(users, buckets, bucket_policy);
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
