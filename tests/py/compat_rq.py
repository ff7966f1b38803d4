"""RQ end to end against one server: 5,000 jobs, 4 burst workers, failures and retries.

Usage: python3 compat_rq.py PORT. Prints a JSON summary; exits non-zero on any mismatch.
4,000 jobs add numbers, 900 fail twice and succeed on their third attempt (Retry max=3), and
100 always fail (Retry max=1) and must end in the failed registry after exactly 2 attempts.
"""
import json
import os
import subprocess
import sys
import time

import redis
from rq import Queue, Retry
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry

port = int(sys.argv[1])
here = os.path.dirname(os.path.abspath(__file__))
r = redis.Redis(port=port)
r.flushall()
q = Queue("rq-test", connection=r)

start = time.time()
adds, flakies, failing = [], [], []
with r.pipeline() as pipe:
    for i in range(4000):
        adds.append(q.enqueue("rq_jobs.add", i, i, pipeline=pipe, result_ttl=3600))
    for i in range(900):
        flakies.append(q.enqueue("rq_jobs.flaky", f"f{i}", 2, retry=Retry(max=3), pipeline=pipe, result_ttl=3600))
    for i in range(100):
        failing.append(q.enqueue("rq_jobs.always_fails", f"x{i}", retry=Retry(max=1), pipeline=pipe))
    pipe.execute()
assert len(q) == 5000, len(q)

env = dict(os.environ, PYTHONPATH=here, SHOAL_RQ_PORT=str(port))
url = f"redis://127.0.0.1:{port}/0"
workers = [
    subprocess.Popen(
        [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", url, "-w", "rq.worker.SimpleWorker",
         "--logging_level", "WARNING", "rq-test"],
        env=env, cwd=here, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(4)
]
for w in workers:
    # Failing jobs log their tracebacks; only a failed worker's log matters.
    _, log = w.communicate(timeout=600)
    assert w.returncode == 0, f"a worker failed:\n{log[-4000:]}"
seconds = time.time() - start

def fetch(jobs):
    return Job.fetch_many([j.id for j in jobs], connection=r)

for i, job in enumerate(fetch(adds)):
    assert job.get_status() == "finished", (job.id, job.get_status())
    assert job.return_value() == 2 * i, (job.id, job.return_value())
for i, job in enumerate(fetch(flakies)):
    assert job.get_status() == "finished", (job.id, job.get_status(), job.exc_info)
    assert job.return_value() == 3, (job.id, job.return_value())
    assert int(r.get(f"rq-test:attempts:f{i}")) == 3
for i, job in enumerate(fetch(failing)):
    assert job.get_status() == "failed", (job.id, job.get_status())
    assert int(r.get(f"rq-test:attempts:x{i}")) == 2, "one try and one retry"
finished = FinishedJobRegistry(queue=q).count
failed = FailedJobRegistry(queue=q).count
assert (finished, failed, len(q)) == (4900, 100, 0), (finished, failed, len(q))
print(json.dumps({"jobs": 5000, "seconds": round(seconds, 3), "finished": finished, "failed": failed}))
