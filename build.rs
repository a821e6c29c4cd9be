//! Compiles the kernels of `kernels/` (those of the examples and tests, as a program using celer would keep its
//! own) with `celer-kernel-build`; examples and tests declare them with `celer::include_kernels!()`.

fn main() {
    if let Err(message) = celer_kernel_build::compile_dir("kernels") {
        eprintln!("{message}");
        std::process::exit(1);
    }
}
