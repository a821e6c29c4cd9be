//! Pinning (`CELER_PIN`): which core the runtime thread runs on, and which the application thread keeps.
//!
//! The rule of `auto`, from the cores the process may run on when the queue starts (`mpirun`'s binding, a cgroup,
//! `taskset`) and the node-local rank `r` of `n` (from the launcher's environment):
//!
//! - If the set looks like this rank's own (`n × |set|` is at most the machine's online cores, which is what
//!   `mpirun --bind-to core/l3cache/numa` with enough cores per rank gives), the runtime thread gets its last core
//!   and the application thread the others.
//! - If every rank may use every online core (no binding), the set is split into `n` equal slices in order, rank `r`
//!   takes slice `r`, the runtime thread its last core and the application thread the rest of it.
//! - Otherwise, or where a rank's share is fewer than two cores (one core per rank, or more ranks than cores),
//!   nothing is pinned: a runtime thread pinned to a core shared with another rank's would fight it, and an
//!   application thread squeezed off the runtime's only core would starve.
//!
//! Threads started before the runtime thread is pinned (the host workers, the GPU driver's) keep the whole set.

use crate::config::Pinning;

/// Where the threads go: the runtime thread's core, and the application thread's cores (empty: left alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    /// The runtime thread's core.
    pub(super) runtime: usize,
    /// The application thread's cores; empty to leave it where it is.
    pub(super) application: Vec<usize>,
}

/// Where the threads go under `pin`, for a process allowed on the sorted cores `allowed` of a machine with `online`
/// cores, as node-local rank `local.0` of `local.1`; `None`: pin nothing. Pure, for tests.
pub(super) fn plan(pin: &Pinning, allowed: &[usize], online: usize, local: (usize, usize)) -> Option<Plan> {
    let (r, n) = (local.0, local.1.max(1));
    match pin {
        Pinning::Off => None,
        Pinning::Cores(cores) => Some(Plan { runtime: cores[r % cores.len()], application: Vec::new() }),
        Pinning::Auto => {
            let share: &[usize] = if n * allowed.len() <= online {
                allowed
            } else if allowed.len() >= online {
                let k = allowed.len() / n;
                allowed.get(r % n * k..(r % n + 1) * k)?
            } else {
                return None;
            };
            let (&runtime, application) = share.split_last()?;
            (!application.is_empty()).then(|| Plan { runtime, application: application.to_vec() })
        }
    }
}

/// The launcher's node-local rank and rank count (Open MPI, MPICH/Hydra, Slurm), or `(0, 1)`.
pub(super) fn local_rank() -> (usize, usize) {
    const PAIRS: [(&str, &str); 3] = [
        ("OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"),
        ("MPI_LOCALRANKID", "MPI_LOCALNRANKS"),
        ("SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"),
    ];
    let var = |name: &str| std::env::var(name).ok()?.trim().parse::<usize>().ok();
    PAIRS.iter().find_map(|(r, n)| Some((var(r)?, var(n)?))).filter(|&(r, n)| r < n).unwrap_or((0, 1))
}

/// The cores the calling thread may run on, sorted; empty if the system does not say.
pub(super) fn allowed_cores() -> Vec<usize> {
    // SAFETY: `set` is a plain bit mask the call fills; its size is passed along.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// The machine's online cores.
pub(super) fn online_cores() -> usize {
    // SAFETY: sysconf only reads a system value.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}

/// Pins the calling thread to `cores`.
pub(super) fn pin_current_thread(cores: &[usize]) -> std::io::Result<()> {
    // SAFETY: `set` is a plain bit mask built here; its size is passed along.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cores.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(allowed: &[usize], online: usize, local: (usize, usize)) -> Option<(usize, Vec<usize>)> {
        plan(&Pinning::Auto, allowed, online, local).map(|p| (p.runtime, p.application))
    }

    #[test]
    fn auto_gives_the_runtime_thread_the_last_core_of_a_bound_rank() {
        // mpirun --bind-to l3cache, 2 ranks of 4 cores each on 8.
        assert_eq!(auto(&[4, 5, 6, 7], 8, (1, 2)), Some((7, vec![4, 5, 6])));
        // One rank alone on the machine.
        assert_eq!(auto(&[0, 1, 2, 3], 4, (0, 1)), Some((3, vec![0, 1, 2])));
    }

    #[test]
    fn auto_splits_an_unbound_set_between_the_ranks_of_a_node() {
        assert_eq!(auto(&[0, 1, 2, 3, 4, 5, 6, 7], 8, (0, 2)), Some((3, vec![0, 1, 2])));
        assert_eq!(auto(&[0, 1, 2, 3, 4, 5, 6, 7], 8, (1, 2)), Some((7, vec![4, 5, 6])));
    }

    #[test]
    fn auto_pins_nothing_where_ranks_would_share_a_core() {
        // 2 cores: 2 ranks bound to one core each (Open MPI's default for 2 ranks), 3 unbound ranks, 2 unbound.
        assert_eq!(auto(&[0], 2, (0, 2)), None);
        assert_eq!(auto(&[1], 2, (1, 2)), None);
        assert_eq!(auto(&[0, 1], 2, (2, 3)), None);
        assert_eq!(auto(&[0, 1], 2, (1, 2)), None);
        // A set shared by some ranks only (bound to a socket with more ranks than sockets): nothing.
        assert_eq!(auto(&[0, 1, 2, 3], 8, (2, 4)), None);
    }

    #[test]
    fn a_core_list_is_indexed_by_node_local_rank_and_off_pins_nothing() {
        let cores = Pinning::Cores(vec![3, 7]);
        assert_eq!(plan(&cores, &[0, 1], 8, (0, 3)).map(|p| p.runtime), Some(3));
        assert_eq!(plan(&cores, &[0, 1], 8, (1, 3)).map(|p| p.runtime), Some(7));
        assert_eq!(plan(&cores, &[0, 1], 8, (2, 3)).map(|p| p.runtime), Some(3));
        assert_eq!(plan(&Pinning::Off, &[0, 1, 2, 3], 4, (0, 1)), None);
    }
}
