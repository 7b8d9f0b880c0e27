-- apply.lua: one Apply, atomically, on the record hash KEYS[1].
--
-- ARGV[1] token of this Apply call (random hex; a retry sends the same one)
-- ARGV[2] expected version, "" for no check ("0" means no record stored)
-- ARGV[3] "1" to replace the whole record, "0" to merge
-- ARGV[4] time to live in milliseconds, "0" for none
-- ARGV[5] maximum record size in bytes
-- ARGV[6] n, the number of fields to set
-- ARGV[7 .. 6+2n] name, value pairs to set; the rest: names to delete
--
-- The hash field "" (no field name is empty) holds
-- "<version> <size> <token>:<version> ...": the record's version, its size as
-- size caps count it, and the tokens of the last few Applies that wrote it,
-- newest first, each with the version it wrote.
--
-- Returns {status, n}: {1, new version}, {2, stored version} on a version
-- conflict, {3, size the record would have} when it would exceed its cap,
-- {4, 0} when the key holds a hash that is not a readable record.

local key = KEYS[1]
local nset = tonumber(ARGV[6])
local first_del = 7 + 2 * nset

local version, size, recent = 0, 0, ''
local vstring = '0'
local meta = redis.call('HGET', key, '')
if meta then
  local v, s, r = string.match(meta, '^(%d+) (%d+)(.*)$')
  if not v then
    return {4, 0}
  end
  local done = string.match(r, ' ' .. ARGV[1] .. ':(%d+)')
  if done then
    -- A retry of a call that already ran here: report what it did.
    return {1, tonumber(done)}
  end
  vstring, version, size, recent = v, tonumber(v), tonumber(s), r
elseif redis.call('EXISTS', key) == 1 then
  return {4, 0} -- a hash without our "" field: not a record of ours
end

if ARGV[2] ~= '' and ARGV[2] ~= vstring then
  return {2, version}
end

-- The size after the change, from the running size: O(fields changed).
local function stored(name)
  local n = redis.call('HSTRLEN', key, name)
  if n > 0 or redis.call('HEXISTS', key, name) == 1 then
    return #name + n
  end
  return 0
end

local replace = ARGV[3] == '1' or not meta
local newsize = 0
if not replace then
  newsize = size
end
for i = 7, first_del - 1, 2 do
  if not replace then
    newsize = newsize - stored(ARGV[i])
  end
  newsize = newsize + #ARGV[i] + #ARGV[i + 1]
end
if not replace then
  for i = first_del, #ARGV do
    newsize = newsize - stored(ARGV[i])
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
-- Remember this call and the 7 before it: a retry coming after a few other
-- writers is still recognised.
local cut = 0
for _ = 1, 8 do
  cut = string.find(recent, ' ', cut + 1, true)
  if not cut then
    break
  end
end
if cut then
  recent = string.sub(recent, 1, cut - 1)
end
meta = string.format('%d %d %s:%d%s', version, newsize, ARGV[1], version, recent)
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
