// BullMQ end to end against one server (Shoal or redis-server): `node bullmq-workload.mjs PORT`.
//
// A main queue (named without a hash tag) takes 20,000 jobs from addBulk, some prioritised,
// some delayed, some failing before they succeed on a retry with backoff, and 4 workers with
// concurrency 50 drain it while QueueEvents streams the completions. A queue under a `{tag}`
// prefix runs a flow (a parent after its children) and repeatable jobs; a third one is rate
// limited. Every job must complete exactly once and every count must match; the script exits
// non-zero otherwise. It prints one JSON line with the main queue's jobs per second.

import { FlowProducer, Queue, QueueEvents, Worker } from 'bullmq';

const port = Number(process.argv[2]);
const jobs = Number(process.argv[3] ?? 20000);
if (!port) {
  console.error('usage: node bullmq-workload.mjs PORT [JOBS]');
  process.exit(2);
}
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const run = `${process.pid}-${Date.now()}`;
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
};

/** Resolves once `cond()` holds, or rejects after `ms` with `what`. */
async function waitFor(what, cond, ms = 120000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The main queue: throughput, priorities, delays, retries with backoff, QueueEvents. */
async function mainQueue() {
  const name = `main-${run}`;
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();
  const completedEvents = new Set();
  events.on('completed', ({ jobId }) => completedEvents.add(jobId));

  const done = new Map(); // job id -> times its processor succeeded
  const attempts = new Map(); // job id -> attempts seen
  const delayedSeen = [];
  const processor = async (job) => {
    const i = job.data.i;
    attempts.set(job.id, (attempts.get(job.id) ?? 0) + 1);
    if (i % 50 === 0 && job.attemptsMade < 2) {
      throw new Error(`planned failure ${job.attemptsMade + 1} of job ${i}`);
    }
    if (job.opts.delay) delayedSeen.push(Date.now() - job.timestamp);
    done.set(job.id, (done.get(job.id) ?? 0) + 1);
    return i * 2;
  };
  const start = Date.now();
  const workers = [];
  for (let w = 0; w < 4; w++) {
    workers.push(new Worker(name, processor, { connection, concurrency: 50 }));
  }
  for (let from = 0; from < jobs; from += 1000) {
    const batch = [];
    for (let i = from; i < Math.min(from + 1000, jobs); i++) {
      const opts = { jobId: `job-${i}`, removeOnComplete: false };
      if (i % 10 === 1) opts.priority = 1 + (i % 7);
      if (i % 100 === 2) opts.delay = 300;
      if (i % 50 === 0) Object.assign(opts, { attempts: 3, backoff: { type: 'exponential', delay: 20 } });
      batch.push({ name: 'work', data: { i }, opts });
    }
    await queue.addBulk(batch);
  }
  await waitFor('every main job to complete', () => done.size === jobs);
  const seconds = (Date.now() - start) / 1000;
  await waitFor('QueueEvents to report every completion', () => completedEvents.size === jobs);
  await Promise.all(workers.map((w) => w.close()));

  for (const [id, n] of done) check(n === 1, `job ${id} completed ${n} times`);
  const retried = [...attempts].filter(([id]) => Number(id.slice(4)) % 50 === 0);
  check(retried.length === Math.ceil(jobs / 50), `retried jobs seen: ${retried.length}`);
  for (const [id, n] of retried) check(n === 3, `job ${id} ran ${n} times, not 3`);
  check(delayedSeen.length > 0 && delayedSeen.every((ms) => ms >= 300), `a delayed job ran early: ${delayedSeen}`);
  const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized');
  check(counts.completed === jobs, `completed count ${counts.completed}`);
  for (const state of ['failed', 'active', 'waiting', 'delayed', 'prioritized']) {
    check(counts[state] === 0, `${state} count ${counts[state]}`);
  }
  // A job that exists at any JOBS (the bench's default is 20,000; smaller runs are allowed).
  const probe = Math.min(4242, jobs - 1);
  const sample = await queue.getJob(`job-${probe}`);
  check(sample?.returnvalue === probe * 2, `job-${probe}'s return value: ${sample?.returnvalue}`);
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { jobs, seconds, jobs_per_sec: Math.round(jobs / seconds) };
}

/** Priorities order waiting jobs: with one slow worker started after the adds, lower numbers
 * (higher priority) run first. */
async function priorities() {
  const name = `prio-${run}`;
  const queue = new Queue(name, { connection });
  const order = [];
  for (const p of [5, 1, 3, 2, 4]) await queue.add('p', { p }, { priority: p });
  const worker = new Worker(name, async (job) => order.push(job.data.p), { connection, concurrency: 1 });
  await waitFor('prioritised jobs', () => order.length === 5);
  check(order.join() === '1,2,3,4,5', `priority order ${order}`);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
}

/** A flow and repeatable jobs on a queue under a `{tag}` prefix (one hash slot). */
async function taggedQueue() {
  const prefix = '{tag}';
  const name = `tagged-${run}`;
  const queue = new Queue(name, { connection, prefix });
  const seen = [];
  let parentValues = null;
  let repeats = 0;
  const worker = new Worker(
    name,
    async (job) => {
      if (job.name === 'tick') {
        repeats++;
        return null;
      }
      seen.push(job.name);
      if (job.name === 'parent') parentValues = await job.getChildrenValues();
      return job.name.toUpperCase();
    },
    { connection, prefix, concurrency: 5 },
  );
  const flow = new FlowProducer({ connection, prefix });
  await flow.add({
    name: 'parent',
    queueName: name,
    children: [1, 2, 3].map((c) => ({ name: `child${c}`, queueName: name, data: { c } })),
  });
  await waitFor('the flow', () => parentValues !== null);
  check(seen.indexOf('parent') === 3, `parent ran before its children: ${seen}`);
  const values = Object.values(parentValues).sort();
  check(values.join() === 'CHILD1,CHILD2,CHILD3', `children's values: ${values}`);

  await queue.upsertJobScheduler('every-50ms', { every: 50, limit: 5 }, { name: 'tick' });
  await waitFor('5 repeats', () => repeats >= 5);
  await new Promise((r) => setTimeout(r, 300));
  check(repeats === 5, `repeatable job ran ${repeats} times, limit 5`);
  await worker.close();
  await flow.close();
  await queue.obliterate({ force: true });
  await queue.close();
}

/** A rate-limited queue runs no more than `max` jobs per `duration`. */
async function rateLimited() {
  const name = `limited-${run}`;
  const queue = new Queue(name, { connection });
  const stamps = [];
  const worker = new Worker(name, async () => stamps.push(Date.now()), {
    connection,
    concurrency: 20,
    limiter: { max: 20, duration: 200 },
  });
  await queue.addBulk(Array.from({ length: 100 }, (_, i) => ({ name: 'r', data: { i } })));
  await waitFor('rate-limited jobs', () => stamps.length === 100);
  const span = stamps[stamps.length - 1] - stamps[0];
  // 100 jobs at 20 per 200 ms need 4 full windows after the first.
  check(span >= 4 * 200 * 0.9, `100 jobs limited to 20 per 200ms took only ${span}ms`);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
}

try {
  const result = await mainQueue();
  await priorities();
  await taggedQueue();
  await rateLimited();
  if (failures.length) {
    console.error(`bullmq workload failed:\n  ${failures.slice(0, 20).join('\n  ')}`);
    process.exit(1);
  }
  console.log(JSON.stringify(result));
  process.exit(0);
} catch (e) {
  console.error(`bullmq workload failed: ${e.stack ?? e}`);
  process.exit(1);
}
