//! Reflection of bindings, push constants, workgroup size, dimensionality, atomics and block reductions, and what
//! it refuses.

use super::*;

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
