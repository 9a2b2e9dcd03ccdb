-- answers: deliveries that failed after their last retry, newest first
-- param limit int 50 1..10000: rows at most
SELECT id, request_id, channel, channel_type, attempts, http_status, error, at
FROM deliveries FINAL
WHERE status = 'FAILED'
ORDER BY at DESC
LIMIT {limit}
