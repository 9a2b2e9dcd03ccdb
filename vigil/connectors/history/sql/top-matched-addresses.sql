-- answers: the addresses in the most matches over the last days, with how many monitors saw each
-- param days int 7 1..3650: how many days back (of block time)
-- param limit int 20 1..10000: rows at most
SELECT address, count() AS matches, uniqExact(monitor_id) AS monitors,
       max(timestamp) AS last_seen
FROM matches FINAL
ARRAY JOIN matched_addresses AS address
WHERE NOT retracted AND timestamp > now() - INTERVAL {days} DAY
GROUP BY address
ORDER BY matches DESC, address
LIMIT {limit}
