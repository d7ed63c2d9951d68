-- POST the body in BODY (env) to the path given, with the bench API key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = os.getenv("BENCH_KEY") or "bench-key-000000000001"
wrk.body = os.getenv("BODY")

function done(summary, latency, requests)
  -- wrk runs response() per thread; this summary prints the standard figures machine-readably.
  io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d errors_status=%d errors_connect=%d errors_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
