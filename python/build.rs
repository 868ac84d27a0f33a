//! Embeds an rpath to the libtorch torch-sys linked against (PyTorch 2.11.0's, from the venv it
//! was built in), as the CLI does. `nas_host/__init__.py` imports torch first when it is installed,
//! so the process holds one libtorch either way.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
