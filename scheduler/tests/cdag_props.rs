//! Property test: random programs on 1 to 8 simulated ranks read exactly what the one-rank run reads, and pass the
//! transfer and dependency checks of the symbolic executor; so do programs around even splits and a custom mapper
//! that reads the task's index space, over index spaces of other sizes than the buffer and with an offset.

use celer_graph::{
    AccessMode, BufferId, EpochAction, GridBox, NeighborhoodShape, RangeMapper, ReductionId, ReductionOp,
    ReductionSpec, SplitHint, TaskKind, TaskSpec,
};
use celer_scheduler::check::equivalent_to_one_rank;
use celer_scheduler::Simulation;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    Kernel { hint_2d: bool, accesses: Vec<(usize, u8, u8)> },
    Once { buffer: usize, mapper: u8 },
    Reduce { source: usize, read_by_all: bool },
    Fence { buffer: usize },
    Epoch,
}

#[derive(Clone, Debug)]
struct Program {
    dims: usize,
    extent: [usize; 2],
    host_init: Vec<bool>,
    steps: Vec<Step>,
}

fn arb_step(buffers: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<bool>(), prop::collection::vec((0..buffers, 0u8..3, 0u8..8), 1..3))
            .prop_map(|(hint_2d, accesses)| Step::Kernel { hint_2d, accesses }),
        1 => (0..buffers, 0u8..2).prop_map(|(buffer, mapper)| Step::Once { buffer, mapper }),
        1 => (0..buffers, any::<bool>()).prop_map(|(source, read_by_all)| Step::Reduce { source, read_by_all }),
        1 => (0..buffers).prop_map(|buffer| Step::Fence { buffer }),
        1 => Just(Step::Epoch),
    ]
}

fn arb_program() -> impl Strategy<Value = Program> {
    (1usize..=2, 1usize..=9, 1usize..=7, 1usize..=3).prop_flat_map(|(dims, a, b, buffers)| {
        (prop::collection::vec(any::<bool>(), buffers), prop::collection::vec(arb_step(buffers), 1..12)).prop_map(
            move |(host_init, steps)| Program { dims, extent: [a, if dims == 2 { b } else { 1 }], host_init, steps },
        )
    })
}

fn extent_box(p: &Program) -> GridBox {
    if p.dims == 1 {
        GridBox::d1(0, p.extent[0])
    } else {
        GridBox::d2([0, 0], p.extent)
    }
}

/// A read mapper chosen by `m` that is valid for the program's shape.
fn read_mapper(p: &Program, m: u8) -> RangeMapper {
    let e = extent_box(p);
    match m % 8 {
        0 => RangeMapper::OneToOne,
        1 => RangeMapper::All,
        2 => RangeMapper::Fixed(GridBox::new([0; 3], [e.max()[0].div_ceil(2), e.max()[1], 1])),
        3 => RangeMapper::Neighborhood { extent: [1, 1, 0], shape: NeighborhoodShape::BoundingBox },
        4 => RangeMapper::Neighborhood { extent: [1, 2, 0], shape: NeighborhoodShape::AlongAxes },
        5 => RangeMapper::Slice(p.dims - 1),
        6 => RangeMapper::EvenSplit { granularity: 2 },
        _ if p.dims == 2 && p.extent[0] == p.extent[1] => RangeMapper::Transposed,
        _ => RangeMapper::Slice(0),
    }
}

fn mode(m: u8) -> AccessMode {
    [AccessMode::Read, AccessMode::ReadWrite, AccessMode::DiscardWrite][m as usize % 3]
}

fn run(p: &Program, sim: &mut Simulation) -> Result<(), celer_graph::TaskError> {
    let e = extent_box(p);
    for (i, &host) in p.host_init.iter().enumerate() {
        sim.create_buffer(BufferId(i as u64), p.dims, e, host, None);
    }
    let scalar = BufferId(100);
    sim.create_buffer(scalar, 1, GridBox::d1(0, 1), false, Some("scalar"));
    let mut next_reduction = 0;
    for step in &p.steps {
        match step {
            Step::Kernel { hint_2d, accesses } => {
                let mut t = TaskSpec::new(TaskKind::DeviceCompute, p.dims, e);
                if *hint_2d {
                    t.hint = SplitHint::TwoD;
                }
                let mut written = Vec::new();
                // Writers use one_to_one (distributed writes must not overlap); each buffer written once. A buffer
                // the task writes is read one_to_one too: reading cells other items write is a race, refused.
                let writes: Vec<usize> =
                    accesses.iter().filter(|&&(_, m, _)| mode(m).produces()).map(|a| a.0).collect();
                for &(b, m, mapper) in accesses {
                    let mode = mode(m);
                    let mapper = if mode.produces() || writes.contains(&b) {
                        RangeMapper::OneToOne
                    } else {
                        read_mapper(p, mapper)
                    };
                    if mode.produces() {
                        if written.contains(&b) {
                            continue;
                        }
                        written.push(b);
                    }
                    t = t.access(BufferId(b as u64), mode, mapper);
                }
                sim.submit(t)?;
            }
            Step::Once { buffer, mapper } => {
                let m = if *mapper == 0 { RangeMapper::All } else { read_mapper(p, 2) };
                let t = TaskSpec::new(TaskKind::Once, 0, GridBox::from_extent(&[])).access(
                    BufferId(*buffer as u64),
                    AccessMode::ReadWrite,
                    m,
                );
                sim.submit(t)?;
            }
            Step::Reduce { source, read_by_all } => {
                let mut t = TaskSpec::new(TaskKind::DeviceCompute, p.dims, e).access(
                    BufferId(*source as u64),
                    AccessMode::Read,
                    RangeMapper::OneToOne,
                );
                t.reductions.push(ReductionSpec {
                    id: ReductionId(next_reduction),
                    buffer: scalar,
                    op: ReductionOp::Sum,
                    include_current_value: next_reduction % 2 == 1,
                });
                next_reduction += 1;
                sim.submit(t)?;
                let reader = if *read_by_all {
                    TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[]))
                } else {
                    TaskSpec::new(TaskKind::Once, 0, GridBox::from_extent(&[]))
                };
                sim.submit(reader.access(scalar, AccessMode::Read, RangeMapper::All))?;
            }
            Step::Fence { buffer } => {
                let t = TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[])).access(
                    BufferId(*buffer as u64),
                    AccessMode::Read,
                    RangeMapper::All,
                );
                sim.submit(t)?;
            }
            Step::Epoch => {
                sim.epoch(EpochAction::None)?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_programs_read_the_same_data_on_any_rank_count(p in arb_program(), ranks in 1usize..=8) {
        let result = equivalent_to_one_rank(ranks, |sim| run(&p, sim));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

/// A program around `RangeMapper::EvenSplit` and a custom mapper that reads the index space: a buffer of `rows` x
/// `cols` written one to one over its extent, read through an even split (in blocks of `block`) by a kernel over
/// `items` items from `start`, then written through an even split by a kernel over `writers` items and read back
/// whole; a second buffer of `items` cells is read at `k - start` by item `k` (a custom mapper with a reach).
fn even_split_program(
    sim: &mut Simulation,
    (rows, cols, items, start, writers, block): (usize, usize, usize, usize, usize, usize),
) -> Result<(), celer_graph::TaskError> {
    let (m, out, rel) = (BufferId(0), BufferId(1), BufferId(2));
    let extent = GridBox::d2([0, 0], [rows, cols]);
    sim.create_buffer(m, 2, extent, false, Some("m"));
    sim.create_buffer(out, 1, GridBox::d1(0, start + items), false, Some("out"));
    sim.create_buffer(rel, 1, GridBox::d1(0, items), true, Some("rel"));
    let space = GridBox::d1(start, start + items);
    let split = RangeMapper::EvenSplit { granularity: block };
    let relative = RangeMapper::Custom {
        name: "relative",
        f: std::sync::Arc::new(|c: &GridBox, s: &GridBox, _: &GridBox| {
            GridBox::d1(c.min()[0] - s.min()[0], c.max()[0] - s.min()[0]).into()
        }),
        reach: Some(std::sync::Arc::new(|cells: &GridBox, s: &GridBox| {
            GridBox::d1(cells.min()[0] + s.min()[0], cells.max()[0] + s.min()[0]).intersection(s)
        })),
    };
    sim.submit(TaskSpec::new(TaskKind::DeviceCompute, 2, extent).access(
        m,
        AccessMode::DiscardWrite,
        RangeMapper::OneToOne,
    ))?;
    sim.submit(
        TaskSpec::new(TaskKind::DeviceCompute, 1, space)
            .access(m, AccessMode::Read, split.clone())
            .access(rel, AccessMode::Read, relative)
            .access(out, AccessMode::DiscardWrite, RangeMapper::OneToOne),
    )?;
    sim.submit(TaskSpec::new(TaskKind::DeviceCompute, 1, GridBox::d1(0, writers)).access(
        m,
        AccessMode::ReadWrite,
        split,
    ))?;
    sim.submit(TaskSpec::new(TaskKind::DeviceCompute, 2, extent).access(m, AccessMode::Read, RangeMapper::OneToOne))?;
    sim.submit(TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[])).access(
        out,
        AccessMode::Read,
        RangeMapper::All,
    ))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn even_splits_and_index_space_mappers_read_the_same_data_on_any_rank_count(
        shape in (1usize..=20, 1usize..=3, 1usize..=12, 0usize..=5, 1usize..=12, 1usize..=3),
        ranks in 2usize..=8,
    ) {
        let result = equivalent_to_one_rank(ranks, |sim| even_split_program(sim, shape));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

/// A strided custom mapper: item `i` of a 1D index space maps to cell `stride·i + colour`, item `(r, j)` of a 2D one
/// to cell `(r, stride·j + (r + colour) mod stride)`; a chunk's region is one one-cell box per item, so regions of
/// dozens of boxes (more than the region maps' and reader logs' indexed-lookup thresholds).
fn strided(dims: usize, stride: usize, colour: usize) -> RangeMapper {
    RangeMapper::Custom {
        name: "strided",
        f: std::sync::Arc::new(move |c: &GridBox, _: &GridBox, _: &GridBox| {
            let (lo, hi) = (c.min(), c.max());
            if dims == 1 {
                (lo[0]..hi[0]).map(|i| GridBox::d1(stride * i + colour, stride * i + colour + 1)).collect()
            } else {
                (lo[0]..hi[0])
                    .flat_map(|r| {
                        (lo[1]..hi[1]).map(move |j| {
                            let col = stride * j + (r + colour) % stride;
                            GridBox::d2([r, col], [r + 1, col + 1])
                        })
                    })
                    .collect()
            }
        }),
        reach: None,
    }
}

/// Sweeps over the colours of a strided buffer (`side` items per row, `rows` rows in 2D): step `k` read-writes
/// colour `k mod stride` and reads the next colour; the steps chosen by `whole` also write the whole buffer one to
/// one or read it through a neighbourhood, so the region maps mix large boxes with scattered cells; then a fence.
fn strided_program(
    sim: &mut Simulation,
    (dims, side, rows, stride, whole): (usize, usize, usize, usize, Vec<u8>),
) -> Result<(), celer_graph::TaskError> {
    let u = BufferId(0);
    let (extent, space) = if dims == 1 {
        (GridBox::d1(0, side * stride), GridBox::d1(0, side))
    } else {
        (GridBox::d2([0, 0], [rows, side * stride]), GridBox::d2([0, 0], [rows, side]))
    };
    sim.create_buffer(u, dims, extent, true, Some("u"));
    for (k, w) in whole.iter().enumerate() {
        let colour = k % stride;
        sim.submit(
            TaskSpec::new(TaskKind::DeviceCompute, dims, space)
                .access(u, AccessMode::ReadWrite, strided(dims, stride, colour))
                .access(u, AccessMode::Read, strided(dims, stride, (colour + 1) % stride)),
        )?;
        match w % 4 {
            0 => sim.submit(TaskSpec::new(TaskKind::DeviceCompute, dims, extent).access(
                u,
                AccessMode::ReadWrite,
                RangeMapper::OneToOne,
            ))?,
            1 => sim.submit(TaskSpec::new(TaskKind::DeviceCompute, dims, extent).access(
                u,
                AccessMode::Read,
                RangeMapper::Neighborhood { extent: [1, 1, 0], shape: NeighborhoodShape::AlongAxes },
            ))?,
            _ => continue,
        };
    }
    sim.submit(TaskSpec::new(TaskKind::Fence, 0, GridBox::from_extent(&[])).access(
        u,
        AccessMode::Read,
        RangeMapper::All,
    ))?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn strided_mappers_of_many_boxes_read_the_same_data_on_any_rank_count(
        shape in (1usize..=2, 9usize..=40, 1usize..=4, 2usize..=3, prop::collection::vec(0u8..8, 1..6)),
        ranks in 2usize..=6,
    ) {
        let result = equivalent_to_one_rank(ranks, |sim| strided_program(sim, shape.clone()));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
