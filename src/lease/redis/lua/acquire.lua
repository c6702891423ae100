-- acquire: ARGV[4] owner, [5] mode ('x'/'s'), [6] ttl ms, [7] '1' to queue
-- when busy, [8] waiter heartbeat ms.
-- {1, token, ms left, now} granted; {0, 0, 0, now} busy (not queued);
-- {2, waiter id, ms until worth a look (-1: no hint), now} queued.
local owner, mode, ttl = ARGV[4], ARGV[5], tonumber(ARGV[6])
-- Fast path: an idle resource (no holder, no remembered expiry, no queue).
-- GET and HSET fail on foreign data before the other writes.
if redis.call('EXISTS', H, Q) == 0 then
  clock()
  local last = tonumber(redis.call('GET', T) or '0') or 0
  local tok = math.max(last + 1, NOW_US)
  redis.call('HSET', O, num(tok), mode .. owner)
  redis.call('ZADD', H, num(NOW + ttl), num(tok))
  local keep = num(ttl + MEM)
  redis.call('SET', T, num(tok), 'PX', keep)
  redis.call('PEXPIRE', H, keep)
  redis.call('PEXPIRE', O, keep)
  return { 1, tok, ttl, NOW }
end
do
  local e = check_types()
  if e then
    return e
  end
end
clock()
prune()
pump()
-- FIFO: nobody passes a queued request, not even a compatible one.
if redis.call('ZCARD', Q) == 0 and delay_end() <= NOW and compatible(mode) then
  local tok = grant(owner, mode, ttl)
  tidy()
  return { 1, tok, ttl, NOW }
end
if ARGV[7] ~= '1' then
  tidy()
  return { 0, 0, 0, NOW }
end
local id = num(next_token())
redis.call('ZADD', Q, id, id)
redis.call('HSET', W, id, mode .. ARGV[6] .. ' ' .. owner)
redis.call('ZADD', D, num(NOW + tonumber(ARGV[8])), id)
local look = next_look(id)
tidy()
return { 2, tonumber(id), look, NOW }
