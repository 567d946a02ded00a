//! The writer's side of the log: appending records (position, line, leaf, completed subtrees)
//! and signing checkpoints of the tree so far. Storage is the caller's: it persists what
//! [`Appender::append`] hands back in the same atomic write as the record.

use crate::checkpoint::{Checkpoint, SigningKey};
use crate::record;
use crate::tree::{Frontier, Hash, leaf_hash};

/// A record appended: where, the bytes to store, and their leaf hash.
#[derive(Debug)]
pub struct Appended {
    /// The record's position.
    pub seq: u64,
    /// The caller's prefix, then the record's line (stored and exported as is).
    pub stored: Vec<u8>,
    /// The line's leaf hash.
    pub leaf: Hash,
}

impl Appended {
    /// The record's line (after the prefix).
    #[must_use]
    pub fn line(&self, prefix_len: usize) -> &[u8] {
        self.stored.get(prefix_len..).unwrap_or_default()
    }
}

/// Appends records to a log whose tree is `tree`.
#[derive(Debug)]
pub struct Appender {
    tree: Frontier,
}

impl Appender {
    /// Continues the log whose first records make `tree`.
    #[must_use]
    pub fn new(tree: Frontier) -> Self {
        Self { tree }
    }

    /// Appends the record whose JSON without position is `body`, calling `completed` for each
    /// perfect subtree (level ≥ 1) it completes. The stored bytes are `prefix` (a storage
    /// version byte, say) then the line, in one allocation.
    pub fn append(
        &mut self,
        prefix: &[u8],
        body: &[u8],
        completed: impl FnMut(u8, u64, &Hash),
    ) -> Appended {
        let seq = self.tree.size();
        let mut stored =
            Vec::with_capacity(prefix.len() + record::RECORD_PREFIX.len() + 21 + body.len());
        stored.extend_from_slice(prefix);
        record::line_into(&mut stored, seq, body);
        let leaf = leaf_hash(stored.get(prefix.len()..).unwrap_or_default());
        self.tree.push(leaf, completed);
        Appended { seq, stored, leaf }
    }

    /// Records appended so far (the next record's position).
    #[must_use]
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The tree so far.
    #[must_use]
    pub fn tree(&self) -> &Frontier {
        &self.tree
    }

    /// A checkpoint of the log so far, signed with `key` at `time_ns`.
    #[must_use]
    pub fn checkpoint(&self, key: &SigningKey, time_ns: u64) -> Checkpoint {
        key.sign(self.tree.size(), &self.tree.root(), time_ns)
    }
}
