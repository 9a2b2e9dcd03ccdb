-- answers: the latest replays (`vigil replay`): where their blocks came from, the range and how many matches each found
-- param limit int 20 1..10000: replays at most
SELECT replay_id, source, any(network) AS network, min(block_number) AS first_block,
       max(block_number) AS last_block, count() AS matches, max(at) AS at
FROM replays FINAL
GROUP BY replay_id, source
ORDER BY at DESC, replay_id
LIMIT {limit}
