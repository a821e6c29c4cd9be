//! Every mismatch between a task and its WGSL kernel is refused at submit, in a dry run (no GPU), with a message
//! naming the task, the kernel, the binding by its WGSL name, the buffer by its name and both sides. The GUIDE's
//! table of submit-time checks quotes these messages.

use celer::{access, kernels, task, Kernel, Queue, ReductionOp, TaskError, TaskErrorKind};

#[allow(dead_code)] // kernels/ holds the kernels of several tests and examples
mod own_kernels {
    celer::include_kernels!();
}

/// The error's message, after checking that it names the task.
fn message(result: Result<celer::TaskId, TaskError>, task: &str) -> String {
    let e = result.expect_err("submit must refuse the task");
    let msg = e.to_string();
    assert!(msg.contains(&format!("\"{task}\"")), "the message names the task: {msg}");
    // `cargo test --test kernel_checks -- --nocapture --test-threads 1` prints the messages the GUIDE quotes.
    println!("{msg}");
    msg
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "expected {p:?} in: {msg}");
    }
}

fn heat() -> Kernel {
    Kernel::wgsl(&kernels::HEAT_1D, "main").expect("heat_1d::main")
}

#[test]
fn an_element_type_other_than_the_bindings_is_refused() {
    let q = Queue::dry_run();
    // f64 buffers through a kernel over f32.
    let a = q.buffer_from(&[0.0f64; 16], [16]).named("a");
    let b = q.buffer::<f32, 1>([16]).named("b");
    let msg = message(
        q.submit(
            task::parallel_for(&heat(), [16])
                .read(&a, access::neighborhood([1]))
                .discard_write(&b, access::one_to_one())
                .scalar_f32(0.1)
                .name("f64_heat"),
        ),
        "f64_heat",
    );
    assert_has(
        &msg,
        &["kernel heat_1d::main declares `src` (@binding(0)) as array<f32>", "binds buffer B0 \"a\" of f64 there"],
    );
    // u8 through u32.
    let bytes = q.buffer::<u8, 1>([16]).named("bytes");
    let squares = Kernel::wgsl(&kernels::SQUARES, "main").unwrap();
    let msg = message(
        q.submit(task::parallel_for(&squares, [16]).discard_write(&bytes, access::one_to_one()).name("u8_squares")),
        "u8_squares",
    );
    assert_has(
        &msg,
        &["`out` (@binding(0)) as array<u32>", "buffer B2 \"bytes\" of u8 there (accessor 0, discard_write)"],
    );
    // An f32 buffer reduced by an i32 reduction kernel (the element type is atomic<i32>).
    let data = q.buffer_from(&[1i32; 16], [16]).named("data");
    let sum = q.buffer::<f32, 1>([1]).named("sum");
    let reduce = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").unwrap();
    let msg = message(
        q.submit(
            task::parallel_for(&reduce, [16])
                .read(&data, access::one_to_one())
                .reduce(&sum, ReductionOp::Sum)
                .name("f32_sum"),
        ),
        "f32_sum",
    );
    assert_has(&msg, &["`out` (@binding(1)) as array<atomic<i32>>", "buffer B4 \"sum\" of f32 there (reduction 0)"]);
}

#[test]
fn a_write_through_a_read_binding_is_refused() {
    let q = Queue::dry_run();
    let a = q.buffer_from(&[0.0f32; 16], [16]).named("a");
    let b = q.buffer::<f32, 1>([16]).named("b");
    // The accessors in the wrong order: the written `b` lands on the read-only `src`.
    let msg = message(
        q.submit(
            task::parallel_for(&heat(), [16])
                .discard_write(&b, access::one_to_one())
                .read(&a, access::neighborhood([1]))
                .scalar_f32(0.1)
                .name("swapped"),
        ),
        "swapped",
    );
    assert_has(
        &msg,
        &[
            "kernel heat_1d::main declares `src` (@binding(0)) var<storage, read>",
            "binds buffer B1 \"b\" there with discard_write access",
            "wrong order",
        ],
    );
}

#[test]
fn a_read_access_where_the_kernel_writes_is_refused() {
    let q = Queue::dry_run();
    let n = q.buffer_from(&[0u32; 16], [16]).named("counts");
    let add = Kernel::wgsl(&kernels::GPU_ADD, "main").unwrap();
    let msg = message(
        q.submit(task::parallel_for(&add, [16]).read(&n, access::one_to_one()).scalars(&[1]).name("sneaky_add")),
        "sneaky_add",
    );
    assert_has(
        &msg,
        &[
            "kernel gpu_add::main writes `data` (@binding(0)), but the task binds buffer B0 \"counts\" there with read \
             access",
            "the ranks' copies would disagree",
        ],
    );
}

#[test]
fn a_kernel_of_another_dimensionality_than_the_task_is_refused() {
    let q = Queue::dry_run();
    let (u, v) = (q.buffer_from(&[0.0f32; 64], [8, 8]).named("u"), q.buffer::<f32, 2>([8, 8]).named("v"));
    let msg = message(
        q.submit(
            task::parallel_for(&heat(), [8, 8])
                .read(&u, access::neighborhood([1, 1]))
                .discard_write(&v, access::one_to_one())
                .scalar_f32(0.1)
                .name("flat_over_grid"),
        ),
        "flat_over_grid",
    );
    assert_has(
        &msg,
        &["kernel heat_1d::main works in 1D (it calls celer_item_1d)", "index space [0,0] - [8,8] has 2 dimension(s)"],
    );
    let heat2 = Kernel::wgsl(&kernels::HEAT_2D, "main").unwrap();
    let (a, b) = (q.buffer_from(&[0.0f32; 64], [64]).named("a"), q.buffer::<f32, 1>([64]).named("b"));
    let msg = message(
        q.submit(
            task::parallel_for(&heat2, [64])
                .read(&a, access::neighborhood([1]))
                .discard_write(&b, access::one_to_one())
                .scalar_f32(0.1)
                .name("grid_over_line"),
        ),
        "grid_over_line",
    );
    assert_has(&msg, &["kernel heat_2d::main works in 2D (it calls celer_item_2d)", "has 1 dimension(s)"]);
    // A zero-dimensional index space (one item): the hint names no celer_item_0d, which the prelude lacks.
    let squares = Kernel::wgsl(&kernels::SQUARES, "main").unwrap();
    let one = q.buffer::<u32, 0>([]).named("one");
    let msg =
        message(q.submit(task::parallel_for(&squares, []).discard_write(&one, access::all()).name("point")), "point");
    assert_has(&msg, &["kernel squares::main works in 1D", "has 0 dimension(s)", "submit the kernel over [1]"]);
    assert!(!msg.contains("celer_item_0d"), "{msg}");
}

#[test]
fn missing_extra_and_ill_typed_scalars_are_refused() {
    let q = Queue::dry_run();
    let a = q.buffer_from(&[0.0f32; 16], [16]).named("a");
    let b = q.buffer::<f32, 1>([16]).named("b");
    let step = || {
        task::parallel_for(&heat(), [16]).read(&a, access::neighborhood([1])).discard_write(&b, access::one_to_one())
    };
    let msg = message(q.submit(step().name("no_alpha")), "no_alpha");
    assert_has(
        &msg,
        &[
            "kernel heat_1d::main's var<immediate> member `alpha: f32` (offset 72) gets no value",
            "0 positional scalar value(s)",
            "give it in its place after the others (.scalar_f32, .scalar_value, .scalars), or name every scalar",
        ],
    );
    let msg = message(q.submit(step().scalar_f32(0.1).scalar_f32(0.2).name("two_alphas")), "two_alphas");
    assert_has(
        &msg,
        &[
            "the task gives 2 scalar value(s), but kernel heat_1d::main takes 1 after its boxes (alpha: f32)",
            "extra: positional scalar 1 (an f32: 0.2)",
        ],
    );
    let msg = message(q.submit(step().scalars(&[1]).name("u32_alpha")), "u32_alpha");
    assert_has(&msg, &["member `alpha` is of type f32, but the task gives it a u32 (positional scalar 0); give it a value of type f32"]);
    // An f32 where the member is u32.
    let m = q.buffer_from(&[0.0f32; 16], [4, 4]).named("m");
    let c = q.buffer::<f32, 2>([4, 4]).named("c");
    let mm = Kernel::wgsl(&kernels::MATMUL, "main").unwrap();
    let msg = message(
        q.submit(
            task::parallel_for(&mm, [4, 4])
                .read(&m, access::slice(1))
                .read(&m, access::all())
                .discard_write(&c, access::one_to_one())
                .scalar_f32(4.0)
                .name("f32_n"),
        ),
        "f32_n",
    );
    assert_has(&msg, &["kernel matmul::main's var<immediate> member `n` is of type u32, but the task gives it an f32"]);
    let msg = message(q.submit(step().scalar("alpha", 1i32).name("i32_alpha")), "i32_alpha");
    assert_has(&msg, &["member `alpha` is of type f32, but the task gives it an i32 (scalar \"alpha\")"]);
}

#[test]
fn scalar_errors_of_a_kernel_reading_its_parameters_from_storage_name_its_var_immediate_block() {
    // wide_sum: nine bindings and three scalars, 252 bytes: its var<immediate> block is read from a storage buffer,
    // not pushed, so the messages must not speak of push constants.
    assert_eq!(own_kernels::WIDE_SUM.params_binding(), Some(10));
    let q = Queue::dry_run();
    let xs: Vec<_> = (0..8).map(|k| q.buffer_from(&[0.0f32; 16], [16]).named(format!("x{k}"))).collect();
    let out = q.buffer::<f32, 1>([16]).named("out");
    let kernel = Kernel::wgsl(&own_kernels::WIDE_SUM, "main").unwrap();
    let step = || {
        // x0 is read at i + 1 too (wide_value): a neighbourhood declares it.
        let t = task::parallel_for(&kernel, [16]).read(&xs[0], access::neighborhood([1]));
        let t = xs[1..].iter().fold(t, |t, x| t.read(x, access::one_to_one()));
        t.discard_write(&out, access::one_to_one())
    };
    q.submit(step().scalar("a", 1.0f32).scalar("b", 2.0f32).scalar("c", 3.0f32)).expect("all three by name");
    let four = step().scalar_f32(1.0).scalar_f32(2.0).scalar_f32(3.0).scalar_f32(4.0);
    let cases = [
        (
            step().scalar("a", 1.0f32).scalar("b", 2.0f32),
            "no_c",
            "var<immediate> member `c: f32` (offset 248) gets no value",
        ),
        (four, "four", "remove the extra values or add members to the kernel's var<immediate> struct"),
        (step().scalar("d", 1.0f32), "d", "has no var<immediate> member named `d` (it has: a: f32, b: f32, c: f32)"),
        (step().scalar("a", 1u32), "u32_a", "var<immediate> member `a` is of type f32, but the task gives it a u32"),
        (step().scalar("a", 1.0f32).scalar("a", 1.0f32), "a_twice", "give each var<immediate> member once"),
    ];
    for (t, name, want) in cases {
        let msg = message(q.submit(t.name(name)), name);
        assert_has(&msg, &["kernel wide_sum::main", want]);
        assert!(!msg.contains("push"), "a kernel reading its parameters from storage has no push constants: {msg}");
    }
}

#[test]
fn vector_members_given_a_vector_of_another_type_or_width_are_refused() {
    let q = Queue::dry_run();
    let out = q.buffer::<f32, 1>([64]).named("out");
    let kernel = Kernel::wgsl(&own_kernels::VEC_PARAMS, "main").unwrap();
    // vec_params.wgsl: `s: vec2<f32>`, `k: vec3<i32>`, `t: u32`, `mask: vec4<u32>`.
    let step = || task::parallel_for(&kernel, [64]).discard_write(&out, access::one_to_one());
    let by_name = |s, k| step().scalar("s", s).scalar("k", k).scalar("t", 7u32).scalar("mask", [1u32, 2, 3, 4]);
    q.submit(by_name([0.5f32, 0.25], [1i32, 2, 3])).expect("the vectors of the members' types and widths");
    let msg = message(q.submit(step().scalar("s", [1i32, 2]).name("i32_s")), "i32_s");
    assert_has(
        &msg,
        &["kernel vec_params::main's var<immediate> member `s` is of type vec2<f32>, but the task gives it a [i32; 2] \
           (vec2<i32>) (scalar \"s\"); give it a [f32; 2] (vec2<f32>)"],
    );
    let msg = message(q.submit(step().scalar("k", [1.0f32, 2.0]).name("f32x2_k")), "f32x2_k");
    assert_has(
        &msg,
        &["kernel vec_params::main's var<immediate> member `k` is of type vec3<i32>, but the task gives it a [f32; 2] \
           (vec2<f32>) (scalar \"k\"); give it a [i32; 3] (vec3<i32>)"],
    );
    let msg = message(q.submit(step().scalar("s", 0.5f32).name("f32_s")), "f32_s");
    assert_has(&msg, &["member `s` is of type vec2<f32>, but the task gives it an f32 (scalar \"s\")"]);
    // Positionally a vector value fills one vector member from its first word.
    let msg = message(q.submit(step().scalar_f32(0.5).scalar_value([0.25f32, 1.0]).name("straddling")), "straddling");
    assert_has(
        &msg,
        &["member `s` is of type vec2<f32>, but the task gives it a [f32; 2] (vec2<f32>) (positional scalar 1)"],
    );
}

#[test]
fn bindings_and_scalars_given_by_name_bind_in_the_kernels_order_and_bad_names_are_refused() {
    let q = Queue::dry_run();
    let a = q.buffer_from(&[0.0f32; 16], [16]).named("a");
    let b = q.buffer::<f32, 1>([16]).named("b");
    // Written in the "wrong" order, but named: celer binds dst and src where the kernel declares them.
    q.submit(
        task::parallel_for(&heat(), [16])
            .bind("dst")
            .discard_write(&b, access::one_to_one())
            .bind("src")
            .read(&a, access::neighborhood([1]))
            .scalar("alpha", 0.1f32),
    )
    .expect("named bindings are reordered to the kernel's binding numbers");
    let msg = message(
        q.submit(
            task::parallel_for(&heat(), [16])
                .bind("source")
                .read(&a, access::neighborhood([1]))
                .bind("dst")
                .discard_write(&b, access::one_to_one())
                .scalar_f32(0.1)
                .name("typo"),
        ),
        "typo",
    );
    assert_has(&msg, &["kernel heat_1d::main has no binding named `source` (it has: src, dst)"]);
    let msg = message(
        q.submit(
            task::parallel_for(&heat(), [16])
                .bind("src")
                .read(&a, access::neighborhood([1]))
                .bind("src")
                .discard_write(&b, access::one_to_one())
                .scalar_f32(0.1)
                .name("twice"),
        ),
        "twice",
    );
    assert_has(&msg, &["binding `src` is given twice for kernel heat_1d::main"]);
    let msg = message(
        q.submit(
            task::parallel_for(&heat(), [16])
                .bind("src")
                .read(&a, access::neighborhood([1]))
                .discard_write(&b, access::one_to_one())
                .scalar_f32(0.1)
                .name("half_named"),
        ),
        "half_named",
    );
    assert_has(&msg, &["the task names 1 of its 2 bindings for kernel heat_1d::main; name all of them"]);
    let step = || {
        task::parallel_for(&heat(), [16]).read(&a, access::neighborhood([1])).discard_write(&b, access::one_to_one())
    };
    let msg = message(q.submit(step().scalar("beta", 0.1f32).name("beta")), "beta");
    assert_has(&msg, &["kernel heat_1d::main has no var<immediate> member named `beta` (it has: alpha: f32)"]);
    let msg =
        message(q.submit(step().scalar("alpha", 0.1f32).scalar("alpha", 0.2f32).name("alpha_twice")), "alpha_twice");
    assert_has(&msg, &["scalar `alpha` is given twice for kernel heat_1d::main"]);
    let msg = message(q.submit(step().scalar("alpha", 0.1f32).scalar_f32(0.2).name("mixed_scalars")), "mixed_scalars");
    assert_has(&msg, &["the task names 1 of its 2 scalar values for kernel heat_1d::main"]);
    let msg = message(q.submit(step().scalar_f32(0.1).bind("dst").name("dangling")), "dangling");
    assert_has(&msg, &[".bind(\"dst\") is followed by no accessor or reduction"]);
}

#[test]
fn a_push_constant_struct_without_the_boxes_is_refused() {
    let q = Queue::dry_run();
    let d = q.buffer_from(&[1.0f32; 16], [16]).named("d");
    let k = Kernel::wgsl(&own_kernels::BAD_LAYOUT, "main").unwrap();
    let msg = message(
        q.submit(task::parallel_for(&k, [16]).read_write(&d, access::one_to_one()).scalar_f32(2.0).name("no_box")),
        "no_box",
    );
    assert_has(
        &msg,
        &[
            "kernel bad_layout::main's var<immediate> struct does not follow celer's layout",
            "member 1 is `scale: f32` at offset 24, where the CelerBox of binding 0 belongs (at offset 24)",
        ],
    );
}

#[test]
fn a_task_that_reads_cells_its_other_items_write_is_refused() {
    let q = Queue::dry_run();
    let a = q.buffer_from(&[0.0f32; 64], [64]).named("a");
    let msg = message(
        q.submit(
            task::parallel_for(&heat(), [64])
                .bind("src")
                .read(&a, access::neighborhood([1]))
                .bind("dst")
                .discard_write(&a, access::one_to_one())
                .scalar("alpha", 0.1f32)
                .name("in_place"),
        ),
        "in_place",
    );
    assert_has(
        &msg,
        &[
            "buffer B0 \"a\" is read in {[16] - [17]}",
            "through read neighborhood, and other items of the same task write those cells through discard_write \
             one_to_one",
        ],
    );
    // Atomics: items adding to each other's cells with atomicAdd do not race; one storing (atomicStore) what it
    // loaded (atomicLoad) from its neighbour does, atomics or not.
    let v = q.buffer_from(&[0u32; 64], [64]).named("v");
    let bump = Kernel::wgsl(&own_kernels::ATOMIC_SHIFT, "bump").unwrap();
    q.submit(task::parallel_for(&bump, [64]).read_write(&v, access::neighborhood([1])).name("bump"))
        .expect("atomicAdd");
    let shift = Kernel::wgsl(&own_kernels::ATOMIC_SHIFT, "shift").unwrap();
    let msg = message(
        q.submit(task::parallel_for(&shift, [64]).read_write(&v, access::neighborhood([1])).name("shift")),
        "shift",
    );
    assert_has(&msg, &["buffer B1 \"v\" is read in", "through read_write neighborhood"]);
    // Each item reading and writing its own cells is fine.
    let add = Kernel::wgsl(&kernels::GPU_ADD, "main").unwrap();
    let n = q.buffer_from(&[0u32; 64], [64]).named("n");
    q.submit(task::parallel_for(&add, [64]).read_write(&n, access::one_to_one()).scalars(&[1])).expect("legit");
}

#[test]
fn the_binding_count_check_still_comes_first() {
    let q = Queue::dry_run();
    let a = q.buffer_from(&[0.0f32; 16], [16]).named("a");
    let e = q.submit(task::parallel_for(&heat(), [16]).read(&a, access::all()).name("lonely")).unwrap_err();
    assert!(matches!(*e.inner, TaskErrorKind::KernelBindings { .. }), "{e}");
    assert_has(
        &e.to_string(),
        &["kernel heat_1d::main declares 2 storage bindings in @group(0), but the task binds 1"],
    );
}

/// A buffer element of 16 bytes, as a program would declare its own (four f32 components).
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Particle {
    pos: [f32; 3],
    mass: f32,
}

impl celer::Element for Particle {
    const SCALAR: celer::kernels::ScalarType = celer::kernels::ScalarType::F32;
}

#[test]
fn a_vector_binding_takes_elements_of_its_size_and_refuses_others() {
    let q = Queue::dry_run();
    let scale = Kernel::wgsl(&own_kernels::SCALE_VEC4, "main").expect("scale_vec4::main");
    let p = q.buffer_from(&[Particle { pos: [1.0, 2.0, 3.0], mass: 4.0 }; 8], [8]).named("particles");
    let out = q.buffer::<Particle, 1>([8]).named("doubled");
    q.submit(
        task::parallel_for(&scale, [8])
            .read(&p, access::one_to_one())
            .discard_write(&out, access::one_to_one())
            .name("struct_elements"),
    )
    .expect("16-byte elements bind to array<vec4<f32>>");
    let floats = q.buffer::<f32, 1>([8]).named("floats");
    let msg = message(
        q.submit(
            task::parallel_for(&scale, [8])
                .read(&floats, access::one_to_one())
                .discard_write(&out, access::one_to_one())
                .name("floats_as_vectors"),
        ),
        "floats_as_vectors",
    );
    assert_has(&msg, &["`inp` (@binding(0)) as array<vec4<f32>>", "buffer B2 \"floats\" of f32"]);
    // The other way round: 16-byte elements through a scalar binding; the message gives their size, not only the
    // scalar type they are made of (which alone would read "binds ... of f32" under "array<f32>").
    let b = q.buffer::<f32, 1>([8]).named("b");
    let msg = message(
        q.submit(
            task::parallel_for(&heat(), [8])
                .read(&p, access::neighborhood([1]))
                .discard_write(&b, access::one_to_one())
                .scalar_f32(0.1)
                .name("vectors_as_floats"),
        ),
        "vectors_as_floats",
    );
    assert_has(&msg, &["`src` (@binding(0)) as array<f32>", "buffer B0 \"particles\" of 16-byte elements (of f32)"]);
    // 16-byte elements of u32 through array<vec4<f32>>: the size fits, the components' type does not (the kernel
    // would read the integers' bits as floats).
    let ints = q.buffer_from(&[Flags([1, 2, 3, 4]); 8], [8]).named("flags");
    let msg = message(
        q.submit(
            task::parallel_for(&scale, [8])
                .read(&ints, access::one_to_one())
                .discard_write(&out, access::one_to_one())
                .name("ints_as_floats"),
        ),
        "ints_as_floats",
    );
    assert_has(&msg, &["`inp` (@binding(0)) as array<vec4<f32>>", "buffer B4 \"flags\" of 16-byte elements (of u32)"]);
}

/// A buffer element of 16 bytes made of four u32.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Flags([u32; 4]);

impl celer::Element for Flags {
    const SCALAR: celer::kernels::ScalarType = celer::kernels::ScalarType::U32;
}

#[test]
fn a_struct_binding_whose_fields_share_one_type_takes_elements_of_that_type() {
    let q = Queue::dry_run();
    let drift = Kernel::wgsl(&own_kernels::DRIFT, "main").expect("drift::main");
    let p = q.buffer_from(&[Particle { pos: [1.0, 2.0, 3.0], mass: 4.0 }; 8], [8]).named("particles");
    let out = q.buffer::<Particle, 1>([8]).named("moved");
    q.submit(
        task::parallel_for(&drift, [8])
            .read(&p, access::one_to_one())
            .discard_write(&out, access::one_to_one())
            .scalar_f32(0.1)
            .name("f32_bodies"),
    )
    .expect("f32 fields bind to struct Body { vec3<f32>, f32 }");
    let flags = q.buffer_from(&[Flags([1, 2, 3, 4]); 8], [8]).named("flags");
    let msg = message(
        q.submit(
            task::parallel_for(&drift, [8])
                .read(&flags, access::one_to_one())
                .discard_write(&out, access::one_to_one())
                .scalar_f32(0.1)
                .name("u32_bodies"),
        ),
        "u32_bodies",
    );
    assert_has(&msg, &["`inp` (@binding(0)) as array<Body>", "buffer B2 \"flags\" of 16-byte elements (of u32)"]);
}

#[test]
fn a_discard_write_or_a_reduction_on_a_binding_the_kernel_never_writes_is_refused() {
    let q = Queue::dry_run();
    let only_a = Kernel::wgsl(&own_kernels::TWO_OUT, "only_a").expect("two_out::only_a");
    let both = Kernel::wgsl(&own_kernels::TWO_OUT, "both").expect("two_out::both");
    let src = q.buffer_from(&[1.0f32; 16], [16]).named("src");
    let a = q.buffer::<f32, 1>([16]).named("a");
    let b = q.buffer::<f32, 1>([16]).named("b");
    let t = |k: &Kernel| {
        task::parallel_for(k, [16]).read(&src, access::one_to_one()).discard_write(&a, access::one_to_one())
    };
    q.submit(t(&both).discard_write(&b, access::one_to_one()).name("writes_both")).expect("both writes a and b");
    // Accesses that keep the old contents of the cells the kernel does not store are fine.
    q.submit(t(&only_a).write(&b, access::one_to_one()).name("keeps_b")).expect("write keeps b");
    q.submit(t(&only_a).read(&b, access::one_to_one()).name("reads_b")).expect("b only read");
    let msg = message(q.submit(t(&only_a).discard_write(&b, access::one_to_one()).name("forgets_b")), "forgets_b");
    assert_has(
        &msg,
        &[
            "kernel two_out::only_a never writes `b` (@binding(2)), but the task binds buffer B2 \"b\" there with \
             discard_write access",
            "were two accessors given in the wrong order?",
        ],
    );
    let total = q.buffer::<f32, 1>([1]).named("total");
    let msg = message(q.submit(t(&only_a).reduce(&total, ReductionOp::Sum).name("sums_nothing")), "sums_nothing");
    assert_has(
        &msg,
        &["never writes `b` (@binding(2)), but the task binds buffer B3 \"total\" there with reduction access"],
    );
}

#[test]
fn a_kernel_check_passed_once_lets_only_tasks_of_the_same_shape_through() {
    let q = Queue::dry_run();
    let a = q.buffer_from(&[0.0f32; 16], [16]).named("a");
    let b = q.buffer::<f32, 1>([16]).named("b");
    let wide = q.buffer_from(&[0.0f64; 16], [16]).named("wide");
    let step = |src, dst| {
        task::parallel_for(&heat(), [16])
            .read(src, access::neighborhood([1]))
            .discard_write(dst, access::one_to_one())
            .name("step")
    };
    // The same shape twice (the second reuses the first check), over other buffers of the same element too.
    q.submit(step(&a, &b).scalar_f32(0.1)).expect("a valid task");
    q.submit(step(&b, &a).scalar_f32(0.1)).expect("the same shape again");
    // Each field the check reads, changed on its own, is checked again and refused.
    let msg = message(
        q.submit(
            task::parallel_for(&heat(), [16])
                .read(&wide, access::neighborhood([1]))
                .discard_write(&a, access::one_to_one())
                .scalar_f32(0.1)
                .name("step"),
        ),
        "step",
    );
    assert_has(&msg, &["binds buffer B2 \"wide\" of f64 there"]);
    let msg = message(q.submit(step(&a, &b).scalar_i32(1)), "step");
    assert_has(&msg, &["but the task gives it an i32"]);
    let msg = message(q.submit(step(&a, &b)), "step");
    assert_has(&msg, &["gets no value"]);
    let msg = message(
        q.submit(
            task::parallel_for(&heat(), [16])
                .read(&a, access::neighborhood([1]))
                .read(&b, access::one_to_one())
                .scalar_f32(0.1)
                .name("step"),
        ),
        "step",
    );
    assert_has(&msg, &["buffer B1 \"b\""]);
    q.submit(step(&a, &b).scalar_f32(0.2)).expect("another value of the same scalar");
    // The shape's kept check covers the scalars' types and count, not their values: after a task with other values
    // reused it, another type or count is still checked again and refused.
    let msg = message(q.submit(step(&a, &b).scalars(&[1])), "step");
    assert_has(&msg, &["but the task gives it a u32"]);
    let msg = message(q.submit(step(&a, &b).scalar_f32(0.2).scalar_f32(0.3)), "step");
    assert_has(&msg, &["the task gives 2 scalar value(s), but kernel heat_1d::main takes 1"]);
}

#[test]
fn a_reduction_whose_op_or_type_differs_from_the_kernels_block_reduction_is_refused() {
    let q = Queue::dry_run();
    let data = q.buffer_from(&[1.0f32; 512], [512]).named("data");
    let total = q.buffer::<f32, 1>([1]).named("total");
    // The kernel stores celer_reduce_sum_f32's result: a Max reduction would combine the blocks' sums by max.
    let sum = Kernel::wgsl(&own_kernels::BLOCK_F32, "reduce_sum").unwrap();
    let msg = message(
        q.submit(
            task::parallel_for(&sum, [512])
                .read(&data, access::one_to_one())
                .reduce(&total, ReductionOp::Max)
                .name("max_of_sums"),
        ),
        "max_of_sums",
    );
    assert_has(
        &msg,
        &[
            "kernel block_f32::reduce_sum stores the result of celer_reduce_sum_f32 into `out` (@binding(1))",
            "the task reduces buffer B1 \"total\" there with ReductionOp::Max",
            "reduce with ReductionOp::Sum",
        ],
    );
    // The matching operation passes.
    q.submit(task::parallel_for(&sum, [512]).read(&data, access::one_to_one()).reduce(&total, ReductionOp::Sum))
        .expect("a Sum reduction through celer_reduce_sum_f32 is accepted");
    // Through a helper function and a local variable: an i32 maximum reduced as a sum.
    let ints = q.buffer::<i32, 1>([1]).named("ints");
    let max_i32 = Kernel::wgsl(&own_kernels::BLOCK_MISMATCH, "max_i32").unwrap();
    let msg = message(
        q.submit(
            task::parallel_for(&max_i32, [512])
                .read(&data, access::one_to_one())
                .reduce(&ints, ReductionOp::Sum)
                .name("sum_of_maxima"),
        ),
        "sum_of_maxima",
    );
    assert_has(&msg, &["stores the result of celer_reduce_max_i32 into `out`", "with ReductionOp::Sum"]);
    q.submit(task::parallel_for(&max_i32, [512]).read(&data, access::one_to_one()).reduce(&ints, ReductionOp::Max))
        .expect("the f32 maximum the i32 one is computed from is no reduction result");
    // An f32 block sum stored, converted, into an i32 binding.
    let into_i32 = Kernel::wgsl(&own_kernels::BLOCK_MISMATCH, "sum_f32_into_i32").unwrap();
    let msg = message(
        q.submit(
            task::parallel_for(&into_i32, [512])
                .read(&data, access::one_to_one())
                .reduce(&ints, ReductionOp::Sum)
                .name("truncated_sums"),
        ),
        "truncated_sums",
    );
    assert_has(
        &msg,
        &[
            "kernel block_mismatch::sum_f32_into_i32 stores the result of celer_reduce_sum_f32 (of f32) into `out` \
             (@binding(1)), declared array<i32>",
            "where the task reduces buffer B2 \"ints\"",
            "call celer_reduce_sum_i32",
        ],
    );
}

#[test]
fn a_buffer_indexed_with_the_item_of_another_dimensionality_is_refused() {
    let q = Queue::dry_run();
    let k = |entry: &'static str| Kernel::wgsl(&own_kernels::ITEM_DIMS, entry).expect(entry);
    let (line, grid) = (q.buffer_from(&[1.0f32; 16], [16]).named("line"), q.buffer::<f32, 2>([4, 4]).named("grid"));
    let out_line = q.buffer::<f32, 1>([16]).named("out_line");
    let out_grid = q.buffer::<f32, 2>([4, 4]).named("out_grid");
    // The item's dimensionality everywhere, and a 1D buffer read at a cell built from a 2D item: accepted.
    q.submit(
        task::parallel_for(&k("twice_1d"), [16])
            .read(&line, access::one_to_one())
            .discard_write(&out_line, access::one_to_one()),
    )
    .expect("1D items on 1D buffers");
    q.submit(
        task::parallel_for(&k("twice_2d"), [4, 4])
            .read(&grid, access::one_to_one())
            .discard_write(&out_grid, access::one_to_one()),
    )
    .expect("2D items on 2D buffers");
    q.submit(
        task::parallel_for(&k("spread_cols"), [4, 4])
            .read(&line, access::all())
            .discard_write(&out_grid, access::one_to_one()),
    )
    .expect("a cell built from the item");
    // A 2D item read as a cell of a 1D buffer (cell row + col), and a 1D item as one of a 2D buffer (cell (i, 0)).
    let msg = message(
        q.submit(
            task::parallel_for(&k("twice_2d"), [4, 4])
                .read(&line, access::all())
                .discard_write(&out_grid, access::one_to_one())
                .name("flat_source"),
        ),
        "flat_source",
    );
    assert_has(
        &msg,
        &[
            "kernel item_dims::twice_2d indexes `src` (@binding(0)) with its 2D item (celer_index(pc.src, item)), but \
             the task binds buffer B0 \"line\" there, which is 1D",
            "item (row, col) reads cell (row + col)",
            "bind a 2D buffer there",
        ],
    );
    let msg = message(
        q.submit(
            task::parallel_for(&k("twice_1d"), [16])
                .read(&grid, access::all())
                .discard_write(&out_line, access::one_to_one())
                .name("grid_as_line"),
        ),
        "grid_as_line",
    );
    assert_has(
        &msg,
        &[
            "kernel item_dims::twice_1d indexes `src` (@binding(0)) with its 1D item",
            "buffer B1 \"grid\" there, which is 2D",
            "item (i) reads cell (i, 0)",
        ],
    );
    // The same shape again after an accepted one of the same kernel (the check of a kept shape is skipped).
    q.submit(
        task::parallel_for(&k("twice_2d"), [4, 4])
            .read(&grid, access::one_to_one())
            .discard_write(&out_grid, access::one_to_one()),
    )
    .expect("2D again");
    let again = q.submit(
        task::parallel_for(&k("twice_2d"), [4, 4])
            .read(&line, access::all())
            .discard_write(&out_grid, access::one_to_one())
            .name("flat_again"),
    );
    assert_has(&message(again, "flat_again"), &["which is 1D"]);
    // Through two helpers that pass the box and the item on.
    let deep = Kernel::wgsl(&own_kernels::SEAM, "deep_2d").expect("seam::deep_2d");
    let msg = message(
        q.submit(
            task::parallel_for(&deep, [4, 4])
                .read(&line, access::all())
                .discard_write(&out_grid, access::one_to_one())
                .name("deep_flat"),
        ),
        "deep_flat",
    );
    assert_has(&msg, &["kernel seam::deep_2d indexes `src` (@binding(0)) with its 2D item", "which is 1D"]);
    q.submit(
        task::parallel_for(&deep, [4, 4])
            .read(&grid, access::one_to_one())
            .discard_write(&out_grid, access::one_to_one()),
    )
    .expect("2D through the helpers");
    // A 0D buffer (one cell) indexed with the item: wrong for every item but the origin, so refused even over one
    // item (the kernel's code means a cell per item).
    let point = q.buffer_from(&[3.0f32], []).named("point");
    let one = q.buffer::<f32, 1>([1]).named("one");
    let msg = message(
        q.submit(
            task::parallel_for(&k("twice_1d"), [1])
                .read(&point, access::all())
                .discard_write(&one, access::one_to_one())
                .name("scalar_source"),
        ),
        "scalar_source",
    );
    assert_has(
        &msg,
        &[
            "indexes `src` (@binding(0)) with its 1D item (celer_index(pc.src, item)), but the task binds buffer",
            "\"point\" there, which is 0D: the buffer has one cell, and every item (i) other than the origin indexes \
             past it",
            "index its cell with `celer_index(pc.src, vec3<u32>(0u, 0u, 0u))`, or bind a 1D buffer there",
        ],
    );
}

#[test]
fn a_discard_write_where_the_kernel_reads_before_storing_is_refused() {
    let q = Queue::dry_run();
    let src = q.buffer_from(&[1.0f32; 16], [16]).named("src");
    let acc = q.buffer_from(&[0.0f32; 16], [16]).named("acc");
    let k = |entry: &'static str| Kernel::wgsl(&own_kernels::SEAM, entry).expect(entry);
    let t = |k: &Kernel| task::parallel_for(k, [16]).read(&src, access::one_to_one());
    // `acc[i] += src[i]` reads acc first: a discard_write would leave it the allocation's old bytes.
    let msg =
        message(q.submit(t(&k("accumulate")).discard_write(&acc, access::one_to_one()).name("sum_into")), "sum_into");
    assert_has(
        &msg,
        &[
            "kernel seam::accumulate reads `acc` (@binding(1)) before it stores to it, but the task binds buffer B1 \
             \"acc\" there with discard_write access, so the kernel would read whatever the allocation held there",
            "declare read_write",
            "were two accessors given in the wrong order?",
        ],
    );
    // The same through a helper function of the kernel's own.
    let msg = message(q.submit(t(&k("accumulate_helper")).discard_write(&acc, access::one_to_one()).name("h")), "h");
    assert_has(&msg, &["kernel seam::accumulate_helper reads `acc` (@binding(1)) before it stores to it"]);
    // A write keeps the old contents (moved like read_write's): the kernel reads the right values.
    q.submit(t(&k("accumulate")).write(&acc, access::one_to_one())).expect("write keeps the old contents");
    q.submit(t(&k("accumulate")).read_write(&acc, access::one_to_one())).expect("read_write declares the read");
    // Kernels that store a cell before reading it back may discard the old contents.
    for entry in ["store_then_double", "zero_then_accumulate"] {
        q.submit(t(&k(entry)).discard_write(&acc, access::one_to_one())).unwrap_or_else(|e| panic!("{entry}: {e}"));
    }
    // Atomics read the old value: a histogram's bins.
    let hist = Kernel::wgsl(&own_kernels::HISTOGRAM, "main").unwrap();
    let data = q.buffer_from(&[1u32; 16], [16]).named("data");
    let bins = q.buffer::<u32, 2>([1, 4]).named("bins");
    let h = || task::parallel_for(&hist, [16]).read(&data, access::one_to_one()).scalars(&[16, 4]);
    let msg = message(q.submit(h().discard_write(&bins, access::all()).name("fresh_bins")), "fresh_bins");
    assert_has(
        &msg,
        &["kernel histogram::main reads `bins` (@binding(1))", "buffer B3 \"bins\" there with discard_write"],
    );
    q.submit(h().read_write(&bins, access::all())).expect("read_write bins");
}

/// A buffer element of 12 bytes: three f32, as a program would declare a 3D point.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Point([f32; 3]);

impl celer::Element for Point {
    const SCALAR: celer::kernels::ScalarType = celer::kernels::ScalarType::F32;
}

#[test]
fn twelve_byte_elements_through_a_vec3_binding_are_refused_naming_its_sixteen_bytes() {
    let q = Queue::dry_run();
    let k = Kernel::wgsl(&own_kernels::SEAM_VEC3, "main").expect("seam_vec3::main");
    let points = q.buffer_from(&[Point([1.0, 2.0, 3.0]); 8], [8]).named("points");
    let padded = q.buffer_from(&[Particle { pos: [1.0, 2.0, 3.0], mass: 0.0 }; 8], [8]).named("padded");
    let out = q.buffer::<Particle, 1>([8]).named("out");
    let msg = message(
        q.submit(
            task::parallel_for(&k, [8])
                .read(&points, access::one_to_one())
                .discard_write(&out, access::one_to_one())
                .name("unpadded"),
        ),
        "unpadded",
    );
    assert_has(
        &msg,
        &["`inp` (@binding(0)) as array<vec3<f32>> (16 bytes each in the array, padding included), but the task \
             binds buffer B0 \"points\" of 12-byte elements (of f32)"],
    );
    q.submit(task::parallel_for(&k, [8]).read(&padded, access::one_to_one()).discard_write(&out, access::one_to_one()))
        .expect("16-byte elements of f32 bind to vec3<f32> and array<f32, 4>");
    // A scalar binding's message names no size: the type says it.
    let floats = q.buffer::<f32, 1>([8]).named("floats");
    let msg = message(
        q.submit(
            task::parallel_for(&k, [8])
                .read(&padded, access::one_to_one())
                .discard_write(&floats, access::one_to_one())
                .name("flat_rows"),
        ),
        "flat_rows",
    );
    assert_has(&msg, &["`out` (@binding(1)) as array<array<f32, 4>> (16 bytes each", "buffer B3 \"floats\" of f32"]);
}

#[test]
fn an_index_space_outside_a_buffer_the_kernel_stores_to_on_every_item_is_refused() {
    let q = Queue::dry_run();
    let squares = Kernel::wgsl(&kernels::SQUARES, "main").unwrap();
    let out = q.buffer::<u32, 1>([4]).named("four");
    // squares stores out[celer_index(pc.out, item)] behind the chunk guard alone: every item of the index space
    // stores. At offset 5 a neighbourhood clips its 4 items to none of the buffer (the run stopped every rank).
    let beside = task::parallel_for(&squares, [4]).offset([5]).discard_write(&out, access::neighborhood([1]));
    let e = q.submit(beside.name("beside")).expect_err("items outside the buffer store");
    assert!(matches!(*e.inner, TaskErrorKind::KernelStoresOutside { number: 0, .. }), "{e}");
    let msg = message(Err(e), "beside");
    assert_has(
        &msg,
        &[
            "kernel squares::main stores to `out` (@binding(0)) at its own item on every item of its index space \
             (out[celer_index(pc.out, item)], behind no guard but the chunk's), but the task's index space [5] - [9] \
             reaches outside buffer B0 \"four\", bound there, whose extent is [0] - [4]: its items {[5] - [9]} would \
             store to cells the buffer does not have",
            "guard the store with `if (celer_contains(pc.out, item)) { … }`, or submit the task over the buffer's extent",
        ],
    );
    // Partly outside: the items past the end are named.
    let past = task::parallel_for(&squares, [6]).discard_write(&out, access::neighborhood([1])).name("past");
    assert_has(&message(q.submit(past), "past"), &["index space [0] - [6]", "its items {[4] - [6]} would store"]);
    // all() of a zero-sized buffer: every item is outside.
    let empty = q.buffer::<u32, 1>([0]).named("empty");
    let all = task::parallel_for(&squares, [3]).discard_write(&empty, access::all()).name("into_nothing");
    assert_has(
        &message(q.submit(all), "into_nothing"),
        &["reaches outside buffer B1 \"empty\", bound there, whose extent is [0]: its items {[0] - [3]}"],
    );
    // Inside the extent, whatever the mapper; and over no items at all.
    q.submit(task::parallel_for(&squares, [2]).offset([2]).discard_write(&out, access::neighborhood([1])))
        .expect("items 2 and 3 are cells of the buffer");
    q.submit(task::parallel_for(&squares, [4]).discard_write(&out, access::all())).expect("the whole buffer");
    q.submit(task::parallel_for(&squares, [0]).offset([9]).discard_write(&out, access::neighborhood([1])))
        .expect("no items, no stores");
    // Through one_to_one the mapper itself reaches outside: the task graph's refusal names it, as before.
    let one = task::parallel_for(&squares, [6]).discard_write(&out, access::one_to_one()).name("one");
    assert_has(&message(q.submit(one), "one"), &["range mapper one_to_one maps to {[0] - [6]}"]);
    // A shape whose check passed before (the valid tasks above) is checked again with its own index space.
    let again = task::parallel_for(&squares, [4]).offset([1]).discard_write(&out, access::neighborhood([1]));
    assert_has(&message(q.submit(again.name("again")), "again"), &["its items {[4] - [5]} would store"]);
}

#[test]
fn a_kernel_guarding_its_stores_with_the_buffers_box_may_run_over_items_outside_it() {
    let q = Queue::dry_run();
    // faulty::copy_guarded returns where `dst`'s box lacks the item (`!celer_contains(pc.chunk, item) ||
    // !celer_contains(pc.dst, item)`) and reads src only inside its box: legal over items beside the buffers.
    let copy = Kernel::wgsl(&own_kernels::FAULTY, "copy_guarded").unwrap();
    let src = q.buffer_from(&[1u32; 4], [4]).named("src");
    let dst = q.buffer::<u32, 1>([4]).named("dst");
    let t = |offset: usize| {
        task::parallel_for(&copy, [4])
            .offset([offset])
            .read(&src, access::neighborhood([1]))
            .discard_write(&dst, access::neighborhood([1]))
    };
    q.submit(t(5)).expect("guarded: the items beside the buffer store nothing");
    q.submit(t(2)).expect("guarded: items 4 and 5 store nothing");
}

#[test]
fn an_index_space_outside_a_buffer_the_kernel_reads_on_every_item_is_refused_through_its_helpers_too() {
    let q = Queue::dry_run();
    // reduce_i32::reduce_sum calls value(gid), which takes the item, returns past the chunk and reads
    // data[celer_index(pc.data, item)] on every other item: every item of the index space reads its cell.
    let reduce = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").unwrap();
    let data = q.buffer_from(&[1i32; 8], [8]).named("data");
    let sum = q.buffer::<i32, 1>([1]).named("sum");
    let over = |n: usize, offset: usize| {
        task::parallel_for(&reduce, [n]).offset([offset]).read(&data, access::all()).reduce(&sum, ReductionOp::Sum)
    };
    let e = q.submit(over(10, 0).name("ten")).expect_err("items 8 and 9 read cells the buffer lacks");
    assert!(matches!(*e.inner, TaskErrorKind::KernelReadsOutside { number: 0, .. }), "{e}");
    assert_has(
        &message(Err(e), "ten"),
        &[
            "kernel reduce_i32::reduce_sum reads `data` (@binding(0)) at its own item on every item of its index \
             space (data[celer_index(pc.data, item)], behind no guard but the chunk's), but the task's index space \
             [0] - [10] reaches outside buffer B0 \"data\", bound there, whose extent is [0] - [8]: its items {[8] - \
             [10]} would read cells the buffer does not have",
            "guard the read with `if (celer_contains(pc.data, item)) { … }`",
        ],
    );
    // An empty fixed box at offset 33 (fuzz_api seed 55142 on a real queue stopped every rank at the kernel).
    let empty = q.buffer::<i32, 1>([0]).named("empty");
    let fixed = task::parallel_for(&reduce, [7])
        .offset([33])
        .read(&empty, access::fixed([0], [0]))
        .reduce(&sum, ReductionOp::Sum)
        .name("nothing");
    assert_has(&message(q.submit(fixed), "nothing"), &["whose extent is [0]: its items {[33] - [40]} would read"]);
    // Inside the extent, at an offset too: accepted.
    q.submit(over(8, 0)).expect("every item reads a cell of the buffer");
    q.submit(over(3, 5)).expect("items 5 to 7 read cells of the buffer");
}

#[test]
fn a_reduction_whose_kernel_stores_one_cell_on_every_item_with_a_plain_store_is_refused_over_more_than_one_item() {
    let q = Queue::dry_run();
    let racy = Kernel::wgsl(&own_kernels::RACY_SUM, "main").unwrap();
    let ones = q.buffer_from(&[1.0f32; 4096], [4096]).named("ones");
    let sum = q.buffer::<f32, 1>([1]).named("sum");
    let task = |n: usize, name: &str| {
        task::parallel_for(&racy, [n]).read(&ones, access::one_to_one()).reduce(&sum, ReductionOp::Sum).name(name)
    };
    // One item cannot race: accepted, and its shape cached; the same shape over 4096 items is still refused (a
    // lavapipe run of it gave 512 on 1 and 2 ranks, 513 on 3, where the sum is 4096, and exited 0).
    q.submit(task(1, "alone")).expect("one item stores alone");
    let e = q.submit(task(4096, "racy")).expect_err("the items race on out[0]");
    assert!(matches!(*e.inner, TaskErrorKind::KernelReductionRace { number: 1, .. }), "{e}");
    assert_has(
        &message(Err(e), "racy"),
        &[
            "kernel racy_sum::main stores to `out` (@binding(1)) at one fixed cell on every item of its index space \
             with a plain store",
            "but the task reduces buffer B1 \"sum\" there over the 4096 items of [0] - [4096]",
            "combine with an atomic (`atomicAdd(&out[0], v)`",
            "celer_reduce_sum_f32",
        ],
    );
    // The fold of fold_f32 (one invocation per chunk) and atomics (reduce_i32) are no race.
    let fold = Kernel::wgsl(&own_kernels::FOLD_F32, "fold_sum").unwrap();
    q.submit(task::parallel_for(&fold, [4096]).read(&ones, access::one_to_one()).reduce(&sum, ReductionOp::Sum))
        .expect("one invocation folds each chunk");
}

#[test]
fn a_kernel_indexing_one_buffer_with_another_buffers_box_is_refused() {
    let q = Queue::dry_run();
    let k = Kernel::wgsl(&own_kernels::CROSS_INDEX, "main").unwrap();
    let src = q.buffer_from(&[1.0f32; 64], [64]).named("src");
    let dst = q.buffer::<f32, 1>([64]).named("dst");
    // dst[celer_index(pc.src, item)]: on 2 ranks (src read with a halo) every cell of rank 1's half came out wrong,
    // exit 0, CELER_CHECK_BOUNDS=on too; on 1 rank right.
    let task =
        task::parallel_for(&k, [64]).read(&src, access::neighborhood([1])).discard_write(&dst, access::one_to_one());
    let e = q.submit(task.name("doubled")).expect_err("dst indexed with src's box");
    assert!(matches!(*e.inner, TaskErrorKind::KernelCrossIndexed { number: 1, box_number: 0, .. }), "{e}");
    assert_has(
        &message(Err(e), "doubled"),
        &[
            "kernel cross_index::main indexes `dst` (@binding(1)), where the task binds buffer B1 \"dst\", with the box \
             of `src` (@binding(0)), where it binds buffer B0 \"src\": `dst[celer_index(pc.src, …)]`",
            "index each binding with its own box: `dst[celer_index(pc.dst, item)]`",
        ],
    );
    // One buffer at both bindings shares one allocation (and one box): accepted, also after the refused shape.
    let same = task::parallel_for(&k, [64]).read(&dst, access::one_to_one()).write(&dst, access::one_to_one());
    q.submit(same.name("in_place")).expect("one buffer, one box");
}

#[test]
fn a_kernel_indexing_a_buffer_with_its_items_coordinates_is_refused_unless_the_buffer_is_bound_through_all() {
    let q = Queue::dry_run();
    let k = Kernel::wgsl(&own_kernels::GLOBAL_INDEX, "main").unwrap();
    let src = q.buffer_from(&[1.0f32; 64], [64]).named("src");
    let dst = q.buffer::<f32, 1>([64]).named("dst");
    // dst[item.x] = 2.0 * src[item.x]: on 2 ranks every cell of rank 1's half came out wrong, exit 0,
    // CELER_CHECK_BOUNDS=on too (it checks celer_index only); on 1 rank right.
    let task = task::parallel_for(&k, [64]).read(&src, access::one_to_one()).discard_write(&dst, access::one_to_one());
    let e = q.submit(task.name("doubled")).expect_err("src indexed with item.x");
    assert!(matches!(*e.inner, TaskErrorKind::KernelGlobalIndex { number: 0, .. }), "{e}");
    assert_has(
        &message(Err(e), "doubled"),
        &[
            "kernel global_index::main indexes `src` (@binding(0)) with its item's coordinates in the index space (or \
             its global_invocation_id) without celer_index (`src[item.x]`), but the task binds buffer B0 \"src\" there \
             through read one_to_one",
            "index it with `src[celer_index(pc.src, item)]`",
        ],
    );
    // Through all() a node holds the whole buffer from its origin: the index is right there. dst is still refused.
    let half = task::parallel_for(&k, [64]).read(&src, access::all()).discard_write(&dst, access::one_to_one());
    let e = q.submit(half.name("half")).expect_err("dst indexed with item.x");
    assert!(matches!(*e.inner, TaskErrorKind::KernelGlobalIndex { number: 1, .. }), "{e}");
    let whole = Queue::dry_run();
    let (src, dst) = (whole.buffer_from(&[1.0f32; 64], [64]), whole.buffer::<f32, 1>([64]));
    whole
        .submit(task::parallel_for(&k, [1]).read(&src, access::all()).discard_write(&dst, access::all()))
        .expect("all() binds each buffer whole, from its origin");
}

#[test]
fn indices_kept_in_a_var_handed_to_a_function_or_composed_of_the_items_components_are_refused_alike() {
    // Each of these ran, before kernel-build followed them, as its direct form does: right on one rank, wrong cells
    // on two with exit 0. index_slips.wgsl writes them in the forms the analyses once let through (an index in a
    // var, a parameter, a composed cell; an index returned by a helper, a component handed alone to one).
    let q = Queue::dry_run();
    let src = q.buffer_from(&[1.0f32; 64], [64]).named("src");
    let dst = q.buffer::<f32, 1>([64]).named("dst");
    let submit = |entry: &'static str, name: &str| {
        let k = Kernel::wgsl(&own_kernels::INDEX_SLIPS, entry).unwrap();
        let task =
            task::parallel_for(&k, [64]).read(&src, access::one_to_one()).discard_write(&dst, access::one_to_one());
        q.submit(task.name(name))
    };
    for entry in ["global_var", "global_param", "global_return"] {
        let e = submit(entry, "doubled").expect_err("dst indexed with item.x");
        assert!(matches!(*e.inner, TaskErrorKind::KernelGlobalIndex { number: 1, .. }), "{entry}: {e}");
        assert_has(
            &message(Err(e), "doubled"),
            &[
                &format!("kernel index_slips::{entry} indexes `dst` (@binding(1)) with its item's coordinates"),
                "but the task binds buffer B1 \"dst\" there through discard_write one_to_one",
            ],
        );
    }
    for entry in ["cross_var", "cross_param", "cross_return"] {
        let e = submit(entry, "doubled").expect_err("dst indexed with src's box");
        assert!(matches!(*e.inner, TaskErrorKind::KernelCrossIndexed { number: 1, box_number: 0, .. }), "{entry}: {e}");
        assert_has(
            &message(Err(e), "doubled"),
            &[&format!(
                "kernel index_slips::{entry} indexes `dst` (@binding(1)), where the task binds buffer B1 \"dst\", with \
                 the box of `src` (@binding(0)), where it binds buffer B0 \"src\""
            )],
        );
    }
    for entry in ["offset_var", "offset_composed", "offset_component"] {
        let e = submit(entry, "shifted").expect_err("src read at item + 1");
        assert!(matches!(*e.inner, TaskErrorKind::KernelOffsetUndeclared { number: 0, .. }), "{entry}: {e}");
        assert_has(
            &message(Err(e), "shifted"),
            &[
                &format!("kernel index_slips::{entry} indexes `src` (@binding(0)) at its item + [1]"),
                "but the task binds buffer B0 \"src\" there through read one_to_one, which does not declare that cell",
                "access::neighborhood([1])",
            ],
        );
        // Declared, the same kernel is accepted.
        let k = Kernel::wgsl(&own_kernels::INDEX_SLIPS, entry).unwrap();
        let halo = task::parallel_for(&k, [64])
            .read(&src, access::neighborhood([1]))
            .discard_write(&dst, access::one_to_one());
        q.submit(halo.name("halo")).expect("item + 1 declared");
    }
    submit("own", "own").expect("each binding with its own box, through a var, a parameter and a composed item");
    submit("own_returned", "own_returned").expect("each binding with its own box, through a return value");
}

#[test]
fn a_kernel_indexing_at_offsets_from_its_item_that_the_range_mapper_does_not_declare_is_refused() {
    let q = Queue::dry_run();
    let a = q.buffer_from(&[1.0f32; 64], [64]).named("a");
    let b = q.buffer::<f32, 1>([64]).named("b");
    // heat_1d reads src at item - 1 and item + 1 (through its `at` helper): a stencil ported without its halo ran on
    // 2 ranks with exit 0 and 6 wrong cells at the ranks' border after 4 steps (the guard's fallback read there);
    // right on 1 rank.
    let step = task::parallel_for(&heat(), [64]).read(&a, access::one_to_one()).discard_write(&b, access::one_to_one());
    let e = q.submit(step.scalar_f32(0.25).name("step")).expect_err("item ± 1 undeclared");
    assert!(matches!(*e.inner, TaskErrorKind::KernelOffsetUndeclared { number: 0, .. }), "{e}");
    assert_has(
        &message(Err(e), "step"),
        &[
            "kernel heat_1d::main indexes `src` (@binding(0)) at its item + [-1] (celer_index(pc.src, item ± …), also \
             built of its components, kept in a var, handed to or returned by its own functions), but the task binds \
             buffer B0 \"a\" there through read one_to_one, which does not declare that cell",
            "declare every cell it touches: access::neighborhood([1])",
        ],
    );
    // Bound by name, so that the closures may add src first and dst after.
    let step = || task::parallel_for(&heat(), [64]).bind("src");
    let ok = |t: celer::TaskBuilder<1>| t.bind("dst").discard_write(&b, access::one_to_one()).scalar_f32(0.25);
    q.submit(ok(step().read(&a, access::neighborhood([1])))).expect("the halo declared");
    q.submit(ok(step().read(&a, access::all()))).expect("all() declares every cell");
    let e = q.submit(ok(step().read(&a, access::neighborhood([0]))).name("no_halo")).expect_err("extent 0");
    assert_has(&message(Err(e), "no_halo"), &["at its item + [-1]", "through read neighborhood"]);
    // 2D: heat_2d reads the four neighbours along the axes.
    let u = q.buffer_from(&[1.0f32; 64], [8, 8]).named("u");
    let v = q.buffer::<f32, 2>([8, 8]).named("v");
    let heat2 = Kernel::wgsl(&kernels::HEAT_2D, "main").unwrap();
    let step2 = || task::parallel_for(&heat2, [8, 8]).bind("src");
    let ok2 = |t: celer::TaskBuilder<2>| t.bind("dst").discard_write(&v, access::one_to_one()).scalar_f32(0.1);
    q.submit(ok2(step2().read(&u, access::neighborhood_along_axes([1, 1])))).expect("the + stencil declared");
    let rows_only = q.submit(ok2(step2().read(&u, access::neighborhood([1, 0]))).name("rows_only"));
    assert_has(
        &message(rows_only, "rows_only"),
        &["at its item + [0, -1]", "through read neighborhood", "access::neighborhood_along_axes([1, 1])"],
    );
    let columns = q.submit(ok2(step2().read(&u, access::slice(0))).name("columns"));
    assert_has(&message(columns, "columns"), &["at its item + [0, -1]", "through read slice"]);
}

#[test]
fn a_reduction_combining_the_chunks_otherwise_than_the_kernels_atomics_is_refused() {
    let q = Queue::dry_run();
    let data = q.buffer_from(&[1u32; 64], [64]).named("data");
    let bits = q.buffer::<u32, 1>([1]).named("bits");
    let or = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_or").unwrap();
    let task = || task::parallel_for(&or, [64]).read(&data, access::one_to_one());
    // Sum over atomicOr partials: on 2 ranks 0xfffffffe where the OR of every bit is 0xffffffff (exit 0; the sum
    // first panicked the runtime thread with an overflow).
    let e = q.submit(task().reduce(&bits, ReductionOp::Sum).name("or_sum")).expect_err("Sum over atomicOr");
    assert!(matches!(*e.inner, TaskErrorKind::KernelAtomicCombine { number: 1, .. }), "{e}");
    assert_has(
        &message(Err(e), "or_sum"),
        &[
            "kernel reduce_bits::reduce_or combines its items into `out` (@binding(1)) with atomicOr, but the task \
             combines the partial results of buffer B1 \"bits\" (one per rank and device) with ReductionOp::Sum: \
             Sum(12, 10) = 22, where atomicOr(12, 10) gives 14",
            "reduce with .reduce_with(&buffer, 0, |a, b| a | b)",
        ],
    );
    // A reduce_with closure of another operation (AND from !0, whose identity the closure keeps): refused alike.
    let e = q.submit(task().reduce_with(&bits, !0u32, |a, b| a & b).name("or_and")).expect_err("AND over atomicOr");
    assert_has(
        &message(Err(e), "or_and"),
        &["with its reduce_with closure: combine(12, 10) = 8, where atomicOr gives 14", "(|a, b| a | b)"],
    );
    // The matching closures are accepted.
    q.submit(task().reduce_with(&bits, 0u32, |a, b| a | b)).expect("OR over atomicOr");
    let and = Kernel::wgsl(&kernels::REDUCE_BITS, "reduce_and").unwrap();
    q.submit(task::parallel_for(&and, [64]).read(&data, access::one_to_one()).reduce_with(&bits, !0u32, |a, b| a & b))
        .expect("AND over atomicAnd");
    let ints = q.buffer_from(&[1i32; 64], [64]).named("ints");
    let total = q.buffer::<i32, 1>([1]).named("total");
    let sum = Kernel::wgsl(&kernels::REDUCE_I32, "reduce_sum").unwrap();
    q.submit(task::parallel_for(&sum, [64]).read(&ints, access::one_to_one()).reduce_with(&total, 0, |a, b| a + b))
        .expect("a sum over atomicAdd");
}
