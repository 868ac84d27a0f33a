//! Picks the libtorch device. libtorch registers its CUDA backend only when `libtorch_cuda.so` is
//! loaded, and the linker drops that library as unneeded; loading it here when present lets one
//! binary run on CPU machines and GPU machines alike.

use std::path::PathBuf;
use std::sync::OnceLock;

use nas_config::DeviceChoice;
use tch::Device;

static CUDA_LIBRARY: OnceLock<Option<libloading::Library>> = OnceLock::new();

/// Candidate paths of `libtorch_cuda.so`: each LD_LIBRARY_PATH entry, then the libtorch directory
/// the binary was built against, then the plain name (the dynamic loader's own search).
fn cuda_library_candidates() -> Vec<PathBuf> {
    let name = "libtorch_cuda.so";
    let mut candidates: Vec<PathBuf> = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join(name))
        .collect();
    let built_against = env!("NAS_TORCH_LIB_DIR");
    if !built_against.is_empty() {
        candidates.push(PathBuf::from(built_against).join(name));
    }
    candidates.push(PathBuf::from(name));
    candidates
}

/// Loads libtorch's CUDA backend once, if it exists; returns whether it is loaded.
pub fn load_cuda_backend() -> bool {
    CUDA_LIBRARY
        .get_or_init(|| {
            cuda_library_candidates().into_iter().find_map(|path| {
                if path.components().count() > 1 && !path.exists() {
                    return None;
                }
                // SAFETY: libtorch_cuda's initialisers only register the CUDA backend with libtorch.
                match unsafe { libloading::Library::new(&path) } {
                    Ok(lib) => {
                        tracing::debug!("loaded {}", path.display());
                        Some(lib)
                    }
                    Err(e) => {
                        tracing::debug!("could not load {}: {e}", path.display());
                        None
                    }
                }
            })
        })
        .is_some()
}

/// Resolves the choice to a libtorch device.
pub fn select(choice: DeviceChoice) -> anyhow::Result<Device> {
    if choice == DeviceChoice::Cpu {
        return Ok(Device::Cpu);
    }
    let cuda = load_cuda_backend() && tch::Cuda::is_available();
    match (choice, cuda) {
        (_, true) => Ok(Device::Cuda(0)),
        (DeviceChoice::Cuda, false) => anyhow::bail!(
            "--device cuda was asked for, but no CUDA device is usable (libtorch_cuda.so not found or no GPU); use --device cpu"
        ),
        _ => Ok(Device::Cpu),
    }
}
