-- poll (a queued waiter's re-check): ARGV[4] waiter id, [5] owner, [6] mode,
-- [7] ttl ms, [8] heartbeat ms. Takes a grant waiting in the wake-up list;
-- else refreshes the heartbeat (re-queueing at the old place a waiter that
-- was evicted while paused) and answers how long to sleep.
-- {1, token, ms left, now} granted; {2, id, ms until worth a look, now}.
local id = ARGV[4]
local k = WAKE .. id
do
  local e = check_types()
  if e then
    return e
  end
end
clock()
prune()
local function take()
  local g = redis.call('LPOP', k)
  while g do
    local tok, exp = parse_grant(g)
    if exp > NOW then
      return tok, exp
    end
    g = redis.call('LPOP', k)
  end
  return nil
end
local tok, exp = take()
if not tok then
  if not redis.call('ZSCORE', Q, id) then
    redis.call('ZADD', Q, id, id)
    redis.call('HSET', W, id, ARGV[6] .. ARGV[7] .. ' ' .. ARGV[5])
  end
  redis.call('ZADD', D, num(NOW + tonumber(ARGV[8])), id)
  pump()
  tok, exp = take()
end
if tok then
  tidy()
  return { 1, tok, exp - NOW, NOW }
end
local look = next_look(id)
tidy()
return { 2, tonumber(id), look, NOW }
