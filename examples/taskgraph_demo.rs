//! Records a small wave-equation program through the celer API and prints its task graph as Graphviz DOT.
//!
//! Shows buffers created from host data, neighbourhood and one-to-one range mappers, a fence, and how horizons keep
//! the recorded graph short however many steps run. Render the output with `dot -Tsvg`.
//!
//! ```text
//! cargo run --example taskgraph_demo -- [--steps N] [--size N]
//! ```

use celer::{access, task, Kernel, Queue};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut steps = 6usize;
    let mut n = 64usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse().ok()).ok_or(format!("{a} needs a number"));
        match a.as_str() {
            "--steps" => steps = value()?,
            "--size" => n = value()?,
            other => return Err(format!("unknown argument {other}; use --steps N --size N").into()),
        }
    }
    let q = Queue::new();
    let initial: Vec<f32> = (0..n * n).map(|i| ((i % n) as f32 / n as f32).sin()).collect();
    let mut u = q.buffer_from(&initial, [n, n]).named("u");
    let mut up = q.buffer_from(&initial, [n, n]).named("u_prev");
    let step = Kernel::named("wave_step");
    for _ in 0..steps {
        q.submit(
            task::parallel_for(&step, [n, n])
                .read_write(&up, access::one_to_one())
                .read(&u, access::neighborhood_along_axes([1, 1])),
        )?;
        std::mem::swap(&mut u, &mut up);
    }
    let fence = q.fence(&u)?;
    println!("// {steps} steps on a {n}x{n} grid; fence {} will return the field.", fence.task());
    println!("// {} tasks are held in memory; horizons prune older ones.", q.live_tasks());
    print!("{}", q.task_graph_dot());
    Ok(())
}
