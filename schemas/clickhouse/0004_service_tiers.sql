-- 0004: service tiers, long-context bands and 1-hour cache writes in the rollups
-- (docs/design.md, "Service tiers and long-context tiers in the rollups").
--
-- What changes, for usage_1m, usage_1h and usage_1d:
--   * two dimensions: service_tier (the call's service tier, lower case, '' for standard)
--     and context_band (the largest of pricing.ContextThresholds below the call's
--     input_tokens, 0 below all), appended to the sort key (ClickHouse can only append
--     new columns to it), so calls priced at different rates are never merged and
--     what-if pricing from the rollups stays exact;
--   * one measure: cache_write_1h_tokens (part of cache_write_tokens);
--   * the input tables and views are renamed usage_G_input_v4 / usage_G_mv_v4, and the v3
--     input tables refuse inserts before they are dropped, so an aggregator of an older
--     version cannot land anywhere (its offsets stay uncommitted and are replayed by the
--     new version against the same landing marks).
-- Existing rows keep their data: service_tier '', context_band 0 and
-- cache_write_1h_tokens 0 (calls before this version had no service tier; rows from
-- before this migration do not tell long-context calls apart).
-- The columns are declared once in warehouse/columns.go; a test DESCRIBEs the tables
-- against that list. Every step can be repeated.
-- {database} is replaced by the target database name.

-- 1. Fence out older aggregators (see 0003), then drop the v3 views and input tables.
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m_input_v3'
ALTER TABLE {database}.usage_1m_input_v3 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h_input_v3'
ALTER TABLE {database}.usage_1h_input_v3 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d_input_v3'
ALTER TABLE {database}.usage_1d_input_v3 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
DROP TABLE IF EXISTS {database}.usage_1m_mv_v3;
DROP TABLE IF EXISTS {database}.usage_1h_mv_v3;
DROP TABLE IF EXISTS {database}.usage_1d_mv_v3;
DROP TABLE IF EXISTS {database}.usage_1m_input_v3;
DROP TABLE IF EXISTS {database}.usage_1h_input_v3;
DROP TABLE IF EXISTS {database}.usage_1d_input_v3;

-- 2. The new columns of the state tables.
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'service_tier'
ALTER TABLE {database}.usage_1m
    ADD COLUMN service_tier String AFTER error_type,
    ADD COLUMN context_band UInt32 AFTER service_tier,
    ADD COLUMN cache_write_1h_tokens AggregateFunction(sum, UInt64) AFTER cache_write_tokens,
    MODIFY ORDER BY (tenant, application, provider, model, error_type, src_topic, src_partition, ts, service_tier, context_band);
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'service_tier'
ALTER TABLE {database}.usage_1h
    ADD COLUMN service_tier String AFTER error_type,
    ADD COLUMN context_band UInt32 AFTER service_tier,
    ADD COLUMN cache_write_1h_tokens AggregateFunction(sum, UInt64) AFTER cache_write_tokens,
    MODIFY ORDER BY (tenant, application, provider, model, error_type, src_topic, src_partition, ts, service_tier, context_band);
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'service_tier'
ALTER TABLE {database}.usage_1d
    ADD COLUMN service_tier String AFTER error_type,
    ADD COLUMN context_band UInt32 AFTER service_tier,
    ADD COLUMN cache_write_1h_tokens AggregateFunction(sum, UInt64) AFTER cache_write_tokens,
    MODIFY ORDER BY (tenant, application, provider, model, error_type, src_topic, src_partition, ts, service_tier, context_band);

-- 3. The input tables and views.
CREATE TABLE IF NOT EXISTS {database}.usage_1m_input_v4
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1m_mv_v4 TO {database}.usage_1m AS
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
    arrayReduce('sumMapState', [latency_hist_idx], [arrayMap(x -> toUInt32(x), latency_hist_cnt)]) AS latency_hist,
    arrayReduce('sumState', [ttft_count]) AS ttft_count,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    arrayReduce('minState', [ttft_min_ms]) AS ttft_min_ms,
    arrayReduce('maxState', [ttft_max_ms]) AS ttft_max_ms,
    arrayReduce('sumMapState', [ttft_hist_idx], [arrayMap(x -> toUInt32(x), ttft_hist_cnt)]) AS ttft_hist
FROM {database}.usage_1m_input_v4;

CREATE TABLE IF NOT EXISTS {database}.usage_1h_input_v4
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1h_mv_v4 TO {database}.usage_1h AS
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
    arrayReduce('sumMapState', [latency_hist_idx], [arrayMap(x -> toUInt32(x), latency_hist_cnt)]) AS latency_hist,
    arrayReduce('sumState', [ttft_count]) AS ttft_count,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    arrayReduce('minState', [ttft_min_ms]) AS ttft_min_ms,
    arrayReduce('maxState', [ttft_max_ms]) AS ttft_max_ms,
    arrayReduce('sumMapState', [ttft_hist_idx], [arrayMap(x -> toUInt32(x), ttft_hist_cnt)]) AS ttft_hist
FROM {database}.usage_1h_input_v4;

CREATE TABLE IF NOT EXISTS {database}.usage_1d_input_v4
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1d_mv_v4 TO {database}.usage_1d AS
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
    arrayReduce('sumMapState', [latency_hist_idx], [latency_hist_cnt]) AS latency_hist,
    arrayReduce('sumState', [ttft_count]) AS ttft_count,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    arrayReduce('minState', [ttft_min_ms]) AS ttft_min_ms,
    arrayReduce('maxState', [ttft_max_ms]) AS ttft_max_ms,
    arrayReduce('sumMapState', [ttft_hist_idx], [ttft_hist_cnt]) AS ttft_hist
FROM {database}.usage_1d_input_v4;

-- 4. The analyst views of 0002 with cache_write_1h_tokens (they still merge service
--    tiers and context bands: one row per ts, tenant, application, provider, model,
--    error_type), and usage_tiers_daily, the per-day split by service tier and context band.
DROP TABLE IF EXISTS {database}.usage_minute;
DROP TABLE IF EXISTS {database}.usage_hourly;
DROP TABLE IF EXISTS {database}.usage_daily;
DROP TABLE IF EXISTS {database}.cost_by_model_daily;
DROP TABLE IF EXISTS {database}.usage_tiers_daily;
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
