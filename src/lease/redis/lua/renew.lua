-- renew: ARGV[4] owner, [5] token, [6] ttl ms.
-- {1, 1 if exclusive else 0, ms left, now}; {-1, ...} expired;
-- {-2, ...} not holder.
local owner, tok, ttl = ARGV[4], ARGV[5], tonumber(ARGV[6])
do
  local e = check_types()
  if e then
    return e
  end
end
clock()
prune()
-- Time first: an expired lease may have been superseded just now.
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
redis.call('ZADD', H, 'XX', num(NOW + ttl), tok)
tidy()
return { 1, (string.sub(info, 1, 1) == 'x') and 1 or 0, ttl, NOW }
