-- wrk script: one fixed request, and a count of answers that are exactly
-- what the bench expects (status and body length). The request and the
-- expectation come from the environment (set by bench/wrk.mjs), so one
-- script serves every scenario. `done` prints one JSON line for the bench.
local method = os.getenv("BENCH_METHOD") or "GET"
local body_file = os.getenv("BENCH_BODY_FILE")
local header_lines = os.getenv("BENCH_HEADERS") or ""
local expect_status = tonumber(os.getenv("BENCH_EXPECT_STATUS") or "200")
local expect_length = tonumber(os.getenv("BENCH_EXPECT_LENGTH") or "-1")
-- Answers whose length varies by a few digits (a cache age) get a slack.
local length_slack = tonumber(os.getenv("BENCH_LENGTH_SLACK") or "0")
-- A body containing this is no success whatever its status (a tool error).
local reject = os.getenv("BENCH_REJECT") or ""

wrk.method = method
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
end
for line in string.gmatch(header_lines, "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then wrk.headers[name] = value end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  expected = 0
  unexpected = 0
  statuses = {}
end

function response(status, headers, body)
  local length_ok = expect_length < 0 or math.abs(#body - expect_length) <= length_slack
  local rejected = reject ~= "" and string.find(body, reject, 1, true) ~= nil
  if status == expect_status and length_ok and not rejected then
    expected = expected + 1
  else
    unexpected = unexpected + 1
    local key = tostring(status) .. (status ~= expect_status and "" or (rejected and ":rejected" or ":length"))
    statuses[key] = (statuses[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local ok, bad, by = 0, 0, {}
  for _, t in ipairs(threads) do
    ok = ok + t:get("expected")
    bad = bad + t:get("unexpected")
    for k, v in pairs(t:get("statuses")) do by[k] = (by[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(by) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us":%d,"requests":%d,"bytes":%d,"expected":%d,"unexpected":%d,"by_status":{%s},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.duration, summary.requests, summary.bytes, ok, bad, table.concat(parts, ","),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
