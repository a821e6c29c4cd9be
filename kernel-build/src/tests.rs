//! The kernel build's unit tests.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{AddressSpace, Expression, Literal, Statement};

use super::*;
use crate::compile::{colliding_names, compile, constant_name, in_prelude, split_directives, write_spirv};
use crate::ir::{all_functions, each_statement, function};
use crate::render::render_bindings;

#[test]
fn kernel_files_whose_constants_collide_are_named_together() {
    let paths: Vec<PathBuf> = ["heat.wgsl", "my-k.wgsl", "my_k.wgsl", "My_K.wgsl", "other.wgsl"]
        .iter()
        .map(|n| PathBuf::from("/k").join(n))
        .collect();
    let errors = colliding_names("kernels", &paths);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("error: kernels/my-k.wgsl and kernels/my_k.wgsl would both declare"), "{errors:?}");
    assert!(errors[0].contains("constant MY_K"), "{errors:?}");
    assert!(errors[1].contains("kernels/My_K.wgsl"), "{errors:?}");
    assert!(colliding_names("kernels", &paths[..2]).is_empty());
    assert_eq!(constant_name("my-k.v2"), "MY_K_V2");
}

/// `source` with both preludes (record at binding 2), made checked and validated; the accessor argument of
/// every `celer_index_checked` call, sorted.
fn accessors(source: &str) -> Vec<u32> {
    let text = format!("{PRELUDE}\n{}\n{source}", CHECKED_PRELUDE.replace("CELER_CHECK_BINDING", "2"));
    let mut module = naga::front::wgsl::parse_str(&text).expect("parses");
    checked_module(&mut module).expect("rewrites");
    Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).expect("validates");
    let checked = module.functions.iter().find(|(_, f)| f.name.as_deref() == Some("celer_index_checked")).unwrap().0;
    let mut found = Vec::new();
    for f in all_functions(&module) {
        let exprs = &function(&module, f).expressions;
        each_statement(&function(&module, f).body, &mut |s| {
            if let Statement::Call { function, arguments, .. } = s {
                assert_ne!(
                    module.functions[*function].name.as_deref(),
                    Some("celer_index"),
                    "a celer_index call was left unchecked"
                );
                if *function == checked {
                    match exprs[*arguments.last().unwrap()] {
                        Expression::Literal(Literal::U32(a)) => found.push(a),
                        ref other => panic!("the accessor argument is {other:?}"),
                    }
                }
            }
        });
    }
    found.sort_unstable();
    found
}

const HEADER: &str = "struct Params { chunk: CelerBox, src: CelerBox, dst: CelerBox }
    @group(0) @binding(0) var<storage, read> src: array<f32>;
    @group(0) @binding(1) var<storage, read_write> dst: array<f32>;
    var<immediate> pc: Params;";

#[test]
fn each_celer_index_call_names_the_accessor_of_its_push_constant_member() {
    let source = format!(
        "{HEADER}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
        }}"
    );
    assert_eq!(accessors(&source), vec![0, 1]);
}

#[test]
fn a_box_passed_as_a_parameter_is_followed_to_its_call_sites() {
    // `load` is only ever called with pc.src: accessor 0. `any` gets both boxes: found by value at run time.
    let source = format!(
        "{HEADER}
        fn load(b: CelerBox, item: vec3<u32>) -> f32 {{ return src[celer_index(b, item)]; }}
        fn any(b: CelerBox, item: vec3<u32>) -> u32 {{ return celer_index(b, item); }}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            let i = any(pc.src, item) + any(pc.dst, item);
            dst[celer_index(pc.dst, item)] = load(pc.src, item) + f32(i);
        }}"
    );
    assert_eq!(accessors(&source), vec![0, 1, UNTRACED_ACCESSOR]);
}

#[test]
fn atomic_operations_are_tied_to_their_binding_through_helper_functions() {
    let source = "@group(0) @binding(0) var<storage, read> a: array<i32>;
        @group(0) @binding(1) var<storage, read_write> s: array<atomic<i32>>;
        @group(0) @binding(2) var<storage, read_write> m: array<atomic<u32>>;
        fn low(v: i32) { atomicMin(&s[0], v); }
        @compute @workgroup_size(64) fn sum(@builtin(global_invocation_id) gid: vec3<u32>) {
            atomicAdd(&s[0], a[gid.x]);
            atomicSub(&s[0], 1);
        }
        @compute @workgroup_size(64) fn mixed(@builtin(global_invocation_id) gid: vec3<u32>) {
            low(a[gid.x]);
            atomicMax(&m[0], gid.x);
            atomicOr(&m[0], 1u);
        }";
    let r = reflection(source).expect("reflects");
    let of = |name: &str| r.entry_points.iter().find(|e| e.name == name).unwrap().atomics.clone();
    assert_eq!(of("sum"), vec![(1, "add"), (1, "sub")]);
    assert_eq!(of("mixed"), vec![(1, "min"), (2, "max"), (2, "or")]);
}

#[test]
fn block_reductions_are_tied_to_the_binding_their_result_is_stored_to() {
    let source = "@group(0) @binding(0) var<storage, read_write> a: array<f32>;
        @group(0) @binding(1) var<storage, read_write> b: array<i32>;
        fn helper(lid: u32) -> f32 { return celer_reduce_min_f32(1.0, true, lid); }
        @compute @workgroup_size(64) fn direct(@builtin(local_invocation_index) lid: u32) {
            let s = celer_reduce_sum_f32(1.0, true, lid);
            if (lid == 0u) { a[0] = s * 2.0; }
        }
        @compute @workgroup_size(64) fn through(@builtin(local_invocation_index) lid: u32) {
            var m = 0.0;
            m = helper(lid);
            let unused = celer_reduce_max_u32(lid, true, lid);
            if (lid == 0u) { b[0] = i32(m); }
        }";
    let r = reflection(source).expect("reflects");
    let of = |name: &str| r.entry_points.iter().find(|e| e.name == name).unwrap().block_reductions.clone();
    assert_eq!(of("direct"), vec![BlockReduction { op: "sum", ty: "f32", binding: Some(0) }]);
    assert_eq!(
        of("through"),
        vec![
            BlockReduction { op: "min", ty: "f32", binding: Some(1) },
            BlockReduction { op: "max", ty: "u32", binding: None },
        ]
    );
}

/// The reflection of `source` with the prelude appended.
fn reflection(source: &str) -> Result<Reflection, String> {
    let (module, info) = validated(source);
    reflect(&module, &info).map_err(|e| e.to_string())
}

/// `source` with its prelude appended ([`prelude_for`]), parsed and validated.
fn validated(source: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let text = format!("{source}\n{}", prelude_for(source));
    let module = naga::front::wgsl::parse_str(&text).expect("parses");
    let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).expect("validates");
    (module, info)
}

#[test]
fn only_kernels_calling_an_f64_reduction_get_the_f64_prelude_and_need_float64() {
    assert!(uses_f64_prelude("let s = celer_reduce_sum_f64(v, ok, lid);"));
    assert!(!uses_f64_prelude("// celer_reduce_sum_f64(v, ok, lid) in a comment\nlet s = 1u;"));
    assert!(!uses_f64_prelude("let s = celer_reduce_sum_f64x(v);"), "a longer identifier");
    assert!(!uses_f64_prelude("let s = celer_reduce_sum_f32(v, ok, lid);"));
    let spirv_of = |source: &str| {
        let (module, info) = validated(source);
        write_spirv(&module, &info, false).expect("writes SPIR-V")
    };
    let f64_kernel = "@group(0) @binding(0) var<storage, read_write> out: array<f64>;
        @compute @workgroup_size(64) fn main(@builtin(local_invocation_index) lid: u32) {
            let s = celer_reduce_max_f64(f64(lid), lid < 10u, lid);
            if (lid == 0u) { out[0] = s; }
        }";
    assert!(spirv_needs_float64(&spirv_of(f64_kernel)));
    let f32_kernel = "@group(0) @binding(0) var<storage, read_write> out: array<f32>;
        @compute @workgroup_size(64) fn main(@builtin(local_invocation_index) lid: u32) {
            let s = celer_reduce_max_f32(f32(lid), lid < 10u, lid);
            if (lid == 0u) { out[0] = s; }
        }";
    assert!(!spirv_needs_float64(&spirv_of(f32_kernel)), "the 32-bit prelude declares no f64");
    // A kernel's own f64 needs the feature too.
    let own = "@group(0) @binding(0) var<storage, read_write> out: array<f64>;
        @compute @workgroup_size(1) fn main() { out[0] = out[0] * 2.0; }";
    assert!(spirv_needs_float64(&spirv_of(own)));
}

#[test]
fn reflection_marks_entry_points_whose_results_depend_on_the_workgroups() {
    let r = reflection(
        "@group(0) @binding(0) var<storage, read_write> out: array<u32>;
        var<workgroup> shared_cells: array<u32, 64>;
        var<workgroup> unused_cells: array<u32, 64>;
        fn sync() { workgroupBarrier(); }
        fn keep(i: u32, v: u32) { shared_cells[i] = v; }
        struct Ids { @builtin(local_invocation_id) lid: vec3<u32> }
        @compute @workgroup_size(64) fn plain(@builtin(global_invocation_id) gid: vec3<u32>) { out[gid.x] = 1u; }
        @compute @workgroup_size(64) fn index(@builtin(local_invocation_index) lid: u32) { out[lid] = 1u; }
        @compute @workgroup_size(64) fn in_struct(ids: Ids) { out[ids.lid.x] = 1u; }
        @compute @workgroup_size(64) fn group(@builtin(workgroup_id) wid: vec3<u32>) { out[wid.x] = 1u; }
        @compute @workgroup_size(64) fn groups(@builtin(num_workgroups) n: vec3<u32>) { out[0] = n.x; }
        @compute @workgroup_size(64) fn memory(@builtin(global_invocation_id) gid: vec3<u32>) {
            keep(gid.x % 64u, 1u);
        }
        @compute @workgroup_size(64) fn barrier(@builtin(global_invocation_id) gid: vec3<u32>) {
            sync();
            out[gid.x] = 1u;
        }
        @compute @workgroup_size(64) fn reduction(@builtin(global_invocation_id) gid: vec3<u32>) {
            out[gid.x] = celer_reduce_sum_u32(1u, true, gid.x % 64u);
        }",
    )
    .expect("reflects");
    let flags: Vec<(&str, bool)> = r.entry_points.iter().map(|e| (e.name.as_str(), e.workgroup_dependent)).collect();
    assert_eq!(
        flags,
        [
            ("plain", false),
            ("index", true),
            ("in_struct", true),
            ("group", true),
            ("groups", true),
            ("memory", true),
            ("barrier", true),
            ("reduction", true),
        ]
    );
    // Workgroup memory counts the variables an entry point uses, through the functions it calls: `memory` uses
    // `shared_cells` (64 u32) through `keep`, nobody `unused_cells`; the prelude's block reduction has its own.
    let bytes = |name: &str| r.entry_points.iter().find(|e| e.name == name).expect(name).workgroup_memory_bytes;
    assert_eq!((bytes("plain"), bytes("memory"), bytes("barrier")), (0, 256, 0));
    assert!(bytes("reduction") > 0, "the block reduction's scratch memory counts");
}

#[test]
fn reflection_records_bindings_push_constants_workgroup_size_and_dimensionality() {
    let r = reflection(
        "struct Params { chunk: CelerBox, data: CelerBox, out: CelerBox, scale: f32, n: u32, v: vec2<i32> }
        @group(0) @binding(1) var<storage, read_write> out: array<atomic<i32>>;
        @group(0) @binding(0) var<storage, read> data: array<f64>;
        var<immediate> pc: Params;
        fn item(gid: vec3<u32>) -> vec3<u32> { return celer_item_2d(pc.chunk, gid); }
        @compute @workgroup_size(8, 4) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
            let i = item(gid);
            atomicAdd(&out[0], i32(data[celer_index(pc.data, i)] * f64(pc.scale)) + pc.v.x + i32(pc.n));
        }
        @compute @workgroup_size(64) fn flat(@builtin(global_invocation_id) gid: vec3<u32>) {
            atomicAdd(&out[0], i32(gid.x));
        }",
    )
    .expect("reflects");
    let b = &r.bindings;
    assert_eq!(b.len(), 2);
    assert_eq!(
        (b[0].binding, b[0].name.as_str(), b[0].element.as_str(), b[0].scalar, b[0].element_size, b[0].read_write),
        (0, "data", "f64", Some("f64"), 8, false)
    );
    assert_eq!(
        (b[1].binding, b[1].name.as_str(), b[1].element.as_str(), b[1].scalar, b[1].element_size, b[1].read_write),
        (1, "out", "atomic<i32>", Some("i32"), 4, true)
    );
    let main = &r.entry_points[0];
    assert_eq!((main.name.as_str(), main.workgroup_size, main.dims), ("main", [8, 4, 1], Some(2)));
    let members: Vec<(&str, &str, Option<&str>, u32, u32)> =
        main.push_constants.iter().map(|m| (m.name.as_str(), m.ty.as_str(), m.scalar, m.offset, m.size)).collect();
    assert_eq!(
        members,
        vec![
            ("chunk", "CelerBox", None, 0, 24),
            ("data", "CelerBox", None, 24, 24),
            ("out", "CelerBox", None, 48, 24),
            ("scale", "f32", Some("f32"), 72, 4),
            ("n", "u32", Some("u32"), 76, 4),
            ("v", "vec2<i32>", Some("i32"), 80, 8),
        ]
    );
    assert_eq!(main.push_constant_bytes, 88);
    assert_eq!(main.writes, vec![1], "main writes `out` (atomics) and only reads `data`");
    let flat = &r.entry_points[1];
    assert_eq!((flat.workgroup_size, flat.dims, flat.push_constants.len()), ([64, 1, 1], None, 0));
    let rendered = render_bindings(&r, "t");
    assert!(
        rendered.contains("name: \"out\", element: \"atomic<i32>\", scalar: Some(t::ScalarType::I32)"),
        "{rendered}"
    );
}

#[test]
fn reflection_records_the_bindings_an_entry_point_reads_before_storing_loads_and_atomics_alike() {
    let r = reflection(
        "struct Params { chunk: CelerBox, src: CelerBox, acc: CelerBox, hits: CelerBox }
        @group(0) @binding(0) var<storage, read> src: array<f32>;
        @group(0) @binding(1) var<storage, read_write> acc: array<f32>;
        @group(0) @binding(2) var<storage, read_write> hits: array<atomic<u32>>;
        var<immediate> pc: Params;
        fn bump(i: u32) { atomicAdd(&hits[i], 1u); }
        @compute @workgroup_size(64) fn store(@builtin(global_invocation_id) gid: vec3<u32>) {
            acc[gid.x] = 1.0;
            atomicStore(&hits[gid.x], 0u);
        }
        @compute @workgroup_size(64) fn add(@builtin(global_invocation_id) gid: vec3<u32>) {
            acc[gid.x] += src[gid.x];
            bump(gid.x);
        }
        @compute @workgroup_size(64) fn zero_first(@builtin(global_invocation_id) gid: vec3<u32>) {
            if (gid.x > 3u) { acc[gid.x] = 0.0; }
            loop { if (acc[gid.x] > 1.0) { break; } acc[gid.x] += src[gid.x]; }
            atomicStore(&hits[gid.x], 0u);
            bump(gid.x);
        }",
    )
    .expect("reflects");
    let ep = |i: usize| (r.entry_points[i].writes.as_slice(), r.entry_points[i].reads_old.as_slice());
    // (arrayLength, which reads no cell, stops the build in a task kernel: reflection_refuses_the_array_length_…)
    assert_eq!(ep(0), (&[1, 2][..], &[][..]), "stores");
    assert_eq!(ep(1), (&[1, 2][..], &[0, 1, 2][..]), "+= and atomicAdd read first");
    assert_eq!(ep(2), (&[1, 2][..], &[0][..]), "a store (in a branch) ahead of the loads and the atomicAdd");
}

#[test]
fn reflection_marks_entry_points_that_call_a_block_reduction() {
    let r = reflection(
        "struct P { chunk: CelerBox, out: CelerBox }
        @group(0) @binding(0) var<storage, read_write> out: array<f32>;
        var<immediate> pc: P;
        fn inner(lid: u32) -> f32 { return celer_reduce_max_f32(1.0, true, lid); }
        @compute @workgroup_size(64) fn deep(@builtin(local_invocation_index) lid: u32,
                                             @builtin(workgroup_id) wid: vec3<u32>) {
            let s = inner(lid);
            if (lid == 0u) { out[celer_block_1d(pc.out, wid)] = s; }
        }
        @compute @workgroup_size(64) fn plain(@builtin(global_invocation_id) gid: vec3<u32>) {
            out[celer_item_1d(pc.chunk, gid).x] = 1.0;
        }",
    )
    .expect("reflects");
    let flags: Vec<(&str, bool)> = r.entry_points.iter().map(|e| (e.name.as_str(), e.block_reduction)).collect();
    assert_eq!(flags, [("deep", true), ("plain", false)]);
    let e = reflection(
        "@group(0) @binding(0) var<storage, read_write> out: array<u32>;
        @compute @workgroup_size(32, 16) fn wide(@builtin(local_invocation_index) lid: u32) {
            out[lid] = celer_reduce_sum_u32(1u, true, lid);
        }",
    )
    .unwrap_err();
    assert!(e.contains("entry point `wide` calls a block reduction") && e.contains("512 invocations"), "{e}");
}

#[test]
fn reflection_refuses_other_groups_gaps_and_mixed_dimensionality() {
    let e = reflection(
        "@group(1) @binding(0) var<storage, read_write> far: array<u32>;
        @compute @workgroup_size(1) fn main() { far[0] = 1u; }",
    )
    .unwrap_err();
    assert!(e.contains("`far` is bound at @group(1) @binding(0)") && e.contains("@group(0) only"), "{e}");
    let e = reflection(
        "@group(0) @binding(1) var<storage, read_write> late: array<u32>;
        @compute @workgroup_size(1) fn main() { late[0] = 1u; }",
    )
    .unwrap_err();
    assert!(e.contains("`late` is @group(0) @binding(1), but binding 0 is not declared"), "{e}");
    let e = reflection(
        "struct P { chunk: CelerBox }
        var<immediate> pc: P;
        @group(0) @binding(0) var<storage, read_write> d: array<u32>;
        @compute @workgroup_size(1) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
            d[0] = celer_item_1d(pc.chunk, gid).x + celer_item_3d(pc.chunk, gid).x;
        }",
    )
    .unwrap_err();
    assert!(e.contains("entry point `main` calls celer_item_1d and celer_item_3d"), "{e}");
}

#[test]
fn reflection_refuses_bindings_that_are_not_runtime_sized_arrays() {
    // A fixed-size array saw only its first 16 cells of a 64-cell buffer: naga clamped every index past them to
    // cell 15, so the kernel wrote 16 cells, the last one over and over, and the run finished with wrong data.
    let e = reflection(
        "@group(0) @binding(0) var<storage, read_write> out: array<u32, 16>;
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) { out[gid.x] = 1u; }",
    )
    .unwrap_err();
    assert!(
        e.contains("`out` (@group(0) @binding(0)) is declared as array<u32, 16>, not as a runtime-sized array")
            && e.contains("declare it array<T> without a length"),
        "{e}"
    );
    // A single value (or struct) saw the first cell of the chunk's allocation, a different cell on every rank.
    let e = reflection(
        "@group(0) @binding(0) var<storage, read> inp: array<f32>;
        @group(0) @binding(1) var<storage, read_write> total: f32;
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) { total = inp[gid.x]; }",
    )
    .unwrap_err();
    assert!(e.contains("`total` (@group(0) @binding(1)) is declared as f32, not as a runtime-sized array"), "{e}");
    reflection(
        "@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) { out[gid.x] = vec4(1.0); }",
    )
    .expect("a runtime-sized array of vectors binds");
}

#[test]
fn reflection_records_the_one_scalar_type_a_bindings_element_is_made_of() {
    let r = reflection(
        "struct Body { pos: vec3<f32>, mass: f32 }
        struct Nested { b: Body, w: array<f32, 2> }
        struct Tagged { pos: vec3<f32>, id: u32 }
        @group(0) @binding(0) var<storage, read> a: array<u32>;
        @group(0) @binding(1) var<storage, read> b: array<vec4<i32>>;
        @group(0) @binding(2) var<storage, read> c: array<mat2x2<f32>>;
        @group(0) @binding(3) var<storage, read> d: array<Body>;
        @group(0) @binding(4) var<storage, read> e: array<Nested>;
        @group(0) @binding(5) var<storage, read_write> f: array<Tagged>;
        @group(0) @binding(6) var<storage, read_write> g: array<atomic<i32>>;
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
            f[gid.x] = Tagged(d[gid.x].pos + e[0].b.pos + c[0][0].xyx + vec3<f32>(b[0].xyz) , a[0]);
            atomicAdd(&g[0], 1);
        }",
    )
    .unwrap();
    let components: Vec<_> = r.bindings.iter().map(|b| (b.name.as_str(), b.component)).collect();
    assert_eq!(
        components,
        [
            ("a", Some("u32")),
            ("b", Some("i32")),
            ("c", Some("f32")),
            ("d", Some("f32")),
            ("e", Some("f32")),
            ("f", None),
            ("g", Some("i32")),
        ]
    );
    let rendered = render_bindings(&r, "t");
    assert!(rendered.contains("element_size: 16, component: Some(t::ScalarType::I32)"), "{rendered}");
}

/// A kernel text (without prelude) with `n` read bindings besides `out`, whose parameter block holds the chunk, a
/// box per binding and `scalars` f32 words; `main` sums the inputs, scaled by the scalars' sum.
fn wide_kernel(n: usize, scalars: usize) -> String {
    let mut text = String::from("struct Params { chunk: CelerBox, ");
    for i in 0..n {
        let _ = write!(text, "b{i}: CelerBox, ");
    }
    text.push_str("out: CelerBox, ");
    for i in 0..scalars {
        let _ = write!(text, "s{i}: f32, ");
    }
    text.push_str("}\n");
    for i in 0..n {
        let _ = writeln!(text, "@group(0) @binding({i}) var<storage, read> b{i}: array<f32>;");
    }
    let _ =
        writeln!(text, "@group(0) @binding({n}) var<storage, read_write> out: array<f32>;\nvar<immediate> pc: Params;");
    text.push_str(
        "@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
         let item = celer_item_1d(pc.chunk, gid);\n if (!celer_contains(pc.chunk, item)) { return; }\n var s = 0.0;\n",
    );
    for i in 0..n {
        let _ = writeln!(text, "s += b{i}[celer_index(pc.b{i}, item)];");
    }
    let scale: String = (0..scalars).map(|i| format!(" + pc.s{i}")).collect();
    let _ = writeln!(text, "out[celer_index(pc.out, item)] = s * (0.0{scale});\n}}");
    text
}

#[test]
fn a_parameter_block_over_128_bytes_moves_to_a_storage_buffer_after_the_bounds_record_slot() {
    // Chunk and 4 boxes with 2 scalars: 128 bytes, push constants still.
    let small = wide_kernel(3, 2);
    let module = naga::front::wgsl::parse_str(&format!("{small}\n{PRELUDE}")).expect("parses");
    assert_eq!(params_binding(&module), Ok(None));

    // 8 inputs, out and 3 scalars: 10 boxes and 3 words, 252 bytes.
    let wide = wide_kernel(8, 3);
    let text = format!("{wide}\n{PRELUDE}");
    let pushed = naga::front::wgsl::parse_str(&text).expect("parses");
    let mut module = pushed.clone();
    assert_eq!(params_binding(&module), Ok(Some(10)), "9 bindings, the checked record's slot, then the block");
    assert_eq!(params_to_storage(&mut module, 10), 1);
    let info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&module).expect("validates");
    let moved = reflect_with_params(&module, &info, Some(10)).expect("reflects");
    assert_eq!(moved.params_binding, Some(10));
    assert_eq!(moved.bindings.len(), 9, "the block is not a binding of the task's");
    // The same members at the same offsets as the push-constant block (252 bytes validate as push constants too).
    let pushed_info = Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&pushed).expect("validates");
    let original = reflect(&pushed, &pushed_info).expect("reflects");
    assert_eq!(moved.entry_points, original.entry_points);
    assert_eq!(moved.entry_points[0].push_constant_bytes, 252);
    assert_eq!(moved.entry_points[0].writes, vec![8]);
    let var = module.global_variables.iter().find(|(_, v)| v.name.as_deref() == Some("pc")).unwrap().1;
    assert_eq!(var.space, AddressSpace::Storage { access: naga::StorageAccess::LOAD });
    write_spirv(&module, &info, false).expect("writes SPIR-V");

    // The checked variant: record at binding 9, block at 10; the accessors are traced before the block moves.
    let checked_text = format!("{PRELUDE}\n{}\n{wide}", CHECKED_PRELUDE.replace("CELER_CHECK_BINDING", "9"));
    let mut checked = naga::front::wgsl::parse_str(&checked_text).expect("parses");
    assert_eq!(checked_module(&mut checked), Ok(9));
    assert_eq!(params_to_storage(&mut checked, 10), 1);
    let checked_info =
        Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&checked).expect("validates");
    write_spirv(&checked, &checked_info, false).expect("writes SPIR-V");
    let mut bound: Vec<u32> =
        checked.global_variables.iter().filter_map(|(_, v)| v.binding.map(|b| b.binding)).collect();
    bound.sort_unstable();
    assert_eq!(bound, (0..=10).collect::<Vec<_>>(), "{bound:?}");
}

#[test]
fn a_parameter_block_over_4_kib_is_refused_before_validation() {
    let boxes = |n: usize| (0..n).map(|i| format!("b{i}: CelerBox,")).collect::<String>();
    let kernel = |n: usize| {
        format!(
            "{PRELUDE}\nstruct Params {{ chunk: CelerBox, {} }}\nvar<immediate> pc: Params;\n\
             @compute @workgroup_size(64) fn main() {{ let c = pc.chunk; }}",
            boxes(n)
        )
    };
    // Chunk and 169 boxes: 4080 bytes, which fit; 170 boxes: 4104.
    let fits = naga::front::wgsl::parse_str(&kernel(169)).expect("parses");
    assert_eq!(params_binding(&fits), Ok(Some(1)));
    let too_big = naga::front::wgsl::parse_str(&kernel(170)).expect("parses");
    let e = params_binding(&too_big).expect_err("4104 bytes are refused");
    assert!(e.contains("var<immediate> pc) takes 4104 bytes") && e.contains("at most 169 bindings"), "{e}");
}

/// Compiles `text` as `kernels/{stem}.wgsl` (its name in messages) in a temporary directory of its own, removed
/// after: the generated constant and the warnings, or the error.
fn compile_text(stem: &str, text: &str) -> Result<(String, Vec<String>), String> {
    let dir = std::env::temp_dir().join(format!("celer_kb_{stem}_{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{stem}.wgsl"));
    fs::write(&path, text).expect("writes");
    let result = compile(&path, &format!("kernels/{stem}.wgsl"), &dir, &Options::default());
    let _ = fs::remove_dir_all(&dir);
    result
}

#[test]
fn two_parameter_blocks_one_entry_point_uses_are_refused_naming_the_move_to_storage() {
    // A block of 168 bytes (moved to storage) and one of 52, both used by `both`.
    let text = "struct P { chunk: CelerBox, b0: CelerBox, b1: CelerBox, b2: CelerBox, b3: CelerBox, b4: CelerBox, \
                b5: CelerBox }\nstruct S { chunk: CelerBox, a: CelerBox, x: f32 }\nvar<immediate> pc: P;\n\
                var<immediate> ps: S;\n@group(0) @binding(0) var<storage, read_write> a: array<f32>;\n\
                @compute @workgroup_size(64) fn both() { a[0] = f32(pc.chunk.offset0) + ps.x; }\n";
    let e = compile_text("two_blocks", text).expect_err("refused");
    assert!(e.contains("kernels/two_blocks.wgsl fails naga validation"), "{e}");
    assert!(
        e.contains("moved the 2 var<immediate> blocks of this file")
            && e.contains("@group(0) @binding(2)")
            && e.contains("only one var<immediate>"),
        "{e}"
    );
}

#[test]
fn an_error_inside_the_prelude_points_at_a_name_of_the_kernel_that_shadows_it() {
    // A binding called `i32` breaks the prelude's `bitcast<i32>(..)`: naga reports a line of the prelude.
    let own = "@group(0) @binding(0) var<storage, read_write> i32: array<u32>;\n\
               @compute @workgroup_size(64) fn main() { i32[0] = 1u; }\n";
    let source = format!("{own}\n{}", prelude_for(own));
    let line = match naga::front::wgsl::parse_str(&source) {
        Err(e) => e.location(&source).map(|l| l.line_number),
        Ok(module) => Validator::new(ValidationFlags::all(), Capabilities::all())
            .validate(&module)
            .err()
            .and_then(|e| e.location(&source).map(|l| l.line_number)),
    };
    let line = line.expect("a binding named i32 fails with a location");
    assert!(line as usize > own.lines().count(), "the error lies in the prelude: line {line}");
    let hint = in_prelude(Some(line), own.lines().count());
    assert!(hint.contains("lies in celer's prelude") && hint.contains("rename it"), "{hint}");
    assert_eq!(in_prelude(Some(2), 2), "", "an error in the kernel's own lines gets no hint");
}

#[test]
fn an_entry_point_that_never_skips_items_past_the_chunk_is_warned_about() {
    // `open` writes every item of the rounded-up workgroups; `guarded` calls celer_contains, `by_range` compares
    // with the chunk's extent, `in_helper` guards in a function of its own taking the chunk; `quiet` is open but
    // named in the file's unguarded line; `raw` takes no items from celer_item_Nd (the raw-ids warning's business).
    let text = format!(
        "{HEADER}
        fn inside(c: CelerBox, i: vec3<u32>) -> bool {{ return i.x - c.offset0 < c.range0; }}
        @compute @workgroup_size(64) fn open(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
        }}
        @compute @workgroup_size(64) fn guarded(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            if (celer_contains(pc.chunk, item)) {{ dst[celer_index(pc.dst, item)] = 1.0; }}
        }}
        @compute @workgroup_size(64) fn by_range(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            if (gid.x < pc.chunk.range0) {{ dst[celer_index(pc.dst, item)] = 2.0; }}
        }}
        @compute @workgroup_size(64) fn in_helper(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            if (inside(pc.chunk, item)) {{ dst[celer_index(pc.dst, item)] = 3.0; }}
        }}
        // celer-kernel-build: unguarded: quiet
        @compute @workgroup_size(64) fn quiet(@builtin(global_invocation_id) gid: vec3<u32>) {{
            dst[celer_index(pc.dst, celer_item_1d(pc.chunk, gid))] = 4.0;
        }}
        // celer-kernel-build: raw ids: raw
        @compute @workgroup_size(64) fn raw(@builtin(global_invocation_id) gid: vec3<u32>) {{
            dst[gid.x] = 5.0;
        }}
        "
    );
    let (_, warnings) = compile_text("guard", &text).expect("a warning, not an error");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(w.starts_with("kernels/guard.wgsl: entry point `open` takes its items from celer_item_Nd"), "{w}");
    assert!(w.contains("celer_contains(pc.chunk, item)") && w.contains("unguarded: open") && !w.contains('\n'), "{w}");
    let module = naga::front::wgsl::parse_str(&format!("{text}\n{PRELUDE}")).expect("parses");
    assert_eq!(without_chunk_guard(&module, None), ["open", "quiet"]);
    assert_eq!(unguarded_allowed(&text), ["quiet"]);
}

#[test]
fn an_entry_point_indexing_with_the_raw_global_id_is_warned_about_naming_file_and_entry_point() {
    // `raw` ignores the chunk's offset (its bounds check reads pc.chunk.range0, not an offset); `by_hand` adds it
    // itself, `helper` through a function of its own taking the chunk, `item` calls celer_item_1d; `quiet` is raw
    // but named in the file's raw-ids line.
    let text = format!(
        "{HEADER}
        fn at(c: CelerBox, gid: vec3<u32>) -> u32 {{ return c.offset0 + gid.x; }}
        @compute @workgroup_size(64) fn raw(@builtin(global_invocation_id) gid: vec3<u32>) {{
            if (gid.x < pc.chunk.range0) {{ dst[gid.x] = src[gid.x]; }}
        }}
        @compute @workgroup_size(64) fn by_hand(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let i = pc.chunk.offset0 + gid.x;
            dst[i] = src[i];
        }}
        @compute @workgroup_size(64) fn helper(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let i = at(pc.chunk, gid);
            dst[i] = src[i];
        }}
        @compute @workgroup_size(64) fn item(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            if (!celer_contains(pc.chunk, item)) {{ return; }}
            dst[celer_index(pc.dst, item)] = 1.0;
        }}
        // celer-kernel-build: raw ids: quiet
        @compute @workgroup_size(64) fn quiet(@builtin(global_invocation_id) gid: vec3<u32>) {{
            dst[gid.x] = f32(pc.chunk.range0);
        }}
        struct Ids {{ @builtin(global_invocation_id) gid: vec3<u32> }}
        @compute @workgroup_size(64) fn no_params(ids: Ids) {{ dst[ids.gid.x] = 1.0; }}
        @compute @workgroup_size(1) fn one_cell() {{ dst[0] = 1.0; }}
        "
    );
    let (_, warnings) = compile_text("raw", &text).expect("a warning, not an error");
    // `no_params` reads no parameter at all, so it went unwarned; `one_cell` takes no id.
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[1].starts_with("kernels/raw.wgsl: entry point `no_params` calls none"), "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.starts_with("kernels/raw.wgsl: entry point `raw` calls none of the prelude's celer_item_1d/2d/3d"),
        "{w}"
    );
    assert!(w.contains("pc.chunk") && w.contains("celer_item_Nd(pc.chunk, gid)"), "{w}");
    assert!(w.contains("add the chunk's offset yourself") && !w.contains('\n'), "{w}");
    // Without the raw-ids line `quiet` is found too.
    let module = naga::front::wgsl::parse_str(&format!("{text}\n{PRELUDE}")).expect("parses");
    assert_eq!(without_chunk_offset(&module, None), ["raw", "quiet", "no_params"]);
    assert_eq!(raw_ids_allowed(&text), ["quiet"]);
}

#[test]
fn kernels_that_are_no_task_kernels_are_not_warned_about_their_raw_ids() {
    // saxpy-like: a parameter block without the chunk (submit refuses it as a task kernel); and no block at all.
    let text = format!(
        "struct P {{ a: f32, n: u32 }}
        var<immediate> params: P;
        @group(0) @binding(0) var<storage, read_write> y: array<f32>;
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            if (gid.x < params.n) {{ y[gid.x] = params.a; }}
        }}
        @compute @workgroup_size(64) fn bare(@builtin(global_invocation_id) gid: vec3<u32>) {{ y[gid.x] = 0.0; }}
        {PRELUDE}"
    );
    let module = naga::front::wgsl::parse_str(&text).expect("parses");
    assert!(without_chunk_offset(&module, None).is_empty());
}

#[test]
fn reflection_lists_the_bindings_indexed_with_the_item_itself() {
    let indexed = |body: &str| {
        let r = reflection(&format!("{HEADER}\n{body}")).expect("reflects");
        r.entry_points.iter().map(|e| (e.name.clone(), e.item_indexed.clone())).collect::<Vec<_>>()
    };
    // The item of a `let`, in the entry point and in a function it calls.
    let direct = indexed(
        "fn store(gid: vec3<u32>) { let item = celer_item_2d(pc.chunk, gid); dst[celer_index(pc.dst, item)] = 1.0; }
        @compute @workgroup_size(64) fn both(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
        }
        @compute @workgroup_size(8, 8) fn helper(@builtin(global_invocation_id) gid: vec3<u32>) { store(gid); }",
    );
    assert_eq!(direct, [("both".to_string(), vec![0, 1]), ("helper".to_string(), vec![1])]);
    // A box and the item given to a helper that passes both on are indexed with the item (dst); a cell built from
    // the item (src), or one the helper builds, is not.
    let built = indexed(
        "fn at(b: CelerBox, item: vec3<u32>) -> u32 { return celer_index(b, item); }
        fn col(b: CelerBox, item: vec3<u32>) -> u32 { return celer_index(b, vec3<u32>(item.y, 0u, 0u)); }
        @compute @workgroup_size(8, 8) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_2d(pc.chunk, gid);
            dst[at(pc.dst, item)] = src[celer_index(pc.src, vec3<u32>(item.y, 0u, 0u))] + src[col(pc.src, item)];
        }",
    );
    assert_eq!(built, [("main".to_string(), vec![1])]);
    // The item kept in a `var` (src); a `var` also stored another cell is not the item (dst).
    let local = indexed(
        "@compute @workgroup_size(8, 8) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_2d(pc.chunk, gid);
            var p = item;
            var q = item;
            if (item.x > 0u) { q = vec3<u32>(item.y, 0u, 0u); }
            dst[celer_index(pc.dst, q)] = src[celer_index(pc.src, p)];
        }",
    );
    assert_eq!(local, [("main".to_string(), vec![0])]);
    // Through helpers two and three deep, each passing its box and item on as they came.
    let deep = indexed(
        "fn at(b: CelerBox, item: vec3<u32>) -> u32 { return celer_index(b, item); }
        fn load(item: vec3<u32>, b: CelerBox) -> f32 { return src[at(b, item)]; }
        fn outer(b: CelerBox, unused: u32, item: vec3<u32>) -> f32 { return load(item, b); }
        fn built(b: CelerBox, item: vec3<u32>) -> f32 { return load(vec3<u32>(item.y, 0u, 0u), b); }
        @compute @workgroup_size(8, 8) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_2d(pc.chunk, gid);
            dst[at(pc.dst, vec3<u32>(item.y, 0u, 0u))] = outer(pc.src, 0u, item) + built(pc.dst, item);
        }",
    );
    assert_eq!(deep, [("main".to_string(), vec![0])], "src three deep; dst only at cells built from the item");
    // The item alone handed to helpers that name the box themselves (also passing it on beside a box they name),
    // which slipped through before; one given a cell built from the item is not listed.
    let named = indexed(
        "fn at(b: CelerBox, item: vec3<u32>) -> u32 { return celer_index(b, item); }
        fn load(c: vec3<u32>) -> f32 { return src[celer_index(pc.src, c)]; }
        fn store(c: vec3<u32>, v: f32) { dst[at(pc.dst, c)] = v; }
        @compute @workgroup_size(8, 8) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_2d(pc.chunk, gid);
            store(vec3<u32>(item.y, 0u, 0u), load(item));
        }",
    );
    assert_eq!(named, [("main".to_string(), vec![0])], "src through load; dst only at a cell built from the item");
    let both = indexed(
        "fn load(c: vec3<u32>) -> f32 { return src[celer_index(pc.src, c)]; }
        fn store(c: vec3<u32>, v: f32) { dst[celer_index(pc.dst, c)] = v; }
        @compute @workgroup_size(8, 8) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_2d(pc.chunk, gid);
            store(item, load(item));
        }",
    );
    assert_eq!(both, [("main".to_string(), vec![0, 1])]);
}

/// A 1D task kernel with `head` (declarations after the parameter block and `out`) and workgroup size `wg`.
fn one_output(head: &str, wg: &str) -> String {
    format!(
        "{head}\nstruct P {{ chunk: CelerBox, out: CelerBox }}\nvar<immediate> pc: P;\n\
         @group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
         @compute @workgroup_size({wg}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
             let item = celer_item_1d(pc.chunk, gid);\n\
             if (celer_contains(pc.chunk, item)) {{ out[celer_index(pc.out, item)] = item.x * SCALE; }}\n\
         }}\n"
    )
}

#[test]
fn override_constants_take_their_defaults_and_one_without_a_default_is_refused_by_name() {
    // naga's SPIR-V writer refused every module with an override ("overrides should not be present at this stage").
    let (item, _) = compile_text("ovr", &one_output("override SCALE: u32 = 3u;\noverride WG: u32 = 32u;", "WG"))
        .expect("overrides with defaults build");
    let _ = item;
    let dir = std::env::temp_dir().join(format!("celer_kb_ovr_wg_{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ovr_wg.wgsl");
    fs::write(&path, one_output("override SCALE: u32 = 3u;\noverride WG: u32 = 32u;", "WG, 1")).expect("writes");
    compile(&path, "kernels/ovr_wg.wgsl", &dir, &Options::default()).expect("builds");
    let constructor = fs::read_to_string(dir.join("ovr_wg.kernel.rs")).expect("constructor written");
    let _ = fs::remove_dir_all(&dir);
    // The workgroup size the dispatch uses is the override's value, not naga's placeholder.
    assert!(constructor.contains("name: \"main\", workgroup_size: [32, 1, 1]"), "{constructor}");

    let e = compile_text("no_default", &one_output("override SCALE: u32;", "64")).expect_err("no default");
    assert!(e.starts_with("error: kernels/no_default.wgsl: `override SCALE` has no default value"), "{e}");
    assert!(e.contains("celer sets no pipeline constants"), "{e}");
    let e = compile_text("wg_no_default", &one_output("const SCALE = 1u;\noverride WG: u32;", "WG"))
        .expect_err("no default");
    assert!(e.contains("`override WG` has no default value"), "{e}");
}

#[test]
fn a_kernel_with_an_enable_directive_builds_its_checked_variant_too() {
    // The checked variant put the prelude before the kernel's text, so `enable f16;` came after declarations and
    // failed to parse there ("its checked variant does not parse: ... global directive").
    let text =
        "// A kernel in f16.\nenable f16;\n\nstruct P { chunk: CelerBox, out: CelerBox }\nvar<immediate> pc: P;\n\
                @group(0) @binding(0) var<storage, read_write> out: array<f16>;\n\
                @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
                let item = celer_item_1d(pc.chunk, gid);\n\
                if (celer_contains(pc.chunk, item)) { out[celer_index(pc.out, item)] = f16(item.x); } }\n";
    compile_text("half", text).expect("an f16 kernel builds, checked variant included");
    let (directives, body) = split_directives(text);
    assert_eq!(directives, "enable f16;\n");
    assert_eq!(body.lines().count(), text.lines().count(), "the kernel's lines keep their numbers");
}

#[test]
fn a_bool_in_a_buffer_or_the_parameter_block_is_refused_with_a_hint() {
    let text = "struct P { chunk: CelerBox, out: CelerBox }\nvar<immediate> pc: P;\n\
                @group(0) @binding(0) var<storage, read_write> out: array<bool>;\n\
                @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
                let item = celer_item_1d(pc.chunk, gid);\n\
                if (celer_contains(pc.chunk, item)) { out[celer_index(pc.out, item)] = true; } }\n";
    let e = compile_text("flags", text).expect_err("bool is not host-shareable");
    assert!(e.contains("kernels/flags.wgsl:3:23") && e.contains("store a flag as u32"), "{e}");
}

#[test]
fn an_entry_point_on_raw_ids_is_marked_for_submit_to_refuse_unless_its_file_allows_it() {
    let text = "// celer-kernel-build: raw ids: allowed\n\
                struct Params { chunk: CelerBox, out: CelerBox }\nvar<immediate> pc: Params;\n\
                @group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
                @compute @workgroup_size(64) fn raw(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
                    if (gid.x < pc.chunk.range0) { out[gid.x] = gid.x; } }\n\
                @compute @workgroup_size(64) fn allowed(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
                    out[gid.x] = 1u; }\n\
                @compute @workgroup_size(64) fn item(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
                    let i = celer_item_1d(pc.chunk, gid); \
                    if (celer_contains(pc.chunk, i)) { out[celer_index(pc.out, i)] = 1u; } }\n";
    let dir = std::env::temp_dir().join(format!("celer_kb_raw_marks_{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("raw_marks.wgsl");
    fs::write(&path, text).expect("writes");
    let (_, warnings) = compile(&path, "kernels/raw_marks.wgsl", &dir, &Options::default()).expect("builds");
    let generated = fs::read_to_string(dir.join("raw_marks.kernel.rs")).expect("constructor written");
    let _ = fs::remove_dir_all(&dir);
    let marked = |entry: &str| {
        let desc = &generated[generated.find(&format!("name: \"{entry}\"")).expect(entry)..];
        let flag = &desc[desc.find("raw_ids: ").expect("the desc's last field")..];
        flag.starts_with("raw_ids: true")
    };
    assert_eq!((marked("raw"), marked("allowed"), marked("item")), (true, false, false), "{generated}");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("entry point `raw`"), "{warnings:?}");
}

#[test]
fn reflection_lists_the_bindings_stored_at_the_item_on_every_item_behind_no_guard_but_the_chunks() {
    let stored = |body: &str| {
        let r = reflection(&format!("{HEADER}\n{body}")).expect("reflects");
        r.entry_points.iter().map(|e| (e.name.clone(), e.stores_every_item.clone())).collect::<Vec<_>>()
    };
    let every = |name: &str| (name.to_string(), vec![1u32]);
    let none = |name: &str| (name.to_string(), Vec::<u32>::new());
    // Unguarded, inside the chunk guard, after the chunk guard's early return, an atomic-free member store alike.
    let unconditional = stored(
        "@compute @workgroup_size(64) fn open(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
        }
        @compute @workgroup_size(64) fn inside(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (celer_contains(pc.chunk, item)) { dst[celer_index(pc.dst, item)] = 1.0; }
        }
        @compute @workgroup_size(64) fn early(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (!celer_contains(pc.chunk, item)) { return; }
            var acc = 0.0;
            for (var k = 0u; k < 4u; k++) { acc += f32(k); }
            if (acc > 2.0) { acc = 2.0; }
            dst[celer_index(pc.dst, item)] = acc;
        }",
    );
    assert_eq!(unconditional, [every("open"), every("inside"), every("early")]);
    // Any other guard, an early return that depends on the item, a loop, a helper, a cell built from the item, another
    // binding's box, an item not of the raw gid: not known, left out.
    let conditional = stored(
        "fn put(item: vec3<u32>) { dst[celer_index(pc.dst, item)] = 1.0; }
        @compute @workgroup_size(64) fn own_box(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (!celer_contains(pc.dst, item)) { return; }
            dst[celer_index(pc.dst, item)] = 1.0;
        }
        @compute @workgroup_size(64) fn branch(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (item.x > 3u) { dst[celer_index(pc.dst, item)] = 1.0; }
        }
        @compute @workgroup_size(64) fn returns(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (celer_contains(pc.chunk, item)) { if (src[celer_index(pc.src, item)] < 0.0) { return; } }
            dst[celer_index(pc.dst, item)] = 1.0;
        }
        @compute @workgroup_size(64) fn looped(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            for (var k = 0u; k < pc.chunk.range1; k++) { dst[celer_index(pc.dst, item)] = f32(k); }
        }
        @compute @workgroup_size(64) fn helper(@builtin(global_invocation_id) gid: vec3<u32>) {
            put(celer_item_1d(pc.chunk, gid));
        }
        @compute @workgroup_size(64) fn built(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            dst[celer_index(pc.dst, item + vec3<u32>(1u, 0u, 0u))] = 1.0;
            dst[celer_index(pc.src, item)] = 1.0;
        }
        @compute @workgroup_size(64) fn shifted(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid * 2u);
            dst[celer_index(pc.dst, item)] = 1.0;
        }",
    );
    let names = ["own_box", "branch", "returns", "looped", "helper", "built", "shifted"];
    assert_eq!(conditional, names.map(none));
    // A store ahead of an early return that depends on the item is made by every item; one after it is not known.
    let before = stored(
        "@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (!celer_contains(pc.chunk, item)) { return; }
            dst[celer_index(pc.dst, item)] = 0.0;
            if (item.x == 0u) { return; }
            dst[celer_index(pc.dst, item)] = 1.0;
        }",
    );
    assert_eq!(before, [every("main")]);
}

#[test]
fn reflection_lists_the_bindings_loaded_at_the_item_on_every_item_also_through_functions_given_the_invocation_id() {
    let found = |body: &str| {
        let r = reflection(&format!("{HEADER}\n{body}")).expect("reflects");
        r.entry_points.iter().map(|e| (e.loads_every_item.clone(), e.stores_every_item.clone())).collect::<Vec<_>>()
    };
    let got = found(
        "fn value(g: vec3<u32>) -> vec2<f32> {
            let item = celer_item_1d(pc.chunk, g);
            if (!celer_contains(pc.chunk, item)) { return vec2<f32>(0.0, 0.0); }
            return vec2<f32>(1.0, src[celer_index(pc.src, item)]);
        }
        fn put(g: vec3<u32>, v: f32) {
            let item = celer_item_1d(pc.chunk, g);
            if (celer_contains(pc.chunk, item)) { dst[celer_index(pc.dst, item)] = v; }
        }
        fn load_at(item: vec3<u32>) -> f32 { return src[celer_index(pc.src, item)]; }
        @compute @workgroup_size(64) fn open(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
        }
        @compute @workgroup_size(64) fn through(@builtin(global_invocation_id) gid: vec3<u32>) {
            let v = value(gid);
            put(gid, v.y);
        }
        @compute @workgroup_size(64) fn guarded(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (item.x > 3u) { dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)]; }
        }
        @compute @workgroup_size(64) fn by_item(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            let v = load_at(item);
            if (v > 0.0) { put(gid, v); }
        }",
    );
    // open: both at the item; through: the load and the store in functions given gid; guarded: behind another
    // condition; by_item: a function given the item (not followed) and a call behind a condition: not known.
    let (one, zero) = (vec![1u32], vec![0u32]);
    assert_eq!(got, [(zero.clone(), one.clone()), (zero, one), (vec![], vec![]), (vec![], vec![])]);
}

#[test]
fn reflection_lists_the_bindings_every_item_stores_to_at_one_fixed_cell_with_a_plain_store() {
    let found = |body: &str| {
        let r = reflection(&format!("{HEADER}\n{body}")).expect("reflects");
        r.entry_points.iter().map(|e| (e.name.clone(), e.stores_one_cell_every_item.clone())).collect::<Vec<_>>()
    };
    let every = |name: &str| (name.to_string(), vec![1u32]);
    let none = |name: &str| (name.to_string(), Vec::<u32>::new());
    // A CUDA port's float sum (every item adds into cell 0), a plain store there unguarded, and one through a
    // function every item calls with the invocation id: races.
    let racing = found(
        "fn add(g: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, g);
            if (!celer_contains(pc.chunk, item)) { return; }
            dst[0] = dst[0] + src[celer_index(pc.src, item)];
        }
        @compute @workgroup_size(64) fn sum(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (!celer_contains(pc.chunk, item)) { return; }
            dst[0] += src[celer_index(pc.src, item)];
        }
        @compute @workgroup_size(64) fn last(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (celer_contains(pc.chunk, item)) { dst[0] = src[celer_index(pc.src, item)]; }
        }
        @compute @workgroup_size(64) fn helper(@builtin(global_invocation_id) gid: vec3<u32>) { add(gid); }",
    );
    assert_eq!(racing, vec![every("sum"), every("last"), every("helper")]);
    // One invocation folding the chunk (another early return), the store behind a workgroup-leader condition (a
    // block reduction's), in a loop, at the item's own cell, or at a cell computed from the item: not listed.
    let single = found(
        "@compute @workgroup_size(64) fn fold(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (gid.x != 0u) { return; }
            var acc = dst[0];
            for (var i = 0u; i < pc.chunk.range0; i++) { acc += src[i]; }
            dst[0] = acc;
        }
        @compute @workgroup_size(64) fn leader(@builtin(global_invocation_id) gid: vec3<u32>,
                                               @builtin(local_invocation_index) lid: u32) {
            let item = celer_item_1d(pc.chunk, gid);
            let s = celer_reduce_sum_f32(1.0, celer_contains(pc.chunk, item), lid);
            if (lid == 0u) { dst[0] = s; }
        }
        @compute @workgroup_size(64) fn looped(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (!celer_contains(pc.chunk, item)) { return; }
            for (var i = 0u; i < 2u; i++) { dst[0] += 1.0; }
        }
        @compute @workgroup_size(64) fn own(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            if (!celer_contains(pc.chunk, item)) { return; }
            dst[celer_index(pc.dst, item)] = 1.0;
            dst[item.x / 64u] = 2.0;
        }",
    );
    assert_eq!(single, vec![none("fold"), none("leader"), none("looped"), none("own")]);
}

#[test]
fn reflection_lists_the_bindings_indexed_with_another_bindings_box() {
    let found = |body: &str| {
        let r = reflection(&format!("{HEADER}\n{body}")).expect("reflects");
        r.entry_points.iter().map(|e| (e.name.clone(), e.cross_indexed.clone())).collect::<Vec<_>>()
    };
    // A porter's shared index (`let i = …; dst[i] = src[i]`), an offset from it, and the same in a function the
    // entry point calls: dst (binding 1) indexed with src's box (binding 0).
    let crossed = found(
        "fn store(item: vec3<u32>) { let i = celer_index(pc.src, item); dst[i - 1u] = 1.0; }
        @compute @workgroup_size(64) fn one_index(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            let i = celer_index(pc.src, item);
            dst[i] = 2.0 * src[i];
        }
        @compute @workgroup_size(64) fn offset(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            dst[celer_index(pc.src, item) + 1u] = src[celer_index(pc.src, item)];
        }
        @compute @workgroup_size(64) fn nested(@builtin(global_invocation_id) gid: vec3<u32>) {
            store(celer_item_1d(pc.chunk, gid));
        }",
    );
    let both = |n: &str| (n.to_string(), vec![(1u32, 0u32)]);
    assert_eq!(crossed, vec![both("one_index"), both("offset"), both("nested")]);
    // Each binding with its own box, also after arithmetic on the cell: nothing.
    let own = found(
        "@compute @workgroup_size(64) fn own(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            let s = celer_index(pc.src, item);
            dst[celer_index(pc.dst, item)] = src[s] + src[s + 1u];
        }",
    );
    assert_eq!(own, vec![("own".to_string(), Vec::<(u32, u32)>::new())]);
}

#[test]
fn reflection_lists_the_bindings_indexed_with_the_items_coordinates_without_celer_index() {
    let found = |body: &str| {
        let r = reflection(&format!("{HEADER}\n{body}")).expect("reflects");
        r.entry_points.iter().map(|e| (e.name.clone(), e.global_indexed.clone())).collect::<Vec<_>>()
    };
    // The CUDA port's `dst[item.x]`, a 2D row-major global index, the raw invocation id beside an item, and the
    // same in a function the entry point calls.
    let global = found(
        "fn put(g: vec3<u32>) { let item = celer_item_1d(pc.chunk, g); dst[item.x + 1u] = 0.0; }
        @compute @workgroup_size(64) fn flat(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            dst[item.x] = 2.0 * src[celer_index(pc.src, item)];
        }
        @compute @workgroup_size(8, 8) fn rows(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_2d(pc.chunk, gid);
            dst[celer_index(pc.dst, item)] = src[item.x * 16u + item.y];
        }
        @compute @workgroup_size(64) fn raw(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            dst[gid.x] = src[celer_index(pc.src, item)];
        }
        @compute @workgroup_size(64) fn nested(@builtin(global_invocation_id) gid: vec3<u32>) { put(gid); }",
    );
    let at = |n: &str, b: u32| (n.to_string(), vec![b]);
    assert_eq!(global, vec![at("flat", 1), at("rows", 0), at("raw", 1), at("nested", 1)]);
    // Through celer_index, also of a cell computed from the item: nothing.
    let own = found(
        "@compute @workgroup_size(64) fn own(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            let left = celer_index(pc.src, item - vec3<u32>(1u, 0u, 0u));
            dst[celer_index(pc.dst, item)] = src[left] + src[left + 1u];
        }",
    );
    assert_eq!(own, vec![("own".to_string(), Vec::<u32>::new())]);
}

#[test]
fn reflection_refuses_a_binding_indexed_with_the_chunks_box() {
    // dst[celer_index(pc.chunk, item)]: on 2 ranks every cell of rank 1's half came out wrong (exit 0), where the
    // node's allocation of dst (the whole buffer, for a later fence) did not start where the chunk does.
    let e = reflection(&format!(
        "{HEADER}
        fn put(item: vec3<u32>) {{ dst[celer_index(pc.chunk, item) + 1u] = 0.0; }}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            if (!celer_contains(pc.chunk, item)) {{ return; }}
            put(item);
        }}"
    ))
    .unwrap_err();
    assert!(
        e.contains("entry point `main` indexes `dst` (@group(0) @binding(1)) with the chunk's box")
            && e.contains("index each binding with its own box, `dst[celer_index(pc.dst, item)]`"),
        "{e}"
    );
    // The chunk's box in celer_contains and celer_item_Nd, as every kernel uses it: accepted.
    reflection(&format!(
        "{HEADER}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            if (celer_contains(pc.chunk, item)) {{ dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)]; }}
        }}"
    ))
    .expect("each binding with its own box");
}

#[test]
fn reflection_lists_the_offsets_from_its_item_at_which_a_kernel_indexes_each_box() {
    let r = reflection(&format!(
        "{HEADER}
        fn at(item: vec3<u32>, fallback: f32) -> f32 {{
            if (celer_contains(pc.src, item)) {{ return src[celer_index(pc.src, item)]; }}
            return fallback;
        }}
        @compute @workgroup_size(64) fn stencil(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_2d(pc.chunk, gid);
            if (!celer_contains(pc.chunk, item)) {{ return; }}
            let c = at(item, 0.0);
            let n = at(item - vec3<u32>(1u, 0u, 0u), c) + at(item + vec3<u32>(0u, 2u, 0u), c);
            dst[celer_index(pc.dst, item)] = n + src[celer_index(pc.src, vec3<u32>(1u, 1u, 0u) + item)];
        }}
        @compute @workgroup_size(64) fn plain(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_2d(pc.chunk, gid);
            dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
        }}
        @compute @workgroup_size(64) fn flat(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_2d(pc.chunk, gid);
            let i = celer_index(pc.src, item);
            dst[celer_index(pc.dst, item)] = src[i - 1u] + src[1u + i] + src[i];
        }}"
    ))
    .expect("reflects");
    let offsets = |i: usize| r.entry_points[i].item_offsets.clone();
    assert_eq!(offsets(0), vec![(0, vec![[-1, 0, 0], [0, 2, 0], [1, 1, 0]])]);
    assert_eq!(offsets(1), Vec::<(u32, Vec<[i64; 3]>)>::new());
    // The CUDA port's flat neighbours of `let i = celer_index(…)`: along the last dimension (1 of a 2D item).
    assert_eq!(offsets(2), vec![(0, vec![[0, -1, 0], [0, 1, 0]])]);
}

#[test]
fn reflection_refuses_the_array_length_of_a_binding_in_a_task_kernel() {
    // `item.x + 1u < arrayLength(&src)` as a right-border test: on 2 ranks the first rank's allocation of src is
    // about half the buffer, and every cell of the second half came out wrong (exit 0).
    let e = reflection(&format!(
        "{HEADER}
        fn right(item: vec3<u32>) -> f32 {{
            if (item.x + 1u < arrayLength(&src)) {{ return src[celer_index(pc.src, item + vec3<u32>(1u, 0u, 0u))]; }}
            return 0.0;
        }}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            if (!celer_contains(pc.chunk, item)) {{ return; }}
            dst[celer_index(pc.dst, item)] = right(item);
        }}"
    ))
    .unwrap_err();
    assert!(
        e.contains("entry point `main` takes arrayLength(&src) (@group(0) @binding(0))")
            && e.contains("test a cell with celer_contains(pc.src, cell)"),
        "{e}"
    );
    // A kernel that is no task kernel (its parameters are no CelerBox), dispatched by hand: its arrays are whole.
    reflection(
        "@group(0) @binding(0) var<storage, read_write> out: array<u32>;
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
            if (gid.x < arrayLength(&out)) { out[gid.x] = gid.x; }
        }",
    )
    .expect("no task kernel");
}

#[test]
fn reflection_refuses_items_taken_from_a_bindings_box() {
    // celer_item_1d(pc.src, gid): the items start where src's allocation does (one cell before the chunk, for a
    // halo), not where the chunk does.
    let e = reflection(&format!(
        "{HEADER}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.src, gid);
            if (!celer_contains(pc.chunk, item)) {{ return; }}
            dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
        }}"
    ))
    .unwrap_err();
    assert!(
        e.contains("entry point `main` calls celer_item_1d(pc.src, …); a kernel's items come from the chunk's box"),
        "{e}"
    );
}

#[test]
fn items_taken_from_a_bindings_box_are_refused_through_a_var_and_a_parameter() {
    // The box kept in a `var` (stored in a branch too) or handed to a helper that takes the items: both slipped
    // past the build before, and started the items where src's allocation does.
    for body in [
        "var b = pc.chunk;
            if (gid.y == 0u) { b = pc.src; }
            let item = celer_item_1d(b, gid);",
        "let item = items_of(pc.src, gid);",
    ] {
        let e = reflection(&format!(
            "{HEADER}
            fn items_of(b: CelerBox, g: vec3<u32>) -> vec3<u32> {{ return celer_item_1d(b, g); }}
            @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
                {body}
                if (!celer_contains(pc.chunk, item)) {{ return; }}
                dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
            }}"
        ))
        .unwrap_err();
        assert!(
            e.contains("entry point `main` calls celer_item_1d(pc.src, …); a kernel's items come from the chunk's box"),
            "{body}: {e}"
        );
    }
    // The chunk's box, so kept or handed on, is right.
    reflection(&format!(
        "{HEADER}
        fn items_of(b: CelerBox, g: vec3<u32>) -> vec3<u32> {{ return celer_item_1d(b, g); }}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            var b = pc.chunk;
            let item = items_of(b, gid);
            if (!celer_contains(pc.chunk, item)) {{ return; }}
            dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, item)];
        }}"
    ))
    .expect("the chunk's box through a var and a parameter");
}

#[test]
fn indices_and_cells_returned_by_helpers_and_components_handed_alone_are_followed() {
    let entry = |body: &str| {
        let r = reflection(&format!(
            "{HEADER}
            fn idx(c: vec3<u32>) -> u32 {{ return c.x; }}
            fn flat(c: vec3<u32>) -> u32 {{ let i = idx(c); return i; }}
            fn src_index(c: vec3<u32>) -> u32 {{ return celer_index(pc.src, c); }}
            fn dst_index(c: vec3<u32>) -> u32 {{ var i = celer_index(pc.dst, c); return i; }}
            fn either(c: vec3<u32>, k: u32) -> u32 {{
                if (k == 0u) {{ return celer_index(pc.dst, c); }}
                return celer_index(pc.src, c);
            }}
            fn src_at(x: u32) -> f32 {{ return src[celer_index(pc.src, vec3<u32>(x, 0u, 0u))]; }}
            fn src_at_y(x: u32) -> f32 {{ return src[celer_index(pc.src, vec3<u32>(0u, x, 0u))]; }}
            fn right(c: vec3<u32>) -> vec3<u32> {{ var r = c; r.x = r.x + 1u; return r; }}
            fn left_x(c: vec3<u32>) -> u32 {{ return c.x - 1u; }}
            fn own_item(g: vec3<u32>) -> vec3<u32> {{ return celer_item_1d(pc.chunk, g); }}
            @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
                let item = celer_item_1d(pc.chunk, gid);
                if (!celer_contains(pc.chunk, item)) {{ return; }}
                {body}
            }}"
        ))
        .expect("reflects");
        r.entry_points.into_iter().next().unwrap()
    };
    // The item's coordinate returned by a helper (two deep): dst indexed in the index space.
    assert_eq!(entry("dst[idx(item)] = 1.0;").global_indexed, vec![1]);
    assert_eq!(entry("dst[flat(item) + 1u] = 1.0;").global_indexed, vec![1]);
    // src's box returned by a helper, for dst: cross-indexed; for src itself, and dst's own through a var, right.
    let e = entry("dst[src_index(item)] = src[src_index(item)];");
    assert_eq!((e.cross_indexed, e.global_indexed), (vec![(1, 0)], vec![]));
    let e = entry("dst[dst_index(item)] = src[src_index(item)];");
    assert_eq!((e.cross_indexed, e.global_indexed), (vec![], vec![]));
    // Where the returns meet, the binding's own box among them: taken as meant, as a var stored twice is.
    assert_eq!(entry("dst[either(item, 0u)] = 1.0;").cross_indexed, vec![]);
    // A component handed alone, stepped: src read at item + 1 and item - 2; at the item itself, no offset.
    let e = entry("dst[dst_index(item)] = src_at(item.x + 1u) + src_at(item.x - 2u) + src_at(item.x);");
    assert_eq!(e.item_offsets, vec![(0, vec![[-2, 0, 0], [1, 0, 0]])]);
    // A cell or a component returned by a helper: src read at item + 1, item - 1 and (the items from a helper too)
    // item + 2.
    let e = entry("dst[dst_index(item)] = src[celer_index(pc.src, right(item))] + src_at(left_x(item));");
    assert_eq!(e.item_offsets, vec![(0, vec![[-1, 0, 0], [1, 0, 0]])]);
    let e = entry("dst[dst_index(item)] = src[celer_index(pc.src, own_item(gid) + vec3<u32>(2u, 0u, 0u))];");
    assert_eq!(e.item_offsets, vec![(0, vec![[2, 0, 0]])]);
    // A component put at another dimension than its own is not followed (no offset claimed).
    assert_eq!(entry("dst[dst_index(item)] = src_at_y(item.x + 1u);").item_offsets, vec![]);
    // The chunk's box returned by a helper: refused at build, as its direct form is.
    let e = reflection(&format!(
        "{HEADER}
        fn chunk_index(c: vec3<u32>) -> u32 {{ return celer_index(pc.chunk, c); }}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            if (!celer_contains(pc.chunk, item)) {{ return; }}
            dst[chunk_index(item)] = 1.0;
        }}"
    ))
    .unwrap_err();
    assert!(e.contains("entry point `main` indexes `dst` (@group(0) @binding(1)) with the chunk's box"), "{e}");
}

#[test]
fn a_helper_called_many_times_over_is_followed_within_a_bound() {
    // Eight helpers, each returning the sum of eight calls of the next: 8^8 paths to the innermost index. The
    // analyses follow return values once per helper and arguments, within one bound of steps per index, and
    // item_indexed and reads_old_contents read each helper once: the whole build ends well within a second (the
    // last two took 9 and 3.5 s of the 26 s this took before).
    let source = format!(
        "{HEADER}
            fn h7(c: vec3<u32>) -> u32 {{ return celer_index(pc.src, c) + c.x; }}
            fn h6(c: vec3<u32>) -> u32 {{ return h7(c) + h7(c) + h7(c) + h7(c) + h7(c) + h7(c) + h7(c) + h7(c); }}
            fn h5(c: vec3<u32>) -> u32 {{ return h6(c) + h6(c) + h6(c) + h6(c) + h6(c) + h6(c) + h6(c) + h6(c); }}
            fn h4(c: vec3<u32>) -> u32 {{ return h5(c) + h5(c) + h5(c) + h5(c) + h5(c) + h5(c) + h5(c) + h5(c); }}
            fn h3(c: vec3<u32>) -> u32 {{ return h4(c) + h4(c) + h4(c) + h4(c) + h4(c) + h4(c) + h4(c) + h4(c); }}
            fn h2(c: vec3<u32>) -> u32 {{ return h3(c) + h3(c) + h3(c) + h3(c) + h3(c) + h3(c) + h3(c) + h3(c); }}
            fn h1(c: vec3<u32>) -> u32 {{ return h2(c) + h2(c) + h2(c) + h2(c) + h2(c) + h2(c) + h2(c) + h2(c); }}
            fn h0(c: vec3<u32>) -> u32 {{ return h1(c) + h1(c) + h1(c) + h1(c) + h1(c) + h1(c) + h1(c) + h1(c); }}
            @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
                let item = celer_item_1d(pc.chunk, gid);
                if (!celer_contains(pc.chunk, item)) {{ return; }}
                dst[h0(item)] = src[h0(vec3<u32>(item.x + 1u, 0u, 0u))];
            }}"
    );
    let start = std::time::Instant::now();
    let r = reflection(&source).expect("reflects");
    compile_text("many_times_over", &source).expect("compiles");
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "took {:?}", start.elapsed());
    // The innermost index mixes src's box with the item's coordinate: dst is indexed with src's box.
    assert_eq!(r.entry_points[0].cross_indexed, vec![(1, 0)]);
}

#[test]
fn global_indexing_is_followed_through_local_variables_and_function_parameters() {
    let found = |body: &str| {
        let r = reflection(&format!("{HEADER}\n{body}")).expect("reflects");
        r.entry_points.iter().map(|e| (e.name.clone(), e.global_indexed.clone())).collect::<Vec<_>>()
    };
    // The item's coordinate kept in a `var` (also stored later, in a branch), handed to a helper as a parameter
    // (twice removed), or the invocation id handed so: each slipped through before.
    let global = found(
        "fn put(i: u32, v: f32) { dst[i] = v; }
        fn put_twice(j: u32, v: f32) { put(j + 1u, v); }
        fn load(g: vec3<u32>) -> f32 { return src[g.x]; }
        @compute @workgroup_size(64) fn local(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            var i = item.x;
            dst[i] = 1.0;
        }
        @compute @workgroup_size(64) fn stored(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            var i = 0u;
            if (celer_contains(pc.chunk, item)) { i = item.x * 2u; }
            dst[celer_index(pc.dst, item)] = src[i];
        }
        @compute @workgroup_size(64) fn param(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            put(item.x, 2.0 * src[celer_index(pc.src, item)]);
        }
        @compute @workgroup_size(64) fn deeper(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            var k = item.x;
            put_twice(k, 1.0);
        }
        @compute @workgroup_size(64) fn raw(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            dst[celer_index(pc.dst, item)] = load(gid);
        }",
    );
    let at = |n: &str, b: u32| (n.to_string(), vec![b]);
    assert_eq!(global, vec![at("local", 1), at("stored", 0), at("param", 1), at("deeper", 1), at("raw", 0)]);
    // A `var` holding celer_index's result, a helper given one, a loop counter, a local stored from the item
    // only after the load (flow: the load sees the initialiser): nothing.
    let own = found(
        "fn put(i: u32, v: f32) { dst[i] = v; }
        @compute @workgroup_size(64) fn own(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            var i = celer_index(pc.src, item);
            var acc = 0.0;
            for (var k = 0u; k < 4u; k++) { acc += src[k]; }
            var late = 0u;
            acc += src[late];
            late = item.x;
            put(celer_index(pc.dst, item), acc + src[i] + f32(late));
        }",
    );
    assert_eq!(own, vec![("own".to_string(), Vec::<u32>::new())]);
}

#[test]
fn indexing_with_another_box_is_followed_through_local_variables_and_function_parameters() {
    let found = |body: &str| {
        let r = reflection(&format!("{HEADER}\n{body}")).expect("reflects");
        r.entry_points.iter().map(|e| (e.name.clone(), e.cross_indexed.clone())).collect::<Vec<_>>()
    };
    let crossed = found(
        "fn put(i: u32, v: f32) { dst[i] = v; }
        @compute @workgroup_size(64) fn local(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            var i = celer_index(pc.src, item);
            dst[i] = 2.0 * src[i];
        }
        @compute @workgroup_size(64) fn param(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            let i = celer_index(pc.src, item);
            put(i + 1u, src[i]);
        }",
    );
    let both = |n: &str| (n.to_string(), vec![(1u32, 0u32)]);
    assert_eq!(crossed, vec![both("local"), both("param")]);
    // A `var` reused for each binding's own index, a helper given each binding's own index: nothing.
    let own = found(
        "fn put(i: u32, v: f32) { dst[i] = v; }
        @compute @workgroup_size(64) fn reused(@builtin(global_invocation_id) gid: vec3<u32>) {
            let item = celer_item_1d(pc.chunk, gid);
            var i = celer_index(pc.src, item);
            let v = src[i];
            i = celer_index(pc.dst, item);
            put(i, v);
        }",
    );
    assert_eq!(own, vec![("reused".to_string(), Vec::<(u32, u32)>::new())]);
    // The chunk's box through a `var`: refused at the build.
    let e = reflection(&format!(
        "{HEADER}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            var i = celer_index(pc.chunk, item);
            dst[i] = 0.0;
        }}"
    ))
    .unwrap_err();
    assert!(e.contains("entry point `main` indexes `dst` (@group(0) @binding(1)) with the chunk's box"), "{e}");
}

#[test]
fn item_offsets_are_followed_through_composed_cells_and_local_variables() {
    let r = reflection(&format!(
        "{HEADER}
        fn at(cell: vec3<u32>) -> f32 {{ return src[celer_index(pc.src, cell)]; }}
        @compute @workgroup_size(64) fn composed(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            dst[celer_index(pc.dst, vec3<u32>(item.x + 1u, item.y, item.z))] = src[celer_index(pc.src, item)];
        }}
        @compute @workgroup_size(8, 8) fn composed_2d(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_2d(pc.chunk, gid);
            let left = vec3<u32>(item.x - 1u, item.y, 0u);
            dst[celer_index(pc.dst, item)] = src[celer_index(pc.src, left)] + at(vec3<u32>(item.x, 2u + item.y, 0u));
        }}
        @compute @workgroup_size(64) fn local(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            var p = item;
            let here = src[celer_index(pc.src, p)];
            p.x = p.x + 1u;
            dst[celer_index(pc.dst, p)] = here;
        }}
        @compute @workgroup_size(64) fn scalar(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            var x = item.x;
            x = x - 2u;
            var i = celer_index(pc.src, item);
            dst[celer_index(pc.dst, item)] = at(vec3<u32>(x, 0u, 0u)) + src[i + 1u];
        }}
        @compute @workgroup_size(64) fn plain(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            var p = item;
            dst[celer_index(pc.dst, vec3<u32>(p.x, 0u, 0u))] = src[celer_index(pc.src, vec3<u32>(item.x, item.y, 0u))];
        }}"
    ))
    .expect("reflects");
    let offsets = |i: usize| r.entry_points[i].item_offsets.clone();
    assert_eq!(offsets(0), vec![(1, vec![[1, 0, 0]])]);
    assert_eq!(offsets(1), vec![(0, vec![[-1, 0, 0], [0, 2, 0]])]);
    // Flow: the load before `p.x = p.x + 1u` sees the item, the one after its neighbour.
    assert_eq!(offsets(2), vec![(1, vec![[1, 0, 0]])]);
    assert_eq!(offsets(3), vec![(0, vec![[-2, 0, 0], [1, 0, 0]])]);
    // The item itself, also composed of its own components: nothing.
    assert_eq!(offsets(4), Vec::<(u32, Vec<[i64; 3]>)>::new());
}

#[test]
fn the_indexing_analyses_end_quickly_on_values_used_many_times_over() {
    // 40 doublings of the index (2^40 paths through the expressions), in a `var` and a helper: followed through
    // each once, or cut off by the step budget, well within a second.
    let mut chain = String::from("let a0 = celer_index(pc.src, item) + item.x;\n");
    for k in 1..=40 {
        chain.push_str(&format!("let a{k} = a{} + a{};\n", k - 1, k - 1));
    }
    let start = std::time::Instant::now();
    let r = reflection(&format!(
        "{HEADER}
        fn put(i: u32, v: f32) {{ dst[i] = v; }}
        @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
            let item = celer_item_1d(pc.chunk, gid);
            {chain}
            var i = a40;
            var p = item;
            p.x = a40;
            put(i, src[celer_index(pc.src, p + vec3<u32>(1u, 0u, 0u))]);
        }}"
    ))
    .expect("reflects");
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "took {:?}", start.elapsed());
    // The sum mixes src's box into dst's index and the item's coordinates with a celer_index result: listed as a
    // cross index only.
    assert_eq!(r.entry_points[0].cross_indexed, vec![(1, 0)]);
    assert_eq!(r.entry_points[0].global_indexed, Vec::<u32>::new());
}
