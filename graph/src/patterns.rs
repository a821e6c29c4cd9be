//! Standard task-graph workloads for benchmarks and tests, after Celerity's DAG benchmarks.
//!
//! Each builder returns a [`Workload`]: buffers to create and task specs to submit in order. The shapes are the
//! same as Celerity's so per-task figures can be compared: `soup` (independent tasks), `chain` (all-to-all each
//! step), `expanding_tree` and `contracting_tree` (gather/scatter over column blocks that halve or double each level),
//! `wave_sim` (2D stencil with neighbourhood reads) and `jacobi` (row/column slices).

use crate::geometry::GridBox;
use crate::ids::BufferId;
use crate::task::{AccessMode, NeighborhoodShape, RangeMapper, TaskSpec};
use crate::task_manager::TaskManager;

/// A buffer a workload uses.
#[derive(Clone, Debug)]
pub struct WorkloadBuffer {
    /// Id.
    pub id: BufferId,
    /// Dimensionality.
    pub dims: usize,
    /// Extent.
    pub extent: GridBox,
    /// Whether it starts with host data.
    pub host_initialized: bool,
    /// Name.
    pub name: &'static str,
}

/// Buffers plus the tasks to submit, in order.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Pattern name.
    pub name: &'static str,
    /// Buffers to create first.
    pub buffers: Vec<WorkloadBuffer>,
    /// Tasks to submit.
    pub tasks: Vec<TaskSpec>,
}

impl Workload {
    /// Creates the workload's buffers in `tm`.
    pub fn create_buffers(&self, tm: &mut TaskManager) {
        for b in &self.buffers {
            tm.create_buffer(b.id, b.dims, b.extent, b.host_initialized, Some(b.name.to_owned()));
        }
    }

    /// Creates the buffers and submits every task.
    ///
    /// # Panics
    /// If a task is refused (the workloads are valid by construction).
    pub fn run(&self, tm: &mut TaskManager) {
        self.create_buffers(tm);
        for t in &self.tasks {
            tm.submit(t.clone()).expect("workload tasks are valid");
        }
    }
}

fn buffer(id: u64, dims: usize, extent: GridBox, name: &'static str) -> WorkloadBuffer {
    WorkloadBuffer { id: BufferId(id), dims, extent, host_initialized: true, name }
}

/// 100 independent tasks, task `i` read-writing column `i` of a `width × 100` buffer (split over its rows).
pub fn soup(width: usize) -> Workload {
    let b = buffer(0, 2, GridBox::d2([0, 0], [width, 100]), "soup");
    let tasks = (0..100)
        .map(|i| {
            let mut t = TaskSpec::new(crate::TaskKind::DeviceCompute, 2, GridBox::d2([0, i], [width, i + 1]));
            t = t.access(b.id, AccessMode::ReadWrite, RangeMapper::OneToOne);
            t.named("soup")
        })
        .collect();
    Workload { name: "soup", buffers: vec![b], tasks }
}

/// 30 tasks over an `n × n` buffer pair, each reading the other buffer transposed: all-to-all data flow every step.
pub fn chain(n: usize) -> Workload {
    let a = buffer(0, 2, GridBox::d2([0, 0], [n, n]), "a");
    let b = buffer(1, 2, GridBox::d2([0, 0], [n, n]), "b");
    let tasks = (0..30)
        .map(|i| {
            let (src, dst) = if i % 2 == 0 { (a.id, b.id) } else { (b.id, a.id) };
            TaskSpec::device_compute(&[n, n])
                .access(src, AccessMode::Read, RangeMapper::Transposed)
                .access(dst, AccessMode::DiscardWrite, RangeMapper::OneToOne)
                .named("chain")
        })
        .collect();
    Workload { name: "chain", buffers: vec![a, b], tasks }
}

/// Columns of the tree patterns' buffers: Celerity sizes its trees for about 30 tasks, which gives 16 leaves.
const TREE_BREADTH: usize = 16;

/// A tree of 31 tasks over `width × 16` buffers whose column blocks halve each level: one task over all 16 columns,
/// then two over 8, and so on down to 16 tasks over one column each (Celerity's expanding tree benchmark). Every task
/// runs over `width` rows (split over them); it reads its column block whole, all rows (a gather of what every rank
/// wrote the level before), and writes its rows of the block, keeping the cells it does not store (a scatter).
/// Celerity reads and writes one buffer; here the levels alternate between two (read one, write the other), as a
/// task that writes cells other items of it read would race.
pub fn expanding_tree(width: usize) -> Workload {
    tree("expanding_tree", width, |level| TREE_BREADTH >> level)
}

/// A tree of 31 tasks over `width × 16` buffers whose column blocks double each level: 16 tasks over one column
/// each, then 8 over two, and so on up to one task over all 16 columns (Celerity's contracting tree benchmark). Each
/// task reads its column block whole and writes its rows of it, as in [`expanding_tree`].
pub fn contracting_tree(width: usize) -> Workload {
    tree("contracting_tree", width, |level| 1 << level)
}

/// The tree patterns: at each of the levels (`log2(16) + 1` of them), tasks over the `block(level)`-column blocks
/// that tile the buffers, left to right, reading one buffer and writing the other (swapped each level); a task is a
/// 2D kernel over its rows and columns, so the one-to-one write is its rows of the block and a fixed box is the
/// block's every row.
fn tree(name: &'static str, width: usize, block: impl Fn(usize) -> usize) -> Workload {
    let a = buffer(0, 2, GridBox::d2([0, 0], [width, TREE_BREADTH]), "tree_a");
    let b = buffer(1, 2, GridBox::d2([0, 0], [width, TREE_BREADTH]), "tree_b");
    let levels = TREE_BREADTH.trailing_zeros() as usize + 1;
    let tasks = (0..levels)
        .flat_map(|level| {
            let cols = block(level);
            (0..TREE_BREADTH).step_by(cols).map(move |off| (level, off, cols))
        })
        .map(|(level, off, cols)| {
            let (src, dst) = if level % 2 == 0 { (a.id, b.id) } else { (b.id, a.id) };
            let cells = GridBox::d2([0, off], [width, off + cols]);
            TaskSpec::new(crate::TaskKind::DeviceCompute, 2, cells)
                .access(src, AccessMode::Read, RangeMapper::Fixed(cells))
                .access(dst, AccessMode::Write, RangeMapper::OneToOne)
                .named(name)
        })
        .collect();
    Workload { name, buffers: vec![a, b], tasks }
}

/// The 2D wave equation on an `n × n` grid for `steps` steps: read `u` as a "+" stencil, read-write `up` one to one,
/// then swap the two (Celerity's wave_sim benchmark uses n = 512 and about 200 steps).
pub fn wave_sim(n: usize, steps: usize) -> Workload {
    let u = buffer(0, 2, GridBox::d2([0, 0], [n, n]), "u");
    let up = buffer(1, 2, GridBox::d2([0, 0], [n, n]), "up");
    let stencil = RangeMapper::Neighborhood { extent: [1, 1, 0], shape: NeighborhoodShape::AlongAxes };
    let tasks = (0..steps)
        .map(|i| {
            let (cur, prev) = if i % 2 == 0 { (u.id, up.id) } else { (up.id, u.id) };
            TaskSpec::device_compute(&[n, n])
                .access(prev, AccessMode::ReadWrite, RangeMapper::OneToOne)
                .access(cur, AccessMode::Read, stencil.clone())
                .named("step")
        })
        .collect();
    Workload { name: "wave_sim", buffers: vec![u, up], tasks }
}

/// Jacobi iteration on an `n × n` system for `steps` steps: each row reads its row of `A`, its `b`, all of `x`,
/// and writes its element of `x_new`; then `x` and `x_new` swap.
pub fn jacobi(n: usize, steps: usize) -> Workload {
    let a = buffer(0, 2, GridBox::d2([0, 0], [n, n]), "A");
    let b = buffer(1, 1, GridBox::d1(0, n), "b");
    let x = buffer(2, 1, GridBox::d1(0, n), "x");
    let x_new = buffer(3, 1, GridBox::d1(0, n), "x_new");
    let rows = RangeMapper::Custom {
        name: "rows",
        f: std::sync::Arc::new(|chunk: &GridBox, _: &GridBox, buf: &GridBox| {
            crate::Region::from(GridBox::d2([chunk.min()[0], 0], [chunk.max()[0], buf.max()[1]]))
        }),
        reach: None,
    };
    let tasks = (0..steps)
        .map(|i| {
            let (src, dst) = if i % 2 == 0 { (x.id, x_new.id) } else { (x_new.id, x.id) };
            TaskSpec::device_compute(&[n])
                .access(a.id, AccessMode::Read, rows.clone())
                .access(b.id, AccessMode::Read, RangeMapper::OneToOne)
                .access(src, AccessMode::Read, RangeMapper::All)
                .access(dst, AccessMode::DiscardWrite, RangeMapper::OneToOne)
                .named("jacobi")
        })
        .collect();
    Workload { name: "jacobi", buffers: vec![a, b, x, x_new], tasks }
}

/// Red-black sweeps over scattered cells, one box per item: `steps` tasks over `n` items of a `2n`-cell 1D buffer, item
/// `i` writing cell `2i + c` and reading cell `2i + 1 - c` for the step's colour `c` (alternating), through custom
/// mappers; every chunk's region of the buffer is as many one-cell boxes as it has items.
pub fn scattered(n: usize, steps: usize) -> Workload {
    let u = buffer(0, 1, GridBox::d1(0, 2 * n), "u");
    let colour = |c: usize| RangeMapper::Custom {
        name: if c == 0 { "even" } else { "odd" },
        f: std::sync::Arc::new(move |chunk: &GridBox, _: &GridBox, _: &GridBox| {
            (chunk.min()[0]..chunk.max()[0]).map(|i| GridBox::d1(2 * i + c, 2 * i + c + 1)).collect()
        }),
        reach: None,
    };
    let tasks = (0..steps)
        .map(|s| {
            TaskSpec::device_compute(&[n])
                .access(u.id, AccessMode::ReadWrite, colour(s % 2))
                .access(u.id, AccessMode::Read, colour(1 - s % 2))
                .named("red_black")
        })
        .collect();
    Workload { name: "scattered", buffers: vec![u], tasks }
}

/// Red-black sweeps over a 2D checkerboard: `steps` tasks over `side × side/2` items of a `side × side` buffer
/// (`side` even), item `(r, j)` writing the cell of row `r` and column `2j + (r + c) % 2` for the step's colour `c`
/// and reading the other colour's cell next to it; every chunk's region is one one-cell box per item.
pub fn checkerboard(side: usize, steps: usize) -> Workload {
    let u = buffer(0, 2, GridBox::d2([0, 0], [side, side]), "u");
    let colour = |c: usize| RangeMapper::Custom {
        name: if c == 0 { "red" } else { "black" },
        f: std::sync::Arc::new(move |chunk: &GridBox, _: &GridBox, _: &GridBox| {
            let (lo, hi) = (chunk.min(), chunk.max());
            (lo[0]..hi[0])
                .flat_map(|r| {
                    (lo[1]..hi[1]).map(move |j| {
                        let col = 2 * j + (r + c) % 2;
                        GridBox::d2([r, col], [r + 1, col + 1])
                    })
                })
                .collect()
        }),
        reach: None,
    };
    let tasks = (0..steps)
        .map(|s| {
            TaskSpec::device_compute(&[side, side / 2])
                .access(u.id, AccessMode::ReadWrite, colour(s % 2))
                .access(u.id, AccessMode::Read, colour(1 - s % 2))
                .named("red_black_2d")
        })
        .collect();
    Workload { name: "checkerboard", buffers: vec![u], tasks }
}

/// `w` with every range mapper replaced by a custom closure that maps the same cells, as a program that writes its
/// mappers as closures would submit it; with `bounded`, each closure also declares the reach of the mapper it
/// replaces ([`RangeMapper::reach`]). The command graphs are the same; only what they cost differs.
pub fn with_custom_mappers(w: &Workload, bounded: bool) -> Workload {
    let buffer_of =
        |b: BufferId| w.buffers.iter().find(|x| x.id == b).map_or((1, GridBox::EMPTY), |x| (x.dims, x.extent));
    let tasks = w
        .tasks
        .iter()
        .map(|t| {
            let mut t = t.clone();
            let kernel_dims = t.dims;
            let accesses: Vec<_> = t
                .accesses
                .iter()
                .map(|a| {
                    let mut a = a.clone();
                    let (m, (buffer_dims, extent)) = (std::sync::Arc::new(a.mapper.clone()), buffer_of(a.buffer));
                    let inner = m.clone();
                    a.mapper = RangeMapper::Custom {
                        name: m.name(),
                        f: std::sync::Arc::new(move |chunk: &GridBox, space: &GridBox, buf: &GridBox| {
                            inner
                                .apply(chunk, space, kernel_dims, buf, buffer_dims)
                                .expect("the workload's mappers apply")
                        }),
                        reach: bounded.then(|| {
                            std::sync::Arc::new(move |cells: &GridBox, range: &GridBox| m.reach(cells, range, &extent))
                                as std::sync::Arc<crate::task::CustomReachFn>
                        }),
                    };
                    a
                })
                .collect();
            t.accesses = accesses.into();
            t
        })
        .collect();
    Workload { name: w.name, buffers: w.buffers.clone(), tasks }
}
