-- release: ARGV[4] owner, [5] token. Ends the lease and grants the head of
-- the queue (pushing to the waiters it serves).
-- {1, 0, 0, now}; {-1, ...} expired; {-2, ...} not holder.
local owner, tok = ARGV[4], ARGV[5]
-- Fast path: the only entry, live, nobody queued: everything goes.
clock()
do
  local score = redis.call('ZSCORE', H, tok)
  local info = redis.call('HGET', O, tok)
  if score and info and tonumber(score) > NOW and string.sub(info, 2) == owner
      and redis.call('EXISTS', Q) == 0 and redis.call('ZCARD', H) == 1 then
    redis.call('DEL', H, O, T)
    return { 1, 0, 0, NOW }
  end
end
do
  local e = check_types()
  if e then
    return e
  end
end
prune()
pump()
local score = redis.call('ZSCORE', H, tok)
local info = redis.call('HGET', O, tok)
if not score or not info or string.sub(info, 2) ~= owner then
  tidy()
  return { -2, 0, 0, NOW }
end
if tonumber(score) <= NOW then
  tidy()
  return { -1, 0, 0, NOW }
end
redis.call('ZREM', H, tok)
redis.call('HDEL', O, tok)
pump()
tidy()
return { 1, 0, 0, NOW }
