//! Crash points: the durable steps of every change, where a test may abort the process and
//! then check that what a restart finds is whole (`conformance/tests/crash_points.rs`).
//!
//! Each durable step calls [`point`] just before it acts (and [`Step::MetaCommitted`] just
//! after a metadata commit, before anyone is told). Aborting at step N therefore leaves steps
//! 1..N-1 done and N not; enumerating N = 1, 2, ... until a run finishes covers every state
//! a crash can leave.
//!
//! Compiled in only with the `crash-points` feature, which the test command turns on. Without
//! it (`cargo build --release`, the packages, the container image) [`point`] is an empty
//! inline function and nothing reads the environment. With it, the process's environment arms
//! it:
//! - `FSGATE_CRASH_AT=N` aborts at the Nth data step (every step but the audit log's commits,
//!   which a background thread makes on its own clock);
//! - `FSGATE_CRASH_AT=audit:N` aborts at the Nth commit of the audit log;
//! - `FSGATE_CRASH_LOG=FILE` appends a line per step passed (`data 3 meta.commit`).

/// A durable step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A new blob's bytes are about to be synced (its temporary file).
    BlobSync,
    /// A synced blob is about to be renamed into place.
    BlobRename,
    /// A blob's directory is about to be synced after the rename.
    BlobDirSync,
    /// A metadata batch is about to commit (synced).
    MetaCommit,
    /// A metadata batch has committed; nothing has been told yet.
    MetaCommitted,
    /// A blob whose last reference is gone is about to be removed.
    BlobRemove,
    /// A batch of audit records is about to commit.
    AuditCommit,
}

impl Step {
    /// The step's name in logs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::BlobSync => "blob.sync",
            Self::BlobRename => "blob.rename",
            Self::BlobDirSync => "blob.dir_sync",
            Self::MetaCommit => "meta.commit",
            Self::MetaCommitted => "meta.committed",
            Self::BlobRemove => "blob.remove",
            Self::AuditCommit => "audit.commit",
        }
    }

    /// True for the audit log's steps, counted apart from the data steps.
    #[must_use]
    pub fn is_audit(self) -> bool {
        matches!(self, Self::AuditCommit)
    }
}

/// Marks a durable step: aborts the process here when armed for it (`crash-points` builds).
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_step: Step) {}

/// Marks a durable step: aborts the process here when armed for it (`crash-points` builds).
#[cfg(feature = "crash-points")]
pub fn point(step: Step) {
    armed::point(step);
}

/// True when this build has crash points (the `crash-points` feature).
#[must_use]
pub const fn compiled_in() -> bool {
    cfg!(feature = "crash-points")
}

#[cfg(feature = "crash-points")]
mod armed {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    use super::Step;

    struct Plan {
        /// Abort at this audit step (true) or data step (false)...
        audit: bool,
        /// ...with this number (0: never).
        at: u64,
        log: Option<Mutex<std::fs::File>>,
    }

    static PLAN: OnceLock<Plan> = OnceLock::new();
    static DATA_STEPS: AtomicU64 = AtomicU64::new(0);
    static AUDIT_STEPS: AtomicU64 = AtomicU64::new(0);

    fn plan() -> &'static Plan {
        PLAN.get_or_init(|| {
            let spec = std::env::var("FSGATE_CRASH_AT").unwrap_or_default();
            let (audit, n) = match spec.strip_prefix("audit:") {
                Some(n) => (true, n),
                None => (false, spec.as_str()),
            };
            let log = std::env::var_os("FSGATE_CRASH_LOG").and_then(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .ok()
                    .map(Mutex::new)
            });
            Plan {
                audit,
                at: n.trim().parse().unwrap_or(0),
                log,
            }
        })
    }

    pub(super) fn point(step: Step) {
        let plan = plan();
        let counter = if step.is_audit() {
            &AUDIT_STEPS
        } else {
            &DATA_STEPS
        };
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let class = if step.is_audit() { "audit" } else { "data" };
        if let Some(log) = &plan.log {
            let mut f = log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = writeln!(f, "{class} {n} {}", step.name());
            let _ = f.sync_data();
        }
        if plan.at == n && plan.audit == step.is_audit() {
            eprintln!(
                "crash point: aborting at {class} step {n} ({})",
                step.name()
            );
            std::process::abort();
        }
    }
}
