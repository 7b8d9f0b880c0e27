-- apply.lua: one Apply, atomically, on the record hash KEYS[1].
--
-- ARGV[1] token of this Apply call: 16 random hex digits; a retry of the
--         call sends the same one
-- ARGV[2] expected version, "" for no check ("0" means no record stored)
-- ARGV[3] "1" to replace the whole record, "0" to merge
-- ARGV[4] time to live in milliseconds, "0" for none
-- ARGV[5] maximum record size in bytes
-- ARGV[6] n, the number of fields to set
-- ARGV[7 .. 6+2n] name, value pairs to set; the rest: names to delete
--
-- The hash field "" (no field name is empty) holds "<version> <size> <tokens>":
-- the record's version, its size as size caps count it, and the tokens of the
-- last 8 Applies, newest first. Every Apply adds one to the version and one
-- token, so the token k places from the front wrote version <version> - k.
--
-- Returns {status, n}: {1, new version}, {2, stored version} on a version
-- conflict, {3, size the record would have} when it would exceed its cap,
-- {4, 0} when the key holds a hash that is not a readable record.

local key = KEYS[1]
local token = ARGV[1]
local nset = tonumber(ARGV[6])
local first_del = 7 + 2 * nset

local version, size, tokens = 0, 0, ''
local vstring = '0'
local meta = redis.call('HGET', key, '')
if meta then
  local v, s, t = string.match(meta, '^(%d+) (%d+) (%x*)$')
  if not v then
    return {4, 0}
  end
  vstring, version, size, tokens = v, tonumber(v), tonumber(s), t
  local at = string.find(tokens, token, 1, true)
  while at and at % 16 ~= 1 do
    at = string.find(tokens, token, at + 1, true)
  end
  if at then
    -- A retry of a call that already ran here: report what it did.
    return {1, version - (at - 1) / 16}
  end
elseif redis.call('EXISTS', key) == 1 then
  return {4, 0} -- a hash without our "" field: not a record of ours
end

if ARGV[2] ~= '' and ARGV[2] ~= vstring then
  return {2, version}
end

-- The size after the change, from the running size: O(fields changed).
local replace = ARGV[3] == '1' or not meta
local newsize = 0
if not replace then
  newsize = size
end
for i = 7, first_del - 1, 2 do
  local name = ARGV[i]
  if not replace then
    local n = redis.call('HSTRLEN', key, name)
    if n > 0 or redis.call('HEXISTS', key, name) == 1 then
      newsize = newsize - #name - n
    end
  end
  newsize = newsize + #name + #ARGV[i + 1]
end
if not replace then
  for i = first_del, #ARGV do
    local name = ARGV[i]
    local n = redis.call('HSTRLEN', key, name)
    if n > 0 or redis.call('HEXISTS', key, name) == 1 then
      newsize = newsize - #name - n
    end
  end
end
if newsize > tonumber(ARGV[5]) then
  return {3, newsize}
end

-- Write: the version field and the first fields in one HSET. unpack is
-- bounded by Lua's stack, so long lists go in chunks.
local chunk = 2000
if meta and ARGV[3] == '1' then
  redis.call('DEL', key)
elseif not replace then
  for i = first_del, #ARGV, chunk do
    redis.call('HDEL', key, unpack(ARGV, i, math.min(i + chunk - 1, #ARGV)))
  end
end
version = version + 1
meta = string.format('%d %d %s', version, newsize, string.sub(token .. tokens, 1, 8 * 16))
local last = math.min(6 + chunk, first_del - 1)
redis.call('HSET', key, '', meta, unpack(ARGV, 7, last))
for i = last + 1, first_del - 1, chunk do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + chunk - 1, first_del - 1)))
end

local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('PEXPIRE', key, ttl)
else
  redis.call('PERSIST', key)
end
return {1, version}
