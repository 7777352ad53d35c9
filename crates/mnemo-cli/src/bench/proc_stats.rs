//! What `/proc` says about this process and the machine: peak and current RSS, CPU seconds,
//! busy jiffies, the CPU model; rounding for the JSON output.
use std::time::Instant;

use anyhow::{Context, anyhow, bail};

/// `x` rounded to `digits` decimals.
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A `kB` field of `/proc/self/status`, in MB.
fn status_mb(field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or_else(|| anyhow!("/proc/self/status has no {field}"))?;
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("/proc/self/status: bad {field} line `{line}`"))?;
    Ok(kb / 1024.0)
}

/// Peak resident memory of this process, in MB.
pub(crate) fn peak_rss_mb() -> anyhow::Result<f64> {
    status_mb("VmHWM:")
}

/// Resident memory of this process now, in MB.
pub(crate) fn rss_now_mb() -> anyhow::Result<f64> {
    status_mb("VmRSS:")
}

/// Clock ticks per second of `/proc` times (100 on Linux).
pub(crate) fn clock_ticks() -> f64 {
    100.0
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`.
pub(crate) fn own_cpu_s() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("/proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or(&stat);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((ticks(11) + ticks(12)) / clock_ticks())
}

/// (busy, total) jiffies over all CPUs, from `/proc/stat`.
pub(crate) fn cpu_jiffies() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").context("/proc/stat")?;
    let first = stat.lines().next().unwrap_or_default();
    let v: Vec<u64> = first
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        bail!("/proc/stat: unexpected first line `{first}`");
    }
    let total: u64 = v.iter().sum();
    Ok((total - v[3] - v[4], total))
}

/// The CPU model (`model name` of `/proc/cpuinfo`), or `unknown`.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Wait (at most `max_wait_s`) until the machine's CPUs are at most 10 % busy.
pub(crate) fn wait_for_idle(max_wait_s: f64) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        let (b0, t_0) = cpu_jiffies()?;
        std::thread::sleep(std::time::Duration::from_secs(1));
        let (b1, t_1) = cpu_jiffies()?;
        let busy = (b1 - b0) as f64 / (t_1 - t_0).max(1) as f64;
        if busy <= 0.10 || t0.elapsed().as_secs_f64() > max_wait_s {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(4));
    }
}
