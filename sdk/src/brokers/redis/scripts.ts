/**
 * Lua scripts run atomically by Redis. `fetch` takes up to N messages from a queue's lists in
 * priority order AND records each in `unacked`/`unacked_index` in the same step, so a consumer
 * that dies between the two cannot lose a message (kombu's BRPOP-then-MULTI has that window).
 */

/**
 * KEYS: the lists to pop from, in order, then `unacked` and `unacked_index`.
 * ARGV: max messages, now (unix seconds), number of lists, "1" when deliveries are not acked (nothing recorded).
 * Returns a flat array: list index (1-based), raw envelope, registered (1/0), for each message.
 */
export const FETCH = `
local max = tonumber(ARGV[1])
local nlists = tonumber(ARGV[3])
local hash = KEYS[nlists + 1]
local index = KEYS[nlists + 2]
local out = {}
local taken = 0
local find, sub = string.find, string.sub
-- The string value that follows the first \`prefix\` from \`init\` on, and where its closing quote
-- is; nil when there is none, or it holds an escape (the caller then decodes the JSON).
local function quoted(raw, prefix, init)
  local _, last = find(raw, prefix, init, true)
  if not last then return nil end
  local close = find(raw, '"', last + 1, true)
  if not close then return nil end
  local value = sub(raw, last + 1, close - 1)
  if find(value, '\\\\', 1, true) then return nil end
  return value, close
end
for i = 1, nlists do
  while taken < max do
    local raw = redis.call('RPOP', KEYS[i])
    if not raw then break end
    taken = taken + 1
    local registered = 0
    if ARGV[4] ~= '1' then
      -- kombu writes these fields in a fixed form, found with plain (not pattern) searches, the
      -- cheapest Lua has; a value with an escape in it, or any other form, takes the slow path
      -- of a full JSON decode.
      local tag = quoted(raw, '"delivery_tag": "', 1)
      local exchange, routing_key, after
      exchange, after = quoted(raw, '"delivery_info": {"exchange": "', 1)
      if exchange and find(raw, '", "routing_key": "', after, true) == after then
        routing_key = quoted(raw, '", "routing_key": "', after)
      end
      if not tag or not exchange or not routing_key then
        local ok, env = pcall(cjson.decode, raw)
        if ok and type(env) == 'table' and type(env.properties) == 'table' and type(env.properties.delivery_tag) == 'string' then
          tag = env.properties.delivery_tag
          local info = env.properties.delivery_info
          exchange, routing_key = '', ''
          if type(info) == 'table' then
            if type(info.exchange) == 'string' then exchange = info.exchange end
            if type(info.routing_key) == 'string' then routing_key = info.routing_key end
          end
        else
          tag = nil
        end
      end
      if tag then
        redis.call('HSET', hash, tag, '[' .. raw .. ', ' .. cjson.encode(exchange) .. ', ' .. cjson.encode(routing_key) .. ']')
        redis.call('ZADD', index, ARGV[2], tag)
        registered = 1
      end
    end
    out[#out + 1] = i
    out[#out + 1] = raw
    out[#out + 1] = registered
  end
  if taken >= max then break end
end
return out
`;

/**
 * Put one unacked message back (restore, or reject with requeue), if it is still unacked.
 * KEYS: unacked, unacked_index, destination list. ARGV: tag, envelope to push, "left" | "right".
 */
export const RESTORE = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] == 'left' then redis.call('LPUSH', KEYS[3], ARGV[2]) else redis.call('RPUSH', KEYS[3], ARGV[2]) end
return 1
`;

/**
 * Record a message won by a blocking pop as unacked (kombu's MULTI of HSET and ZADD).
 * KEYS: unacked, unacked_index. ARGV: tag, stored entry, now (unix seconds).
 */
export const REGISTER = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
`;

/** Forget settled messages. KEYS: unacked, unacked_index. ARGV: their tags. */
export const ACK = `
for i = 1, #ARGV, 1000 do
  local j = math.min(i + 999, #ARGV)
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, j))
  redis.call('ZREM', KEYS[2], unpack(ARGV, i, j))
end
`;

/** Release a lock only if we still hold it. KEYS: lock. ARGV: token. */
export const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
