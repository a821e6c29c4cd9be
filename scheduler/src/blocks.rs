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

/// One node of the tree: its level, its index on that level, and its value (one element's bytes).
pub type Node = (u32, u64, Vec<u8>);

/// How two values (one element's bytes each) combine, left operand first.
pub type Combine<'a> = &'a dyn Fn(&[u8], &[u8]) -> Vec<u8>;

/// The root's level for `count` blocks: the smallest `l` with `2^l ≥ count`.
pub fn root_level(count: u64) -> u32 {
    count.max(1).next_power_of_two().trailing_zeros()
}

/// The first block of node `(level, index)`, or `None` if it starts at or past `count` (covers no block).
fn first_block(level: u32, index: u64, count: u64) -> Option<u64> {
    index.checked_shl(level).filter(|&b| b < count && (b >> level) == index)
}

/// The largest nodes that cover the run of blocks `[start, start + values.len())` exactly, each with its value
/// computed from the run's `values` (block `start + i` holds `values[i]`), in block order.
///
/// # Panics
/// If the run reaches past `count`.
pub fn run_roots(count: u64, start: u64, values: &[Vec<u8>], combine: Combine<'_>) -> Vec<Node> {
    let end = start + values.len() as u64;
    assert!(end <= count, "blocks [{start}, {end}) reach past the {count} blocks of the grid");
    let top = root_level(count);
    let mut out = Vec::new();
    let mut pos = start;
    while pos < end {
        // The largest aligned node starting at `pos` whose blocks (cut at `count`) lie inside the run.
        let mut level = 0;
        while level < top && pos.is_multiple_of(2u64 << level) && (pos + (2u64 << level)).min(count) <= end {
            level += 1;
        }
        let index = pos >> level;
        let value = node_value(
            level,
            index,
            count,
            &mut |l, i| (l == 0).then(|| values[(i - start) as usize].clone()).ok_or(()),
            combine,
        )
        .expect("every block of the node lies in the run");
        out.push((level, index, value));
        pos = (pos + (1u64 << level)).min(count);
    }
    out
}

/// The value of node `(level, index)`: `known(level, index)` where it gives one, else its children combined.
fn node_value<E>(
    level: u32,
    index: u64,
    count: u64,
    known: &mut dyn FnMut(u32, u64) -> Result<Vec<u8>, E>,
    combine: Combine<'_>,
) -> Result<Vec<u8>, E> {
    if let Ok(v) = known(level, index) {
        return Ok(v);
    }
    if level == 0 {
        return known(level, index);
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
pub fn combine_roots(count: u64, nodes: &[Node], combine: Combine<'_>) -> Result<Vec<u8>, MissingBlock> {
    let map: HashMap<(u32, u64), &Vec<u8>> = nodes.iter().map(|(l, i, v)| ((*l, *i), v)).collect();
    let mut known =
        |l: u32, i: u64| map.get(&(l, i)).map(|v| (*v).clone()).ok_or(MissingBlock { block: i << l, count });
    node_value(root_level(count), 0, count, &mut known, combine)
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
    fn shape(a: &[u8], b: &[u8]) -> Vec<u8> {
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
                    for w in cuts.windows(2) {
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
