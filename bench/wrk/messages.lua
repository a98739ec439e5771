-- wrk script for maxpool benchmarks: POST /v1/messages with a small JSON body.
-- Arguments (after `--`): MODE [CRED] [BYTES]
--   MODE  sse  → "stream": true (the sim answers 20 SSE deltas by default)
--         json → a plain JSON message
--         big  → a plain JSON message whose request body is BYTES long (default 1 MiB)
--   CRED  the x-api-key to send (default the bench script's key)
-- No response() callback: wrk then skips collecting bodies, which keeps the client cheap.

function init(args)
  local mode = args[1] or "sse"
  local cred = args[2] or "sk-ant-api03-bench"
  local bytes = tonumber(args[3] or "1048576") or 1048576
  local stream = "false"
  if mode == "sse" then stream = "true" end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["anthropic-version"] = "2023-06-01"
  wrk.headers["x-api-key"] = cred
  local head = '{"model":"claude-sonnet-4-5","max_tokens":64,"stream":' .. stream ..
               ',"messages":[{"role":"user","content":"'
  local tail = '"}]}'
  local text = "hi"
  if mode == "big" then
    text = string.rep("x", math.max(1, bytes - #head - #tail))
  end
  wrk.body = head .. text .. tail
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKRESULT requests=%d duration_us=%d bytes=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
