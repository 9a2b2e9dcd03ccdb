-- answers: how long sent deliveries took per channel (ms, from the first attempt to the answer, retries included): p50, p90, p99, max
-- param hours int 24 1..87600: how far back, in hours
SELECT channel, channel_type, count() AS sent,
       round(quantileExact(0.5)(latency_ms)) AS p50_ms,
       round(quantileExact(0.9)(latency_ms)) AS p90_ms,
       round(quantileExact(0.99)(latency_ms)) AS p99_ms,
       max(latency_ms) AS max_ms
FROM deliveries FINAL
WHERE at > now() - INTERVAL {hours} HOUR AND status = 'SENT'
GROUP BY channel, channel_type
ORDER BY p99_ms DESC, channel
