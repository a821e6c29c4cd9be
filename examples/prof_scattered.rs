//! Submit cost of regions of many boxes through the facade: on 1, 2 and 4 dry-run ranks, 4 red-black steps over a 1D
//! buffer whose custom mappers map item `i` to cell `2i` (or `2i + 1`), one box per item, for 1000 to 64 000 items;
//! prints milliseconds per task (task graph, command graphs, `wait` included).
//!
//! ```text
//! cargo run --release --example prof_scattered -- [MAX_BOXES]
//! ```
use celer::{access, task, GridBox, Kernel, Queue, Region};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    celer::logging::init();
    let max: usize = std::env::args().nth(1).map(|v| v.parse()).transpose()?.unwrap_or(64_000);
    for ranks in [1usize, 2, 4] {
        for n in [1000usize, 2000, 4000, 16_000, 64_000].into_iter().filter(|&n| n <= max) {
            let q = Queue::builder().dry_run(ranks).build()?;
            let a = q.buffer::<f32, 1>([2 * n]).named("a");
            let colour = |c: usize| {
                access::custom(if c == 0 { "even" } else { "odd" }, move |k: &GridBox<1>, _: &GridBox<1>| {
                    Region::from_boxes((k.min()[0]..k.max()[0]).map(|i| GridBox::d1(2 * i + c, 2 * i + c + 1)))
                })
            };
            let k = Kernel::named("red_black");
            q.submit(task::parallel_for(&Kernel::named("init"), [2 * n]).discard_write(&a, access::one_to_one()))?;
            q.wait();
            let t = std::time::Instant::now();
            for s in 0..4 {
                q.submit(task::parallel_for(&k, [n]).read_write(&a, colour(s % 2)).read(&a, colour(1 - s % 2)))?;
            }
            q.wait();
            println!("{ranks} rank(s), {n} boxes: {:.1} ms per task", t.elapsed().as_secs_f64() * 1e3 / 4.0);
        }
    }
    Ok(())
}
