-- wrk script for the ingest comparison in docs/BENCHMARKS.md: POSTs the
-- same single event as `bench/load ingest --batch 1` (BATCH=100 in the
-- environment posts the load tool's batch of 100 instead).
--   wrk -t2 -c64 -d5s -s bench/wrk-post.lua http://127.0.0.1:PORT/v1/events
local event = '{"type":"order.created","source":"/shop","subject":"order/981","data":{"order":981,"customer":"c_2Jx8hHk2mN","items":[{"sku":"sku-123","qty":2}],"total":3998}}'
local n = tonumber(os.getenv("BATCH") or "1")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if n <= 1 then
  wrk.body = event
else
  local items = {}
  for i = 1, n do items[i] = event end
  wrk.body = "[" .. table.concat(items, ",") .. "]"
end
