//! The Merkle tree over record hashes, as RFC 6962 (Certificate
//! Transparency) defines it:
//!
//! - the leaf of record `seq` is `SHA-256(0x00 || record_hash)` (the 32 raw
//!   bytes of the record's `hash`), at index `seq - 1`;
//! - an inner node is `SHA-256(0x01 || left || right)`;
//! - the root of `n > 1` leaves is the node over the root of the first `k`
//!   leaves and the root of the remaining `n - k`, where `k` is the largest
//!   power of two smaller than `n`; of no leaves, `SHA-256("")`.
//!
//! The appender keeps only the *frontier*: the roots of the perfect subtrees
//! that the binary decomposition of `n` gives (at most 64), so an append
//! costs O(log n) and any root is computed on demand.

use serde::{Deserialize, Serialize};

use super::hash::{hash_from_hex, sha256, to_hex, Hash};
use sha2::{Digest, Sha256};

/// `SHA-256(0x00 || record_hash)`.
pub fn leaf_hash(record_hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(record_hash);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree.
pub fn empty_root() -> Hash {
    sha256(b"")
}

/// The compact state of a Merkle tree that only grows on the right.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first.
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds the leaf of a record whose hash is `record_hash`.
    pub fn push(&mut self, record_hash: &Hash) {
        self.push_leaf(leaf_hash(record_hash));
    }

    /// Adds an already hashed leaf.
    pub fn push_leaf(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            // A full subtree of the same size sits on the left: merge.
            match self.nodes.pop() {
                Some(left) => node = node_hash(&left, &node),
                None => break,
            }
            s >>= 1;
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// The root over every leaf so far.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        let mut r = *last;
        for left in it {
            r = node_hash(left, &r);
        }
        r
    }

    /// The frontier in a storable form.
    pub fn to_saved(&self) -> SavedFrontier {
        SavedFrontier {
            size: self.size,
            nodes: self.nodes.iter().map(|h| to_hex(h)).collect(),
        }
    }

    /// A frontier from its stored form (None when it is inconsistent).
    pub fn from_saved(saved: &SavedFrontier) -> Option<Frontier> {
        if saved.nodes.len() != saved.size.count_ones() as usize {
            return None;
        }
        let nodes = saved
            .nodes
            .iter()
            .map(|h| hash_from_hex(h))
            .collect::<Option<Vec<_>>>()?;
        Some(Frontier {
            size: saved.size,
            nodes,
        })
    }
}

/// A frontier as stored next to a checkpoint (so reopening a log does not
/// re-read every record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedFrontier {
    /// Number of leaves.
    pub size: u64,
    /// Hex roots of the perfect subtrees, largest first.
    pub nodes: Vec<String>,
}

/// The leaf ranges `[start, end)` (0-based) whose subtree roots make up the
/// audit path of leaf `m` in a tree of `n` leaves, in the order the path
/// lists them (from the leaf up), as RFC 6962 §2.1.1 `PATH(m, D[n])`.
pub fn path_ranges(m: u64, n: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let (mut lo, mut hi) = (0u64, n);
    let mut stack = Vec::new();
    while hi - lo > 1 {
        let k = largest_power_of_two_below(hi - lo);
        if m < lo + k {
            stack.push((lo + k, hi));
            hi = lo + k;
        } else {
            stack.push((lo, lo + k));
            lo += k;
        }
    }
    while let Some(r) = stack.pop() {
        out.push(r);
    }
    out
}

fn largest_power_of_two_below(n: u64) -> u64 {
    // n >= 2
    let mut k = 1u64;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// Checks that `record_hash` is leaf `leaf_index` of the tree of
/// `tree_size` leaves with root `root`, given its audit path (RFC 9162
/// §2.1.3.2).
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    record_hash: &Hash,
    path: &[Hash],
    root: &Hash,
) -> bool {
    if leaf_index >= tree_size {
        return false;
    }
    let mut fnode = leaf_index;
    let mut snode = tree_size - 1;
    let mut r = leaf_hash(record_hash);
    for p in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rh(i: u8) -> Hash {
        sha256(&[i])
    }

    /// The RFC 6962 definition, recursively, for comparison.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaf_hash(&leaves[0]),
            n => {
                let k = largest_power_of_two_below(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn audit_merkle_small_trees_by_hand() {
        let (a, b, c, d, e) = (rh(1), rh(2), rh(3), rh(4), rh(5));
        let (la, lb, lc, ld, le) = (
            leaf_hash(&a),
            leaf_hash(&b),
            leaf_hash(&c),
            leaf_hash(&d),
            leaf_hash(&e),
        );
        // Leaf hash is SHA-256(0x00 || h).
        let mut pre = vec![0u8];
        pre.extend_from_slice(&a);
        assert_eq!(la, sha256(&pre));
        let mut f = Frontier::new();
        assert_eq!(f.root(), sha256(b""));
        f.push(&a);
        assert_eq!(f.root(), la);
        f.push(&b);
        let ab = node_hash(&la, &lb);
        let mut pre = vec![1u8];
        pre.extend_from_slice(&la);
        pre.extend_from_slice(&lb);
        assert_eq!(ab, sha256(&pre));
        assert_eq!(f.root(), ab);
        f.push(&c);
        // 3 leaves: k = 2 → node(node(a,b), c).
        assert_eq!(f.root(), node_hash(&ab, &lc));
        f.push(&d);
        let abcd = node_hash(&ab, &node_hash(&lc, &ld));
        assert_eq!(f.root(), abcd);
        f.push(&e);
        // 5 leaves: k = 4 → node(abcd, e).
        assert_eq!(f.root(), node_hash(&abcd, &le));
        // 7 leaves: node(abcd, node(node(e,f), g)).
        let (g6, g7) = (rh(6), rh(7));
        f.push(&g6);
        f.push(&g7);
        let efg = node_hash(&node_hash(&le, &leaf_hash(&g6)), &leaf_hash(&g7));
        assert_eq!(f.root(), node_hash(&abcd, &efg));
    }

    #[test]
    fn audit_merkle_frontier_matches_definition() {
        let leaves: Vec<Hash> = (0..=70u8).map(rh).collect();
        let mut f = Frontier::new();
        for (i, l) in leaves.iter().enumerate() {
            f.push(l);
            assert_eq!(f.root(), mth(&leaves[..=i]), "n={}", i + 1);
            let back = Frontier::from_saved(&f.to_saved()).unwrap();
            assert_eq!(back, f);
        }
    }

    #[test]
    fn audit_merkle_paths_verify_for_every_leaf() {
        let leaves: Vec<Hash> = (0..=40u8).map(rh).collect();
        for n in 1..=leaves.len() as u64 {
            let root = mth(&leaves[..n as usize]);
            for m in 0..n {
                let path: Vec<Hash> = path_ranges(m, n)
                    .iter()
                    .map(|(s, e)| mth(&leaves[*s as usize..*e as usize]))
                    .collect();
                assert!(
                    verify_inclusion(m, n, &leaves[m as usize], &path, &root),
                    "m={m} n={n}"
                );
                // A wrong leaf, index or root fails.
                assert!(!verify_inclusion(m, n, &rh(200), &path, &root));
                if n > 1 {
                    assert!(!verify_inclusion(
                        (m + 1) % n,
                        n,
                        &leaves[m as usize],
                        &path,
                        &root
                    ));
                }
            }
        }
    }

    #[test]
    fn audit_merkle_path_of_leaf_2_in_7_is_rfc_example() {
        // RFC 6962 §2.1.3: the path for d (index 3) in a tree of 7 leaves
        // is [c, hash(a,b), hash(e,f,g)] → ranges [2,3), [0,2), [4,7).
        assert_eq!(path_ranges(3, 7), vec![(2, 3), (0, 2), (4, 7)]);
        // ... and for a (index 0): [b, hash(c,d), hash(e,f,g)].
        assert_eq!(path_ranges(0, 7), vec![(1, 2), (2, 4), (4, 7)]);
        // ... and for g (index 6): [hash(e,f), hash(a,b,c,d)].
        assert_eq!(path_ranges(6, 7), vec![(4, 6), (0, 4)]);
    }
}
