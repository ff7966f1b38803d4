//! Job queues on Shoal as their users run them: BullMQ (npm) drives its Lua scripts, blocking
//! pops and streams through a real workload, and every job must complete exactly once.

use shoal_tests::Server;
use std::path::Path;
use std::process::Command;

/// `tests/compat`, where the Node.js workloads and their pinned packages live.
fn compat_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compat")
}

/// Runs a Node.js workload from `tests/compat` against `port`; its last stdout line is the
/// workload's JSON summary.
fn node_workload(script: &str, args: &[&str]) -> String {
    let dir = compat_dir();
    assert!(
        dir.join("node_modules/bullmq").is_dir(),
        "tests/compat/node_modules is missing: run scripts/install-test-deps.sh"
    );
    let out = Command::new("node").arg(script).args(args).current_dir(&dir).output().expect("node is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().last().unwrap_or_default().to_string()
}

/// 20,000 jobs through 4 workers of concurrency 50, with priorities, delays, retries with
/// backoff, QueueEvents, a flow, repeatable jobs and a rate limiter, on queues with and
/// without a hash tag (see `tests/compat/bullmq-workload.mjs` for each check).
#[test]
fn bullmq_completes_every_job_exactly_once() {
    let s = Server::start();
    let summary = node_workload("bullmq-workload.mjs", &[&s.port.to_string(), "20000"]);
    assert!(summary.contains("\"jobs\":20000"), "{summary}");
}
