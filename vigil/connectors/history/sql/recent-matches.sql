-- answers: the latest matches, newest first
-- param limit int 50 1..10000: rows at most
-- param monitor id '': only this monitor id (all when empty)
SELECT monitor_id, monitor_name, network, block_number, transaction_hash, timestamp
FROM matches FINAL
WHERE NOT retracted AND ({monitor} = '' OR monitor_id = {monitor})
ORDER BY timestamp DESC, block_number DESC
LIMIT {limit}
