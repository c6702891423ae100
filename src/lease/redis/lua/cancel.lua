-- cancel: ARGV[4] waiter id. Leaves the queue; a grant that raced ahead is
-- handed back to the caller (who now holds it).
-- {1, token, ms left, now} it had been granted; {0, 0, 0, now} withdrawn.
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
unqueue(id)
local tok, exp
local g = redis.call('LPOP', k)
while g do
  local t, e = parse_grant(g)
  if e > NOW then
    tok, exp = t, e
  end
  g = redis.call('LPOP', k)
end
redis.call('DEL', k)
-- An exclusive request leaving the head may let shared ones in.
pump()
tidy()
if tok then
  return { 1, tok, exp - NOW, NOW }
end
return { 0, 0, 0, NOW }
