-- wrk script: POST one seed-shaped metric per request with a service token.
-- TOKEN comes from the environment (bench/api.py sets it).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Token " .. os.getenv("TOKEN")
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"id": %d, "val": %.3f, "time": %d}', counter % 20, counter * 0.25, 1624378100 + counter)
  return wrk.format(nil, nil, nil, body)
end
