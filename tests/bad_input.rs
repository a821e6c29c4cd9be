//! The table of misuse celer rejects, each with the error it gets (docs/GUIDE.md, "Bad input", lists the same).
//!
//! Every row builds the misuse on a dry-run queue (one rank, or several simulated ones where the misuse needs
//! them) and checks the message for the parts that name what is at fault. Misuse that does not compile is in the
//! `compile_fail` examples of the crate documentation (celer/src/lib.rs); misuse found only on the GPU (push-constant
//! overflow) and whole-run failures (stalls, divergence, a dying rank) are in tests/e2e_errors.rs.

use celer::{access, kernels, task, ErrorPolicy, Kernel, Queue, ReductionOp};

/// The kernels of `kernels/` (a program's own, compiled by this package's build script).
#[allow(dead_code)]
mod own_kernels {
    celer::include_kernels!();
}

/// A dry-run queue simulating `ranks` ranks.
fn queue(ranks: usize) -> Queue {
    Queue::builder().dry_run(ranks).ignore_env().build().expect("a dry run starts")
}

/// One row: what is wrong, and the error's text (or why there is none).
type Row = (&'static str, Result<String, String>);

fn rows() -> Vec<Row> {
    let err = |r: Result<celer::TaskId, celer::TaskError>| match r {
        Ok(t) => Err(format!("accepted as {t}")),
        Err(e) => Ok(e.to_string()),
    };
    let mut rows: Vec<Row> = Vec::new();
    let k = Kernel::named("k");

    let q = queue(1);
    let v = q.buffer_from(&[0u32; 16], [16]).named("values");
    rows.push((
        "a range mapper's result outside the buffer",
        err(q.submit(task::parallel_for(&k, [16]).read(&v, access::fixed([8], [16])).name("shift_right"))),
    ));
    let spill =
        access::custom("spill", |chunk, _| celer::Region::from(celer::GridBox::d1(chunk.min()[0], chunk.max()[0] + 1)));
    rows.push((
        "a custom mapper's result outside the buffer",
        err(q.submit(task::parallel_for(&k, [16]).read(&v, spill))),
    ));
    let grid = q.buffer::<f32, 2>([4, 4]).named("grid");
    rows.push((
        "a slice along a dimension the buffer lacks",
        err(q.submit(task::parallel_for(&k, [4, 4]).read(&grid, access::slice(2)).name("slicer"))),
    ));
    rows.push((
        "a split granularity of zero",
        err(q.submit(task::parallel_for(&k, [16]).write(&v, access::one_to_one()).granularity([0]))),
    ));
    rows.push((
        "an even split in blocks of zero rows",
        err(q.submit(task::host_for([4]).read(&v, access::even_split().granularity(0)).name("blocks"))),
    ));
    let wide = q.buffer::<u32, 1>([2]).named("wide");
    rows.push((
        "a reduction into a buffer of more than one element",
        err(q.submit(task::parallel_for(&k, [16]).read(&v, access::one_to_one()).reduce(&wide, ReductionOp::Sum))),
    ));
    let sum = q.buffer::<u32, 1>([1]).named("sum");
    rows.push((
        "a buffer both reduced into and accessed by one task",
        err(q.submit(task::parallel_for(&k, [16]).read(&sum, access::all()).reduce(&sum, ReductionOp::Sum))),
    ));
    rows.push((
        "a buffer reduced into twice by one task",
        err(q.submit(
            task::parallel_for(&k, [16])
                .read(&v, access::one_to_one())
                .reduce(&sum, ReductionOp::Sum)
                .reduce(&sum, ReductionOp::Max)
                .name("twice"),
        )),
    ));
    let heat = Kernel::wgsl(&kernels::HEAT_1D, "main").expect("heat_1d::main exists");
    rows.push((
        "a kernel whose bindings do not match the accessors",
        err(q.submit(task::parallel_for(&heat, [16]).read(&v, access::all()).name("lonely"))),
    ));
    rows.push((
        "a kernel entry point the shader lacks",
        Kernel::wgsl(&kernels::HEAT_1D, "mian")
            .map(|_| "accepted".to_string())
            .map_err(|e| e.to_string())
            .map_or_else(Ok, Err),
    ));

    let ones = q.buffer_from(&[1i32; 16], [16]).named("ones");
    let total = q.buffer::<i32, 1>([1]).named("total");
    rows.push((
        "a reduction in a host task",
        err(q.submit(
            task::host_for([16]).read(&ones, access::one_to_one()).reduce(&total, ReductionOp::Sum).name("host_sum"),
        )),
    ));
    let or = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_or").expect("reduce_bits::reduce_or exists");
    rows.push((
        "ReductionOp::Custom through .reduce (no combining function)",
        err(q.submit(task::parallel_for(&or, [16]).read(&v, access::one_to_one()).reduce(&sum, ReductionOp::Custom))),
    ));
    {
        // Its own queue, so the buffer ids of the rows after it stay as they are.
        let q = queue(1);
        let ints = q.buffer_from(&[1i32; 16], [16]).named("ints");
        let minimum = q.buffer::<i32, 1>([1]).named("minimum");
        let add = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").expect("reduce_i32::reduce_sum exists");
        rows.push((
            "a Min reduction through a kernel that combines with atomicAdd (or any of Sum, Min, Max for another)",
            err(q.submit(
                task::parallel_for(&add, [16])
                    .read(&ints, access::one_to_one())
                    .reduce(&minimum, ReductionOp::Min)
                    .name("min_by_add"),
            )),
        ));
    }
    {
        // Its own queue, as above.
        let q = queue(1);
        let flags = q.buffer_from(&[1u32; 16], [16]).named("flags");
        let bits = q.buffer::<u32, 1>([1]).named("bits");
        let or = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_or").expect("reduce_bits::reduce_or exists");
        rows.push((
            "a Sum reduction through a kernel that combines with atomicOr (or a reduce_with closure other than its atomics)",
            err(q.submit(
                task::parallel_for(&or, [16])
                    .read(&flags, access::one_to_one())
                    .reduce(&bits, ReductionOp::Sum)
                    .name("or_sum"),
            )),
        ));
    }
    rows.push((
        "a reduce_with identity its combine closure does not keep (a sum from 5)",
        err(q.submit(
            task::parallel_for(&k, [16])
                .read(&v, access::one_to_one())
                .reduce_with(&sum, 5, |a, b| a + b)
                .name("from_5"),
        )),
    ));
    rows.push((
        "a reduce_with combine closure that is not commutative (keep the first non-zero)",
        err(q.submit(
            task::parallel_for(&k, [16])
                .read(&v, access::one_to_one())
                .reduce_with(&sum, 0, |a, b| if a != 0 { a } else { b })
                .name("first_found"),
        )),
    ));
    rows.push((
        "an index space with more items than a usize counts",
        err(q.submit(task::host_for([1usize << 40, 1 << 40]).name("too_many").run(|_| {}))),
    ));
    let squares = Kernel::wgsl(&kernels::SQUARES, "main").expect("squares::main exists");
    rows.push((
        "a kernel over an index space beyond u32 coordinates",
        err(q.submit(
            task::parallel_for(&squares, [1usize << 32]).discard_write(&v, access::fixed([0], [16])).name("wide"),
        )),
    ));
    let long = q.buffer::<u32, 1>([(1 << 32) + 1]).named("long");
    rows.push((
        "a kernel bound to a buffer beyond u32 coordinates",
        err(q.submit(task::parallel_for(&squares, [16]).discard_write(&long, access::one_to_one()).name("long_out"))),
    ));
    let plane = q.buffer::<u8, 2>([1 << 17, 1 << 17]).named("plane");
    rows.push((
        "a kernel whose accesses of a buffer on one node span more than 2^32 cells",
        err(q.submit(
            task::parallel_for(&k, [1 << 17, 1 << 17]).discard_write(&plane, access::one_to_one()).name("flood"),
        )),
    ));
    rows.push((
        "a fixed mapper whose box ends past usize::MAX",
        err(q.submit(task::host_for([16]).read(&v, access::fixed([usize::MAX], [2])).name("far").run(|_| {}))),
    ));
    rows.push((
        "a fenced box that ends past usize::MAX",
        q.fence_subrange(&v, [usize::MAX - 1], [4])
            .map(|_| "accepted".to_string())
            .map_err(|e| e.to_string())
            .map_or_else(Ok, Err),
    ));
    rows.push((
        "a non-empty fenced box partly outside the buffer",
        q.fence_subrange(&v, [12], [8]).map(|_| "accepted".to_string()).map_err(|e| e.to_string()).map_or_else(Ok, Err),
    ));
    rows.push((
        "an empty fenced box outside the buffer",
        q.fence_subrange(&v, [100], [0])
            .map(|_| "accepted".to_string())
            .map_err(|e| e.to_string())
            .map_or_else(Ok, Err),
    ));
    rows.push((
        "an empty fixed mapper box outside the buffer (in a task with items)",
        err(q.submit(task::host_for([16]).read(&v, access::fixed([100], [0])).name("nowhere").run(|_| {}))),
    ));

    let other = queue(1);
    let theirs = other.buffer::<u32, 1>([8]).named("theirs");
    rows.push((
        "a buffer of another queue (a second dry run)",
        err(q.submit(task::host_for([8]).read(&theirs, access::one_to_one()).name("borrowed").run(|_| {}))),
    ));
    // Group ids are per queue: the other queue's first group has the id of this queue's first.
    let (their_group, _our_group) = (other.collective_group(), q.collective_group());
    rows.push((
        "a collective group of another queue",
        err(q.submit(task::host_collective_in(&their_group).name("strays").run(|_| {}))),
    ));

    let log = q.host_object(Vec::<u32>::new());
    rows.push((
        "one host object declared twice as a side effect of a task",
        err(q.submit(task::host_collective().side_effect(&log).side_effect(&log).name("twice").run(|_| {}))),
    ));

    rows.push((
        "a host closure on a kernel task",
        err(q.submit(task::parallel_for(&k, [16]).read(&v, access::one_to_one()).name("closure_kernel").run(|_| {}))),
    ));

    rows.push((
        "a side effect on a kernel task",
        err(q.submit(
            task::parallel_for(&k, [16]).discard_write(&v, access::one_to_one()).side_effect(&log).name("gpu_log"),
        )),
    ));

    rows.push((
        "a scalar or a binding name on a host task",
        err(q.submit(task::host_for([16]).bind("src").read(&v, access::one_to_one()).name("host_bind").run(|_| {}))),
    ));

    let total = q.buffer_from(&[5i32], [1]).named("total");
    let ints = q.buffer_from(&[1i32; 256], [256]).named("ints");
    let blocks = Kernel::wgsl(&own_kernels::BLOCK_I32, "reduce_sum").expect("block_i32::reduce_sum exists");
    rows.push((
        "a deterministic block reduction that would fold in the buffer's value (`reduce_including`)",
        err(q.submit(
            task::parallel_for(&blocks, [256])
                .read(&ints, access::one_to_one())
                .reduce_including(&total, ReductionOp::Sum)
                .name("exact_total"),
        )),
    ));
    rows.push((
        "an offset whose index space ends past `usize::MAX`",
        err(q.submit(task::host_for([4, 2]).offset([1, usize::MAX - 1]).name("too_far"))),
    ));
    rows.push((
        "an offset on a collective host task (item r is rank r)",
        err(q.submit(task::host_collective().offset([1]).name("io"))),
    ));

    let q = Queue::builder()
        .dry_run(1)
        .uninitialized_reads(ErrorPolicy::Error)
        .ignore_env()
        .build()
        .expect("a dry run starts");
    let fresh = q.buffer::<f32, 1>([8]).named("fresh");
    rows.push((
        "reading cells nothing wrote (policy: error; the default warns)",
        err(q.submit(task::parallel_for(&k, [8]).read(&fresh, access::one_to_one()).name("early_read"))),
    ));
    let one = q.buffer::<i32, 1>([1]).named("never_written");
    let atomics = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").expect("reduce_i32::reduce_sum exists");
    let ints = q.buffer_from(&[1i32; 64], [64]).named("ints");
    rows.push((
        "folding in the value of a buffer nothing wrote (`reduce_including`; policy: error, the default warns)",
        err(q.submit(
            task::parallel_for(&atomics, [64])
                .read(&ints, access::one_to_one())
                .reduce_including(&one, ReductionOp::Sum)
                .name("from_nothing"),
        )),
    ));

    let q = queue(2);
    let shared = q.buffer::<f32, 1>([16]).named("shared");
    rows.push((
        "a distributed kernel writing cells another rank's chunk also writes",
        err(q.submit(task::parallel_for(&k, [16]).write(&shared, access::all()).name("everyone_writes_all"))),
    ));

    {
        // Its own queue, so the buffer ids of the rows after it stay as they are. A kernel's two writing bindings of
        // one buffer share its memory: accepted, also twice (the second from the outcomes submit keeps), and the
        // same access list on a host task, which gets a copy of each accessor's cells, is still refused.
        let q = queue(1);
        let a = q.buffer_from(&[1.0f32; 16], [16]).named("a");
        for _ in 0..2 {
            q.submit(task::parallel_for(&k, [16]).write(&a, access::one_to_one()).read_write(&a, access::one_to_one()))
                .expect("a kernel may bind one buffer twice");
        }
        rows.push((
            "two writing accessors of one buffer in a host task whose cells overlap (the writes through one would be lost)",
            err(q.submit(
                task::host_for([16])
                    .write(&a, access::one_to_one())
                    .read_write(&a, access::one_to_one())
                    .name("twice")
                    .run(|_| {}),
            )),
        ));
    }
    rows.push((
        "an invalid CELER_* value",
        celer::unstable::scheduler::RuntimeConfig::from_lookup(|n| {
            (n == "CELER_LOOKAHEAD").then(|| "many".to_string())
        })
        .map(|_| "accepted".to_string())
        .map_err(|e| e.to_string())
        .map_or_else(Ok, Err),
    ));
    rows.push((
        "more devices per rank than QueueBuilder::MAX_DEVICES (64)",
        Queue::builder()
            .devices(1000)
            .ignore_env()
            .build()
            .map(|_| "accepted".to_string())
            .map_err(|e| e.to_string())
            .map_or_else(Ok, Err),
    ));
    rows
}

#[test]
fn every_misuse_in_the_table_gets_an_error_naming_what_is_at_fault() {
    // What each message must contain: the task, buffer or setting at fault, and what is wrong.
    let expected: &[(&str, &[&str])] = &[
        ("a range mapper's result outside", &["task T1 \"shift_right\"", "buffer B0 \"values\"", "{[16] - [24]}"]),
        ("a custom mapper's", &["range mapper spill maps to {[0] - [17]}", "buffer B0 \"values\""]),
        ("a slice along", &["\"slicer\"", "B1 \"grid\"", "refers to dimension 2, but the buffer is 2D"]),
        ("a split granularity of zero", &["granularity must be at least 1"]),
        ("an even split in blocks of zero", &["\"blocks\"", "B0 \"values\"", "even_split", "blocks of 0"]),
        ("a reduction into a buffer of more", &["B2 \"wide\"", "exactly one element"]),
        ("a buffer both reduced", &["B3 \"sum\"", "both reduced into and accessed"]),
        ("a buffer reduced into twice", &["\"twice\"", "B3 \"sum\"", "reduced into twice", "reductions 0 and 1"]),
        ("a kernel whose bindings", &["task", "\"lonely\"", "heat_1d::main"]),
        ("a kernel entry point", &["heat_1d", "`mian`", "main"]),
        ("a reduction in a host task", &["\"host_sum\"", "B5 \"total\"", "task::host_for", "only kernels"]),
        ("ReductionOp::Custom", &["\"reduce_bits\"", "B3 \"sum\"", "reduce_with"]),
        (
            "a Min reduction through a kernel",
            &["\"min_by_add\"", "reduce_i32::reduce_sum", "with atomicAdd", "B1 \"minimum\"", "ReductionOp::Min"],
        ),
        (
            "a Sum reduction through a kernel that combines with atomicOr",
            &["\"or_sum\"", "reduce_bits::reduce_or", "with atomicOr", "B1 \"bits\"", "Sum(12, 10) = 22"],
        ),
        ("a reduce_with identity", &["\"from_5\"", "B3 \"sum\"", "identity 5", "combine(5, 5) = 10"]),
        (
            "a reduce_with combine closure that is not",
            &["\"first_found\"", "B3 \"sum\"", "not commutative", "combine(1, 2) = 1, but combine(2, 1) = 2"],
        ),
        ("an index space with more", &["\"too_many\"", "[1099511627776,1099511627776]", "usize"]),
        ("a kernel over an index space beyond", &["\"wide\"", "squares::main", "[0] - [4294967296]", "u32"]),
        ("a kernel bound to a buffer beyond", &["\"long_out\"", "B6 \"long\" of extent [0] - [4294967297]"]),
        ("a kernel whose accesses of a buffer", &["\"flood\"", "kernel k", "B7 \"plane\"", "17179869184 cells", "u32"]),
        ("a fixed mapper whose box", &["\"far\"", "B0 \"values\"", "[18446744073709551615]", "overflows"]),
        ("a fenced box that ends", &["fenced box", "B0 \"values\"", "[18446744073709551614]", "[4]"]),
        (
            "a non-empty fenced box partly outside",
            &["In task T", "fenced box", "B0 \"values\"", "offset [12] and range [8]", "extent [16]", "12..20"],
        ),
        (
            "an empty fenced box outside",
            &["In task T", "fenced box", "B0 \"values\"", "offset [100] and range [0]", "extent [16]", "100..100"],
        ),
        ("an empty fixed mapper box", &["\"nowhere\"", "fixed range mapper (read access)", "B0 \"values\"", "[100]"]),
        ("a buffer of another queue", &["\"borrowed\"", "buffer B0", "another Queue"]),
        ("a collective group of another", &["\"strays\"", "collective group CG1", "another Queue"]),
        ("one host object declared twice", &["\"twice\"", "host object H0", "side effects 0 and 1"]),
        ("a host closure on a kernel task", &["\"closure_kernel\"", "runs its kernel, not a host closure"]),
        ("a side effect on a kernel task", &["\"gpu_log\"", "cannot use a host object", "host_for"]),
        ("a scalar or a binding name", &["\"host_bind\"", "binding names (.bind) are for kernel tasks"]),
        ("a deterministic block reduction", &["\"exact_total\"", "block_i32::reduce_sum", "\"total\""]),
        ("an offset whose index space", &["\"too_far\"", "offset [1, 18446744073709551614]"]),
        ("an offset on a collective", &["\"io\"", "task::host_collective"]),
        ("reading cells nothing wrote", &["\"early_read\"", "B0 \"fresh\""]),
        ("folding in the value", &["\"from_nothing\"", "\"never_written\""]),
        ("a distributed kernel writing", &["\"everyone_writes_all\"", "B0 \"shared\""]),
        (
            "two writing accessors of one buffer in a host task",
            &["\"twice\"", "B0 \"a\"", "accessors 0 (write one_to_one) and 1 (read_write one_to_one)", "{[0] - [16]}"],
        ),
        ("an invalid CELER_*", &["CELER_LOOKAHEAD", "\"many\"", "an integer >= 1"]),
        ("more devices per rank", &["QueueBuilder::devices(1000)", "QueueBuilder::MAX_DEVICES = 64"]),
    ];
    let rows = rows();
    assert_eq!(rows.len(), expected.len(), "one expectation per row");
    let mut table = String::from("| misuse | error |\n|---|---|\n");
    for ((what, result), (prefix, parts)) in rows.iter().zip(expected) {
        assert!(what.starts_with(prefix), "row order: {what} vs {prefix}");
        let msg = result.as_ref().unwrap_or_else(|e| panic!("{what}: no error ({e})"));
        for p in *parts {
            assert!(msg.contains(p), "{what}: the error lacks {p:?}: {msg}");
        }
        table.push_str(&format!("| {what} | {msg} |\n"));
    }
    // `cargo test --test bad_input -- --nocapture` prints the table the guide shows.
    println!("{table}");
}

#[test]
fn errors_about_an_empty_buffer_print_its_shape_not_an_empty_box() {
    // An empty buffer's box is normalised to all zeros, which printed as `[]`: the messages print its shape.
    let q = queue(1);
    let k = Kernel::named("k");
    let flat = q.buffer::<u32, 2>([4, 0]).named("flat");
    let none = q.buffer::<u32, 1>([0]).named("none");
    let err = |r: Result<celer::TaskId, celer::TaskError>| r.expect_err("refused").to_string();
    // OutOfBounds: a box inside [4, 4] but not inside [4, 0].
    let outside = err(q.submit(task::parallel_for(&k, [4]).read(&flat, access::fixed([0, 0], [2, 2])).name("corner")));
    assert!(outside.contains("buffer B0 \"flat\"") && outside.contains("the buffer's extent [4, 0];"), "{outside}");
    let outside = err(q.submit(task::parallel_for(&k, [4]).read(&none, access::fixed([0], [1])).name("first")));
    assert!(outside.contains("buffer B1 \"none\"") && outside.contains("the buffer's extent [0];"), "{outside}");
    // ReductionNotScalar.
    let scalar = err(q.submit(task::parallel_for(&k, [4]).reduce(&flat, ReductionOp::Sum).name("into_nothing")));
    assert!(scalar.contains("buffer B0 \"flat\" has extent [4, 0], but a reduction needs"), "{scalar}");
    // BoxOverflow.
    let far = access::fixed([usize::MAX, 0], [2, 0]);
    let overflow = err(q.submit(task::host_for([4]).read(&flat, far).name("far").run(|_| {})));
    assert!(overflow.contains("buffer B0 \"flat\"") && overflow.contains("the buffer's extent [4, 0]"), "{overflow}");
    // A buffer with cells keeps its box.
    let full = q.buffer::<u32, 2>([4, 2]).named("full");
    let outside = err(q.submit(task::parallel_for(&k, [4]).read(&full, access::fixed([0, 0], [2, 3]))));
    assert!(outside.contains("the buffer's extent [0,0] - [4,2];"), "{outside}");
}

#[test]
fn a_task_over_an_empty_index_space_is_no_misuse_but_a_no_op() {
    // Like an empty loop: accepted on one rank and on several, and no rank gets a command for it.
    for ranks in [1, 2] {
        let q = Queue::builder().dry_run(ranks).record_commands(true).ignore_env().build().expect("a dry run starts");
        let v = q.buffer_from(&[0u32; 16], [16]).named("values");
        let k = Kernel::named("k");
        q.submit(task::parallel_for(&k, [16]).read_write(&v, access::one_to_one())).unwrap();
        q.submit(task::parallel_for(&k, [0]).read_write(&v, access::all()).name("no_items")).unwrap();
        q.submit(task::parallel_for(&k, [4, 0]).discard_write(&v, access::fixed([0], [64]))).unwrap();
        q.submit(task::host_for([0]).read(&v, access::one_to_one()).run(|_| panic!("no item, no call"))).unwrap();
        for (rank, counts) in q.command_counts().iter().enumerate() {
            assert_eq!(counts.get("execution"), Some(&1), "N{rank}: only the first task runs here: {counts:?}");
        }
    }
}

#[test]
fn a_granularity_beyond_usize_after_workgroup_alignment_is_one_chunk_not_an_overflow() {
    // blocks::sum_1d depends on its workgroups (64 items), so submit takes the least common multiple of 64 and the
    // program's granularity, which overflows usize here: the task must still be accepted, as one chunk.
    let q = Queue::builder().dry_run(2).record_commands(true).ignore_env().build().expect("a dry run starts");
    let k = Kernel::wgsl(&kernels::BLOCKS, "sum_1d").expect("blocks::sum_1d exists");
    let s = q.buffer::<u32, 1>([1]).named("s");
    q.submit(task::parallel_for(&k, [100]).reduce(&s, ReductionOp::Sum).granularity([usize::MAX - 1])).unwrap();
    let runs: Vec<usize> = q.command_counts().iter().map(|c| c.get("execution").copied().unwrap_or(0)).collect();
    assert_eq!(runs.iter().sum::<usize>(), 1, "one chunk on one of the two ranks: {runs:?}");
}

#[test]
fn a_dry_run_reports_the_ranks_it_simulates_so_collective_tasks_fit_buffers_sized_by_them() {
    for ranks in [1, 4] {
        let q = queue(ranks);
        assert_eq!(q.ranks(), ranks);
        assert_eq!(q.rank(), 0);
        let per_rank = q.buffer::<u32, 1>([q.ranks()]).named("per_rank");
        q.submit(task::host_collective().discard_write(&per_rank, access::one_to_one()).run(|_| {}))
            .unwrap_or_else(|e| panic!("{ranks} simulated ranks: {e}"));
    }
}

#[test]
fn a_kernel_is_refused_where_one_nodes_chunk_of_a_buffer_spans_more_cells_than_kernels_index() {
    // 2^34 one-byte cells: one node's allocation cannot hold them all, four nodes' chunks (2^32 each) can.
    let k = Kernel::named("k");
    for (ranks, one_to_one_fits) in [(1, false), (2, false), (4, true)] {
        let q = queue(ranks);
        let plane = q.buffer::<u8, 2>([1 << 17, 1 << 17]).named("plane");
        let each = q.submit(task::parallel_for(&k, [1 << 17, 1 << 17]).discard_write(&plane, access::one_to_one()));
        assert_eq!(each.is_ok(), one_to_one_fits, "{ranks} rank(s): {each:?}");
        if let Err(e) = each {
            let msg = e.to_string();
            assert!(msg.contains(&format!("split over {ranks} node(s)")), "{msg}");
            assert!(msg.contains(&format!("{} cells", (1u64 << 34) / ranks as u64)), "{msg}");
        }
        // Every chunk reads the whole buffer: no split helps.
        let whole = q.submit(task::parallel_for(&k, [1 << 17, 1 << 17]).read(&plane, access::all()).name("gather"));
        let msg = whole.expect_err("every chunk reads 2^34 cells").to_string();
        assert!(
            msg.contains("\"gather\"") && msg.contains("B0 \"plane\"") && msg.contains("17179869184 cells"),
            "{msg}"
        );
        // A small part of the buffer is fine on any number of nodes.
        q.submit(task::parallel_for(&k, [16, 16]).read(&plane, access::fixed([0, 0], [16, 16]))).unwrap();
    }
}

/// The six orders of three extents.
fn orders(e: [usize; 3]) -> [[usize; 3]; 6] {
    let [a, b, c] = e;
    [[a, b, c], [a, c, b], [b, a, c], [b, c, a], [c, a, b], [c, b, a]]
}

#[test]
fn a_buffer_with_a_zero_extent_holds_no_cells_in_whatever_order_its_extents_come() {
    // 2^40 * 2^40 overflows usize, but with a zero extent the buffer holds nothing, wherever the zero stands.
    let squares = Kernel::wgsl(&kernels::SQUARES, "main").expect("squares::main exists");
    let transpose = Kernel::wgsl(&own_kernels::TRANSPOSE_SCALED, "main").expect("transpose_scaled::main exists");
    for ranks in [1, 3] {
        let q = Queue::builder().dry_run(ranks).record_commands(true).ignore_env().build().expect("a dry run starts");
        for extent in orders([1 << 40, 1 << 40, 0]) {
            let b = q.buffer::<f32, 3>(extent).named("empty3");
            let c = q.buffer_from::<u32, 3>(&[], extent).named("from_nothing");
            assert_eq!(b.range(), extent);
            let k = Kernel::named("k");
            q.submit(task::parallel_for(&k, extent).discard_write(&b, access::one_to_one()).read(&c, access::all()))
                .unwrap_or_else(|e| panic!("{extent:?}: {e}"));
            q.submit(task::host_for(extent).discard_write(&b, access::one_to_one()).run(|_| panic!("no item")))
                .unwrap_or_else(|e| panic!("{extent:?}: {e}"));
            q.submit(task::host_once().read(&b, access::all()).read(&c, access::all()).run(|_| {}))
                .unwrap_or_else(|e| panic!("{extent:?}: {e}"));
            q.fence(&b).unwrap_or_else(|e| panic!("{extent:?}: {e}"));
        }
        // A kernel binding an empty buffer whose extent is beyond u32 addresses no cell: accepted.
        for extent in [[1 << 40, 0], [0, 1 << 40]] {
            let src = q.buffer::<f32, 2>(extent).named("src");
            let dst = q.buffer::<f32, 2>([extent[1], extent[0]]).named("dst");
            q.submit(
                task::parallel_for(&transpose, [extent[1], extent[0]])
                    .read(&src, access::transposed())
                    .discard_write(&dst, access::one_to_one())
                    .scalar_f32(1.0),
            )
            .unwrap_or_else(|e| panic!("{extent:?}: {e}"));
        }
        // ... but one with a cell beyond u32 coordinates is still refused.
        let long = q.buffer::<i32, 1>([(1 << 32) + 1]).named("long");
        let refused = q.submit(task::parallel_for(&squares, [16]).discard_write(&long, access::one_to_one()));
        assert!(refused.is_err(), "{refused:?}");
        for (rank, counts) in q.command_counts().iter().enumerate() {
            let runs = counts.get("execution").copied().unwrap_or(0);
            assert!(runs <= 6, "N{rank}: only the host_once tasks run (one rank each): {counts:?}");
        }
    }
}

#[test]
fn a_buffer_whose_size_overflows_is_refused_at_its_creation_in_whatever_order_its_extents_come() {
    let q = queue(1);
    let refusal = |extent: [usize; 3]| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(q.buffer::<f32, 3>(extent))));
        let payload = r.expect_err(&format!("a buffer of extent {extent:?} was accepted"));
        payload.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    // The cells overflow usize (2^81), or only the bytes (2^62 cells of 4 bytes), or the bytes exceed isize::MAX.
    for e in [[1 << 40, 1 << 40, 2], [1 << 31, 1 << 31, 1], [1 << 61, 1, 1]] {
        for extent in orders(e) {
            let msg = refusal(extent);
            assert!(
                msg.contains(&format!("a buffer of extent {extent:?} of 4-byte elements is too large")),
                "{extent:?}: {msg}"
            );
        }
    }
    // Just below the limit is no overflow (2^61 - 1 cells of 4 bytes fit isize).
    for extent in orders([(1 << 61) - 1, 1, 1]) {
        drop(q.buffer::<f32, 3>(extent));
    }
}

#[test]
fn a_non_empty_fenced_box_outside_the_buffer_is_refused_as_the_fences_own_error_not_a_mappers() {
    let q = queue(2);
    let vol = q.buffer_from(&[0u32; 60], [3, 4, 5]).named("vol");
    // Partly outside (along dimension 1), wholly outside, and outside along the last dimension only.
    for (offset, range, dim, span) in
        [([1, 4, 0], [1, 1, 5], 1, "4..5"), ([3, 0, 0], [1, 4, 5], 0, "3..4"), ([0, 0, 2], [3, 4, 4], 2, "2..6")]
    {
        let e = q.fence_subrange(&vol, offset, range).map(|_| ()).expect_err(&format!("{offset:?} + {range:?}"));
        let msg = e.to_string();
        assert!(
            msg.contains(&format!(
                "the fenced box of buffer B0 \"vol\" is given as offset {offset:?} and range {range:?}, but it lies \
                 outside the buffer's extent [3, 4, 5] (along dimension {dim} it spans {span})"
            )),
            "{msg}"
        );
        // The program wrote no range mapper: the message must not blame one.
        assert!(!msg.contains("range mapper"), "{msg}");
    }
    // Inside, up to the extent, is fine.
    q.fence_subrange(&vol, [2, 3, 4], [1, 1, 1]).unwrap();
    q.fence_subrange(&vol, [0, 0, 0], [3, 4, 5]).unwrap();
}

#[test]
fn an_empty_box_is_refused_outside_the_buffer_as_a_non_empty_one_is_and_accepted_inside_or_at_its_end() {
    let q = queue(2);
    let v = q.buffer_from(&[0u32; 16], [16]).named("values");
    let g = q.buffer::<f32, 2>([4, 8]).named("grid");
    // A non-empty box outside is refused, by the range mapper check.
    assert!(q.fence_subrange(&v, [100], [1]).is_err());
    // An empty one too, along any dimension, also where another dimension is the empty one.
    for (offset, range) in [([5, 0], [0, 1]), ([0, 9], [1, 0]), ([2, 20], [0, 0]), ([3, 7], [4, 0])] {
        let e = q.fence_subrange(&g, offset, range).map(|_| ()).expect_err(&format!("{offset:?} + {range:?}"));
        assert!(e.to_string().contains("an empty box, but it lies outside the buffer's extent [4, 8]"), "{e}");
    }
    assert!(q.fence_subrange(&v, [17], [0]).is_err());
    // Inside or at the end (as `s[16..16]` of a slice of 16) is fine, and returns nothing.
    for (offset, range) in [([0], [0]), ([8], [0]), ([16], [0])] {
        q.fence_subrange(&v, offset, range).unwrap_or_else(|e| panic!("{offset:?}: {e}"));
    }
    q.fence_subrange(&g, [4, 8], [0, 0]).unwrap();
    q.fence_subrange(&g, [1, 8], [3, 0]).unwrap();
    // A fixed box: refused in a task with items, not in one without (its mappers are not applied, as for a
    // non-empty box outside).
    let k = Kernel::named("k");
    assert!(q.submit(task::parallel_for(&k, [16]).read(&v, access::fixed([17], [0]))).is_err());
    q.submit(task::parallel_for(&k, [16]).read(&v, access::fixed([16], [0]))).unwrap();
    q.submit(task::parallel_for(&k, [0]).read(&v, access::fixed([17], [0]))).unwrap();
    q.submit(task::parallel_for(&k, [0]).read(&v, access::fixed([17], [5]))).unwrap();
}

/// The text of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_custom_mapper_returning_a_box_with_min_past_max_fails_at_submit_naming_the_dimension_and_corners() {
    // An arithmetic slip in a mapper (the corners swapped) used to make the empty box, and the task ran on with an
    // empty region. Now the constructor panics where the mapper runs, at submit (which also logs the task's name,
    // its id and the mapper's buffer: `tests/e2e_errors.rs`, case `mapper-inverted`, checks that line).
    let k = Kernel::named("k");
    let swapped: [(&str, celer::access::Custom<1, 1>, &str); 2] = [
        (
            "d1",
            access::custom("backwards", |_, _| celer::Region::from(celer::GridBox::d1(7, 3))),
            "GridBox::d1(7, 3): min 7 exceeds max 3 along dimension 0; a box [min, max) needs min <= max",
        ),
        (
            "from the chunk",
            access::custom("backwards", |c, _| celer::Region::from(celer::GridBox::d1(c.max()[0], c.min()[0]))),
            "GridBox::d1(16, 0): min 16 exceeds max 0 along dimension 0",
        ),
    ];
    for (what, mapper, expected) in swapped {
        let q = queue(1);
        let v = q.buffer_from(&[0u32; 16], [16]).named("values");
        let submitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            q.submit(task::parallel_for(&k, [16]).read(&v, mapper).name("inverted"))
        }));
        let payload = submitted.map(|r| r.map(|t| t.to_string())).expect_err(&format!("{what}: submit returned"));
        let msg = panic_message(&*payload);
        assert!(msg.contains(expected), "{what}: {msg}");
    }
    // In two dimensions the message names the dimension that crosses.
    let q = queue(1);
    let g = q.buffer::<f32, 2>([4, 8]).named("grid");
    let rows = access::custom("rows", |c: &celer::GridBox<2>, e: &celer::GridBox<2>| {
        celer::Region::from(celer::GridBox::new([c.min()[0], e.max()[1]], [c.max()[0], 0]))
    });
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        q.submit(task::parallel_for(&k, [4, 8]).read(&g, rows).name("rows_backwards"))
    }))
    .map(|r| r.map(|t| t.to_string()))
    .expect_err("submit returned");
    let msg = panic_message(&*payload);
    assert!(msg.contains("GridBox::new([0, 8], [4, 0]): min 8 exceeds max 0 along dimension 1"), "{msg}");
}
