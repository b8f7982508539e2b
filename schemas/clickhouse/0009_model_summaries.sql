-- 0009: per-model summaries (docs/design.md, "Two-stage merges, and per-model summaries").
--
-- usage_model_1h and usage_model_1d hold the rollups' measures per bucket, provider and
-- model only. A question that groups and filters by provider and model alone (`costpipe
-- query usage --by model`, latency, top) reads them: a month of days is about 1,100 rows
-- instead of 27,000, and merging the latency and TTFT histograms of those rows is what
-- such a question spends its time on. Minutes have no summary: a range reads at most
-- its two ragged hours of them, and a summary of minutes would cost half the rollups'
-- storage again.
--
-- Each summary is fed by a second materialized view on its rollup's input table, so
-- every insert (the aggregator's, reprice's corrections) reaches the rollup and its
-- summary. The two views write two parts, one after the other: a server that dies
-- between them leaves a summary short of one insert. The rollups carry the landing
-- marks and stay the truth; costpipe reads a summary only after checking that it holds
-- the same requests and cost as the rollups over the range it reads.
--
-- The input tables and views are renamed usage_G_input_v9 / usage_G_mv_v9, and the v8
-- input tables refuse inserts before they are dropped, so no aggregator lands while the
-- summaries are filled from the rollups (an older one's offsets stay uncommitted and are
-- replayed by the new version). The columns are declared once in warehouse/columns.go
-- and warehouse/summaries.go; tests DESCRIBE the tables against that list and compare
-- the views and the fill with the SELECTs generated from it. Every step can be repeated:
-- a fill interrupted halfway is redone from an empty table until the views exist.
-- {database} is replaced by the target database name.

-- 1. Fence out older aggregators (see 0003), then drop the v8 views and input tables.
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m_input_v8'
ALTER TABLE {database}.usage_1m_input_v8 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h_input_v8'
ALTER TABLE {database}.usage_1h_input_v8 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d_input_v8'
ALTER TABLE {database}.usage_1d_input_v8 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
DROP TABLE IF EXISTS {database}.usage_1m_mv_v8;
DROP TABLE IF EXISTS {database}.usage_1h_mv_v8;
DROP TABLE IF EXISTS {database}.usage_1d_mv_v8;
DROP TABLE IF EXISTS {database}.usage_1m_input_v8;
DROP TABLE IF EXISTS {database}.usage_1h_input_v8;
DROP TABLE IF EXISTS {database}.usage_1d_input_v8;

-- 2. usage_model_1h, filled from usage_1h.
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_model_1h_mv_v9'
DROP TABLE IF EXISTS {database}.usage_model_1h;
CREATE TABLE IF NOT EXISTS {database}.usage_model_1h
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
ORDER BY (toDate(ts), provider, model, ts)
SETTINGS index_granularity = 256;
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_model_1h_mv_v9'
INSERT INTO {database}.usage_model_1h (ts, provider, model, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, latency_sum_us, latency_histMap.idx, latency_histMap.cnt, ttft_sum_us, ttft_histMap.idx, ttft_histMap.cnt)
SELECT ts, provider, model,
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
FROM {database}.usage_1h
GROUP BY ts, provider, model;

-- 3. usage_model_1d, filled from usage_1d.
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_model_1d_mv_v9'
DROP TABLE IF EXISTS {database}.usage_model_1d;
CREATE TABLE IF NOT EXISTS {database}.usage_model_1d
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
-- costpipe:only-if SELECT count() = 0 FROM system.tables WHERE database = '{database}' AND name = 'usage_model_1d_mv_v9'
INSERT INTO {database}.usage_model_1d (ts, provider, model, requests, errors, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens, output_tokens, reasoning_tokens, gpu_us, unpriced_requests, cost_usd, latency_sum_us, latency_histMap.idx, latency_histMap.cnt, ttft_sum_us, ttft_histMap.idx, ttft_histMap.cnt)
SELECT ts, provider, model,
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

-- 4. usage_1m: its input table and view (minutes have no summary).
CREATE TABLE IF NOT EXISTS {database}.usage_1m_input_v9
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1m_mv_v9 TO {database}.usage_1m AS
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
FROM {database}.usage_1m_input_v9;

-- 5. usage_1h: its input table, its view and its summary's view.
CREATE TABLE IF NOT EXISTS {database}.usage_1h_input_v9
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1h_mv_v9 TO {database}.usage_1h AS
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
FROM {database}.usage_1h_input_v9;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_model_1h_mv_v9 TO {database}.usage_model_1h AS
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
FROM {database}.usage_1h_input_v9
GROUP BY ts, provider, model;

-- 6. usage_1d: its input table, its view and its summary's view.
CREATE TABLE IF NOT EXISTS {database}.usage_1d_input_v9
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1d_mv_v9 TO {database}.usage_1d AS
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
FROM {database}.usage_1d_input_v9;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_model_1d_mv_v9 TO {database}.usage_model_1d AS
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
FROM {database}.usage_1d_input_v9
GROUP BY ts, provider, model;
