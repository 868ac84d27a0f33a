//! How much memory a dataset may use: `MemAvailable` from /proc/meminfo, lowered to what the
//! process's cgroup still allows (Slurm jobs and containers often have less than the machine).

use std::path::Path;

/// Bytes of memory available to this process now, or `None` where it cannot be told (not Linux).
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let mem_available = meminfo.as_deref().and_then(parse_meminfo);
    let cgroup = cgroup_headroom(Path::new("/sys/fs/cgroup"));
    match (mem_available, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `MemAvailable` in bytes from the text of /proc/meminfo.
pub(crate) fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    let unit = parts.next().unwrap_or("B");
    let scale = match unit {
        "kB" | "KB" | "kiB" => 1024,
        "mB" | "MB" => 1024 * 1024,
        _ => 1,
    };
    Some(value * scale)
}

/// What the cgroup's memory limit still leaves (v2 `memory.max` − `memory.current`, or v1's
/// `memory.limit_in_bytes` − `memory.usage_in_bytes`); `None` when there is no limit.
fn cgroup_headroom(root: &Path) -> Option<u64> {
    let read = |p: &Path| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    // The process's own cgroup (v2: one line "0::/PATH").
    let own = std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("0::").map(|p| p.trim_start_matches('/').to_string()))
    });
    let v2_dirs = own
        .iter()
        .map(|p| root.join(p))
        .chain(std::iter::once(root.to_path_buf()));
    for dir in v2_dirs {
        if let (Some(max), Some(current)) = (read(&dir.join("memory.max")), read(&dir.join("memory.current"))) {
            return Some(max.saturating_sub(current));
        }
    }
    let v1 = root.join("memory");
    let (limit, usage) = (
        read(&v1.join("memory.limit_in_bytes"))?,
        read(&v1.join("memory.usage_in_bytes"))?,
    );
    // v1 reports "no limit" as a huge number.
    (limit < (1 << 60)).then(|| limit.saturating_sub(usage))
}

#[cfg(test)]
mod tests {
    #[test]
    fn meminfo_is_parsed_in_bytes() {
        let text = "MemTotal:       16318860 kB\nMemFree:         1000 kB\nMemAvailable:    2048 kB\n";
        assert_eq!(super::parse_meminfo(text), Some(2048 * 1024));
        assert_eq!(super::parse_meminfo("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn this_machine_reports_some_memory() {
        if cfg!(target_os = "linux") {
            assert!(super::available_memory().unwrap() > 0);
        }
    }
}
