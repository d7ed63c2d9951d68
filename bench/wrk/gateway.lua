-- bench/gateway.sh: POST the body in BODY (env) with the bench API key, like post.lua, timing every request
-- itself. Run it with as many threads as connections (wrk -tN -cN): each thread then has one connection, so
-- request() and response() alternate and their difference is that request's latency.
--
-- Why not wrk's own histogram: wrk 4.x "corrects" it for coordinated omission before done() sees it
-- (stats_correct in wrk.c: every sample of at least twice the mean latency per connection gets copies at
-- sample - mean, sample - 2 x mean, ...). In a closed-loop run against a heavy-tailed server that invents
-- latencies nobody saw: with 10% of calls at 800 ms wrk reports a p90 of ~300 ms where every request took
-- either ~25 ms or ~800 ms. Its numeric buckets are not readable from Lua in wrk 4.1, so it cannot be undone.
-- The RESULT line's p50_us..p999_us and max_us are measured; wrk_p99_us is wrk's corrected p99 (what
-- bench/wrk/post.lua prints), for comparison.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } gateway_timespec;
  int clock_gettime(int clock, gateway_timespec *ts);
]]
local ts = ffi.new("gateway_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = os.getenv("BENCH_KEY") or "bench-key-000000000001"
wrk.body = os.getenv("BODY")
-- HEADERS (env): more headers, "Name: value|Name: value" (bench/openai.sh: Portkey's and a bearer key)
for name, value in string.gmatch(os.getenv("HEADERS") or "", "([^:|]+):%s*([^|]*)") do
  wrk.headers[name] = value
end

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

-- per thread (each thread runs its own copy of this script)
local prepared, started, n = nil, nil, 0
lat = {}
function request()
  prepared = prepared or wrk.format()
  started = now_us()
  return prepared
end

function response(status, headers, body)
  if started then
    n = n + 1
    lat[n] = now_us() - started
    started = nil
  end
end

function done(summary, latency, requests)
  local all = {}
  local connections = 0
  for _, thread in ipairs(threads) do
    connections = connections + 1
    for _, v in ipairs(thread:get("lat")) do all[#all + 1] = v end
  end
  table.sort(all)
  local function percentile(p)
    if #all == 0 then return 0 end
    return all[math.max(1, math.min(#all, math.ceil(p / 100 * #all)))]
  end
  io.write(string.format("RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d wrk_p99_us=%d samples=%d threads=%d errors_status=%d errors_connect=%d errors_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    percentile(50), percentile(90), percentile(99), percentile(99.9), all[#all] or 0, latency:percentile(99), #all, connections,
    summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
