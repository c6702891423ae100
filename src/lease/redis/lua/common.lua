-- Prepended to every quorumkit lease script. One resource's state, all of
-- it under one hash tag (so a script touches one cluster slot):
--   KEYS[1] holders   zset  token -> expiry (server ms); a score <= now is an
--                           expired, un-released lease kept for MEM ms so a
--                           late holder hears "expired", not "not holder"
--   KEYS[2] owners    hash  token -> mode char .. owner
--   KEYS[3] counter   str   the last token (or waiter id) handed out
--   KEYS[4] queue     zset  waiter id -> waiter id (FIFO: ids increase)
--   KEYS[5] waiters   hash  waiter id -> mode char .. ttl .. ' ' .. owner
--   KEYS[6] beats     zset  waiter id -> heartbeat deadline (server ms)
--   ARGV[1] prefix of the per-waiter wake-up lists (prefix .. id)
--   ARGV[2] MEM: how long an expired lease is remembered (ms, >= DELAY)
--   ARGV[3] DELAY: lock-delay after an un-released expiry (ms)
-- Every key gets a TTL at the end of a script (tidy) or is deleted.
-- Each operation starts with check_types() and clock(), or a fast path.
local H, O, T, Q, W, D = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local WAKE = ARGV[1]
local MEM = tonumber(ARGV[2])
local DELAY = tonumber(ARGV[3])

-- Foreign data under our names: refuse before writing anything (a script
-- that fails half-way keeps its first writes). Fast paths skip this and
-- instead read every key they write before the first write.
local function check_types()
  local want = { 'zset', 'hash', 'string', 'zset', 'hash', 'zset' }
  for i = 1, 6 do
    local ty = redis.call('TYPE', KEYS[i])['ok']
    if ty ~= 'none' and ty ~= want[i] then
      return redis.error_reply('WRONGTYPE key ' .. KEYS[i] .. ' holds a ' .. ty ..
        ', not the ' .. want[i] .. ' quorumkit keeps there')
    end
  end
  return nil
end

local NOW, NOW_US
local function clock()
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  NOW_US = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Integers as decimal strings: Lua's default number format keeps only 14
-- digits, and tokens have 16.
local function num(x)
  return string.format('%.0f', x)
end

-- Deletes fields in batches (unpack has a stack limit).
local function hdel_all(key, fields)
  for i = 1, #fields, 500 do
    redis.call('HDEL', key, unpack(fields, i, math.min(i + 499, #fields)))
  end
end

-- The next token: above the last one and above the server clock in
-- microseconds, so tokens keep increasing after the counter is lost (a
-- restart without persistence, a failover to a replica that missed it).
local function next_token()
  local last = tonumber(redis.call('GET', T) or '0') or 0
  local tok = math.max(last + 1, NOW_US)
  redis.call('SET', T, num(tok))
  return tok
end

-- Forgets expired leases older than MEM and waiters whose heartbeat lapsed.
local function prune()
  local cut = NOW - MEM
  local old = redis.call('ZRANGEBYSCORE', H, '-inf', cut)
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', H, '-inf', cut)
    hdel_all(O, old)
  end
  local dead = redis.call('ZRANGEBYSCORE', D, '-inf', NOW)
  for _, id in ipairs(dead) do
    redis.call('ZREM', Q, id)
    redis.call('HDEL', W, id)
    redis.call('ZREM', D, id)
  end
end

-- The mode of the live holders ('x' or 's'), or nil when none.
local function holder_mode()
  local first = redis.call('ZRANGEBYSCORE', H, '(' .. num(NOW), '+inf', 'LIMIT', 0, 1)
  if #first == 0 then
    return nil
  end
  local info = redis.call('HGET', O, first[1])
  if not info then
    return nil
  end
  return string.sub(info, 1, 1)
end

local function compatible(mode)
  local m = holder_mode()
  return m == nil or (mode == 's' and m == 's')
end

-- When the lock-delay after the latest un-released expiry ends (0: none).
local function delay_end()
  if DELAY <= 0 then
    return 0
  end
  local last = redis.call('ZREVRANGEBYSCORE', H, num(NOW), '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #last == 0 then
    return 0
  end
  return tonumber(last[2]) + DELAY
end

-- Adds a holder with a fresh token; a grant supersedes the expired leases
-- (their late holders hear "not holder" from now on).
local function grant(owner, mode, ttl)
  local expired = redis.call('ZRANGEBYSCORE', H, '-inf', num(NOW))
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', H, '-inf', num(NOW))
    hdel_all(O, expired)
  end
  local tok = next_token()
  local exp = NOW + ttl
  redis.call('ZADD', H, num(exp), num(tok))
  redis.call('HSET', O, num(tok), mode .. owner)
  return tok, exp
end

local function unqueue(id)
  redis.call('ZREM', Q, id)
  redis.call('HDEL', W, id)
  redis.call('ZREM', D, id)
end

-- Grants the head of the queue while it fits (one exclusive request, or a
-- run of shared ones) and pushes each grant to its waiter's wake-up list,
-- which lives as long as the lease could.
local function pump()
  if delay_end() > NOW then
    return
  end
  while true do
    local head = redis.call('ZRANGE', Q, 0, 0)
    if #head == 0 then
      return
    end
    local id = head[1]
    local info = redis.call('HGET', W, id)
    if not info then
      unqueue(id)
    else
      local mode = string.sub(info, 1, 1)
      local sp = string.find(info, ' ', 2, true)
      local ttl = tonumber(string.sub(info, 2, sp - 1))
      local owner = string.sub(info, sp + 1)
      if not compatible(mode) then
        return
      end
      local tok, exp = grant(owner, mode, ttl)
      unqueue(id)
      local k = WAKE .. id
      redis.call('RPUSH', k, num(tok) .. ' ' .. num(exp))
      redis.call('PEXPIRE', k, num(ttl))
    end
  end
end

-- How long waiter `id` may sleep before time alone could let it in: for
-- the head, until the earliest live holder expiry or the lock-delay end;
-- -1 for the others (a grant or their re-check interval wakes them).
local function next_look(id)
  local head = redis.call('ZRANGE', Q, 0, 0)
  if #head == 0 or head[1] ~= id then
    return -1
  end
  local d = delay_end()
  if d > NOW then
    return d - NOW
  end
  local first = redis.call('ZRANGEBYSCORE', H, '(' .. num(NOW), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #first == 0 then
    return 0
  end
  return tonumber(first[2]) - NOW
end

-- Gives every key a TTL that covers what it holds, or deletes it.
local function tidy()
  local ttl = 0
  local top = redis.call('ZREVRANGE', H, 0, 0, 'WITHSCORES')
  if #top == 0 then
    redis.call('DEL', H, O)
  else
    local t = math.max(tonumber(top[2]) + MEM - NOW, 1)
    redis.call('PEXPIRE', H, num(t))
    redis.call('PEXPIRE', O, num(t))
    ttl = t
  end
  local beat = redis.call('ZREVRANGE', D, 0, 0, 'WITHSCORES')
  if #beat == 0 then
    redis.call('DEL', Q, W, D)
  else
    local t = math.max(tonumber(beat[2]) - NOW, 1)
    redis.call('PEXPIRE', Q, num(t))
    redis.call('PEXPIRE', W, num(t))
    redis.call('PEXPIRE', D, num(t))
    ttl = math.max(ttl, t)
  end
  if ttl == 0 then
    redis.call('DEL', T)
  else
    redis.call('PEXPIRE', T, num(ttl))
  end
end

-- Reads a wake-up entry ("token expiry") into numbers.
-- Anything else (a client's cancel nudge) reads as expired, so it is skipped.
local function parse_grant(s)
  local sp = string.find(s, ' ', 1, true)
  if not sp then
    return 0, 0
  end
  return tonumber(string.sub(s, 1, sp - 1)), tonumber(string.sub(s, sp + 1))
end

-- Replies: { status, a, b, server now in ms }.
