-- apply.lua: one Apply, atomically, on the record hash KEYS[1].
--
-- ARGV[1] expected version, "" for no check ("0" means no record stored)
-- ARGV[2] "1" to replace the whole record, "0" to merge
-- ARGV[3] time to live in milliseconds, "0" for none
-- ARGV[4] maximum record size in bytes
-- ARGV[5] n, the number of fields to set
-- ARGV[6 .. 5+2n] name, value pairs to set; the rest: names to delete
--
-- The hash field "" (no field name is empty) holds "<version> <size>": the
-- record's version and its size as size caps count it.
--
-- Returns the new version, or {status, n}: {2, stored version} on a version
-- conflict, {3, size the record would have} when it would exceed its cap,
-- {4, 0} when the key holds a hash that is not a readable record.
--
-- Each step costs the server time it could spend on other clients, so the
-- common case (a merge of one field: HGET, HSTRLEN, HSET, PEXPIRE) does as
-- little else as it can: it returns a number, not a table, and formats
-- numbers with %d (Lua's own number to string conversion costs twice that).

local key = KEYS[1]
local first_del = 6 + 2 * tonumber(ARGV[5])

local version, size = 0, 0
local meta = redis.call('HGET', key, '')
if meta then
  local v, s = string.match(meta, '^(%d+) (%d+)$')
  if not v then
    return {4, 0}
  end
  if ARGV[1] ~= '' and ARGV[1] ~= v then
    return {2, tonumber(v)}
  end
  version, size = tonumber(v), tonumber(s)
elseif ARGV[1] ~= '' and ARGV[1] ~= '0' then
  return {2, 0}
elseif redis.call('EXISTS', key) == 1 then
  return {4, 0} -- a hash without our "" field: not a record of ours
end

-- The size after the change, from the running size: O(fields changed).
local merge = meta and ARGV[2] == '0'
local newsize = 0
if merge then
  newsize = size
end
for i = 6, first_del - 1, 2 do
  local name = ARGV[i]
  if merge then
    local n = redis.call('HSTRLEN', key, name)
    if n > 0 or redis.call('HEXISTS', key, name) == 1 then
      newsize = newsize - #name - n
    end
  end
  newsize = newsize + #name + #ARGV[i + 1]
end
if merge then
  for i = first_del, #ARGV do
    local name = ARGV[i]
    local n = redis.call('HSTRLEN', key, name)
    if n > 0 or redis.call('HEXISTS', key, name) == 1 then
      newsize = newsize - #name - n
    end
  end
end
if newsize > tonumber(ARGV[4]) then
  return {3, newsize}
end

-- Write: the version field and the first fields in one HSET. unpack is
-- bounded by Lua's stack, so long lists go in chunks.
local chunk = 2000
if meta and not merge then
  redis.call('DEL', key)
elseif merge then
  for i = first_del, #ARGV, chunk do
    redis.call('HDEL', key, unpack(ARGV, i, math.min(i + chunk - 1, #ARGV)))
  end
end
version = version + 1
local last = math.min(5 + chunk, first_del - 1)
redis.call('HSET', key, '', string.format('%d %d', version, newsize), unpack(ARGV, 6, last))
for i = last + 1, first_del - 1, chunk do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + chunk - 1, first_del - 1)))
end

if ARGV[3] ~= '0' then
  redis.call('PEXPIRE', key, ARGV[3])
else
  redis.call('PERSIST', key)
end
return version
