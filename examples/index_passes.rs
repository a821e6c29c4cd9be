//! Passes whose index spaces change: a pairwise tree sum (each pass halves the length, odd lengths included; a
//! custom range mapper maps item i to cells 2i and 2i + 1, clamped to the buffer), then a 2D transpose of a
//! non-square matrix through `transposed()`, and back through a custom mapper that swaps the chunk's axes. Each
//! result is checked exactly against a serial computation, on any number of ranks and devices.
//!
//! ```text
//! cargo run --example index_passes
//! mpirun -n 3 target/debug/examples/index_passes
//! ```
use celer::{access, task, GridBox, Kernel, Queue, Region};

mod kernels {
    #![allow(dead_code)]
    celer::include_kernels!();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    celer::logging::init();
    let q = Queue::new()?;
    let pairs = Kernel::wgsl(&kernels::PAIR_SUM, "main")?;
    let transpose = Kernel::wgsl(&kernels::TRANSPOSE_SCALED, "main")?;

    for &len in &[1000usize, 777, 64, 3] {
        let data: Vec<i32> = (0..len as i32).map(|i| (i * 7919) % 1013 - 500).collect();
        let expect: i32 = data.iter().sum();
        let mut cur = q.buffer_from(&data, [len]).named("level0");
        let mut n = len;
        let mut level = 0;
        while n > 1 {
            let half = n.div_ceil(2);
            level += 1;
            let next = q.buffer::<i32, 1>([half]).named(format!("level{level}"));
            let pair_map = access::custom("pairs", |chunk: &GridBox<1>, ext: &GridBox<1>| {
                Region::from(GridBox::d1(2 * chunk.min()[0], (2 * chunk.max()[0]).min(ext.max()[0])))
            });
            q.submit(
                task::parallel_for(&pairs, [half])
                    .name("pair_sum")
                    .read(&cur, pair_map)
                    .discard_write(&next, access::one_to_one())
                    .scalars(&[n as u32]),
            )?;
            cur = next;
            n = half;
        }
        let got = q.fence(&cur)?.wait()?;
        println!("rank {:?}: tree sum of {len}: {} (serial {expect})", q.rank(), got[0]);
        assert_eq!(got, vec![expect], "tree sum of {len} values");
    }

    // Transpose an r x c matrix into c x r, scaled by 2, then back by a custom mapper, scaled by 0.5.
    let (r, c) = (37usize, 53usize);
    let m: Vec<f32> = (0..r * c).map(|k| k as f32 * 0.25 - 3.0).collect();
    let a = q.buffer_from(&m, [r, c]).named("a");
    let at = q.buffer::<f32, 2>([c, r]).named("a_t");
    let back = q.buffer::<f32, 2>([r, c]).named("a_back");
    q.submit(
        task::parallel_for(&transpose, [c, r])
            .name("transpose")
            .read(&a, access::transposed())
            .discard_write(&at, access::one_to_one())
            .scalar_f32(2.0),
    )?;
    let swap = access::custom("swap_axes", |chunk: &GridBox<2>, _: &GridBox<2>| {
        let (lo, hi) = (chunk.min(), chunk.max());
        Region::from(GridBox::new([lo[1], lo[0]], [hi[1], hi[0]]))
    });
    q.submit(
        task::parallel_for(&transpose, [r, c])
            .name("transpose_back")
            .read(&at, swap)
            .discard_write(&back, access::one_to_one())
            .scalar_f32(0.5),
    )?;
    let t = q.fence(&at)?.wait()?;
    let b = q.fence(&back)?.wait()?;
    for i in 0..c {
        for j in 0..r {
            assert_eq!(t[i * r + j], 2.0 * m[j * c + i], "a_t[{i}, {j}]");
        }
    }
    assert_eq!(b, m, "transposed twice");
    println!("rank {:?}: transposes of {r} x {c} match", q.rank());
    Ok(())
}
