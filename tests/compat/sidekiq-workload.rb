# Sidekiq end to end against one server: `ruby sidekiq-workload.rb PORT [JOBS]`.
#
# Jobs pushed in bulk, jobs that fail once and succeed on a retry (through Sidekiq's retry
# set and scheduled poller, which moves due jobs with its Lua script), and jobs scheduled
# for later, all processed by an in-process Sidekiq server with 10 threads. Every job must
# complete exactly once; the script exits non-zero otherwise and prints a JSON summary.
require "json"
require "logger"
require "sidekiq"
require "sidekiq/api"
require "sidekiq/launcher"

PORT = Integer(ARGV[0])
JOBS = Integer(ARGV[1] || 2000)
URL = "redis://127.0.0.1:#{PORT}/0"
# Client and server share one process, so one pool serves the 10 job threads, the jobs'
# own calls, the fetcher, the scheduler and the heartbeat.
Sidekiq.configure_client { |c| c.redis = { url: URL, size: 25 } }
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
Sidekiq.logger.level = Logger::FATAL
# Due retries and scheduled jobs are looked for every half second instead of every few.
Sidekiq.options[:poll_interval_average] = 0.5
Sidekiq.options[:average_scheduled_poll_interval] = 0.5

# Completions counted in this process, by job.
module Tally
  @lock = Mutex.new
  @done = Hash.new(0)
  def self.done(id) = @lock.synchronize { @done[id] += 1 }
  def self.snapshot = @lock.synchronize { @done.dup }
end

class AddWorker
  include Sidekiq::Worker
  def perform(i, a, b)
    raise "wrong sum" unless a + b == 2 * i
    Tally.done("add-#{i}")
  end
end

class FlakyWorker
  include Sidekiq::Worker
  sidekiq_options retry: 3
  sidekiq_retry_in { |_count, _exception| 1 }
  def perform(i)
    attempt = Sidekiq.redis { |r| r.incr("sq:attempts:#{i}") }
    raise "planned failure of #{i}" if attempt == 1
    Tally.done("flaky-#{i}")
  end
end

class LaterWorker
  include Sidekiq::Worker
  def perform(i, due)
    raise "ran #{due - Time.now.to_f}s early" if Time.now.to_f < due - 0.05
    Tally.done("later-#{i}")
  end
end

def fail!(msg)
  warn "sidekiq workload failed: #{msg}"
  exit 1
end

Sidekiq.redis(&:flushdb)
flaky = JOBS / 20
later = JOBS / 20
adds = JOBS - flaky - later
start = Time.now
Sidekiq::Client.push_bulk("class" => AddWorker, "args" => (0...adds).map { |i| [i, i, i] })
Sidekiq::Client.push_bulk("class" => FlakyWorker, "args" => (0...flaky).map { |i| [i] })
due = Time.now.to_f + 1
(0...later).each { |i| LaterWorker.perform_at(due, i, due) }
fail!("scheduled set holds #{Sidekiq::ScheduledSet.new.size}") unless Sidekiq::ScheduledSet.new.size == later

launcher = Sidekiq::Launcher.new(Sidekiq.options.merge(queues: ["default"], concurrency: 10))
launcher.run
deadline = Time.now + 120
sleep 0.05 until Tally.snapshot.size == JOBS || Time.now > deadline
seconds = Time.now - start
# Sidekiq's processed and failed counters reach Redis with the next heartbeat.
sleep 0.1 until Sidekiq::Stats.new.processed >= JOBS + flaky || Time.now > deadline + 15
launcher.stop
done = Tally.snapshot
fail!("#{done.size} of #{JOBS} jobs completed") unless done.size == JOBS
twice = done.select { |_, n| n != 1 }
fail!("jobs completed more than once: #{twice.first(5)}") unless twice.empty?
attempts = Sidekiq.redis { |r| (0...flaky).map { |i| r.get("sq:attempts:#{i}").to_i } }
fail!("flaky attempts #{attempts.tally}") unless attempts.all? { |n| n == 2 }
fail!("retry set not empty: #{Sidekiq::RetrySet.new.size}") unless Sidekiq::RetrySet.new.size.zero?
fail!("dead jobs: #{Sidekiq::DeadSet.new.size}") unless Sidekiq::DeadSet.new.size.zero?
stats = Sidekiq::Stats.new
fail!("processed #{stats.processed}, failed #{stats.failed}") unless stats.processed == JOBS + flaky && stats.failed == flaky
puts JSON.generate(jobs: JOBS, seconds: seconds.round(3), retried: flaky, scheduled: later)
exit 0
