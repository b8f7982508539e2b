-- 0007: rollups that answer fast (docs/design.md, "Rollup storage").
--
-- What changes, for usage_1m, usage_1h and usage_1d:
--   * the latency and TTFT histograms are plain arrays, a Nested "…Map" of bucket indices
--     (idx) and counts (cnt), instead of sumMap states: the engine is SummingMergeTree,
--     which sums such maps by bucket and merges the aggregate states of the other columns
--     as AggregatingMergeTree did. ClickHouse 18.16 reads and merges sumMap states slowly
--     (a 30-day usage query spent most of its 3 s there); plain arrays merge with sumMap at
--     query time several times faster and compress a little better;
--   * usage_1m's sort key starts with toStartOfHour(ts), usage_1h's with toDate(ts): the
--     ragged minutes and hours at the edges of a range read the granules of those hours or
--     days only, not every series' rows of the month (ts last in the key made every granule
--     match). Within an hour or a day one series' rows still sit together;
--   * the input tables and views are renamed usage_G_input_v7 / usage_G_mv_v7 (their
--     columns do not change) and the v4 input tables refuse inserts before they are
--     dropped, so an aggregator of an older version cannot land anywhere while the data
--     is copied (its offsets stay uncommitted and are replayed by the new version against
--     the copied landing marks).
-- The columns are declared once in warehouse/columns.go (the sort keys too: Table.SortKey);
-- tests DESCRIBE the tables against that list and compare the views with MVSelect.
--
-- Upgrade: the old tables are kept as usage_G_v4 (DROP them once satisfied) and their
-- data, landing marks included, is copied into the new tables. Every step can be
-- repeated: a copy is redone from scratch until its table's input table exists, and is
-- never redone after (the aggregator may land from then on).
-- {database} is replaced by the target database name.

-- 1. Fence out older aggregators (see 0003), then drop the v4 views, input tables and the
--    analyst views (recreated in 9).
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m_input_v4'
ALTER TABLE {database}.usage_1m_input_v4 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h_input_v4'
ALTER TABLE {database}.usage_1h_input_v4 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d_input_v4'
ALTER TABLE {database}.usage_1d_input_v4 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
DROP TABLE IF EXISTS {database}.usage_1m_mv_v4;
DROP TABLE IF EXISTS {database}.usage_1h_mv_v4;
DROP TABLE IF EXISTS {database}.usage_1d_mv_v4;
DROP TABLE IF EXISTS {database}.usage_1m_input_v4;
DROP TABLE IF EXISTS {database}.usage_1h_input_v4;
DROP TABLE IF EXISTS {database}.usage_1d_input_v4;
DROP TABLE IF EXISTS {database}.usage_minute;
DROP TABLE IF EXISTS {database}.usage_hourly;
DROP TABLE IF EXISTS {database}.usage_daily;
DROP TABLE IF EXISTS {database}.cost_by_model_daily;
DROP TABLE IF EXISTS {database}.usage_tiers_daily;

-- 2. Keep the old tables under the name usage_G_v4 (once: the rename is skipped when the
--    copy exists already).
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1m_v4'
RENAME TABLE {database}.usage_1m TO {database}.usage_1m_v4;
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1h_v4'
RENAME TABLE {database}.usage_1h TO {database}.usage_1h_v4;
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1d_v4'
RENAME TABLE {database}.usage_1d TO {database}.usage_1d_v4;

-- 3. usage_1m: the new table, filled from usage_1m_v4, once (skipped when its input table exists:
--    from then on the aggregator may land here).
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1m_input_v7'
DROP TABLE IF EXISTS {database}.usage_1m;
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1m_input_v7'
CREATE TABLE {database}.usage_1m
(
    ts                     DateTime('UTC'),
    tenant                 String,
    application            String,
    provider               String,
    model                  String,
    error_type             String,
    service_tier           String,
    context_band           UInt32,
    src_topic              String,
    src_partition          Int32,
    src_offset             AggregateFunction(max, Int64),
    requests               AggregateFunction(sum, UInt64),
    errors                 AggregateFunction(sum, UInt64),
    input_tokens           AggregateFunction(sum, UInt64),
    cached_input_tokens    AggregateFunction(sum, UInt64),
    cache_write_tokens     AggregateFunction(sum, UInt64),
    cache_write_1h_tokens  AggregateFunction(sum, UInt64),
    output_tokens          AggregateFunction(sum, UInt64),
    reasoning_tokens       AggregateFunction(sum, UInt64),
    gpu_us                 AggregateFunction(sum, UInt64),
    unpriced_requests      AggregateFunction(sum, UInt64),
    cost_usd               AggregateFunction(sum, Decimal(38, 12)),
    latency_count          AggregateFunction(sum, UInt64),
    latency_sum_us         AggregateFunction(sum, UInt64),
    latency_min_ms         AggregateFunction(min, Float64),
    latency_max_ms         AggregateFunction(max, Float64),
    latency_histMap        Nested(idx Int16, cnt UInt32),
    ttft_count             AggregateFunction(sum, UInt64),
    ttft_sum_us            AggregateFunction(sum, UInt64),
    ttft_min_ms            AggregateFunction(min, Float64),
    ttft_max_ms            AggregateFunction(max, Float64),
    ttft_histMap           Nested(idx Int16, cnt UInt32)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (toStartOfHour(ts), tenant, application, provider, model, error_type, src_topic, src_partition, ts, service_tier, context_band);
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1m_input_v7'
INSERT INTO {database}.usage_1m (ts, tenant, application, provider, model, error_type, service_tier, context_band, src_topic, src_partition, src_offset, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, latency_count, latency_sum_us, latency_min_ms, latency_max_ms, latency_histMap.idx, latency_histMap.cnt, ttft_count, ttft_sum_us, ttft_min_ms, ttft_max_ms, ttft_histMap.idx, ttft_histMap.cnt)
SELECT ts, tenant, application, provider, model, error_type, service_tier, context_band, src_topic, src_partition, src_offset, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, latency_count, latency_sum_us, latency_min_ms, latency_max_ms, finalizeAggregation(latency_hist).1, finalizeAggregation(latency_hist).2, ttft_count, ttft_sum_us, ttft_min_ms, ttft_max_ms, finalizeAggregation(ttft_hist).1, finalizeAggregation(ttft_hist).2
FROM {database}.usage_1m_v4;

-- 4. usage_1m: its input table and view.
CREATE TABLE IF NOT EXISTS {database}.usage_1m_input_v7
(
    ts                     DateTime('UTC'),
    tenant                 String,
    application            String,
    provider               String,
    model                  String,
    error_type             String,
    service_tier           String,
    context_band           UInt32,
    src_topic              String,
    src_partition          Int32,
    src_offset             Int64,
    requests               UInt64,
    errors                 UInt64,
    input_tokens           UInt64,
    cached_input_tokens    UInt64,
    cache_write_tokens     UInt64,
    cache_write_1h_tokens  UInt64,
    output_tokens          UInt64,
    reasoning_tokens       UInt64,
    gpu_us                 UInt64,
    unpriced_requests      UInt64,
    cost_usd               Decimal(38, 12),
    latency_count          UInt64,
    latency_sum_us         UInt64,
    latency_min_ms         Float64,
    latency_max_ms         Float64,
    latency_hist_idx       Array(Int16),
    latency_hist_cnt       Array(UInt64),
    ttft_count             UInt64,
    ttft_sum_us            UInt64,
    ttft_min_ms            Float64,
    ttft_max_ms            Float64,
    ttft_hist_idx          Array(Int16),
    ttft_hist_cnt          Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1m_mv_v7 TO {database}.usage_1m AS
SELECT ts, tenant, application, provider, model, error_type, service_tier, context_band, src_topic, src_partition,
    arrayReduce('maxState', [src_offset]) AS src_offset,
    arrayReduce('sumState', [requests]) AS requests,
    arrayReduce('sumState', [errors]) AS errors,
    arrayReduce('sumState', [input_tokens]) AS input_tokens,
    arrayReduce('sumState', [cached_input_tokens]) AS cached_input_tokens,
    arrayReduce('sumState', [cache_write_tokens]) AS cache_write_tokens,
    arrayReduce('sumState', [cache_write_1h_tokens]) AS cache_write_1h_tokens,
    arrayReduce('sumState', [output_tokens]) AS output_tokens,
    arrayReduce('sumState', [reasoning_tokens]) AS reasoning_tokens,
    arrayReduce('sumState', [gpu_us]) AS gpu_us,
    arrayReduce('sumState', [unpriced_requests]) AS unpriced_requests,
    arrayReduce('sumState', [cost_usd]) AS cost_usd,
    arrayReduce('sumState', [latency_count]) AS latency_count,
    arrayReduce('sumState', [latency_sum_us]) AS latency_sum_us,
    arrayReduce('minState', [latency_min_ms]) AS latency_min_ms,
    arrayReduce('maxState', [latency_max_ms]) AS latency_max_ms,
    latency_hist_idx AS `latency_histMap.idx`, arrayMap(x -> toUInt32(x), latency_hist_cnt) AS `latency_histMap.cnt`,
    arrayReduce('sumState', [ttft_count]) AS ttft_count,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    arrayReduce('minState', [ttft_min_ms]) AS ttft_min_ms,
    arrayReduce('maxState', [ttft_max_ms]) AS ttft_max_ms,
    ttft_hist_idx AS `ttft_histMap.idx`, arrayMap(x -> toUInt32(x), ttft_hist_cnt) AS `ttft_histMap.cnt`
FROM {database}.usage_1m_input_v7;

-- 5. usage_1h: the new table, filled from usage_1h_v4, once (skipped when its input table exists:
--    from then on the aggregator may land here).
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1h_input_v7'
DROP TABLE IF EXISTS {database}.usage_1h;
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1h_input_v7'
CREATE TABLE {database}.usage_1h
(
    ts                     DateTime('UTC'),
    tenant                 String,
    application            String,
    provider               String,
    model                  String,
    error_type             String,
    service_tier           String,
    context_band           UInt32,
    src_topic              String,
    src_partition          Int32,
    src_offset             AggregateFunction(max, Int64),
    requests               AggregateFunction(sum, UInt64),
    errors                 AggregateFunction(sum, UInt64),
    input_tokens           AggregateFunction(sum, UInt64),
    cached_input_tokens    AggregateFunction(sum, UInt64),
    cache_write_tokens     AggregateFunction(sum, UInt64),
    cache_write_1h_tokens  AggregateFunction(sum, UInt64),
    output_tokens          AggregateFunction(sum, UInt64),
    reasoning_tokens       AggregateFunction(sum, UInt64),
    gpu_us                 AggregateFunction(sum, UInt64),
    unpriced_requests      AggregateFunction(sum, UInt64),
    cost_usd               AggregateFunction(sum, Decimal(38, 12)),
    latency_count          AggregateFunction(sum, UInt64),
    latency_sum_us         AggregateFunction(sum, UInt64),
    latency_min_ms         AggregateFunction(min, Float64),
    latency_max_ms         AggregateFunction(max, Float64),
    latency_histMap        Nested(idx Int16, cnt UInt32),
    ttft_count             AggregateFunction(sum, UInt64),
    ttft_sum_us            AggregateFunction(sum, UInt64),
    ttft_min_ms            AggregateFunction(min, Float64),
    ttft_max_ms            AggregateFunction(max, Float64),
    ttft_histMap           Nested(idx Int16, cnt UInt32)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (toDate(ts), tenant, application, provider, model, error_type, src_topic, src_partition, ts, service_tier, context_band);
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1h_input_v7'
INSERT INTO {database}.usage_1h (ts, tenant, application, provider, model, error_type, service_tier, context_band, src_topic, src_partition, src_offset, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, latency_count, latency_sum_us, latency_min_ms, latency_max_ms, latency_histMap.idx, latency_histMap.cnt, ttft_count, ttft_sum_us, ttft_min_ms, ttft_max_ms, ttft_histMap.idx, ttft_histMap.cnt)
SELECT ts, tenant, application, provider, model, error_type, service_tier, context_band, src_topic, src_partition, src_offset, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, latency_count, latency_sum_us, latency_min_ms, latency_max_ms, finalizeAggregation(latency_hist).1, finalizeAggregation(latency_hist).2, ttft_count, ttft_sum_us, ttft_min_ms, ttft_max_ms, finalizeAggregation(ttft_hist).1, finalizeAggregation(ttft_hist).2
FROM {database}.usage_1h_v4;

-- 6. usage_1h: its input table and view.
CREATE TABLE IF NOT EXISTS {database}.usage_1h_input_v7
(
    ts                     DateTime('UTC'),
    tenant                 String,
    application            String,
    provider               String,
    model                  String,
    error_type             String,
    service_tier           String,
    context_band           UInt32,
    src_topic              String,
    src_partition          Int32,
    src_offset             Int64,
    requests               UInt64,
    errors                 UInt64,
    input_tokens           UInt64,
    cached_input_tokens    UInt64,
    cache_write_tokens     UInt64,
    cache_write_1h_tokens  UInt64,
    output_tokens          UInt64,
    reasoning_tokens       UInt64,
    gpu_us                 UInt64,
    unpriced_requests      UInt64,
    cost_usd               Decimal(38, 12),
    latency_count          UInt64,
    latency_sum_us         UInt64,
    latency_min_ms         Float64,
    latency_max_ms         Float64,
    latency_hist_idx       Array(Int16),
    latency_hist_cnt       Array(UInt64),
    ttft_count             UInt64,
    ttft_sum_us            UInt64,
    ttft_min_ms            Float64,
    ttft_max_ms            Float64,
    ttft_hist_idx          Array(Int16),
    ttft_hist_cnt          Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1h_mv_v7 TO {database}.usage_1h AS
SELECT ts, tenant, application, provider, model, error_type, service_tier, context_band, src_topic, src_partition,
    arrayReduce('maxState', [src_offset]) AS src_offset,
    arrayReduce('sumState', [requests]) AS requests,
    arrayReduce('sumState', [errors]) AS errors,
    arrayReduce('sumState', [input_tokens]) AS input_tokens,
    arrayReduce('sumState', [cached_input_tokens]) AS cached_input_tokens,
    arrayReduce('sumState', [cache_write_tokens]) AS cache_write_tokens,
    arrayReduce('sumState', [cache_write_1h_tokens]) AS cache_write_1h_tokens,
    arrayReduce('sumState', [output_tokens]) AS output_tokens,
    arrayReduce('sumState', [reasoning_tokens]) AS reasoning_tokens,
    arrayReduce('sumState', [gpu_us]) AS gpu_us,
    arrayReduce('sumState', [unpriced_requests]) AS unpriced_requests,
    arrayReduce('sumState', [cost_usd]) AS cost_usd,
    arrayReduce('sumState', [latency_count]) AS latency_count,
    arrayReduce('sumState', [latency_sum_us]) AS latency_sum_us,
    arrayReduce('minState', [latency_min_ms]) AS latency_min_ms,
    arrayReduce('maxState', [latency_max_ms]) AS latency_max_ms,
    latency_hist_idx AS `latency_histMap.idx`, arrayMap(x -> toUInt32(x), latency_hist_cnt) AS `latency_histMap.cnt`,
    arrayReduce('sumState', [ttft_count]) AS ttft_count,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    arrayReduce('minState', [ttft_min_ms]) AS ttft_min_ms,
    arrayReduce('maxState', [ttft_max_ms]) AS ttft_max_ms,
    ttft_hist_idx AS `ttft_histMap.idx`, arrayMap(x -> toUInt32(x), ttft_hist_cnt) AS `ttft_histMap.cnt`
FROM {database}.usage_1h_input_v7;

-- 7. usage_1d: the new table, filled from usage_1d_v4, once (skipped when its input table exists:
--    from then on the aggregator may land here).
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1d_input_v7'
DROP TABLE IF EXISTS {database}.usage_1d;
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1d_input_v7'
CREATE TABLE {database}.usage_1d
(
    ts                     DateTime('UTC'),
    tenant                 String,
    application            String,
    provider               String,
    model                  String,
    error_type             String,
    service_tier           String,
    context_band           UInt32,
    src_topic              String,
    src_partition          Int32,
    src_offset             AggregateFunction(max, Int64),
    requests               AggregateFunction(sum, UInt64),
    errors                 AggregateFunction(sum, UInt64),
    input_tokens           AggregateFunction(sum, UInt64),
    cached_input_tokens    AggregateFunction(sum, UInt64),
    cache_write_tokens     AggregateFunction(sum, UInt64),
    cache_write_1h_tokens  AggregateFunction(sum, UInt64),
    output_tokens          AggregateFunction(sum, UInt64),
    reasoning_tokens       AggregateFunction(sum, UInt64),
    gpu_us                 AggregateFunction(sum, UInt64),
    unpriced_requests      AggregateFunction(sum, UInt64),
    cost_usd               AggregateFunction(sum, Decimal(38, 12)),
    latency_count          AggregateFunction(sum, UInt64),
    latency_sum_us         AggregateFunction(sum, UInt64),
    latency_min_ms         AggregateFunction(min, Float64),
    latency_max_ms         AggregateFunction(max, Float64),
    latency_histMap        Nested(idx Int16, cnt UInt64),
    ttft_count             AggregateFunction(sum, UInt64),
    ttft_sum_us            AggregateFunction(sum, UInt64),
    ttft_min_ms            AggregateFunction(min, Float64),
    ttft_max_ms            AggregateFunction(max, Float64),
    ttft_histMap           Nested(idx Int16, cnt UInt64)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (tenant, application, provider, model, error_type, src_topic, src_partition, ts, service_tier, context_band);
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_1d_input_v7'
INSERT INTO {database}.usage_1d (ts, tenant, application, provider, model, error_type, service_tier, context_band, src_topic, src_partition, src_offset, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, latency_count, latency_sum_us, latency_min_ms, latency_max_ms, latency_histMap.idx, latency_histMap.cnt, ttft_count, ttft_sum_us, ttft_min_ms, ttft_max_ms, ttft_histMap.idx, ttft_histMap.cnt)
SELECT ts, tenant, application, provider, model, error_type, service_tier, context_band, src_topic, src_partition, src_offset, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, latency_count, latency_sum_us, latency_min_ms, latency_max_ms, finalizeAggregation(latency_hist).1, finalizeAggregation(latency_hist).2, ttft_count, ttft_sum_us, ttft_min_ms, ttft_max_ms, finalizeAggregation(ttft_hist).1, finalizeAggregation(ttft_hist).2
FROM {database}.usage_1d_v4;

-- 8. usage_1d: its input table and view.
CREATE TABLE IF NOT EXISTS {database}.usage_1d_input_v7
(
    ts                     DateTime('UTC'),
    tenant                 String,
    application            String,
    provider               String,
    model                  String,
    error_type             String,
    service_tier           String,
    context_band           UInt32,
    src_topic              String,
    src_partition          Int32,
    src_offset             Int64,
    requests               UInt64,
    errors                 UInt64,
    input_tokens           UInt64,
    cached_input_tokens    UInt64,
    cache_write_tokens     UInt64,
    cache_write_1h_tokens  UInt64,
    output_tokens          UInt64,
    reasoning_tokens       UInt64,
    gpu_us                 UInt64,
    unpriced_requests      UInt64,
    cost_usd               Decimal(38, 12),
    latency_count          UInt64,
    latency_sum_us         UInt64,
    latency_min_ms         Float64,
    latency_max_ms         Float64,
    latency_hist_idx       Array(Int16),
    latency_hist_cnt       Array(UInt64),
    ttft_count             UInt64,
    ttft_sum_us            UInt64,
    ttft_min_ms            Float64,
    ttft_max_ms            Float64,
    ttft_hist_idx          Array(Int16),
    ttft_hist_cnt          Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1d_mv_v7 TO {database}.usage_1d AS
SELECT ts, tenant, application, provider, model, error_type, service_tier, context_band, src_topic, src_partition,
    arrayReduce('maxState', [src_offset]) AS src_offset,
    arrayReduce('sumState', [requests]) AS requests,
    arrayReduce('sumState', [errors]) AS errors,
    arrayReduce('sumState', [input_tokens]) AS input_tokens,
    arrayReduce('sumState', [cached_input_tokens]) AS cached_input_tokens,
    arrayReduce('sumState', [cache_write_tokens]) AS cache_write_tokens,
    arrayReduce('sumState', [cache_write_1h_tokens]) AS cache_write_1h_tokens,
    arrayReduce('sumState', [output_tokens]) AS output_tokens,
    arrayReduce('sumState', [reasoning_tokens]) AS reasoning_tokens,
    arrayReduce('sumState', [gpu_us]) AS gpu_us,
    arrayReduce('sumState', [unpriced_requests]) AS unpriced_requests,
    arrayReduce('sumState', [cost_usd]) AS cost_usd,
    arrayReduce('sumState', [latency_count]) AS latency_count,
    arrayReduce('sumState', [latency_sum_us]) AS latency_sum_us,
    arrayReduce('minState', [latency_min_ms]) AS latency_min_ms,
    arrayReduce('maxState', [latency_max_ms]) AS latency_max_ms,
    latency_hist_idx AS `latency_histMap.idx`, latency_hist_cnt AS `latency_histMap.cnt`,
    arrayReduce('sumState', [ttft_count]) AS ttft_count,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    arrayReduce('minState', [ttft_min_ms]) AS ttft_min_ms,
    arrayReduce('maxState', [ttft_max_ms]) AS ttft_max_ms,
    ttft_hist_idx AS `ttft_histMap.idx`, ttft_hist_cnt AS `ttft_histMap.cnt`
FROM {database}.usage_1d_input_v7;

-- 9. The analyst views of 0004, reading the histograms' arrays (same columns as before).
CREATE VIEW {database}.usage_minute AS
SELECT ts, tenant, application, provider, model, error_type,
    sumMerge(requests) AS requests,
    sumMerge(errors) AS errors,
    sumMerge(input_tokens) AS input_tokens,
    sumMerge(cached_input_tokens) AS cached_input_tokens,
    sumMerge(cache_write_tokens) AS cache_write_tokens,
    sumMerge(cache_write_1h_tokens) AS cache_write_1h_tokens,
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
    sumMap(latency_histMap.idx, arrayMap(x -> toUInt64(x), latency_histMap.cnt)).1 AS latency_hist_idx,
    sumMap(latency_histMap.idx, arrayMap(x -> toUInt64(x), latency_histMap.cnt)).2 AS latency_hist_cnt,
    sumMerge(ttft_count) AS ttft_count,
    sumMerge(ttft_sum_us) AS ttft_sum_us,
    if(ttft_count > 0, ttft_sum_us / ttft_count / 1000, NULL) AS ttft_avg_ms,
    if(ttft_count > 0, minMerge(ttft_min_ms), NULL) AS ttft_min_ms,
    if(ttft_count > 0, maxMerge(ttft_max_ms), NULL) AS ttft_max_ms,
    sumMap(ttft_histMap.idx, arrayMap(x -> toUInt64(x), ttft_histMap.cnt)).1 AS ttft_hist_idx,
    sumMap(ttft_histMap.idx, arrayMap(x -> toUInt64(x), ttft_histMap.cnt)).2 AS ttft_hist_cnt
FROM {database}.usage_1m
GROUP BY ts, tenant, application, provider, model, error_type;

-- Per hour (ts = start of the hour, UTC).
CREATE VIEW {database}.usage_hourly AS
SELECT ts, tenant, application, provider, model, error_type,
    sumMerge(requests) AS requests,
    sumMerge(errors) AS errors,
    sumMerge(input_tokens) AS input_tokens,
    sumMerge(cached_input_tokens) AS cached_input_tokens,
    sumMerge(cache_write_tokens) AS cache_write_tokens,
    sumMerge(cache_write_1h_tokens) AS cache_write_1h_tokens,
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
    sumMap(latency_histMap.idx, arrayMap(x -> toUInt64(x), latency_histMap.cnt)).1 AS latency_hist_idx,
    sumMap(latency_histMap.idx, arrayMap(x -> toUInt64(x), latency_histMap.cnt)).2 AS latency_hist_cnt,
    sumMerge(ttft_count) AS ttft_count,
    sumMerge(ttft_sum_us) AS ttft_sum_us,
    if(ttft_count > 0, ttft_sum_us / ttft_count / 1000, NULL) AS ttft_avg_ms,
    if(ttft_count > 0, minMerge(ttft_min_ms), NULL) AS ttft_min_ms,
    if(ttft_count > 0, maxMerge(ttft_max_ms), NULL) AS ttft_max_ms,
    sumMap(ttft_histMap.idx, arrayMap(x -> toUInt64(x), ttft_histMap.cnt)).1 AS ttft_hist_idx,
    sumMap(ttft_histMap.idx, arrayMap(x -> toUInt64(x), ttft_histMap.cnt)).2 AS ttft_hist_cnt
FROM {database}.usage_1h
GROUP BY ts, tenant, application, provider, model, error_type;

-- Per day (ts = midnight UTC).
CREATE VIEW {database}.usage_daily AS
SELECT ts, tenant, application, provider, model, error_type,
    sumMerge(requests) AS requests,
    sumMerge(errors) AS errors,
    sumMerge(input_tokens) AS input_tokens,
    sumMerge(cached_input_tokens) AS cached_input_tokens,
    sumMerge(cache_write_tokens) AS cache_write_tokens,
    sumMerge(cache_write_1h_tokens) AS cache_write_1h_tokens,
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
    sumMap(latency_histMap.idx, arrayMap(x -> toUInt64(x), latency_histMap.cnt)).1 AS latency_hist_idx,
    sumMap(latency_histMap.idx, arrayMap(x -> toUInt64(x), latency_histMap.cnt)).2 AS latency_hist_cnt,
    sumMerge(ttft_count) AS ttft_count,
    sumMerge(ttft_sum_us) AS ttft_sum_us,
    if(ttft_count > 0, ttft_sum_us / ttft_count / 1000, NULL) AS ttft_avg_ms,
    if(ttft_count > 0, minMerge(ttft_min_ms), NULL) AS ttft_min_ms,
    if(ttft_count > 0, maxMerge(ttft_max_ms), NULL) AS ttft_max_ms,
    sumMap(ttft_histMap.idx, arrayMap(x -> toUInt64(x), ttft_histMap.cnt)).1 AS ttft_hist_idx,
    sumMap(ttft_histMap.idx, arrayMap(x -> toUInt64(x), ttft_histMap.cnt)).2 AS ttft_hist_cnt
FROM {database}.usage_1d
GROUP BY ts, tenant, application, provider, model, error_type;

-- Spend per provider and model per UTC day, for dashboards and finance.
CREATE VIEW {database}.cost_by_model_daily AS
SELECT toDate(ts, 'UTC') AS day, provider, model,
    sumMerge(requests) AS requests,
    sumMerge(errors) AS errors,
    sumMerge(input_tokens) AS input_tokens,
    sumMerge(output_tokens) AS output_tokens,
    sumMerge(unpriced_requests) AS unpriced_requests,
    sumMerge(cost_usd) AS cost_usd
FROM {database}.usage_1d
GROUP BY day, provider, model;

-- Per UTC day, tenant, provider, model, service tier and context band: the token sums
-- what-if pricing needs, and the cost they were charged.
CREATE VIEW {database}.usage_tiers_daily AS
SELECT toDate(ts, 'UTC') AS day, tenant, provider, model, service_tier, context_band,
    sumMerge(requests) AS requests,
    sumMerge(input_tokens) AS input_tokens,
    sumMerge(cached_input_tokens) AS cached_input_tokens,
    sumMerge(cache_write_tokens) AS cache_write_tokens,
    sumMerge(cache_write_1h_tokens) AS cache_write_1h_tokens,
    sumMerge(output_tokens) AS output_tokens,
    sumMerge(reasoning_tokens) AS reasoning_tokens,
    sumMerge(gpu_us) AS gpu_us,
    sumMerge(unpriced_requests) AS unpriced_requests,
    sumMerge(cost_usd) AS cost_usd
FROM {database}.usage_1d
GROUP BY day, tenant, provider, model, service_tier, context_band;
