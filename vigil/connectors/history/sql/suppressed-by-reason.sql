-- answers: matches that notified no one, per monitor and reason, over the last hours
-- param hours int 24 1..87600: how far back, in hours
SELECT monitor_id, reason, count() AS suppressed
FROM suppressed FINAL
WHERE at > now() - INTERVAL {hours} HOUR
GROUP BY monitor_id, reason
ORDER BY suppressed DESC, monitor_id, reason
