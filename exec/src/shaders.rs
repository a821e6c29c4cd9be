//! The compute kernels of `exec/shaders/*.wgsl`, compiled to SPIR-V by naga in `build.rs`.
//!
//! Each shader file becomes one [`KernelSource`] constant named after the file in upper case
//! (`saxpy.wgsl` → [`SAXPY`]). Load one on a device with
//! [`Device::load_kernel`](crate::vulkan::Device::load_kernel).
//!
//! Conventions for the WGSL files: storage buffers in `@group(0)` (only there, numbered from 0 without gaps: the
//! build refuses anything else), bound in binding order;
//! push constants declared as `var<immediate>` (naga 30's spelling of `var<push_constant>`);
//! SPIR-V 1.3 output, so subgroup operations are available. celer-kernel-build appends its
//! `wgsl/prelude.wgsl` to every kernel, so kernels may call its `celer_*` helpers (see [`gpu`](crate::gpu)).

/// A scalar type: of a buffer's elements (Rust side) or of a WGSL binding's or push-constant member's values.
///
/// WGSL has `bool`, `i32`, `u32`, `f32` and, with device features, `f16`, `f64`, `i64`, `u64`; the 8- and 16-bit
/// integers exist only on the Rust side (a buffer of `u8` can be bound to no WGSL array).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// `bool` (WGSL only; not host-shareable).
    Bool,
    /// `u8` (Rust only).
    U8,
    /// `i8` (Rust only).
    I8,
    /// `u16` (Rust only).
    U16,
    /// `i16` (Rust only).
    I16,
    /// `u32`.
    U32,
    /// `i32`.
    I32,
    /// `u64`.
    U64,
    /// `i64`.
    I64,
    /// `f16`.
    F16,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl ScalarType {
    /// Bytes of one value.
    pub const fn size(self) -> u32 {
        match self {
            ScalarType::Bool | ScalarType::U32 | ScalarType::I32 | ScalarType::F32 => 4,
            ScalarType::U8 | ScalarType::I8 => 1,
            ScalarType::U16 | ScalarType::I16 | ScalarType::F16 => 2,
            ScalarType::U64 | ScalarType::I64 | ScalarType::F64 => 8,
        }
    }

    /// The type's name, as Rust and WGSL spell it (`f32`, `u8`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            ScalarType::Bool => "bool",
            ScalarType::U8 => "u8",
            ScalarType::I8 => "i8",
            ScalarType::U16 => "u16",
            ScalarType::I16 => "i16",
            ScalarType::U32 => "u32",
            ScalarType::I32 => "i32",
            ScalarType::U64 => "u64",
            ScalarType::I64 => "i64",
            ScalarType::F16 => "f16",
            ScalarType::F32 => "f32",
            ScalarType::F64 => "f64",
        }
    }
}

impl std::fmt::Display for ScalarType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a `var<storage>` binding may be used, as the WGSL declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageAccess {
    /// `var<storage, read>`: the kernel only loads.
    Read,
    /// `var<storage, read_write>`: the kernel may load, store and use atomics.
    ReadWrite,
}

impl StorageAccess {
    /// `read` or `read_write`, as WGSL spells it.
    pub const fn name(self) -> &'static str {
        match self {
            StorageAccess::Read => "read",
            StorageAccess::ReadWrite => "read_write",
        }
    }
}

/// One `@group(0) @binding(n) var<storage, ...> name: array<T>` of a kernel file, from naga's IR at build time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingDesc {
    /// The binding number `n`: accessor `n` of a task (accessors first, then reductions) binds here.
    pub binding: u32,
    /// The WGSL variable's name, e.g. `"src"`, by which a program can bind it.
    pub name: &'static str,
    /// The element type as WGSL spells it: `f32`, `atomic<u32>`, `vec4<f32>` (the variable itself, when it is not
    /// a runtime-sized array).
    pub element: &'static str,
    /// The element's scalar type when the element is a scalar or an atomic of one (`array<atomic<i32>>` → `i32`);
    /// `None` for vectors, matrices and structs.
    pub scalar: Option<ScalarType>,
    /// Bytes from one element to the next (the array's stride).
    pub element_size: u32,
    /// The one scalar type the element is made of: the scalar's, a vector's or matrix's components'
    /// (`vec4<f32>` → `f32`), or the type every field of a struct shares, through nested structs and arrays
    /// (`struct Body { pos: vec3<f32>, mass: f32 }` → `f32`); `None` for a struct mixing types.
    pub component: Option<ScalarType>,
    /// Its declared access.
    pub access: StorageAccess,
}

/// One member of the push-constant struct (`var<immediate>`) an entry point uses, from naga's IR at build time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushMemberDesc {
    /// The member's name, e.g. `"alpha"`, by which a program can give its value.
    pub name: &'static str,
    /// Its type as WGSL spells it: `CelerBox`, `f32`, `vec2<u32>`.
    pub ty: &'static str,
    /// The scalar type of its components for scalars, vectors and matrices (`vec2<u32>` → `u32`); `None` for
    /// structs and arrays.
    pub scalar: Option<ScalarType>,
    /// Byte offset in the struct.
    pub offset: u32,
    /// Bytes it occupies.
    pub size: u32,
}

/// A compute entry point of a [`KernelSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryPointDesc {
    /// The WGSL function name, e.g. `"main"`.
    pub name: &'static str,
    /// Its `@workgroup_size(x, y, z)`.
    pub workgroup_size: [u32; 3],
    /// The dimensionality it works in: `n` when it calls the prelude's `celer_item_{n}d`, directly or through the
    /// functions it calls (a build error if it calls two of them); `None` when it calls none.
    pub dims: Option<u32>,
    /// Whether it calls one of the prelude's block reductions (`celer_reduce_<op>_<type>`), directly or through the
    /// functions it calls: the task's reductions then combine one partial result per workgroup in a fixed tree.
    pub block_reduction: bool,
    /// Whether what it computes depends on how the index space is cut into workgroups: it takes
    /// `local_invocation_id`, `local_invocation_index`, `workgroup_id`, `num_workgroups` or a subgroup id, or uses
    /// `var<workgroup>` memory, a barrier or a subgroup operation (directly or through the functions it calls).
    /// `celer`'s `submit` then splits the task's chunks at whole workgroups.
    pub workgroup_dependent: bool,
    /// The members of the push-constant struct (`var<immediate>`) it uses, in offset order (empty if it uses none).
    /// By celer's convention, `chunk: CelerBox`, one `CelerBox` per binding, then the kernel's scalars.
    pub push_constants: &'static [PushMemberDesc],
    /// Total bytes of the push-constant struct (0 if it uses none), trailing padding included.
    pub push_constant_bytes: u32,
    /// The binding numbers it stores to or uses atomics on (directly or through the functions it calls), ascending:
    /// a task must declare a writing access for the buffers bound there.
    pub writes: &'static [u32],
    /// The binding numbers whose first use, in program order, is a load or an atomic read-modify-write (directly or
    /// through the functions it calls), ascending: the kernel may read their old contents, so a task must not bind
    /// them with `discard_write`.
    pub reads_old: &'static [u32],
    /// The prelude's block reductions it calls (`celer_reduce_<op>_<type>`, directly or through the functions it
    /// calls), each with the binding its result is stored to where the IR shows it: `celer`'s `submit` refuses a
    /// task whose reduction on that binding has another operation or type.
    pub block_reductions: &'static [BlockReductionDesc],
    /// The atomic operations it applies to each binding (directly or through the functions it calls): `(binding,
    /// op)` with `op` one of `add`, `sub`, `and`, `or`, `xor`, `min`, `max`, `exchange`, `load`, `store`, sorted:
    /// `celer`'s `submit` refuses a task whose `Sum`, `Min` or `Max` reduction on a binding the kernel combines into
    /// only with another of `add`/`sub`, `min`, `max`, and takes items updating each other's cells through a binding
    /// as race-free only where it has no `load` or `store`.
    pub atomics: &'static [(u32, &'static str)],
    /// Bytes of the `var<workgroup>` variables it uses, directly or through the functions it calls (the prelude's
    /// block reductions included): the GPU layer refuses to load a kernel needing more than the device's
    /// `maxComputeSharedMemorySize`.
    pub workgroup_memory_bytes: u32,
    /// The bindings it indexes with its item as `celer_item_Nd` returned it (`celer_index(pc.<box>, item)`,
    /// directly or through the functions it calls), ascending: `celer`'s `submit` refuses a buffer of another
    /// dimensionality than [`dims`](Self::dims) there, whose cells such an index does not mean (a 2D item `(row,
    /// col)` on a 1D buffer reads cell `row + col`).
    pub item_indexed: &'static [u32],
    /// The bindings it stores to at its own item on every item of its index space (`out[celer_index(pc.out,
    /// item)] = …` in its own body, behind no condition but the chunk guard `celer_contains(pc.chunk, item)`, after
    /// no other `return`), ascending: `celer`'s `submit` refuses a task whose index space reaches outside the buffer
    /// bound there, whose items would store to cells the buffer does not have. A binding the build could not show
    /// so (a store behind another condition, in a function of the kernel's own) is left out, and not refused.
    pub stores_every_item: &'static [u32],
    /// The bindings it loads from at its own item on every item of its index space (`… = src[celer_index(pc.src,
    /// item)]` evaluated in its own body where every item reaches it, behind no condition but the chunk guard),
    /// ascending: `celer`'s `submit` refuses a task whose index space reaches outside the buffer bound there, whose
    /// items would read cells the buffer does not have. A binding the build could not show so is left out.
    pub loads_every_item: &'static [u32],
    /// The bindings it stores to at one fixed cell (`out[0] = …`, `out[0] += v`) with a plain store on every item
    /// of its index space, behind no condition but the chunk guard, ascending: `celer`'s `submit` refuses a task
    /// that reduces into such a binding over more than one item, whose items would race (each overwriting what the
    /// others stored). A binding the build could not show so is left out.
    pub stores_one_cell_every_item: &'static [u32],
    /// The bindings it indexes with another binding's box (`dst[celer_index(pc.src, item)]`, directly or through
    /// the functions it calls): `(indexed, box)` pairs, ascending. Each binding holds its buffer's allocation on the
    /// node, whose box differs between buffers, so `celer`'s `submit` refuses a task that binds different buffers
    /// at the two.
    pub cross_indexed: &'static [(u32, u32)],
    /// The bindings it indexes with its item's coordinates in the index space, or its invocation id, without
    /// `celer_index` (`dst[item.x]`, `out[item.x * n + item.y]`, directly or through the functions it calls),
    /// ascending. A binding holds its buffer's allocation on the node, which starts at the origin only where the node
    /// touches the whole buffer, so `celer`'s `submit` refuses a buffer bound there through any mapper but `all()`.
    pub global_indexed: &'static [u32],
    /// The constant offsets from its item at which it indexes each binding's box (`celer_index(pc.src, item -
    /// vec3<u32>(1u, 0u, 0u))`, directly or through the functions it calls): `(binding, offsets)`, ascending, each
    /// offset with dimension 0 first; the item itself is not listed. `celer`'s `submit` refuses a task whose range
    /// mapper for the binding (`one_to_one`, a neighbourhood, a slice) does not declare the cells at those offsets.
    pub item_offsets: &'static [(u32, &'static [[i64; 3]])],
    /// It works on the raw `global_invocation_id` (it neither calls `celer_item_Nd` nor reads the chunk's offset),
    /// which starts at 0 on every chunk, and its file does not say so on purpose (`// celer-kernel-build: raw ids:
    /// NAME`): `celer`'s `submit` refuses it, since it would work on the first chunk's cells whatever chunk it ran.
    pub raw_ids: bool,
}

/// One call of a prelude block reduction `celer_reduce_<op>_<type>` by an entry point ([`EntryPointDesc`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockReductionDesc {
    /// The operation: `"sum"`, `"min"` or `"max"`.
    pub op: &'static str,
    /// The type it reduces (`f32`, `i32`, `u32` or `f64`).
    pub scalar: ScalarType,
    /// The `@group(0)` binding a store writes its result (or a value computed from it) to; `None` where the build
    /// saw no such store (the result handed to a function that stores it, for example).
    pub binding: Option<u32>,
}

/// One compiled shader file: SPIR-V bytes plus what the build script learnt about its bindings and entry points
/// (reflected from naga's IR: [`BindingDesc`], [`EntryPointDesc`]), which `celer`'s `submit` checks tasks against.
///
/// Only `celer-kernel-build` makes these (the fields are private; its generated code calls the unsafe
/// `from_build`), so every `KernelSource` holds SPIR-V that naga produced from a validated module with
/// bounds-checked indexing; [`Device::load_kernel`]
/// and [`Device::dispatch`] rely on that to be safe functions.
///
/// [`Device::load_kernel`]: crate::vulkan::Device::load_kernel
/// [`Device::dispatch`]: crate::vulkan::Device::dispatch
#[derive(Debug, Clone, Copy)]
pub struct KernelSource {
    /// The file stem, e.g. `"saxpy"` for `exec/shaders/saxpy.wgsl`.
    name: &'static str,
    /// The SPIR-V module as little-endian bytes (length a multiple of 4; not necessarily aligned).
    spirv: &'static [u8],
    /// The checked variant (`CELER_CHECK_BOUNDS`): the same kernel recording out-of-bounds accesses in one more
    /// storage buffer, bound at `@group(0) @binding(group0_bindings)`; see `celer_kernel_build::checked_module`.
    checked_spirv: &'static [u8],
    /// The module's `@compute` entry points, in source order.
    entry_points: &'static [EntryPointDesc],
    /// 1 + the highest binding number the file declares in `@group(0)`, used or not.
    group0_bindings: u32,
    /// The file's `@group(0)` bindings, by binding number (numbers run from 0 without gaps: a build error else).
    bindings: &'static [BindingDesc],
    /// Whether the SPIR-V declares the capability `Float64` (the file uses `f64`): only a device with the feature
    /// `shaderFloat64` runs it.
    float64: bool,
    /// Where its parameter block (`var<immediate>`) is read from when it is larger than the 128 bytes of push
    /// constants every device offers: the `@group(0)` binding of a read-only storage buffer (1 + the kernel's
    /// bindings, in both variants); `None`: push constants.
    params_binding: Option<u32>,
}

impl KernelSource {
    /// What the constants `celer-kernel-build` generates are made of (it writes the call; programs do not).
    ///
    /// # Safety
    /// `spirv` and `checked_spirv` are SPIR-V modules that naga wrote from validated WGSL modules with
    /// bounds-checked indexing (`celer-kernel-build` does exactly that), `checked_spirv` the checked variant of
    /// `spirv` (with one more storage binding, `group0_bindings`), and `entry_points` and `group0_bindings` describe
    /// them: the GPU layer dispatches them through safe functions on the strength of it. `bindings` describes the
    /// `group0_bindings` bindings, in binding order; `float64` says whether the modules declare the capability
    /// `Float64`; `params_binding`, where both modules read their parameter block from a read-only storage buffer
    /// (`group0_bindings + 1`) instead of push constants.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const unsafe fn from_build(
        name: &'static str,
        spirv: &'static [u8],
        checked_spirv: &'static [u8],
        entry_points: &'static [EntryPointDesc],
        group0_bindings: u32,
        bindings: &'static [BindingDesc],
        float64: bool,
        params_binding: Option<u32>,
    ) -> Self {
        Self { name, spirv, checked_spirv, entry_points, group0_bindings, bindings, float64, params_binding }
    }

    /// Where the kernel reads its parameter block (the chunk, a box per binding, the scalars; `var<immediate>` in
    /// its WGSL) from: `None` for push constants (a block of at most 128 bytes, which every device takes), else the
    /// `@group(0)` binding of the read-only storage buffer `celer-kernel-build` moved a larger block to (1 + the
    /// kernel's bindings; the GPU layer writes each dispatch's words there).
    pub fn params_binding(&self) -> Option<u32> {
        self.params_binding
    }

    /// Whether the file uses `f64` (its SPIR-V declares the capability `Float64`: its own `f64` values, or the
    /// prelude's `celer_reduce_<op>_f64`): only a device with the feature `shaderFloat64` can run it.
    pub fn needs_float64(&self) -> bool {
        self.float64
    }

    /// The file's `@group(0)` bindings in binding order (`bindings()[n].binding == n`): every entry point of the
    /// file shares this one layout.
    pub fn bindings(&self) -> &'static [BindingDesc] {
        self.bindings
    }

    /// The file stem, e.g. `"saxpy"` for `exec/shaders/saxpy.wgsl`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The SPIR-V module as little-endian bytes (length a multiple of 4; not necessarily aligned).
    pub fn spirv(&self) -> &'static [u8] {
        self.spirv
    }

    /// The module's `@compute` entry points, in source order.
    pub fn entry_points(&self) -> &'static [EntryPointDesc] {
        self.entry_points
    }

    /// How many bindings the file declares in `@group(0)`: 1 + the highest binding number,
    /// counting bindings no entry point uses (0 if it declares none). The
    /// [`gpu`](crate::gpu) module binds one accessor per binding.
    pub fn group0_bindings(&self) -> u32 {
        self.group0_bindings
    }

    /// The checked variant's SPIR-V as little-endian bytes: the kernel with every `celer_index` call also recording
    /// accesses outside the region its accessor declared, in a storage buffer bound right after the accessors
    /// (`@group(0) @binding(group0_bindings())`; layout in `celer-kernel-build`'s `wgsl/checked.wgsl.in`).
    pub fn checked_spirv(&self) -> &'static [u8] {
        self.checked_spirv
    }

    /// The SPIR-V module as 32-bit words, the form Vulkan takes.
    pub fn spirv_words(&self) -> Vec<u32> {
        words(self.spirv)
    }

    /// The checked variant as 32-bit words.
    pub fn checked_spirv_words(&self) -> Vec<u32> {
        words(self.checked_spirv)
    }

    /// The entry point called `name`, if the module has one.
    #[inline]
    pub fn entry_point(&self, name: &str) -> Option<&'static EntryPointDesc> {
        // By address first: `celer`'s `Kernel::wgsl` keeps the name found here, so a task's look-ups compare no
        // text.
        let by_address = self.entry_points.iter().find(|ep| std::ptr::eq(ep.name, name));
        by_address.or_else(|| self.entry_points.iter().find(|ep| ep.name == name))
    }
}

/// Little-endian bytes as 32-bit words.
fn words(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect()
}

/// Declares one kernel constant from the files `celer-kernel-build` wrote to `$OUT_DIR`: the generated
/// `celer_kernels.rs` invokes it once per kernel file as `kernel_source!(NAME, "stem")`, and it includes
/// `$OUT_DIR/<stem>.kernel.rs`, the `KernelSource::from_build` call with the SPIR-V and what describes it.
///
/// The `unsafe` block is here, in a macro of this crate, so that a program under `#![forbid(unsafe_code)]` can
/// include its kernels (the lint does not look into other crates' macros). Its safety rests on the
/// `<stem>.kernel.rs` files of `$OUT_DIR` being written by `celer-kernel-build`: build scripts are trusted code, and
/// safe code cannot write files at compile time (see docs/SOUNDNESS.md).
#[doc(hidden)]
#[macro_export]
macro_rules! __celer_kernel_source {
    ($(#[$attr:meta])* $name:ident, $stem:literal) => {
        // The stem names a file celer-kernel-build wrote to $OUT_DIR, not one elsewhere (a hand-written
        // `../src/x.kernel.rs` would smuggle its own unsafe code past the program's `forbid(unsafe_code)`).
        const _: () = assert!(
            $crate::shaders::stem_is_plain($stem),
            "kernel_source!: the stem must be a plain file stem (no `/`, `\\` or `..`): the file is one of $OUT_DIR"
        );
        $(#[$attr])*
        pub const $name: $crate::shaders::KernelSource =
            // SAFETY: `<stem>.kernel.rs` is written by celer-kernel-build: SPIR-V that naga produced from validated
            // modules with bounds-checked indexing, described by what naga found in them (`from_build`'s contract).
            unsafe { include!(concat!(env!("OUT_DIR"), "/", $stem, ".kernel.rs")) };
    };
}

/// Whether `stem` is a plain file stem, as [`kernel_source!`] requires: not empty, with no path separator and no `..`
/// (so that the file it includes is one of `$OUT_DIR`, where celer-kernel-build writes).
#[doc(hidden)]
pub const fn stem_is_plain(stem: &str) -> bool {
    let b = stem.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' || b[i] == b'\\' || (b[i] == b'.' && i + 1 < b.len() && b[i + 1] == b'.') {
            return false;
        }
        i += 1;
    }
    true
}

/// The macro `celer-kernel-build`'s generated code calls, at the path it names kernel types by.
#[doc(hidden)]
pub use crate::__celer_kernel_source as kernel_source;

include!(concat!(env!("OUT_DIR"), "/shaders.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saxpy_is_compiled_to_spirv_with_its_workgroup_size() {
        let words = SAXPY.spirv_words();
        assert_eq!(SAXPY.spirv.len() % 4, 0, "SPIR-V byte length must be a multiple of 4");
        assert_eq!(words[0], 0x0723_0203, "SPIR-V magic number");
        let main = SAXPY.entry_point("main").expect("saxpy.wgsl has an entry point `main`");
        assert_eq!(main.workgroup_size, [64, 1, 1]);
        assert!(SAXPY.entry_point("nope").is_none());
        assert_eq!(SAXPY.group0_bindings(), 2);
        assert_eq!(SAXPY.checked_spirv_words()[0], 0x0723_0203, "the checked variant is SPIR-V too");
        assert_ne!(SAXPY.checked_spirv(), SAXPY.spirv(), "the checked variant differs");
    }

    #[test]
    fn a_kernel_stem_must_name_a_file_of_the_build_output_directory() {
        assert!(stem_is_plain("heat_1d") && stem_is_plain("a.b"), "plain stems");
        for stem in ["", "../src/evil", "a/b", "a\\b", "..", "x..y"] {
            assert!(!stem_is_plain(stem), "{stem:?} was taken for a plain stem");
        }
    }
}
