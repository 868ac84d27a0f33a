//! What a user sees from the binary: logs without colour codes when stderr is not a terminal,
//! JSON logs on request, and the architecture summary.

mod common;

use std::process::{Command, Stdio};

use common::plugin;

/// A search whose agent crashes after a few actions: it logs the plugin's output and an error.
fn failing_search(dir: &std::path::Path, envs: &[(&str, &str)]) -> String {
    let config = dir.join("hostile.toml");
    std::fs::write(&config, "[plugins.hostile]\nmode = \"panic\"\nafter = 3\n").unwrap();
    let stderr_path = dir.join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_nas-host"));
    command
        .args(["search", "--config"])
        .arg(&config)
        .args(["--agent"])
        .arg(plugin("hostile"))
        .args(["--reward"])
        .arg(plugin("accuracy"))
        .args(["--evaluator", "synthetic", "--episodes", "20", "--db"])
        .arg(dir.join("runs.sqlite"))
        .env("NAS_CACHE_DIR", dir)
        .env_remove("NO_COLOR")
        .env_remove("NAS_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(stderr);
    for (key, value) in envs {
        command.env(key, value);
    }
    let status = command.status().unwrap();
    assert!(!status.success(), "the hostile agent makes the search fail");
    std::fs::read_to_string(stderr_path).unwrap()
}

#[test]
fn logs_written_to_a_file_carry_no_escape_codes() {
    let dir = tempfile::tempdir().unwrap();
    let text = failing_search(dir.path(), &[]);
    assert!(text.contains("INFO") && text.contains("panics on purpose"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in a file: {text:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = failing_search(dir.path(), &[("NAS_LOG_FORMAT", "json")]);
    let mut log_lines = 0;
    for line in text.lines().filter(|l| !l.starts_with("error: ")) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            value["level"].is_string() && value["fields"]["message"].is_string(),
            "{line}"
        );
        log_lines += 1;
    }
    assert!(log_lines > 0, "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("error: "),
        "the error still ends the output"
    );
}

#[test]
fn show_arch_prints_the_layer_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_nas-host"))
        .args(["show-arch", "conv(32,3) pool(5,3) fc(64)", "--dataset", "cifar5"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    for expected in [
        "conv(32,3) (Conv2d)",
        "[32, 30, 30]",
        "pool(5,3) (MaxPool2d)",
        "[32, 9, 9]",
        "fc(64) (Linear)",
        "classifier (Linear)",
        "[5]",
        "Total params: 167,173",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_nas-host"))
        .args([
            "show-arch",
            "conv(32,5) conv(32,5) conv(32,5) conv(32,5) conv(32,5) conv(32,5) conv(32,5)",
            "--dataset",
            "mnist3",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot be built for mnist3"));
}

/// `nas-host show-arch … | head -1` and the like: a reader that stops early is normal on Unix, and
/// the command ends quietly instead of panicking with "failed printing to stdout".
#[test]
fn printing_commands_end_quietly_when_the_reader_goes_away() {
    for args in [
        vec!["show-arch", "--dataset", "mnist3", "conv(10,1) fc(64)", "--json"],
        vec!["plugins", "list"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nas-host"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the binary (which takes a moment to start) writes.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "nas-host {args:?}: {stderr}");
    }
}
