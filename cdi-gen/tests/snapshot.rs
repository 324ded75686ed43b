//! The NVML snapshot reads what the command needs: the GPU-instance
//! profile tables (up to 14 profile and capacity queries per GPU) only for
//! `list --profiles`, everything else always.

use mig_cdi_gen::nvml::{take_snapshot, Reads};
use mig_cdi_testkit::e2e::sim_lib;
use mig_cdi_testkit::paths::machine_file;

#[test]
fn profiles_are_read_only_when_asked() {
    // The only test of this process: nothing else reads the variable.
    std::env::set_var("NVML_SIM_MACHINE", machine_file("a100x8"));
    let lib = sim_lib();
    let lean = take_snapshot(lib.as_os_str(), Reads::default()).unwrap();
    let full = take_snapshot(
        lib.as_os_str(),
        Reads {
            profiles: true,
            ..Reads::default()
        },
    )
    .unwrap();
    assert!(lean.gpus.iter().all(|g| g.profiles.is_empty()));
    let mig_capable: Vec<_> = full.gpus.iter().filter(|g| g.mig.is_some()).collect();
    assert!(!mig_capable.is_empty());
    assert!(mig_capable.iter().all(|g| !g.profiles.is_empty()));
    // Nothing else differs.
    let mut without = full.clone();
    for gpu in &mut without.gpus {
        gpu.profiles.clear();
    }
    assert_eq!(lean, without);
}
