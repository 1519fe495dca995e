-- wrk script for scripts/bench/serve.sh's GETs, so that the client (wrk, in C) and not Python
-- sets the ceiling:
--
--   wrk ... -s serve_wrk.lua URL
--
-- No Lua runs per request and no answer is copied into Lua: wrk's own fast path. When wrk
-- finishes it prints one line: `RESULT <requests per second> <p50 ms> <p99 ms> <failures>`
-- (failures: answers other than 2xx/3xx, and socket errors).
--
-- The lock + write + unlock cycles come from a Rust load generator instead
-- (crates/stateseal-server/examples/lock_write_unlock.rs): wrk's Lua builds every 1 MiB body
-- as a new string, and on a 2-core machine that client work took CPU from the server.

function done(summary, latency, requests)
  local e = summary.errors
  local failures = e.connect + e.read + e.write + e.timeout + e.status
  print(string.format("RESULT %.1f %.3f %.3f %d", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, failures))
end
