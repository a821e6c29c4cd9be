//! The fixed combining tree of deterministic (block) reductions: which nodes a rank sends for the blocks it
//! computed, and how the reading rank combines them (see `../shared/DESIGN-NOTES.md` §7).
//!
//! A block reduction's kernel leaves one partial result per block (a workgroup's tile of the index space, aligned to
//! its origin). Blocks are numbered row-major over the grid of blocks, `0..count`; they combine in a binary tree over
//! those numbers: node `(level, index)` covers blocks `[index · 2^level, (index + 1) · 2^level)` cut at `count`, and
//! is its left child combined with its right one, or its left child alone where the right one covers no block. The
//! shape depends on `count` only. A rank holding a run of blocks computes every node inside the run and sends the
//! O(log count) largest ones ([`run_roots`]); the reader finds the root from the nodes of all runs
//! ([`combine_roots`]). So the result has the same bits however the blocks are split over ranks and devices, and
//! whatever order the nodes arrive in.

use std::collections::HashMap;

/// One node of the tree: its level, its index on that level, and its value.
pub type Node<T = Vec<u8>> = (u32, u64, T);

/// The root's level for `count` blocks: the smallest `l` with `2^l ≥ count`.
pub fn root_level(count: u64) -> u32 {
    count.max(1).next_power_of_two().trailing_zeros()
}

/// The first block of node `(level, index)`, or `None` if it starts at or past `count` (covers no block).
fn first_block(level: u32, index: u64, count: u64) -> Option<u64> {
    index.checked_shl(level).filter(|&b| b < count && (b >> level) == index)
}

/// The value of a node from its blocks' values (in order; the node starts at a multiple of its size, so pairing
/// neighbours level by level, an odd last one passed up alone, is its subtree).
fn subtree<T: Clone>(leaves: &[T], combine: &impl Fn(&T, &T) -> T) -> T {
    // One level up: neighbours paired in order, an odd last one passed up alone (a new vector per level, half the
    // size of the last, so the pairs are read and written without index checks or aliasing).
    let up = |v: &[T]| -> Vec<T> {
        let pairs = v.chunks_exact(2);
        let odd = pairs.remainder().first().cloned();
        pairs.map(|p| combine(&p[0], &p[1])).chain(odd).collect()
    };
    let mut v = up(leaves);
    while v.len() > 1 {
        v = up(&v);
    }
    v.swap_remove(0)
}

/// Leaves up to this many are folded level by level in a stack array by [`subtree_copy`].
const STACK_LEAVES: usize = 64;

/// [`subtree`] for plain values, without a heap allocation: the node over `leaves` (more than one) is its left
/// child's value combined with its right child's, the children splitting the leaves at the largest power of two
/// below their count, which is where the level-by-level pairing of [`subtree`] puts it; small nodes are paired
/// level by level in place. Same tree, same combines in the same order, so the same bits.
fn subtree_copy<T: Copy>(leaves: &[T], combine: &impl Fn(&T, &T) -> T) -> T {
    let n = leaves.len();
    if n > STACK_LEAVES {
        let half = n.next_power_of_two() / 2;
        return combine(&subtree_copy(&leaves[..half], combine), &subtree_copy(&leaves[half..], combine));
    }
    if n == 1 {
        return leaves[0];
    }
    // One level up from the leaves into the array, then in place: slot i takes slots 2i and 2i + 1, which no
    // earlier slot of the level wrote.
    let mut level = [leaves[0]; STACK_LEAVES / 2];
    for (slot, pair) in level.iter_mut().zip(leaves.chunks_exact(2)) {
        *slot = combine(&pair[0], &pair[1]);
    }
    if n % 2 == 1 {
        level[n / 2] = leaves[n - 1];
    }
    let mut len = n.div_ceil(2);
    while len > 1 {
        for i in 0..len / 2 {
            level[i] = combine(&level[2 * i], &level[2 * i + 1]);
        }
        if len % 2 == 1 {
            level[len / 2] = level[len - 1];
        }
        len = len.div_ceil(2);
    }
    level[0]
}

/// The largest nodes that cover the run of blocks `[start, start + values.len())` exactly, each with its value
/// computed from the run's `values` (block `start + i` holds `values[i]`), in block order.
///
/// # Panics
/// If the run is empty or reaches past `count`.
pub fn run_roots<T: Clone>(count: u64, start: u64, values: &[T], combine: &impl Fn(&T, &T) -> T) -> Vec<Node<T>> {
    run_roots_by(count, start, values, |leaves| subtree(leaves, combine))
}

/// [`run_roots`] for plain values (the built-in operations' numbers): the same nodes with the same bits, computed
/// without allocating per level.
///
/// # Panics
/// As [`run_roots`].
pub fn run_roots_copy<T: Copy>(count: u64, start: u64, values: &[T], combine: &impl Fn(&T, &T) -> T) -> Vec<Node<T>> {
    run_roots_by(count, start, values, |leaves| subtree_copy(leaves, combine))
}

fn run_roots_by<T>(count: u64, start: u64, values: &[T], node: impl Fn(&[T]) -> T) -> Vec<Node<T>> {
    let end = start + values.len() as u64;
    assert!(start < end && end <= count, "blocks [{start}, {end}) are no run of the {count} blocks of the grid");
    let top = root_level(count);
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        // The largest aligned node starting at `pos` whose blocks (cut at `count`) lie inside the run.
        let mut level = 0;
        while level < top && pos.is_multiple_of(2u64 << level) && (pos + (2u64 << level)).min(count) <= end {
            level += 1;
        }
        let next = (pos + (1u64 << level)).min(count);
        let leaves = &values[(pos - start) as usize..(next - start) as usize];
        out.push((level, pos >> level, node(leaves)));
        pos = next;
    }
    out
}

/// The value of node `(level, index)`: a given node's value where there is one, else its children's.
fn node_value<T: Clone>(
    level: u32,
    index: u64,
    count: u64,
    known: &std::collections::HashMap<(u32, u64), &T>,
    combine: &impl Fn(&T, &T) -> T,
) -> Result<T, MissingBlock> {
    if let Some(v) = known.get(&(level, index)) {
        return Ok((*v).clone());
    }
    if level == 0 {
        return Err(MissingBlock { block: index, count });
    }
    let left = node_value(level - 1, 2 * index, count, known, combine)?;
    if first_block(level - 1, 2 * index + 1, count).is_none() {
        return Ok(left);
    }
    let right = node_value(level - 1, 2 * index + 1, count, known, combine)?;
    Ok(combine(&left, &right))
}

/// A block no sent node covers, found while combining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("block {block} of {count} has no partial result: no rank sent a node covering it")]
pub struct MissingBlock {
    /// The block.
    pub block: u64,
    /// How many blocks the reduction has.
    pub count: u64,
}

/// The root of the tree over `count` blocks, from the nodes every run sent (in any order).
///
/// # Errors
/// [`MissingBlock`] if the nodes leave a block uncovered.
pub fn combine_roots<T: Clone>(
    count: u64,
    nodes: &[Node<T>],
    combine: &impl Fn(&T, &T) -> T,
) -> Result<T, MissingBlock> {
    let known: HashMap<(u32, u64), &T> = nodes.iter().map(|(l, i, v)| ((*l, *i), v)).collect();
    node_value(root_level(count), 0, count, &known, combine)
}

/// Encodes nodes for sending: per node its level (u32), index (u64) and value bytes (`elem_size` of them), little
/// endian.
pub fn encode(nodes: &[Node]) -> Vec<u8> {
    let mut out = Vec::new();
    for (l, i, v) in nodes {
        out.extend_from_slice(&l.to_le_bytes());
        out.extend_from_slice(&i.to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// Decodes what [`encode`] made of nodes whose values have `elem_size` bytes each (a trailing partial record is
/// ignored).
pub fn decode(bytes: &[u8], elem_size: usize) -> Vec<Node> {
    bytes
        .chunks_exact(12 + elem_size)
        .map(|r| {
            let l = u32::from_le_bytes(r[..4].try_into().expect("4 bytes"));
            let i = u64::from_le_bytes(r[4..12].try_into().expect("8 bytes"));
            (l, i, r[12..].to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A combine that is not associative: it records the tree's shape, so equal results mean equal trees.
    #[allow(clippy::ptr_arg)] // combines the trees' `Vec<u8>` values
    fn shape(a: &Vec<u8>, b: &Vec<u8>) -> Vec<u8> {
        let mut v = b"(".to_vec();
        v.extend_from_slice(a);
        v.push(b' ');
        v.extend_from_slice(b);
        v.push(b')');
        v
    }

    fn leaves(count: u64) -> Vec<Vec<u8>> {
        (0..count).map(|b| b.to_string().into_bytes()).collect()
    }

    #[test]
    fn any_split_into_runs_gives_the_same_tree_as_one_run() {
        for count in [1u64, 2, 3, 5, 7, 8, 13, 64, 100] {
            let all = leaves(count);
            let whole = combine_roots(count, &run_roots(count, 0, &all, &shape), &shape).unwrap();
            // Every split into 1 to 4 runs at every cut (a pseudo-random sample for the larger counts).
            for parts in 1..=4u64 {
                for seed in 0..40u64 {
                    let mut cuts: Vec<u64> = (1..parts).map(|k| (seed * 7919 + k * 104729) % (count + 1)).collect();
                    cuts.extend([0, count]);
                    cuts.sort_unstable();
                    let mut nodes = Vec::new();
                    for w in cuts.windows(2).filter(|w| w[0] < w[1]) {
                        let (a, b) = (w[0], w[1]);
                        nodes.extend(run_roots(count, a, &all[a as usize..b as usize], &shape));
                    }
                    nodes.reverse();
                    let got = combine_roots(count, &nodes, &shape).unwrap();
                    assert_eq!(got, whole, "{count} blocks cut at {cuts:?}");
                }
            }
        }
    }

    #[test]
    fn plain_values_fold_in_the_same_tree_as_any_values() {
        // Neither associative nor commutative: equal results mean the same pairs in the same order.
        let mix =
            |a: &u64, b: &u64| a.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ b.wrapping_add(0x1234_5677);
        let values: Vec<u64> = (0..5000u64).map(|i| i.wrapping_mul(2_654_435_761) ^ 0xABCD).collect();
        for count in [1u64, 2, 3, 63, 64, 65, 100, 127, 128, 129, 1000, 4097, 5000] {
            for (start, end) in [(0, count), (1, count), (0, count / 2 + 1), (count / 3, count - count / 5)] {
                if start >= end {
                    continue;
                }
                let run = &values[start as usize..end as usize];
                let slow = run_roots(count, start, run, &mix);
                let fast = run_roots_copy(count, start, run, &mix);
                assert_eq!(fast, slow, "{count} blocks, run [{start}, {end})");
            }
        }
    }

    #[test]
    fn the_tree_pairs_neighbours_and_passes_a_lone_left_child_up() {
        let got = combine_roots(5, &run_roots(5, 0, &leaves(5), &shape), &shape).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), "(((0 1) (2 3)) 4)");
    }

    #[test]
    fn a_run_sends_logarithmically_many_nodes() {
        let count = 1 << 20;
        let values = vec![vec![0u8]; 1000];
        let nodes = run_roots(count, 12345, &values, &shape);
        assert!(nodes.len() <= 2 * 20, "{} nodes", nodes.len());
        let covered: u64 = nodes.iter().map(|(l, _, _)| 1u64 << l).sum();
        assert_eq!(covered, 1000);
    }

    #[test]
    fn a_missing_block_is_named() {
        let nodes = run_roots(6, 0, &leaves(6)[..4], &shape);
        assert_eq!(combine_roots(6, &nodes, &shape), Err(MissingBlock { block: 4, count: 6 }));
    }

    #[test]
    fn nodes_survive_encoding() {
        let nodes = vec![(3, 7, vec![1, 2, 3, 4]), (0, 99, vec![5, 6, 7, 8])];
        assert_eq!(decode(&encode(&nodes), 4), nodes);
    }
}
