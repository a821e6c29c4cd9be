# shellcheck shell=bash
# Environment for building celer and running its ranks on this kind of machine.
# Sourced by ./x; source it yourself to run tests or mpirun by hand:  . .ci/env.sh
# Variables that are already set are left alone.

# Rust installed by rustup but not on PATH (e.g. a CI environment without the login profile).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# OpenMPI: mpirun refuses to run as root without these two (CI and containers run as root).
export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT:-1}"
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}"
# More ranks than cores (the same as --oversubscribe): tests run 2-4 ranks on 2 cores.
export OMPI_MCA_rmaps_base_oversubscribe="${OMPI_MCA_rmaps_base_oversubscribe:-1}"
# Container-safe transports: shared memory without CMA/ptrace, no ssh, only self + shared memory.
export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-none}"
export OMPI_MCA_plm_rsh_agent="${OMPI_MCA_plm_rsh_agent:-false}"
export OMPI_MCA_btl="${OMPI_MCA_btl:-self,vader}"

# Vulkan: use Mesa's lavapipe (CPU) only where nothing else is configured or installed, so a
# machine with a GPU driver keeps it. Never overrides VK_DRIVER_FILES / VK_ICD_FILENAMES.
celer_other_vulkan_icd() {
    # True if a driver manifest other than Mesa's (whose libraries are named libvulkan_*.so) is
    # installed, e.g. NVIDIA's nvidia_icd.json, or a render node a Mesa GPU driver could use exists.
    local dir f
    for dir in /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d \
        "${XDG_CONFIG_HOME:-$HOME/.config}/vulkan/icd.d" "${XDG_DATA_HOME:-$HOME/.local/share}/vulkan/icd.d"; do
        for f in "$dir"/*.json; do
            [ -f "$f" ] || continue
            grep -q 'libvulkan_' "$f" || return 0
        done
    done
    compgen -G '/dev/dri/renderD*' >/dev/null
}
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${VK_ICD_FILENAMES:-}" ] && ! celer_other_vulkan_icd; then
    for celer_lvp in /usr/share/vulkan/icd.d/lvp_icd.*.json; do
        if [ -f "$celer_lvp" ]; then
            export VK_DRIVER_FILES="$celer_lvp"
            break
        fi
    done
    unset celer_lvp
fi
unset -f celer_other_vulkan_icd
