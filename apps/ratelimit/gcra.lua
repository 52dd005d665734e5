-- GCRA (generic cell rate algorithm) over n limits at once: the request passes only if every limit admits it,
-- and only then is any of them charged. Clock: Redis's own (TIME), so every node agrees.
--
-- A limit of L per period P admits a burst of L, then one request every P / L. Its state is one number, the
-- theoretical arrival time (tat, microseconds since the epoch); the key expires when the limit is full again.
--
-- KEYS[1..n]  one state key per limit; KEYS[n + 1] the hash counting refusals (metrics)
-- ARGV        n, cost (1 to charge; -1 to give one back), then for each limit: L, P in microseconds, the
--             metrics field to increment when that limit is the one refusing
-- reply       {allowed (1|0), index of the refusing limit (0 if none), microseconds until it would admit,
--              then for each limit: requests remaining after this one, microseconds until it is full again}
local n = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = clock[1] * 1000000 + clock[2]
local stored = redis.call('MGET', unpack(KEYS, 1, n))
local reply = {1, 0, 0}
local tats = {}
for i = 1, n do
  local period = tonumber(ARGV[3 * i + 1])
  local interval = period / tonumber(ARGV[3 * i])
  local tat = tonumber(stored[i]) or now
  if tat < now then
    tat = now
  end
  local new_tat = tat + interval * cost
  local wait = new_tat - period - now
  tats[i] = new_tat
  if wait > 0 then
    reply[1] = 0
    if wait > reply[3] then
      reply[2] = i
      reply[3] = math.ceil(wait)
    end
    reply[2 + 2 * i] = 0
    reply[3 + 2 * i] = math.ceil(tat - now)
  else
    reply[2 + 2 * i] = math.floor(-wait / interval)
    reply[3 + 2 * i] = math.ceil(new_tat - now)
  end
end
if reply[1] == 1 then
  for i = 1, n do
    -- string.format: tostring() would keep only 14 significant digits of a 16-digit timestamp.
    local ttl_ms = math.ceil((tats[i] - now) / 1000)
    if ttl_ms > 0 then
      redis.call('SET', KEYS[i], string.format('%d', math.ceil(tats[i])), 'PX', ttl_ms)
    else
      redis.call('DEL', KEYS[i])
    end
  end
else
  redis.call('HINCRBY', KEYS[n + 1], ARGV[3 * reply[2] + 2], 1)
end
return reply
