-- 0003: compact, UTC-proof rollups (docs/design.md, "Rollup storage" and "Time zone").
--
-- What changes, for usage_1m, usage_1h and usage_1d:
--   * ts is DateTime('UTC'): partitions (toYYYYMM(ts)), hours and days are UTC months,
--     hours and days on every server, whatever its <timezone>;
--   * ORDER BY puts the dimensions first and ts last, so one series' buckets sit together
--     and compress (src_topic, src_partition stay in the key: merges never mix Kafka
--     partitions, the landing marks depend on it);
--   * histogram counts are UInt32 in the states of usage_1m and usage_1h (a minute or an
--     hour of one key on one Kafka partition never holds 4e9 calls in one bucket), UInt64
--     in usage_1d; the input tables keep UInt64 and the views read UInt64;
--   * the input tables and views are renamed usage_G_input_v3 / usage_G_mv_v3, and the old
--     input tables refuse inserts before they are dropped, so an aggregator of an older
--     version cannot land anywhere (its inserts fail, its Kafka offsets stay uncommitted
--     and are replayed by the new version against the copied landing marks).
-- The columns are declared once in warehouse/columns.go; a test DESCRIBEs the tables
-- against that list.
--
-- Upgrade: the old tables are kept as usage_G_v1 (DROP them once satisfied) and their
-- data, landing marks included, is copied into the new tables. warehouse.Migrate holds a
-- lock while it applies migrations, and every step below can be repeated: a run that was
-- interrupted is completed by the next one.
-- {database} is replaced by the target database name.

-- 1. Fence out older aggregators: a column whose DEFAULT throws makes every insert that
--    does not name it (every aggregator's) fail from here on; then drop the old views and
--    input tables, views first (newer servers refuse to drop a table a view reads).
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m_input'
ALTER TABLE {database}.usage_1m_input ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h_input'
ALTER TABLE {database}.usage_1h_input ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d_input'
ALTER TABLE {database}.usage_1d_input ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
DROP TABLE IF EXISTS {database}.usage_1m_mv;
DROP TABLE IF EXISTS {database}.usage_1h_mv;
DROP TABLE IF EXISTS {database}.usage_1d_mv;
DROP TABLE IF EXISTS {database}.usage_1m_input;
DROP TABLE IF EXISTS {database}.usage_1h_input;
DROP TABLE IF EXISTS {database}.usage_1d_input;
DROP TABLE IF EXISTS {database}.usage_minute;
DROP TABLE IF EXISTS {database}.usage_hourly;
DROP TABLE IF EXISTS {database}.usage_daily;
DROP TABLE IF EXISTS {database}.cost_by_model_daily;

-- 2. Keep the old tables under the name usage_G_v1 (once: the rename is skipped when the
--    copy exists already).
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1m_v1'
RENAME TABLE {database}.usage_1m TO {database}.usage_1m_v1;
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1h_v1'
RENAME TABLE {database}.usage_1h TO {database}.usage_1h_v1;
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1d_v1'
RENAME TABLE {database}.usage_1d TO {database}.usage_1d_v1;

-- 3. usage_1m: the new table, filled from the old one. Repeated whole when interrupted:
--    nothing lands here before this migration is recorded.
DROP TABLE IF EXISTS {database}.usage_1m;
CREATE TABLE {database}.usage_1m
(
    ts                   DateTime('UTC'),
    tenant               String,
    application          String,
    provider             String,
    model                String,
    error_type           String,
    src_topic            String,
    src_partition        Int32,
    src_offset           AggregateFunction(max, Int64),
    requests             AggregateFunction(sum, UInt64),
    errors               AggregateFunction(sum, UInt64),
    input_tokens         AggregateFunction(sum, UInt64),
    cached_input_tokens  AggregateFunction(sum, UInt64),
    cache_write_tokens   AggregateFunction(sum, UInt64),
    output_tokens        AggregateFunction(sum, UInt64),
    reasoning_tokens     AggregateFunction(sum, UInt64),
    gpu_us               AggregateFunction(sum, UInt64),
    unpriced_requests    AggregateFunction(sum, UInt64),
    cost_usd             AggregateFunction(sum, Decimal(38, 12)),
    latency_count        AggregateFunction(sum, UInt64),
    latency_sum_us       AggregateFunction(sum, UInt64),
    latency_min_ms       AggregateFunction(min, Float64),
    latency_max_ms       AggregateFunction(max, Float64),
    latency_hist         AggregateFunction(sumMap, Array(Int16), Array(UInt32)),
    ttft_count           AggregateFunction(sum, UInt64),
    ttft_sum_us          AggregateFunction(sum, UInt64),
    ttft_min_ms          AggregateFunction(min, Float64),
    ttft_max_ms          AggregateFunction(max, Float64),
    ttft_hist            AggregateFunction(sumMap, Array(Int16), Array(UInt32))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, application, provider, model, error_type, src_topic, src_partition, ts);

INSERT INTO {database}.usage_1m
SELECT
    ts, tenant, application, provider, model, error_type, src_topic, src_partition, src_offset,
    requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
    gpu_us, unpriced_requests, cost_usd, latency_count, latency_sum_us, latency_min_ms, latency_max_ms,
    arrayReduce('sumMapState', [finalizeAggregation(latency_hist).1], [arrayMap(x -> toUInt32(x), finalizeAggregation(latency_hist).2)]) AS latency_hist,
    ttft_count, ttft_sum_us, ttft_min_ms, ttft_max_ms,
    arrayReduce('sumMapState', [finalizeAggregation(ttft_hist).1], [arrayMap(x -> toUInt32(x), finalizeAggregation(ttft_hist).2)]) AS ttft_hist
FROM {database}.usage_1m_v1;

-- 4. usage_1m: its input table and view.
CREATE TABLE IF NOT EXISTS {database}.usage_1m_input_v3
(
    ts                   DateTime('UTC'),
    tenant               String,
    application          String,
    provider             String,
    model                String,
    error_type           String,
    src_topic            String,
    src_partition        Int32,
    src_offset           Int64,
    requests             UInt64,
    errors               UInt64,
    input_tokens         UInt64,
    cached_input_tokens  UInt64,
    cache_write_tokens   UInt64,
    output_tokens        UInt64,
    reasoning_tokens     UInt64,
    gpu_us               UInt64,
    unpriced_requests    UInt64,
    cost_usd             Decimal(38, 12),
    latency_count        UInt64,
    latency_sum_us       UInt64,
    latency_min_ms       Float64,
    latency_max_ms       Float64,
    latency_hist_idx     Array(Int16),
    latency_hist_cnt     Array(UInt64),
    ttft_count           UInt64,
    ttft_sum_us          UInt64,
    ttft_min_ms          Float64,
    ttft_max_ms          Float64,
    ttft_hist_idx        Array(Int16),
    ttft_hist_cnt        Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1m_mv_v3 TO {database}.usage_1m AS
SELECT ts, tenant, application, provider, model, error_type, src_topic, src_partition,
    arrayReduce('maxState', [src_offset]) AS src_offset,
    arrayReduce('sumState', [requests]) AS requests,
    arrayReduce('sumState', [errors]) AS errors,
    arrayReduce('sumState', [input_tokens]) AS input_tokens,
    arrayReduce('sumState', [cached_input_tokens]) AS cached_input_tokens,
    arrayReduce('sumState', [cache_write_tokens]) AS cache_write_tokens,
    arrayReduce('sumState', [output_tokens]) AS output_tokens,
    arrayReduce('sumState', [reasoning_tokens]) AS reasoning_tokens,
    arrayReduce('sumState', [gpu_us]) AS gpu_us,
    arrayReduce('sumState', [unpriced_requests]) AS unpriced_requests,
    arrayReduce('sumState', [cost_usd]) AS cost_usd,
    arrayReduce('sumState', [latency_count]) AS latency_count,
    arrayReduce('sumState', [latency_sum_us]) AS latency_sum_us,
    arrayReduce('minState', [latency_min_ms]) AS latency_min_ms,
    arrayReduce('maxState', [latency_max_ms]) AS latency_max_ms,
    arrayReduce('sumMapState', [latency_hist_idx], [arrayMap(x -> toUInt32(x), latency_hist_cnt)]) AS latency_hist,
    arrayReduce('sumState', [ttft_count]) AS ttft_count,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    arrayReduce('minState', [ttft_min_ms]) AS ttft_min_ms,
    arrayReduce('maxState', [ttft_max_ms]) AS ttft_max_ms,
    arrayReduce('sumMapState', [ttft_hist_idx], [arrayMap(x -> toUInt32(x), ttft_hist_cnt)]) AS ttft_hist
FROM {database}.usage_1m_input_v3;

-- 3. usage_1h: the new table, filled from the old one. Repeated whole when interrupted:
--    nothing lands here before this migration is recorded.
DROP TABLE IF EXISTS {database}.usage_1h;
CREATE TABLE {database}.usage_1h
(
    ts                   DateTime('UTC'),
    tenant               String,
    application          String,
    provider             String,
    model                String,
    error_type           String,
    src_topic            String,
    src_partition        Int32,
    src_offset           AggregateFunction(max, Int64),
    requests             AggregateFunction(sum, UInt64),
    errors               AggregateFunction(sum, UInt64),
    input_tokens         AggregateFunction(sum, UInt64),
    cached_input_tokens  AggregateFunction(sum, UInt64),
    cache_write_tokens   AggregateFunction(sum, UInt64),
    output_tokens        AggregateFunction(sum, UInt64),
    reasoning_tokens     AggregateFunction(sum, UInt64),
    gpu_us               AggregateFunction(sum, UInt64),
    unpriced_requests    AggregateFunction(sum, UInt64),
    cost_usd             AggregateFunction(sum, Decimal(38, 12)),
    latency_count        AggregateFunction(sum, UInt64),
    latency_sum_us       AggregateFunction(sum, UInt64),
    latency_min_ms       AggregateFunction(min, Float64),
    latency_max_ms       AggregateFunction(max, Float64),
    latency_hist         AggregateFunction(sumMap, Array(Int16), Array(UInt32)),
    ttft_count           AggregateFunction(sum, UInt64),
    ttft_sum_us          AggregateFunction(sum, UInt64),
    ttft_min_ms          AggregateFunction(min, Float64),
    ttft_max_ms          AggregateFunction(max, Float64),
    ttft_hist            AggregateFunction(sumMap, Array(Int16), Array(UInt32))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, application, provider, model, error_type, src_topic, src_partition, ts);

INSERT INTO {database}.usage_1h
SELECT
    ts, tenant, application, provider, model, error_type, src_topic, src_partition, src_offset,
    requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
    gpu_us, unpriced_requests, cost_usd, latency_count, latency_sum_us, latency_min_ms, latency_max_ms,
    arrayReduce('sumMapState', [finalizeAggregation(latency_hist).1], [arrayMap(x -> toUInt32(x), finalizeAggregation(latency_hist).2)]) AS latency_hist,
    ttft_count, ttft_sum_us, ttft_min_ms, ttft_max_ms,
    arrayReduce('sumMapState', [finalizeAggregation(ttft_hist).1], [arrayMap(x -> toUInt32(x), finalizeAggregation(ttft_hist).2)]) AS ttft_hist
FROM {database}.usage_1h_v1;

-- 4. usage_1h: its input table and view.
CREATE TABLE IF NOT EXISTS {database}.usage_1h_input_v3
(
    ts                   DateTime('UTC'),
    tenant               String,
    application          String,
    provider             String,
    model                String,
    error_type           String,
    src_topic            String,
    src_partition        Int32,
    src_offset           Int64,
    requests             UInt64,
    errors               UInt64,
    input_tokens         UInt64,
    cached_input_tokens  UInt64,
    cache_write_tokens   UInt64,
    output_tokens        UInt64,
    reasoning_tokens     UInt64,
    gpu_us               UInt64,
    unpriced_requests    UInt64,
    cost_usd             Decimal(38, 12),
    latency_count        UInt64,
    latency_sum_us       UInt64,
    latency_min_ms       Float64,
    latency_max_ms       Float64,
    latency_hist_idx     Array(Int16),
    latency_hist_cnt     Array(UInt64),
    ttft_count           UInt64,
    ttft_sum_us          UInt64,
    ttft_min_ms          Float64,
    ttft_max_ms          Float64,
    ttft_hist_idx        Array(Int16),
    ttft_hist_cnt        Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1h_mv_v3 TO {database}.usage_1h AS
SELECT ts, tenant, application, provider, model, error_type, src_topic, src_partition,
    arrayReduce('maxState', [src_offset]) AS src_offset,
    arrayReduce('sumState', [requests]) AS requests,
    arrayReduce('sumState', [errors]) AS errors,
    arrayReduce('sumState', [input_tokens]) AS input_tokens,
    arrayReduce('sumState', [cached_input_tokens]) AS cached_input_tokens,
    arrayReduce('sumState', [cache_write_tokens]) AS cache_write_tokens,
    arrayReduce('sumState', [output_tokens]) AS output_tokens,
    arrayReduce('sumState', [reasoning_tokens]) AS reasoning_tokens,
    arrayReduce('sumState', [gpu_us]) AS gpu_us,
    arrayReduce('sumState', [unpriced_requests]) AS unpriced_requests,
    arrayReduce('sumState', [cost_usd]) AS cost_usd,
    arrayReduce('sumState', [latency_count]) AS latency_count,
    arrayReduce('sumState', [latency_sum_us]) AS latency_sum_us,
    arrayReduce('minState', [latency_min_ms]) AS latency_min_ms,
    arrayReduce('maxState', [latency_max_ms]) AS latency_max_ms,
    arrayReduce('sumMapState', [latency_hist_idx], [arrayMap(x -> toUInt32(x), latency_hist_cnt)]) AS latency_hist,
    arrayReduce('sumState', [ttft_count]) AS ttft_count,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    arrayReduce('minState', [ttft_min_ms]) AS ttft_min_ms,
    arrayReduce('maxState', [ttft_max_ms]) AS ttft_max_ms,
    arrayReduce('sumMapState', [ttft_hist_idx], [arrayMap(x -> toUInt32(x), ttft_hist_cnt)]) AS ttft_hist
FROM {database}.usage_1h_input_v3;

-- 3. usage_1d: the new table, filled from the old one. Repeated whole when interrupted:
--    nothing lands here before this migration is recorded.
DROP TABLE IF EXISTS {database}.usage_1d;
CREATE TABLE {database}.usage_1d
(
    ts                   DateTime('UTC'),
    tenant               String,
    application          String,
    provider             String,
    model                String,
    error_type           String,
    src_topic            String,
    src_partition        Int32,
    src_offset           AggregateFunction(max, Int64),
    requests             AggregateFunction(sum, UInt64),
    errors               AggregateFunction(sum, UInt64),
    input_tokens         AggregateFunction(sum, UInt64),
    cached_input_tokens  AggregateFunction(sum, UInt64),
    cache_write_tokens   AggregateFunction(sum, UInt64),
    output_tokens        AggregateFunction(sum, UInt64),
    reasoning_tokens     AggregateFunction(sum, UInt64),
    gpu_us               AggregateFunction(sum, UInt64),
    unpriced_requests    AggregateFunction(sum, UInt64),
    cost_usd             AggregateFunction(sum, Decimal(38, 12)),
    latency_count        AggregateFunction(sum, UInt64),
    latency_sum_us       AggregateFunction(sum, UInt64),
    latency_min_ms       AggregateFunction(min, Float64),
    latency_max_ms       AggregateFunction(max, Float64),
    latency_hist         AggregateFunction(sumMap, Array(Int16), Array(UInt64)),
    ttft_count           AggregateFunction(sum, UInt64),
    ttft_sum_us          AggregateFunction(sum, UInt64),
    ttft_min_ms          AggregateFunction(min, Float64),
    ttft_max_ms          AggregateFunction(max, Float64),
    ttft_hist            AggregateFunction(sumMap, Array(Int16), Array(UInt64))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, application, provider, model, error_type, src_topic, src_partition, ts);

INSERT INTO {database}.usage_1d
SELECT
    ts, tenant, application, provider, model, error_type, src_topic, src_partition, src_offset,
    requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
    gpu_us, unpriced_requests, cost_usd, latency_count, latency_sum_us, latency_min_ms, latency_max_ms,
    latency_hist,
    ttft_count, ttft_sum_us, ttft_min_ms, ttft_max_ms,
    ttft_hist
FROM {database}.usage_1d_v1;

-- 4. usage_1d: its input table and view.
CREATE TABLE IF NOT EXISTS {database}.usage_1d_input_v3
(
    ts                   DateTime('UTC'),
    tenant               String,
    application          String,
    provider             String,
    model                String,
    error_type           String,
    src_topic            String,
    src_partition        Int32,
    src_offset           Int64,
    requests             UInt64,
    errors               UInt64,
    input_tokens         UInt64,
    cached_input_tokens  UInt64,
    cache_write_tokens   UInt64,
    output_tokens        UInt64,
    reasoning_tokens     UInt64,
    gpu_us               UInt64,
    unpriced_requests    UInt64,
    cost_usd             Decimal(38, 12),
    latency_count        UInt64,
    latency_sum_us       UInt64,
    latency_min_ms       Float64,
    latency_max_ms       Float64,
    latency_hist_idx     Array(Int16),
    latency_hist_cnt     Array(UInt64),
    ttft_count           UInt64,
    ttft_sum_us          UInt64,
    ttft_min_ms          Float64,
    ttft_max_ms          Float64,
    ttft_hist_idx        Array(Int16),
    ttft_hist_cnt        Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1d_mv_v3 TO {database}.usage_1d AS
SELECT ts, tenant, application, provider, model, error_type, src_topic, src_partition,
    arrayReduce('maxState', [src_offset]) AS src_offset,
    arrayReduce('sumState', [requests]) AS requests,
    arrayReduce('sumState', [errors]) AS errors,
    arrayReduce('sumState', [input_tokens]) AS input_tokens,
    arrayReduce('sumState', [cached_input_tokens]) AS cached_input_tokens,
    arrayReduce('sumState', [cache_write_tokens]) AS cache_write_tokens,
    arrayReduce('sumState', [output_tokens]) AS output_tokens,
    arrayReduce('sumState', [reasoning_tokens]) AS reasoning_tokens,
    arrayReduce('sumState', [gpu_us]) AS gpu_us,
    arrayReduce('sumState', [unpriced_requests]) AS unpriced_requests,
    arrayReduce('sumState', [cost_usd]) AS cost_usd,
    arrayReduce('sumState', [latency_count]) AS latency_count,
    arrayReduce('sumState', [latency_sum_us]) AS latency_sum_us,
    arrayReduce('minState', [latency_min_ms]) AS latency_min_ms,
    arrayReduce('maxState', [latency_max_ms]) AS latency_max_ms,
    arrayReduce('sumMapState', [latency_hist_idx], [latency_hist_cnt]) AS latency_hist,
    arrayReduce('sumState', [ttft_count]) AS ttft_count,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    arrayReduce('minState', [ttft_min_ms]) AS ttft_min_ms,
    arrayReduce('maxState', [ttft_max_ms]) AS ttft_max_ms,
    arrayReduce('sumMapState', [ttft_hist_idx], [ttft_hist_cnt]) AS ttft_hist
FROM {database}.usage_1d_input_v3;

-- 5. The analyst views of 0002 over the new tables, the same columns and types
--    (docs/sql.md): histogram counts are read as UInt64.
-- Per minute (ts = start of the minute, UTC).
CREATE VIEW IF NOT EXISTS {database}.usage_minute AS
SELECT ts, tenant, application, provider, model, error_type,
    sumMerge(requests) AS requests,
    sumMerge(errors) AS errors,
    sumMerge(input_tokens) AS input_tokens,
    sumMerge(cached_input_tokens) AS cached_input_tokens,
    sumMerge(cache_write_tokens) AS cache_write_tokens,
    sumMerge(output_tokens) AS output_tokens,
    sumMerge(reasoning_tokens) AS reasoning_tokens,
    sumMerge(gpu_us) AS gpu_us,
    gpu_us / 1000 AS gpu_ms,
    sumMerge(unpriced_requests) AS unpriced_requests,
    sumMerge(cost_usd) AS cost_usd,
    sumMerge(latency_count) AS latency_count,
    sumMerge(latency_sum_us) AS latency_sum_us,
    if(latency_count > 0, latency_sum_us / latency_count / 1000, NULL) AS latency_avg_ms,
    if(latency_count > 0, minMerge(latency_min_ms), NULL) AS latency_min_ms,
    if(latency_count > 0, maxMerge(latency_max_ms), NULL) AS latency_max_ms,
    sumMapMerge(latency_hist).1 AS latency_hist_idx,
    arrayMap(x -> toUInt64(x), sumMapMerge(latency_hist).2) AS latency_hist_cnt,
    sumMerge(ttft_count) AS ttft_count,
    sumMerge(ttft_sum_us) AS ttft_sum_us,
    if(ttft_count > 0, ttft_sum_us / ttft_count / 1000, NULL) AS ttft_avg_ms,
    if(ttft_count > 0, minMerge(ttft_min_ms), NULL) AS ttft_min_ms,
    if(ttft_count > 0, maxMerge(ttft_max_ms), NULL) AS ttft_max_ms,
    sumMapMerge(ttft_hist).1 AS ttft_hist_idx,
    arrayMap(x -> toUInt64(x), sumMapMerge(ttft_hist).2) AS ttft_hist_cnt
FROM {database}.usage_1m
GROUP BY ts, tenant, application, provider, model, error_type;

-- Per hour (ts = start of the hour, UTC).
CREATE VIEW IF NOT EXISTS {database}.usage_hourly AS
SELECT ts, tenant, application, provider, model, error_type,
    sumMerge(requests) AS requests,
    sumMerge(errors) AS errors,
    sumMerge(input_tokens) AS input_tokens,
    sumMerge(cached_input_tokens) AS cached_input_tokens,
    sumMerge(cache_write_tokens) AS cache_write_tokens,
    sumMerge(output_tokens) AS output_tokens,
    sumMerge(reasoning_tokens) AS reasoning_tokens,
    sumMerge(gpu_us) AS gpu_us,
    gpu_us / 1000 AS gpu_ms,
    sumMerge(unpriced_requests) AS unpriced_requests,
    sumMerge(cost_usd) AS cost_usd,
    sumMerge(latency_count) AS latency_count,
    sumMerge(latency_sum_us) AS latency_sum_us,
    if(latency_count > 0, latency_sum_us / latency_count / 1000, NULL) AS latency_avg_ms,
    if(latency_count > 0, minMerge(latency_min_ms), NULL) AS latency_min_ms,
    if(latency_count > 0, maxMerge(latency_max_ms), NULL) AS latency_max_ms,
    sumMapMerge(latency_hist).1 AS latency_hist_idx,
    arrayMap(x -> toUInt64(x), sumMapMerge(latency_hist).2) AS latency_hist_cnt,
    sumMerge(ttft_count) AS ttft_count,
    sumMerge(ttft_sum_us) AS ttft_sum_us,
    if(ttft_count > 0, ttft_sum_us / ttft_count / 1000, NULL) AS ttft_avg_ms,
    if(ttft_count > 0, minMerge(ttft_min_ms), NULL) AS ttft_min_ms,
    if(ttft_count > 0, maxMerge(ttft_max_ms), NULL) AS ttft_max_ms,
    sumMapMerge(ttft_hist).1 AS ttft_hist_idx,
    arrayMap(x -> toUInt64(x), sumMapMerge(ttft_hist).2) AS ttft_hist_cnt
FROM {database}.usage_1h
GROUP BY ts, tenant, application, provider, model, error_type;

-- Per day (ts = midnight UTC).
CREATE VIEW IF NOT EXISTS {database}.usage_daily AS
SELECT ts, tenant, application, provider, model, error_type,
    sumMerge(requests) AS requests,
    sumMerge(errors) AS errors,
    sumMerge(input_tokens) AS input_tokens,
    sumMerge(cached_input_tokens) AS cached_input_tokens,
    sumMerge(cache_write_tokens) AS cache_write_tokens,
    sumMerge(output_tokens) AS output_tokens,
    sumMerge(reasoning_tokens) AS reasoning_tokens,
    sumMerge(gpu_us) AS gpu_us,
    gpu_us / 1000 AS gpu_ms,
    sumMerge(unpriced_requests) AS unpriced_requests,
    sumMerge(cost_usd) AS cost_usd,
    sumMerge(latency_count) AS latency_count,
    sumMerge(latency_sum_us) AS latency_sum_us,
    if(latency_count > 0, latency_sum_us / latency_count / 1000, NULL) AS latency_avg_ms,
    if(latency_count > 0, minMerge(latency_min_ms), NULL) AS latency_min_ms,
    if(latency_count > 0, maxMerge(latency_max_ms), NULL) AS latency_max_ms,
    sumMapMerge(latency_hist).1 AS latency_hist_idx,
    arrayMap(x -> toUInt64(x), sumMapMerge(latency_hist).2) AS latency_hist_cnt,
    sumMerge(ttft_count) AS ttft_count,
    sumMerge(ttft_sum_us) AS ttft_sum_us,
    if(ttft_count > 0, ttft_sum_us / ttft_count / 1000, NULL) AS ttft_avg_ms,
    if(ttft_count > 0, minMerge(ttft_min_ms), NULL) AS ttft_min_ms,
    if(ttft_count > 0, maxMerge(ttft_max_ms), NULL) AS ttft_max_ms,
    sumMapMerge(ttft_hist).1 AS ttft_hist_idx,
    arrayMap(x -> toUInt64(x), sumMapMerge(ttft_hist).2) AS ttft_hist_cnt
FROM {database}.usage_1d
GROUP BY ts, tenant, application, provider, model, error_type;

-- Spend per provider and model per UTC day, for dashboards and finance.
CREATE VIEW IF NOT EXISTS {database}.cost_by_model_daily AS
SELECT toDate(ts, 'UTC') AS day, provider, model,
    sumMerge(requests) AS requests,
    sumMerge(errors) AS errors,
    sumMerge(input_tokens) AS input_tokens,
    sumMerge(output_tokens) AS output_tokens,
    sumMerge(unpriced_requests) AS unpriced_requests,
    sumMerge(cost_usd) AS cost_usd
FROM {database}.usage_1d
GROUP BY day, provider, model;

-- 6. Check the copy: per UTC day and Kafka partition, the old and the new table hold the
--    same landing mark, calls, cost, tokens and histogram counts (an order-independent
--    hash of them); throwIf fails the migration otherwise.
SELECT throwIf(old != new) FROM (SELECT
    (SELECT sum(cityHash64(d, src_topic, src_partition, hwm, r, c, it, ot, lc, tc, lh, th)) FROM (SELECT intDiv(toUInt32(ts), 86400) AS d, src_topic, src_partition, maxMerge(src_offset) AS hwm, sumMerge(requests) AS r, toString(sumMerge(cost_usd)) AS c, sumMerge(input_tokens) AS it, sumMerge(output_tokens) AS ot, sumMerge(latency_count) AS lc, sumMerge(ttft_count) AS tc, arraySum(sumMapMerge(latency_hist).2) AS lh, arraySum(sumMapMerge(ttft_hist).2) AS th FROM {database}.usage_1m_v1 GROUP BY d, src_topic, src_partition)) AS old,
    (SELECT sum(cityHash64(d, src_topic, src_partition, hwm, r, c, it, ot, lc, tc, lh, th)) FROM (SELECT intDiv(toUInt32(ts), 86400) AS d, src_topic, src_partition, maxMerge(src_offset) AS hwm, sumMerge(requests) AS r, toString(sumMerge(cost_usd)) AS c, sumMerge(input_tokens) AS it, sumMerge(output_tokens) AS ot, sumMerge(latency_count) AS lc, sumMerge(ttft_count) AS tc, arraySum(sumMapMerge(latency_hist).2) AS lh, arraySum(sumMapMerge(ttft_hist).2) AS th FROM {database}.usage_1m GROUP BY d, src_topic, src_partition)) AS new);
SELECT throwIf(old != new) FROM (SELECT
    (SELECT sum(cityHash64(d, src_topic, src_partition, hwm, r, c, it, ot, lc, tc, lh, th)) FROM (SELECT intDiv(toUInt32(ts), 86400) AS d, src_topic, src_partition, maxMerge(src_offset) AS hwm, sumMerge(requests) AS r, toString(sumMerge(cost_usd)) AS c, sumMerge(input_tokens) AS it, sumMerge(output_tokens) AS ot, sumMerge(latency_count) AS lc, sumMerge(ttft_count) AS tc, arraySum(sumMapMerge(latency_hist).2) AS lh, arraySum(sumMapMerge(ttft_hist).2) AS th FROM {database}.usage_1h_v1 GROUP BY d, src_topic, src_partition)) AS old,
    (SELECT sum(cityHash64(d, src_topic, src_partition, hwm, r, c, it, ot, lc, tc, lh, th)) FROM (SELECT intDiv(toUInt32(ts), 86400) AS d, src_topic, src_partition, maxMerge(src_offset) AS hwm, sumMerge(requests) AS r, toString(sumMerge(cost_usd)) AS c, sumMerge(input_tokens) AS it, sumMerge(output_tokens) AS ot, sumMerge(latency_count) AS lc, sumMerge(ttft_count) AS tc, arraySum(sumMapMerge(latency_hist).2) AS lh, arraySum(sumMapMerge(ttft_hist).2) AS th FROM {database}.usage_1h GROUP BY d, src_topic, src_partition)) AS new);
SELECT throwIf(old != new) FROM (SELECT
    (SELECT sum(cityHash64(d, src_topic, src_partition, hwm, r, c, it, ot, lc, tc, lh, th)) FROM (SELECT intDiv(toUInt32(ts), 86400) AS d, src_topic, src_partition, maxMerge(src_offset) AS hwm, sumMerge(requests) AS r, toString(sumMerge(cost_usd)) AS c, sumMerge(input_tokens) AS it, sumMerge(output_tokens) AS ot, sumMerge(latency_count) AS lc, sumMerge(ttft_count) AS tc, arraySum(sumMapMerge(latency_hist).2) AS lh, arraySum(sumMapMerge(ttft_hist).2) AS th FROM {database}.usage_1d_v1 GROUP BY d, src_topic, src_partition)) AS old,
    (SELECT sum(cityHash64(d, src_topic, src_partition, hwm, r, c, it, ot, lc, tc, lh, th)) FROM (SELECT intDiv(toUInt32(ts), 86400) AS d, src_topic, src_partition, maxMerge(src_offset) AS hwm, sumMerge(requests) AS r, toString(sumMerge(cost_usd)) AS c, sumMerge(input_tokens) AS it, sumMerge(output_tokens) AS ot, sumMerge(latency_count) AS lc, sumMerge(ttft_count) AS tc, arraySum(sumMapMerge(latency_hist).2) AS lh, arraySum(sumMapMerge(ttft_hist).2) AS th FROM {database}.usage_1d GROUP BY d, src_topic, src_partition)) AS new);
