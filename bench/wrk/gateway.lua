-- bench/gateway.sh: POST the body in BODY (env) with the bench API key, like post.lua, and also print p99.9.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = os.getenv("BENCH_KEY") or "bench-key-000000000001"
wrk.body = os.getenv("BODY")

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d errors_status=%d errors_connect=%d errors_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
