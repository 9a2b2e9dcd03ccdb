-- answers: the share of deliveries per channel that failed (after every retry) over the last hours
-- param hours int 24 1..87600: how far back, in hours
SELECT channel, channel_type, count() AS deliveries,
       countIf(status = 'FAILED') AS failed,
       round(failed / deliveries, 4) AS failure_rate
FROM deliveries FINAL
WHERE at > now() - INTERVAL {hours} HOUR AND status IN ('SENT', 'FAILED')
GROUP BY channel, channel_type
ORDER BY failure_rate DESC, channel
