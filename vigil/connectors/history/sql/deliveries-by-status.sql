-- answers: deliveries per channel and status over the last hours
-- param hours int 24 1..87600: how far back, in hours
SELECT channel, channel_type, status, count() AS deliveries
FROM deliveries FINAL
WHERE at > now() - INTERVAL {hours} HOUR
GROUP BY channel, channel_type, status
ORDER BY channel, status
