//! The consistency check of a data directory (`fsgate check`): what every change's one
//! durability path (`Store::commit_with_refs`) promises, recomputed from scratch.
//!
//! - each blob's reference count equals the references the manifests (current and noncurrent
//!   versions) and the multipart parts hold;
//! - every referenced blob is on disk (or quarantined, which a scrub reported), and no blob on
//!   disk is unreferenced (the start-up collection removed them);
//! - every inline version has its bytes, whole (their CRC32C), and no inline bytes are left
//!   without their version;
//! - every stored value decodes.
//!
//! The check streams the column families with cursors: memory grows with the number of
//! distinct blobs, not with the number of versions.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::blob::BlobId;
use crate::meta::{Cf, codec};
use crate::model::{ObjectManifest, PartRecord};
use crate::{Store, StoreResult};

/// The most problems a report lists (the count is always whole).
const MAX_LISTED: usize = 1000;

/// What a consistency check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Object versions and delete markers read.
    pub versions: u64,
    /// Multipart parts read.
    pub parts: u64,
    /// Distinct blobs referenced.
    pub blobs: u64,
    /// Inline versions whose bytes were checked.
    pub inline: u64,
    /// Problems found (`problem_count` of them; at most 1000 listed).
    pub problems: Vec<String>,
    /// How many problems there were.
    pub problem_count: u64,
}

impl CheckReport {
    fn problem(&mut self, text: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(text);
        }
    }

    /// True when nothing is wrong.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.problem_count == 0
    }
}

/// Readable form of a metadata key (bucket and key are separated by NUL bytes).
fn show(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\0', "/")
}

impl Store {
    /// Checks the store's invariants (see the module's documentation). Run it on a store no
    /// one writes to meanwhile: a commit between two reads shows as a mismatch.
    pub fn check(&self) -> StoreResult<CheckReport> {
        // The inline family's memtable is a hash table that a cursor does not walk in order:
        // from the files, every family scans whole.
        self.flush_metadata()?;
        let mut report = CheckReport::default();
        let mut expected: HashMap<BlobId, u64> = HashMap::new();
        let mut inline_keys: HashSet<Vec<u8>> = HashSet::new();

        for cf in [Cf::Objects, Cf::Versions] {
            let mut it = self.meta().cursor(cf)?;
            it.seek_to_first();
            while it.valid() {
                let (Some(k), Some(v)) = (it.key(), it.value()) else {
                    break;
                };
                report.versions += 1;
                match codec::decode::<ObjectManifest>(cf.name(), v) {
                    Ok(m) => {
                        for e in &m.extents {
                            *expected.entry(e.blob).or_default() += 1;
                        }
                        if m.inline {
                            // The current version's inline bytes sit under its version key.
                            let mut ik = k.to_vec();
                            if cf == Cf::Objects {
                                ik.push(0);
                                ik.extend_from_slice(&(!m.seq).to_be_bytes());
                            }
                            inline_keys.insert(ik);
                        }
                    }
                    Err(e) => report.problem(format!("{} {}: {e}", cf.name(), show(k))),
                }
                it.next();
            }
            it.status()?;
        }

        let mut it = self.meta().cursor(Cf::Parts)?;
        it.seek_to_first();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            report.parts += 1;
            match codec::decode::<PartRecord>("part", v) {
                Ok(p) => *expected.entry(p.blob).or_default() += 1,
                Err(e) => report.problem(format!("parts {}: {e}", show(k))),
            }
            it.next();
        }
        it.status()?;
        drop(it);
        report.blobs = expected.len() as u64;

        // Reference counts against the references.
        let mut counted: HashSet<BlobId> = HashSet::new();
        let mut it = self.meta().cursor(Cf::BlobRefs)?;
        it.seek_to_first();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let id = BlobId(k.try_into().unwrap_or_default());
            counted.insert(id);
            match codec::decode::<u64>("blob references", v) {
                Ok(count) => {
                    let want = expected.get(&id).copied().unwrap_or(0);
                    if count != want {
                        report.problem(format!(
                            "blob {}: reference count {count}, but {want} references",
                            id.to_hex()
                        ));
                    }
                }
                Err(e) => report.problem(format!("blob references {}: {e}", id.to_hex())),
            }
            it.next();
        }
        it.status()?;
        drop(it);
        for (id, want) in &expected {
            if !counted.contains(id) {
                report.problem(format!(
                    "blob {}: no reference count, but {want} references",
                    id.to_hex()
                ));
            }
        }

        // Blob files against the references.
        let quarantined: HashSet<BlobId> = self.blobs().quarantined()?.into_iter().collect();
        let on_disk: HashSet<BlobId> = self.blobs().list()?.into_iter().collect();
        for id in expected.keys() {
            if !on_disk.contains(id) && !quarantined.contains(id) {
                report.problem(format!("blob {}: referenced but missing", id.to_hex()));
            }
        }
        for id in &on_disk {
            if !expected.contains_key(id) {
                report.problem(format!("blob {}: on disk but unreferenced", id.to_hex()));
            }
        }

        // Inline bytes against the inline versions.
        let mut it = self.meta().cursor(Cf::Inline)?;
        it.seek_to_first();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if inline_keys.remove(k) {
                report.inline += 1;
                if let Err(e) = crate::integrity::inline_bytes(v) {
                    report.problem(format!("inline {}: {e}", show(k)));
                }
            } else {
                report.problem(format!("inline {}: bytes without their version", show(k)));
            }
            it.next();
        }
        it.status()?;
        for k in inline_keys {
            report.problem(format!("inline {}: version without its bytes", show(&k)));
        }
        Ok(report)
    }
}
