//! Embeds an rpath to the libtorch that torch-sys linked against, so `target/release/nas-host` runs
//! without LD_LIBRARY_PATH (which still overrides it on another machine), and records the directory
//! so the binary can load libtorch's CUDA backend from it at start-up.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-env=NAS_TORCH_LIB_DIR={lib}");
    } else {
        println!("cargo:rustc-env=NAS_TORCH_LIB_DIR=");
    }
}
