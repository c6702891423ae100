-- inspect: the live holders and the queue length, after time has been
-- applied (expiries, lock-delay, evictions, grants).
-- {now, queue length, token1, ms left1, mode..owner1, token2, ...}
do
  local e = check_types()
  if e then
    return e
  end
end
clock()
prune()
pump()
local out = { NOW, redis.call('ZCARD', Q) }
local live = redis.call('ZRANGEBYSCORE', H, '(' .. num(NOW), '+inf', 'WITHSCORES')
for i = 1, #live, 2 do
  out[#out + 1] = tonumber(live[i])
  out[#out + 1] = tonumber(live[i + 1]) - NOW
  out[#out + 1] = redis.call('HGET', O, live[i]) or ''
end
tidy()
return out
