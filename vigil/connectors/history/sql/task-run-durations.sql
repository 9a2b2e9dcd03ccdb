-- answers: runs per task and how long they took (ms): p50, p95, max, with errors and timeouts
-- param hours int 24 1..87600: how far back, in hours (of the runs' start)
-- param task id '': only this task id (all when empty)
SELECT task_id, count() AS runs,
       countIf(status = 'error') AS errors,
       countIf(status = 'timeout') AS timeouts,
       round(quantileExact(0.5)(duration_ms)) AS p50_ms,
       round(quantileExact(0.95)(duration_ms)) AS p95_ms,
       max(duration_ms) AS max_ms
FROM task_runs FINAL
WHERE finished_at IS NOT NULL AND started_at > now() - INTERVAL {hours} HOUR
  AND ({task} = '' OR task_id = {task})
GROUP BY task_id
ORDER BY runs DESC, task_id
