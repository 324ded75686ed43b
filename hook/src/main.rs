//! mig-cdi-hook: placeholder until the hook issue lands.
fn main() {
    eprintln!("mig-cdi-hook: not implemented yet");
    std::process::exit(1);
}
