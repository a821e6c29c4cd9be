//! Vulkan smoke test: dispatches the saxpy kernel on this machine's Vulkan device (lavapipe on a
//! machine without a GPU), polls its fence until it is signaled, and checks every element against
//! the same computation on the CPU.

use std::time::Duration;

use celer_exec::shaders;
use celer_exec::vulkan::Device;

/// How long the dispatch may take before the test fails instead of hanging.
const TIME_LIMIT: Duration = Duration::from_secs(30);

#[test]
fn saxpy_dispatch_matches_the_cpu_result() {
    let device = Device::new().expect("a Vulkan device (on Debian: libvulkan1 + mesa-vulkan-drivers)");
    eprintln!("vulkan_smoke: using {}", device.info());
    let kernel = device.load_kernel(&shaders::SAXPY, "main").expect("load saxpy");

    // Not a multiple of the workgroup size, so the kernel's `i < n` guard is exercised.
    let n: u32 = 1000;
    let a = 2.5f32;
    let x: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let y: Vec<f32> = (0..n).map(|i| 1000.0 - i as f32).collect();
    let x_buf = device.buffer_from_slice(&x).expect("x buffer");
    let y_buf = device.buffer_from_slice(&y).expect("y buffer");

    let mut submission = device
        .dispatch(&kernel, &[x_buf.as_bytes(), y_buf.as_bytes()], &[a.to_bits(), n], kernel.groups_for(n))
        .expect("dispatch saxpy");
    submission.poll_until_complete(TIME_LIMIT).expect("the dispatch's fence is signaled");

    let got = device.read_buffer(&y_buf).expect("read y back");
    assert_eq!(got.len(), n as usize);
    for (i, ((&xi, &yi), &gi)) in x.iter().zip(&y).zip(&got).enumerate() {
        // a * x + y is exact in f32 for these values, but allow for a fused multiply-add.
        let want = a * xi + yi;
        assert!((gi - want).abs() <= want.abs() * 1e-6, "y[{i}] = {gi}, expected {want}");
    }
}

#[test]
fn load_kernel_reports_a_missing_entry_point_by_name() {
    let device = Device::new().expect("a Vulkan device");
    let err = device.load_kernel(&shaders::SAXPY, "nope").unwrap_err();
    assert!(err.to_string().contains("\"nope\""), "{err}");
}

#[test]
fn dispatch_without_the_push_constants_is_refused_with_a_message() {
    let device = Device::new().expect("a Vulkan device");
    let kernel = device.load_kernel(&shaders::SAXPY, "main").expect("load saxpy");
    let x = device.buffer_from_slice(&[1.0f32; 4]).expect("x buffer");
    let y = device.buffer_from_slice(&[1.0f32; 4]).expect("y buffer");
    let err = device.dispatch(&kernel, &[x.as_bytes(), y.as_bytes()], &[], [1, 1, 1]).unwrap_err();
    eprintln!("{err}");
    assert!(err.to_string().contains("dispatching kernel saxpy"), "{err}");
    assert!(err.to_string().contains("push constants"), "{err}");
}
