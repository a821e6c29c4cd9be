//! The indexing analyses as reflection reports them: item-indexed, every-item, cross- and global-indexed bindings,
//! item offsets, and the refusals they feed (chunk box, array length, items from a binding's box).

use super::*;

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
