-- answers: matches per monitor over the last hours (of block time)
-- param hours int 24 1..87600: how far back, in hours
SELECT monitor_id, any(monitor_name) AS name, count() AS matches
FROM matches FINAL
WHERE NOT retracted AND timestamp > now() - INTERVAL {hours} HOUR
GROUP BY monitor_id
ORDER BY matches DESC, monitor_id
