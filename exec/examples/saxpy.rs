//! Runs the saxpy kernel (`y = a * x + y`) on the preferred Vulkan device and prints what it
//! computed, checked against the CPU.
//!
//! ```text
//! cargo run --release -p celer-exec --example saxpy [N]
//! ```

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use celer_exec::shaders;
use celer_exec::vulkan::Device;

fn run() -> Result<(), Box<dyn Error>> {
    let n: u32 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 1 << 20,
    };
    let start = Instant::now();
    let device = Device::new()?;
    let kernel = device.load_kernel(&shaders::SAXPY, "main")?;
    println!("saxpy: {} (initialised in {:.1?})", device.info(), start.elapsed());

    let a = 2.0f32;
    let x: Vec<f32> = (0..n).map(|i| (i % 1024) as f32).collect();
    let y: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32).collect();
    let x_buf = device.buffer_from_slice(&x)?;
    let y_buf = device.buffer_from_slice(&y)?;

    let submitted = Instant::now();
    let mut submission =
        device.dispatch(&kernel, &[x_buf.as_bytes(), y_buf.as_bytes()], &[a.to_bits(), n], kernel.groups_for(n))?;
    let mut polls = 0u64;
    while !submission.is_complete()? {
        polls += 1;
        if submitted.elapsed() > Duration::from_secs(60) {
            return Err("the dispatch did not complete within 60 s".into());
        }
        std::hint::spin_loop();
    }
    let elapsed = submitted.elapsed();

    let got = device.read_buffer(&y_buf)?;
    let wrong = (0..n as usize).filter(|&i| got[i] != a * x[i] + y[i]).count();
    let shown: Vec<String> = got.iter().take(5).map(|v| v.to_string()).collect();
    println!(
        "saxpy: y = {a} * x + y over {n} elements in {} workgroups of {}: y[0..5] = [{}], ...; \
         submit to fence signaled {elapsed:.1?} ({polls} polls); {wrong} elements differ from the CPU",
        kernel.groups_for(n)[0],
        kernel.workgroup_size()[0],
        shown.join(", "),
    );
    if wrong > 0 {
        return Err(format!("{wrong} of {n} elements differ from the CPU result").into());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("saxpy: error: {e}");
            ExitCode::FAILURE
        }
    }
}
