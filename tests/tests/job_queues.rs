//! Job queues on Shoal as their users run them: BullMQ (npm), RQ (PyPI) and Sidekiq (Debian's
//! ruby-sidekiq) drive their Lua scripts, blocking pops, sorted sets and streams through real
//! workloads, and every job must complete exactly once.

use shoal_tests::Server;
use std::path::Path;
use std::process::Command;

/// `tests/compat`, where the Node.js workloads and their pinned packages live.
fn compat_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compat")
}

/// Runs a workload (`program script args...`) from `dir`; its last stdout line is the
/// workload's JSON summary.
fn workload(program: &str, dir: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} is installed (scripts/install-test-deps.sh): {e}"));
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
    assert!(
        compat_dir().join("node_modules/bullmq").is_dir(),
        "tests/compat/node_modules is missing: run scripts/install-test-deps.sh"
    );
    let summary = workload("node", &compat_dir(), "bullmq-workload.mjs", &[&s.port.to_string(), "20000"]);
    assert!(summary.contains("\"jobs\":20000"), "{summary}");
}

/// RQ: 5,000 jobs through 4 burst workers; 900 fail twice and succeed on a retry, 100 fail
/// for good after their one retry (see `tests/py/compat_rq.py`).
#[test]
fn rq_processes_jobs_with_failures_and_retries() {
    let s = Server::start();
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("py");
    let summary = workload("python3", &py, "compat_rq.py", &[&s.port.to_string()]);
    assert!(summary.contains("\"finished\": 4900, \"failed\": 100"), "{summary}");
}

/// Sidekiq: bulk-pushed jobs, jobs retried through the retry set and jobs scheduled for
/// later, which Sidekiq's poller moves with its Lua script (see
/// `tests/compat/sidekiq-workload.rb`).
#[test]
fn sidekiq_processes_bulk_retried_and_scheduled_jobs() {
    let s = Server::start();
    let summary = workload("ruby", &compat_dir(), "sidekiq-workload.rb", &[&s.port.to_string(), "2000"]);
    assert!(summary.contains("\"jobs\":2000"), "{summary}");
}
