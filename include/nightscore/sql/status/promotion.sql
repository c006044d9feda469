-- When a model version was last made champion by the gate (an applied promotion).
SELECT decided_at, reason
FROM ml.model_decisions
WHERE model_name = :model_name AND challenger_version = :version
  AND decision = 'promote' AND applied
ORDER BY decided_at DESC
LIMIT 1
