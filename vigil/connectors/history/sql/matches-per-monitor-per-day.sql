-- answers: matches per monitor per day (UTC, of block time), newest day first
-- param days int 7 1..3650: how many days back
-- param monitor id '': only this monitor id (all when empty)
SELECT toDate(timestamp) AS day, monitor_id, count() AS matches
FROM matches FINAL
WHERE NOT retracted AND timestamp >= today() - {days}
  AND ({monitor} = '' OR monitor_id = {monitor})
GROUP BY day, monitor_id
ORDER BY day DESC, matches DESC, monitor_id
