-- answers: the latest matches over the last hours (of block time), newest first
-- param hours int 24 1..87600: how far back, in hours
-- param limit int 50 1..10000: rows at most
-- param monitor id '': only this monitor id (all when empty)
SELECT monitor_id, monitor_name, network, block_number, transaction_hash, timestamp
FROM matches FINAL
WHERE timestamp > now() - INTERVAL {hours} HOUR AND NOT retracted
  AND ({monitor} = '' OR monitor_id = {monitor})
ORDER BY timestamp DESC, block_number DESC, id DESC
LIMIT {limit}
