//! The build's warnings about entry points on raw ids or without a chunk guard, and the lines that silence them.

use super::*;

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
