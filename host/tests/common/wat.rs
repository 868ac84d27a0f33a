//! Hand-written WAT plugins (tests/plugins/*.wat) made into components, for sandbox tests of what a
//! plugin built with the SDK cannot do.

use std::path::{Path, PathBuf};

/// The WASI interfaces the WAT plugins import, as far as they use them.
const WASI_SUBSET: &str = r#"
package test:wat-plugins;

world reward {
    import wasi:clocks/monotonic-clock@0.2.0;
    export nas:plugin/reward@0.1.0;
}

package wasi:io@0.2.0 {
    interface poll {
        resource pollable {
            block: func();
        }
    }
}

package wasi:clocks@0.2.0 {
    interface monotonic-clock {
        use wasi:io/poll@0.2.0.{pollable};
        subscribe-duration: func(when: u64) -> pollable;
    }
}
"#;

/// Builds `tests/plugins/reward.wat` with the plugin name `name` and the module fields `extra`
/// into a reward-shaper component at `dir/FILE_STEM.wasm`.
pub fn wat_reward(dir: &Path, file_stem: &str, name: &str, extra: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let template = std::fs::read_to_string(root.join("tests/plugins/reward.wat")).unwrap();
    let escaped_name: String = name.bytes().map(|b| format!("\\{b:02x}")).collect();
    let text = template
        .replace("{name}", &escaped_name)
        .replace("{name_len}", &name.len().to_string())
        .replace(";; {extra}", extra);
    let module = wat::parse_str(&text).unwrap_or_else(|e| panic!("reward.wat: {e}"));

    let mut resolve = wit_parser::Resolve::default();
    resolve
        .push_file(root.join("crates/plugin-runtime/wit/nas-plugin@0.1.0.wit"))
        .expect("contract 0.1.0's WIT");
    let package = resolve
        .push_str("wasi-subset.wit", WASI_SUBSET)
        .expect("the WASI subset");
    let world = resolve.select_world(&[package], Some("reward")).unwrap();
    encode(module, &resolve, world, &dir.join(format!("{file_stem}.wasm")))
}

/// Embeds `world` into the core module and writes the component to `path`.
fn encode(mut module: Vec<u8>, resolve: &wit_parser::Resolve, world: wit_parser::WorldId, path: &Path) -> PathBuf {
    wit_component::embed_component_metadata(&mut module, resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap_or_else(|e| panic!("encoding {}: {e:#}", path.display()));
    std::fs::write(path, component).unwrap();
    path.to_path_buf()
}

/// Builds `tests/plugins/assessor.wat`, whose `assess` answers with the result tag and verdict
/// bytes given, into an assessor component at `dir/FILE_STEM.wasm`.
pub fn wat_assessor(dir: &Path, file_stem: &str, result_tag: u8, verdict: u8) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let template = std::fs::read_to_string(root.join("tests/plugins/assessor.wat")).unwrap();
    let text = template
        .replace("{result_tag}", &result_tag.to_string())
        .replace("{verdict}", &verdict.to_string());
    let module = wat::parse_str(&text).unwrap_or_else(|e| panic!("assessor.wat: {e}"));
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_file(root.join("plugin-sdk/wit/nas-plugin.wit"))
        .expect("the contract's WIT");
    let world = resolve.select_world(&[package], Some("assessor-plugin")).unwrap();
    encode(module, &resolve, world, &dir.join(format!("{file_stem}.wasm")))
}
