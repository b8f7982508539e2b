-- 0010: the weekly per-model summary (docs/design.md, "Two-stage merges, and per-model
-- summaries").
--
-- usage_model_1w holds usage_1d's measures per ISO week (from Monday 00:00 UTC), provider
-- and model: the Monday is its ts, and a week that begins in one month and ends in the
-- next is one row, in the first month's partition. A question over whole weeks of days
-- (`costpipe query usage --since 30d --by model`) reads one row per model and week
-- instead of seven, and merging those rows' latency and TTFT histograms is what such a
-- question spends its time on.
--
-- It is fed by a third materialized view on usage_1d's input table, checked by readers
-- against the rollups like the other summaries. To fill it from usage_1d while nothing
-- lands, the input tables and views are renamed usage_G_input_v10 / usage_G_mv_v10 (and
-- usage_model_G_mv_v10), and the v9 input tables refuse inserts before they are dropped,
-- as in 0009: an older aggregator's offsets stay uncommitted and are replayed by the new
-- version. The columns are declared once in warehouse/columns.go and
-- warehouse/summaries.go; tests DESCRIBE the tables against that list and compare the
-- views and the fill with the SELECTs generated from it. Every step can be repeated: a
-- fill interrupted halfway is redone from an empty table until its view exists.
-- {database} is replaced by the target database name.

-- 1. Fence out older aggregators (see 0003), then drop the v9 views and input tables.
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m_input_v9'
ALTER TABLE {database}.usage_1m_input_v9 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h_input_v9'
ALTER TABLE {database}.usage_1h_input_v9 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d_input_v9'
ALTER TABLE {database}.usage_1d_input_v9 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
DROP TABLE IF EXISTS {database}.usage_1m_mv_v9;
DROP TABLE IF EXISTS {database}.usage_1h_mv_v9;
DROP TABLE IF EXISTS {database}.usage_model_1h_mv_v9;
DROP TABLE IF EXISTS {database}.usage_1d_mv_v9;
DROP TABLE IF EXISTS {database}.usage_model_1d_mv_v9;
DROP TABLE IF EXISTS {database}.usage_1m_input_v9;
DROP TABLE IF EXISTS {database}.usage_1h_input_v9;
DROP TABLE IF EXISTS {database}.usage_1d_input_v9;

-- 2. usage_model_1w, filled from usage_1d.
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_model_1w_mv_v10'
DROP TABLE IF EXISTS {database}.usage_model_1w;
CREATE TABLE IF NOT EXISTS {database}.usage_model_1w
(
    ts                     DateTime('UTC'),
    provider               String,
    model                  String,
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
    latency_sum_us         AggregateFunction(sum, UInt64),
    latency_histMap        Nested(idx Int16, cnt UInt64),
    ttft_sum_us            AggregateFunction(sum, UInt64),
    ttft_histMap           Nested(idx Int16, cnt UInt64)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (provider, model, ts)
SETTINGS index_granularity = 256;
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_model_1w_mv_v10'
INSERT INTO {database}.usage_model_1w (ts, provider, model, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, latency_sum_us, latency_histMap.idx, latency_histMap.cnt, ttft_sum_us, ttft_histMap.idx, ttft_histMap.cnt)
SELECT toDateTime(toMonday(ts), 'UTC') AS ts, provider, model,
    sumMergeState(requests) AS requests,
    sumMergeState(errors) AS errors,
    sumMergeState(input_tokens) AS input_tokens,
    sumMergeState(cached_input_tokens) AS cached_input_tokens,
    sumMergeState(cache_write_tokens) AS cache_write_tokens,
    sumMergeState(cache_write_1h_tokens) AS cache_write_1h_tokens,
    sumMergeState(output_tokens) AS output_tokens,
    sumMergeState(reasoning_tokens) AS reasoning_tokens,
    sumMergeState(gpu_us) AS gpu_us,
    sumMergeState(unpriced_requests) AS unpriced_requests,
    sumMergeState(cost_usd) AS cost_usd,
    sumMergeState(latency_sum_us) AS latency_sum_us,
    sumMap(latency_histMap.idx, arrayMap(x -> toUInt64(x), latency_histMap.cnt)).1 AS `latency_hist_idx`, sumMap(latency_histMap.idx, arrayMap(x -> toUInt64(x), latency_histMap.cnt)).2 AS `latency_hist_cnt`,
    sumMergeState(ttft_sum_us) AS ttft_sum_us,
    sumMap(ttft_histMap.idx, arrayMap(x -> toUInt64(x), ttft_histMap.cnt)).1 AS `ttft_hist_idx`, sumMap(ttft_histMap.idx, arrayMap(x -> toUInt64(x), ttft_histMap.cnt)).2 AS `ttft_hist_cnt`
FROM {database}.usage_1d
GROUP BY ts, provider, model;

-- 3. usage_1m: its input table and view (minutes have no summary).
CREATE TABLE IF NOT EXISTS {database}.usage_1m_input_v10
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
    latency_sum_us         UInt64,
    latency_hist_idx       Array(Int16),
    latency_hist_cnt       Array(UInt64),
    ttft_sum_us            UInt64,
    ttft_hist_idx          Array(Int16),
    ttft_hist_cnt          Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1m_mv_v10 TO {database}.usage_1m AS
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
    arrayReduce('sumState', [latency_sum_us]) AS latency_sum_us,
    latency_hist_idx AS `latency_histMap.idx`, arrayMap(x -> toUInt32(x), latency_hist_cnt) AS `latency_histMap.cnt`,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    ttft_hist_idx AS `ttft_histMap.idx`, arrayMap(x -> toUInt32(x), ttft_hist_cnt) AS `ttft_histMap.cnt`
FROM {database}.usage_1m_input_v10;

-- 4. usage_1h: its input table, its view and its summary's view.
CREATE TABLE IF NOT EXISTS {database}.usage_1h_input_v10
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
    latency_sum_us         UInt64,
    latency_hist_idx       Array(Int16),
    latency_hist_cnt       Array(UInt64),
    ttft_sum_us            UInt64,
    ttft_hist_idx          Array(Int16),
    ttft_hist_cnt          Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1h_mv_v10 TO {database}.usage_1h AS
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
    arrayReduce('sumState', [latency_sum_us]) AS latency_sum_us,
    latency_hist_idx AS `latency_histMap.idx`, arrayMap(x -> toUInt32(x), latency_hist_cnt) AS `latency_histMap.cnt`,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    ttft_hist_idx AS `ttft_histMap.idx`, arrayMap(x -> toUInt32(x), ttft_hist_cnt) AS `ttft_histMap.cnt`
FROM {database}.usage_1h_input_v10;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_model_1h_mv_v10 TO {database}.usage_model_1h AS
SELECT ts, provider, model,
    sumState(requests) AS requests,
    sumState(errors) AS errors,
    sumState(input_tokens) AS input_tokens,
    sumState(cached_input_tokens) AS cached_input_tokens,
    sumState(cache_write_tokens) AS cache_write_tokens,
    sumState(cache_write_1h_tokens) AS cache_write_1h_tokens,
    sumState(output_tokens) AS output_tokens,
    sumState(reasoning_tokens) AS reasoning_tokens,
    sumState(gpu_us) AS gpu_us,
    sumState(unpriced_requests) AS unpriced_requests,
    sumState(cost_usd) AS cost_usd,
    sumState(latency_sum_us) AS latency_sum_us,
    sumMap(latency_hist_idx, latency_hist_cnt).1 AS `latency_histMap.idx`, sumMap(latency_hist_idx, latency_hist_cnt).2 AS `latency_histMap.cnt`,
    sumState(ttft_sum_us) AS ttft_sum_us,
    sumMap(ttft_hist_idx, ttft_hist_cnt).1 AS `ttft_histMap.idx`, sumMap(ttft_hist_idx, ttft_hist_cnt).2 AS `ttft_histMap.cnt`
FROM {database}.usage_1h_input_v10
GROUP BY ts, provider, model;

-- 5. usage_1d: its input table, its view and the views of its two summaries, by day and by week.
CREATE TABLE IF NOT EXISTS {database}.usage_1d_input_v10
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
    latency_sum_us         UInt64,
    latency_hist_idx       Array(Int16),
    latency_hist_cnt       Array(UInt64),
    ttft_sum_us            UInt64,
    ttft_hist_idx          Array(Int16),
    ttft_hist_cnt          Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1d_mv_v10 TO {database}.usage_1d AS
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
    arrayReduce('sumState', [latency_sum_us]) AS latency_sum_us,
    latency_hist_idx AS `latency_histMap.idx`, latency_hist_cnt AS `latency_histMap.cnt`,
    arrayReduce('sumState', [ttft_sum_us]) AS ttft_sum_us,
    ttft_hist_idx AS `ttft_histMap.idx`, ttft_hist_cnt AS `ttft_histMap.cnt`
FROM {database}.usage_1d_input_v10;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_model_1d_mv_v10 TO {database}.usage_model_1d AS
SELECT ts, provider, model,
    sumState(requests) AS requests,
    sumState(errors) AS errors,
    sumState(input_tokens) AS input_tokens,
    sumState(cached_input_tokens) AS cached_input_tokens,
    sumState(cache_write_tokens) AS cache_write_tokens,
    sumState(cache_write_1h_tokens) AS cache_write_1h_tokens,
    sumState(output_tokens) AS output_tokens,
    sumState(reasoning_tokens) AS reasoning_tokens,
    sumState(gpu_us) AS gpu_us,
    sumState(unpriced_requests) AS unpriced_requests,
    sumState(cost_usd) AS cost_usd,
    sumState(latency_sum_us) AS latency_sum_us,
    sumMap(latency_hist_idx, latency_hist_cnt).1 AS `latency_histMap.idx`, sumMap(latency_hist_idx, latency_hist_cnt).2 AS `latency_histMap.cnt`,
    sumState(ttft_sum_us) AS ttft_sum_us,
    sumMap(ttft_hist_idx, ttft_hist_cnt).1 AS `ttft_histMap.idx`, sumMap(ttft_hist_idx, ttft_hist_cnt).2 AS `ttft_histMap.cnt`
FROM {database}.usage_1d_input_v10
GROUP BY ts, provider, model;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_model_1w_mv_v10 TO {database}.usage_model_1w AS
SELECT toDateTime(toMonday(ts), 'UTC') AS ts, provider, model,
    sumState(requests) AS requests,
    sumState(errors) AS errors,
    sumState(input_tokens) AS input_tokens,
    sumState(cached_input_tokens) AS cached_input_tokens,
    sumState(cache_write_tokens) AS cache_write_tokens,
    sumState(cache_write_1h_tokens) AS cache_write_1h_tokens,
    sumState(output_tokens) AS output_tokens,
    sumState(reasoning_tokens) AS reasoning_tokens,
    sumState(gpu_us) AS gpu_us,
    sumState(unpriced_requests) AS unpriced_requests,
    sumState(cost_usd) AS cost_usd,
    sumState(latency_sum_us) AS latency_sum_us,
    sumMap(latency_hist_idx, latency_hist_cnt).1 AS `latency_histMap.idx`, sumMap(latency_hist_idx, latency_hist_cnt).2 AS `latency_histMap.cnt`,
    sumState(ttft_sum_us) AS ttft_sum_us,
    sumMap(ttft_hist_idx, ttft_hist_cnt).1 AS `ttft_histMap.idx`, sumMap(ttft_hist_idx, ttft_hist_cnt).2 AS `ttft_histMap.cnt`
FROM {database}.usage_1d_input_v10
GROUP BY ts, provider, model;
