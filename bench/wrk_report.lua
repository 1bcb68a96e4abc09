-- wrk script: after wrk's own summary, one machine-readable line for bench/run.
-- Latencies are in microseconds, as wrk keeps them.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "wrk-report rps=%.1f requests=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d socket_errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6), summary.requests,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status))
end
