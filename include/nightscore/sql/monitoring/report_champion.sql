-- The model's current champion, with the training cutoff of the decision that
-- promoted it.
SELECT h.model_name, h.version, h.champion_from, h.roc_auc_at_promotion,
       (SELECT d.training_cutoff FROM ml.model_decisions d
        WHERE d.model_name = h.model_name AND d.challenger_version = h.version
          AND d.decided_at = h.champion_from LIMIT 1) AS training_cutoff
FROM analytics.champion_history h
WHERE h.model_name = :model AND h.champion_until IS NULL
ORDER BY h.champion_from DESC LIMIT 1
