//! celer installs no global logger unless the program asks (`celer::logging::init()`), so a program's own logger
//! (here `env_logger`) can be installed after celer started, and celer's records go to it.

#[test]
fn a_program_installs_its_own_logger_after_celer_started() {
    let q = celer::Queue::dry_run();
    // Panics if a logger is already installed, as it did when celer installed its own.
    env_logger::init();
    // Asking for celer's logger now is refused quietly: the program's logger stays.
    assert!(!celer::logging::init(), "celer's logger replaced the program's");
    // celer keeps working (and logging through the program's logger).
    let v = q.buffer::<u32, 1>([8]);
    q.submit(celer::task::parallel_for(&celer::Kernel::named("k"), [8]).discard_write(&v, celer::access::one_to_one()))
        .unwrap();
    q.wait();
}
