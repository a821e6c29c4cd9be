//! Compiles every `shaders/*.wgsl` kernel to SPIR-V (through `celer-kernel-build`, which programs using celer call
//! from their own build scripts too) and writes `$OUT_DIR/shaders.rs`, which `src/shaders.rs` includes: one
//! `KernelSource` constant per file, named after it in capitals (`saxpy.wgsl` → `SAXPY`).
//!
//! celer's prelude (`celer-kernel-build`'s `wgsl/prelude.wgsl`) is appended to every kernel before parsing, so kernels can call
//! its `celer_*` helpers (WGSL has no include). The SPIR-V clamps out-of-bounds indices (naga's `Restrict` policy),
//! so a kernel cannot touch memory outside the buffers bound to it. A kernel that fails to parse or validate stops
//! the build with naga's diagnostic.

fn main() {
    let options =
        celer_kernel_build::Options { types: "crate::shaders", generated: "shaders.rs", ..Default::default() };
    if let Err(message) = celer_kernel_build::compile_dir_with("shaders", options) {
        eprintln!("{message}");
        // Not panic!: a backtrace of the build script would only bury the diagnostics.
        std::process::exit(1);
    }
}
