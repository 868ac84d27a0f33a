//! Embeds an rpath to the libtorch that torch-sys linked against, so `target/release/nas-host` runs
//! without LD_LIBRARY_PATH (which still overrides it on another machine). The device module of
//! nas-train records the same directory to load libtorch's CUDA backend from.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
