INSERT INTO scoring.feature_words (feature, words)
VALUES (:feature, :words)
ON CONFLICT (feature) DO UPDATE SET words = excluded.words
WHERE scoring.feature_words.words IS DISTINCT FROM excluded.words
