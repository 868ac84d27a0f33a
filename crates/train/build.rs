//! Records the libtorch directory torch-sys linked against, so the device module can load
//! libtorch's CUDA backend from it at start-up, and gives this crate's own test binaries an rpath
//! to it (the nas-host binary's build script sets its own).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
    println!("cargo:rustc-env=NAS_TORCH_LIB_DIR={lib}");
    if !lib.is_empty() {
        // `rustc-link-arg` (not `-tests`): the unit tests in src/ link libtorch too.
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
