-- answers: per network, the last block stored, how far behind now it is, and how long blocks took from their time to history (s, p50 and p99) over the last hours
-- param hours int 1 1..87600: the window for the percentiles, in hours
SELECT network, max(number) AS last_block,
       dateDiff('second', max(timestamp), now()) AS behind_s,
       round(quantileExactIf(0.5)(dateDiff('millisecond', timestamp, inserted_at) / 1000,
             timestamp > now() - INTERVAL {hours} HOUR), 3) AS p50_s,
       round(quantileExactIf(0.99)(dateDiff('millisecond', timestamp, inserted_at) / 1000,
             timestamp > now() - INTERVAL {hours} HOUR), 3) AS p99_s
FROM blocks FINAL
WHERE NOT retracted
GROUP BY network
ORDER BY network
