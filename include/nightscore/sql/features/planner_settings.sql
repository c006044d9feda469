-- Set in the feature query's transaction (training, scoring, benchmarks alike).
-- The CTEs hide row counts from the planner, which then picks merge and nested-loop joins
-- that rescan tens of millions of rows; hash joins are right at every size here. With the
-- default 4 MB of work_mem, a million-flight night spills its sorts, and hash joins sized
-- for the planner's guesses spill the flights to disk at every join; JIT spends seconds
-- compiling this wide query, more than it saves.
SET LOCAL enable_mergejoin = off;
SET LOCAL enable_nestloop = off;
SET LOCAL work_mem = '64MB';
SET LOCAL jit = off;
