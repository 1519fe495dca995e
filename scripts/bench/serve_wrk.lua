-- wrk script for scripts/bench/serve.sh: the load generator for `stateseal serve`, so that the
-- client (wrk, in C) and not Python sets the ceiling. Two modes, chosen by the first argument:
--
--   wrk ... -s serve_wrk.lua URL -- get
--       plain GETs of URL (every answer must be 200).
--   wrk -tN -cN ... -s serve_wrk.lua http://HOST:PORT -- cycle BODY_FILE PATH_PREFIX
--       one connection per thread, each owning state PATH_PREFIX<thread>: it stores BODY_FILE
--       once (serial 1), then runs LOCK, POST ?ID= (the next serial, with Content-MD5 as
--       OpenTofu sends it), UNLOCK over and over; a cycle's latency is LOCK sent to UNLOCK
--       answered. BODY_FILE is a compact state or an OpenTofu envelope containing `"serial":1,`.
--
-- When wrk finishes it prints one line: `RESULT <per second> <p50 ms> <p99 ms> <failures>`
-- (requests for get, cycles for cycle; failures: non-200 answers and socket errors).
-- Content-MD5 and the clock come from libcrypto and libc through LuaJIT's FFI (wrk links both).

local ffi = require("ffi")
ffi.cdef [[
unsigned char *MD5(const unsigned char *d, size_t n, unsigned char *md);
int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n);
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
]]

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

local prefix, suffix, path
mode = nil -- global: done() runs in wrk's main Lua state and reads it from a thread
local step, serial, cycle_start = "seed", 1, 0
lat = {}
failed = 0
local crypto, ts, md, b64

local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local function content_md5(body)
  crypto.MD5(body, #body, md)
  local n = crypto.EVP_EncodeBlock(b64, md, 16)
  return ffi.string(b64, n)
end

local function lock_info()
  return string.format(
    '{"ID":"%08x-%04x-0000-0000-000000000000","Operation":"OperationTypeApply","Info":"",' ..
    '"Who":"bench@local","Version":"1.15.5","Created":"2026-11-30T00:00:00Z","Path":""}',
    id, serial % 65536)
end

local function state_body(n)
  return prefix .. tostring(n) .. suffix
end

function init(args)
  mode = args[1]
  if mode == "cycle" then
    local f = assert(io.open(args[2], "rb"))
    local template = f:read("*a")
    f:close()
    local at = assert(template:find('"serial":1,', 1, true), "no \"serial\":1, in the body")
    prefix = template:sub(1, at + #'"serial":' - 1)
    suffix = template:sub(at + #'"serial":1')
    path = args[3] .. id
    crypto = ffi.load("crypto")
    ts = ffi.new("bench_timespec")
    md = ffi.new("unsigned char[16]")
    b64 = ffi.new("unsigned char[32]")
  elseif mode == "get" then
    -- No Lua per request and no copy of each 1 MiB answer into Lua: wrk's own fast path.
    request = nil
    response = nil
  else
    error("the first argument is get or cycle")
  end
end

function request()
  if step == "seed" then
    local body = state_body(serial)
    return wrk.format("POST", path, { ["Content-MD5"] = content_md5(body) }, body)
  elseif step == "lock" then
    cycle_start = now_ms()
    return wrk.format("LOCK", path, { ["Content-Type"] = "application/json" }, lock_info())
  elseif step == "post" then
    local body = state_body(serial)
    local id_param = string.format("%08x-%04x-0000-0000-000000000000", id, serial % 65536)
    return wrk.format("POST", path .. "?ID=" .. id_param,
      { ["Content-Type"] = "application/json", ["Content-MD5"] = content_md5(body) }, body)
  else
    return wrk.format("UNLOCK", path, { ["Content-Type"] = "application/json" }, lock_info())
  end
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
  end
  if step == "seed" then
    step = "lock"
    serial = serial + 1
  elseif step == "lock" then
    step = "post"
  elseif step == "post" then
    step = "unlock"
  else
    table.insert(lat, now_ms() - cycle_start)
    step = "lock"
    serial = serial + 1
  end
end

local function percentile(sorted, q)
  if #sorted == 0 then
    return 0
  end
  local i = math.min(#sorted, math.max(1, math.ceil(q * #sorted)))
  return sorted[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  local failures = e.connect + e.read + e.write + e.timeout
  local seconds = summary.duration / 1e6
  if threads[1]:get("mode") == "get" then
    failures = failures + e.status
    print(string.format("RESULT %.1f %.3f %.3f %d", summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, failures))
    return
  end
  local all = {}
  for _, t in ipairs(threads) do
    for _, v in ipairs(t:get("lat")) do
      table.insert(all, v)
    end
    failures = failures + t:get("failed")
  end
  table.sort(all)
  print(string.format("RESULT %.1f %.3f %.3f %d", #all / seconds, percentile(all, 0.5),
    percentile(all, 0.99), failures))
end
