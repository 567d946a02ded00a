//! The Merkle tree of RFC 6962 (and RFC 9162, §2.1): leaf and node hashes with their domain
//! prefixes, the compact range a writer keeps to append and to compute the root, proofs built
//! from a source of perfect-subtree hashes, and the two proof verifications.
//!
//! Leaves are numbered from 0 in the order they are appended. A *perfect subtree* at `level`
//! `l` and `index` `i` covers leaves `[i·2^l, (i+1)·2^l)`; its hash never changes once its last
//! leaf is in, so a store can keep it. Every other hash (the root of a tree whose size is not a
//! power of two, and the right edges of proofs) is combined from perfect subtrees.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: of a leaf, a node or a tree.
pub type Hash = [u8; 32];

/// Hashes written as hex (as logs and proofs carry them); `None` if one is not 64 hex digits.
#[must_use]
pub fn hashes_from_hex(list: &[String]) -> Option<Vec<Hash>> {
    list.iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).ok().map(|()| out)
        })
        .collect()
}

/// The root of the empty tree: SHA-256 of nothing (RFC 6962, §2.1).
#[must_use]
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf: SHA-256(0x00 ‖ data).
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two below `n` (`n` ≥ 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The compact range of a tree: the hashes of the perfect subtrees its size decomposes into,
/// largest (leftmost) first — all a writer needs to append leaves and to compute the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of `size` leaves from its perfect subtrees, largest first; `None` when their
    /// number is not the number of ones in `size`.
    #[must_use]
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Self { size, hashes })
    }

    /// The compact range of the first `size` leaves, read from `source`.
    pub fn of<S: Subtrees + ?Sized>(source: &S, size: u64) -> Result<Self, S::Error> {
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size & (1u64 << level) != 0 {
                hashes.push(source.perfect(level, start >> level)?);
                start += 1u64 << level;
            }
        }
        Ok(Self { size, hashes })
    }

    /// Number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtrees' hashes, largest first.
    #[must_use]
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends a leaf (its hash), calling `completed(level, index, hash)` for every perfect
    /// subtree of level ≥ 1 that it completes, lowest first.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u8, u64, &Hash)) {
        let mut h = leaf;
        let mut level = 0u8;
        let mut index = self.size;
        let mut s = self.size;
        while s & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                break;
            };
            h = node_hash(&left, &h);
            level += 1;
            index >>= 1;
            completed(level, index, &h);
            s >>= 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The tree's root hash.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// Where proofs read the hashes of perfect subtrees.
pub trait Subtrees {
    /// Why a hash could not be read.
    type Error;
    /// The hash of the perfect subtree at `level` and `index` (leaves
    /// `[index·2^level, (index+1)·2^level)`); level 0 is a leaf hash.
    fn perfect(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// MTH(D[start:end]) from perfect subtrees: `start` is a multiple of the largest power of two
/// that fits, as in every range the proofs below ask for.
fn range_hash<S: Subtrees + ?Sized>(s: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let n = end - start;
    if n.is_power_of_two() {
        let level = n.trailing_zeros() as u8;
        return s.perfect(level, start >> level);
    }
    let k = split_point(n);
    Ok(node_hash(
        &range_hash(s, start, start + k)?,
        &range_hash(s, start + k, end)?,
    ))
}

/// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 6962, §2.1.1),
/// nearest the leaf first. Panics never; `index < size` is the caller's to check.
pub fn inclusion_proof<S: Subtrees + ?Sized>(
    s: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    fn path<S: Subtrees + ?Sized>(
        s: &S,
        m: u64,
        start: u64,
        end: u64,
        out: &mut Vec<Hash>,
    ) -> Result<(), S::Error> {
        let n = end - start;
        if n <= 1 {
            return Ok(());
        }
        let k = split_point(n);
        if m < k {
            path(s, m, start, start + k, out)?;
            out.push(range_hash(s, start + k, end)?);
        } else {
            path(s, m - k, start + k, end, out)?;
            out.push(range_hash(s, start, start + k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    if index < size {
        path(s, index, 0, size, &mut out)?;
    }
    Ok(out)
}

/// The consistency proof between the trees of the first `old` and `new` leaves (RFC 6962,
/// §2.1.2); empty when `old` is 0 or equals `new`.
pub fn consistency_proof<S: Subtrees + ?Sized>(
    s: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, S::Error> {
    fn sub<S: Subtrees + ?Sized>(
        s: &S,
        m: u64,
        start: u64,
        end: u64,
        whole: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), S::Error> {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(range_hash(s, start, end)?);
            }
            return Ok(());
        }
        let k = split_point(n);
        if m <= k {
            sub(s, m, start, start + k, whole, out)?;
            out.push(range_hash(s, start + k, end)?);
        } else {
            sub(s, m - k, start + k, end, false, out)?;
            out.push(range_hash(s, start, start + k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        sub(s, old, 0, new, true, &mut out)?;
    }
    Ok(out)
}

/// Shifts `f` and `s` right together until `f`'s lowest bit is set or `f` is 0.
fn align(f: &mut u64, s: &mut u64) {
    while *f & 1 == 0 && *f != 0 {
        *f >>= 1;
        *s >>= 1;
    }
}

/// True when `proof` shows the leaf hashed `leaf` at `index` in the tree of `size` leaves whose
/// root is `root` (RFC 9162, §2.1.3.2).
#[must_use]
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                align(&mut f, &mut s);
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// True when `proof` shows that the tree of `old` leaves with root `old_root` is a prefix of
/// the tree of `new` leaves with root `new_root` (RFC 9162, §2.1.4.2).
#[must_use]
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                align(&mut f, &mut s);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leaf hashes in memory: the reference the stored tree is checked against.
    struct Leaves(Vec<Hash>);

    impl Subtrees for Leaves {
        type Error = ();
        fn perfect(&self, level: u8, index: u64) -> Result<Hash, ()> {
            let start = usize::try_from(index << level).map_err(|_| ())?;
            let end = start + (1usize << level);
            let leaves = self.0.get(start..end).ok_or(())?;
            Ok(mth(leaves))
        }
    }

    /// MTH straight from RFC 6962's definition.
    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d.first().copied().unwrap_or_default(),
            n => {
                let k = usize::try_from(split_point(n as u64)).unwrap_or(0);
                let (l, r) = d.split_at(k);
                node_hash(&mth(l), &mth(r))
            }
        }
    }

    fn leaves(n: usize) -> Leaves {
        Leaves(
            (0..n)
                .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn the_frontier_agrees_with_the_definition_at_every_size() {
        let all = leaves(70);
        let mut f = Frontier::new();
        let mut completed = Vec::new();
        for n in 0..=70usize {
            assert_eq!(
                f.root(),
                mth(all.0.get(..n).unwrap_or_default()),
                "size {n}"
            );
            assert_eq!(Frontier::of(&all, n as u64), Ok(f.clone()));
            if let Some(leaf) = all.0.get(n) {
                f.push(*leaf, |l, i, h| completed.push((l, i, *h)));
            }
        }
        // Every completed subtree was reported with its true hash.
        assert_eq!(completed.len(), 70 - 70usize.count_ones() as usize);
        for (l, i, h) in completed {
            assert_eq!(all.perfect(l, i), Ok(h));
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_no_altered_one_does() {
        let all = leaves(40);
        for size in 1..=40u64 {
            let part = Leaves(all.0.get(..size as usize).unwrap_or_default().to_vec());
            let root = mth(&part.0);
            for index in 0..size {
                let proof = inclusion_proof(&part, index, size).unwrap_or_default();
                let leaf = all.0.get(index as usize).copied().unwrap_or_default();
                assert!(verify_inclusion(&leaf, index, size, &proof, &root));
                assert!(!verify_inclusion(&leaf, index + 1, size, &proof, &root));
                // (The same path may verify for another size: sizes are bound by the signed
                // checkpoint, not by the path — RFC 9162, §2.1.3.2.)
                assert!(!verify_inclusion(&root, index, size, &proof, &root) || size == 1);
                for j in 0..proof.len() {
                    let mut bad = proof.clone();
                    if let Some(h) = bad.get_mut(j) {
                        h[0] ^= 1;
                    }
                    assert!(!verify_inclusion(&leaf, index, size, &bad, &root));
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert!(!verify_inclusion(&leaf, index, size, &longer, &root));
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_no_altered_one_does() {
        let all = leaves(40);
        for new in 1..=40u64 {
            let part = Leaves(all.0.get(..new as usize).unwrap_or_default().to_vec());
            let new_root = mth(&part.0);
            for old in 0..=new {
                let old_root = mth(all.0.get(..old as usize).unwrap_or_default());
                let proof = consistency_proof(&part, old, new).unwrap_or_default();
                assert!(
                    verify_consistency(old, new, &old_root, &new_root, &proof),
                    "{old} → {new}"
                );
                if old > 0 && old < new {
                    let wrong_old = leaf_hash(b"not the old tree");
                    assert!(!verify_consistency(old, new, &wrong_old, &new_root, &proof));
                    assert!(!verify_consistency(old, new, &old_root, &old_root, &proof));
                    for j in 0..proof.len() {
                        let mut bad = proof.clone();
                        if let Some(h) = bad.get_mut(j) {
                            h[31] ^= 0x80;
                        }
                        assert!(!verify_consistency(old, new, &old_root, &new_root, &bad));
                    }
                    assert!(!verify_consistency(old, new, &old_root, &new_root, &[]));
                }
            }
        }
    }
}
