-- 0008: lean rollups (docs/design.md, "Rollup storage").
--
-- The six columns latency_count, latency_min_ms, latency_max_ms, ttft_count, ttft_min_ms
-- and ttft_max_ms of usage_1m, usage_1h and usage_1d are no longer stored: each is an
-- ALIAS computed from its histogram when read, with the same name and type as before, so
-- SQL that reads sumMerge(latency_count), minMerge(latency_min_ms), ... keeps working.
-- A count is its histogram's total, exactly. A minimum or maximum is the value of the
-- lowest or highest non-empty bucket, within 1% like every percentile (they were exact,
-- and took 15% of a minute row). The rows lose nothing else.
--
-- The input tables and views are renamed usage_G_input_v8 / usage_G_mv_v8 (without the
-- six columns), and the v7 input tables refuse inserts before they are dropped, so an
-- aggregator of an older version cannot land while the columns change (its offsets stay
-- uncommitted and are replayed by the new version).
-- The columns are declared once in warehouse/columns.go (derivedColumns for the
-- aliases); tests DESCRIBE the tables against that list and compare the views with
-- MVSelect. Every step can be repeated.
-- {database} is replaced by the target database name.

-- 1. Fence out older aggregators (see 0003), then drop the v7 views and input tables.
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m_input_v7'
ALTER TABLE {database}.usage_1m_input_v7 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h_input_v7'
ALTER TABLE {database}.usage_1h_input_v7 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
-- costpipe:only-if SELECT countIf(name = 'src_offset') = 1 AND countIf(name = 'costpipe_fence') = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d_input_v7'
ALTER TABLE {database}.usage_1d_input_v7 ADD COLUMN costpipe_fence UInt8 DEFAULT throwIf(requests = requests);
DROP TABLE IF EXISTS {database}.usage_1m_mv_v7;
DROP TABLE IF EXISTS {database}.usage_1h_mv_v7;
DROP TABLE IF EXISTS {database}.usage_1d_mv_v7;
DROP TABLE IF EXISTS {database}.usage_1m_input_v7;
DROP TABLE IF EXISTS {database}.usage_1h_input_v7;
DROP TABLE IF EXISTS {database}.usage_1d_input_v7;

-- 2. The six stored columns go, and come back as ALIAS columns at the end of each table.
--    ALTER ... DROP COLUMN removes their files from every part; nothing is rewritten.
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'latency_count' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1m DROP COLUMN latency_count;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'latency_min_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1m DROP COLUMN latency_min_ms;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'latency_max_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1m DROP COLUMN latency_max_ms;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'ttft_count' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1m DROP COLUMN ttft_count;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'ttft_min_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1m DROP COLUMN ttft_min_ms;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'ttft_max_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1m DROP COLUMN ttft_max_ms;
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'latency_count'
ALTER TABLE {database}.usage_1m ADD COLUMN latency_count AggregateFunction(sum, UInt64) ALIAS arrayReduce('sumState', arrayMap(x -> toUInt64(x), latency_histMap.cnt));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'latency_min_ms'
ALTER TABLE {database}.usage_1m ADD COLUMN latency_min_ms AggregateFunction(min, Float64) ALIAS arrayReduce('minState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), latency_histMap.idx));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'latency_max_ms'
ALTER TABLE {database}.usage_1m ADD COLUMN latency_max_ms AggregateFunction(max, Float64) ALIAS arrayReduce('maxState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), latency_histMap.idx));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'ttft_count'
ALTER TABLE {database}.usage_1m ADD COLUMN ttft_count AggregateFunction(sum, UInt64) ALIAS arrayReduce('sumState', arrayMap(x -> toUInt64(x), ttft_histMap.cnt));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'ttft_min_ms'
ALTER TABLE {database}.usage_1m ADD COLUMN ttft_min_ms AggregateFunction(min, Float64) ALIAS arrayReduce('minState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), ttft_histMap.idx));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1m' AND name = 'ttft_max_ms'
ALTER TABLE {database}.usage_1m ADD COLUMN ttft_max_ms AggregateFunction(max, Float64) ALIAS arrayReduce('maxState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), ttft_histMap.idx));

-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'latency_count' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1h DROP COLUMN latency_count;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'latency_min_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1h DROP COLUMN latency_min_ms;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'latency_max_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1h DROP COLUMN latency_max_ms;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'ttft_count' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1h DROP COLUMN ttft_count;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'ttft_min_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1h DROP COLUMN ttft_min_ms;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'ttft_max_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1h DROP COLUMN ttft_max_ms;
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'latency_count'
ALTER TABLE {database}.usage_1h ADD COLUMN latency_count AggregateFunction(sum, UInt64) ALIAS arrayReduce('sumState', arrayMap(x -> toUInt64(x), latency_histMap.cnt));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'latency_min_ms'
ALTER TABLE {database}.usage_1h ADD COLUMN latency_min_ms AggregateFunction(min, Float64) ALIAS arrayReduce('minState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), latency_histMap.idx));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'latency_max_ms'
ALTER TABLE {database}.usage_1h ADD COLUMN latency_max_ms AggregateFunction(max, Float64) ALIAS arrayReduce('maxState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), latency_histMap.idx));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'ttft_count'
ALTER TABLE {database}.usage_1h ADD COLUMN ttft_count AggregateFunction(sum, UInt64) ALIAS arrayReduce('sumState', arrayMap(x -> toUInt64(x), ttft_histMap.cnt));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'ttft_min_ms'
ALTER TABLE {database}.usage_1h ADD COLUMN ttft_min_ms AggregateFunction(min, Float64) ALIAS arrayReduce('minState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), ttft_histMap.idx));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1h' AND name = 'ttft_max_ms'
ALTER TABLE {database}.usage_1h ADD COLUMN ttft_max_ms AggregateFunction(max, Float64) ALIAS arrayReduce('maxState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), ttft_histMap.idx));

-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'latency_count' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1d DROP COLUMN latency_count;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'latency_min_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1d DROP COLUMN latency_min_ms;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'latency_max_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1d DROP COLUMN latency_max_ms;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'ttft_count' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1d DROP COLUMN ttft_count;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'ttft_min_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1d DROP COLUMN ttft_min_ms;
-- costpipe:only-if SELECT count() = 1 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'ttft_max_ms' AND default_kind != 'ALIAS'
ALTER TABLE {database}.usage_1d DROP COLUMN ttft_max_ms;
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'latency_count'
ALTER TABLE {database}.usage_1d ADD COLUMN latency_count AggregateFunction(sum, UInt64) ALIAS arrayReduce('sumState', arrayMap(x -> toUInt64(x), latency_histMap.cnt));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'latency_min_ms'
ALTER TABLE {database}.usage_1d ADD COLUMN latency_min_ms AggregateFunction(min, Float64) ALIAS arrayReduce('minState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), latency_histMap.idx));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'latency_max_ms'
ALTER TABLE {database}.usage_1d ADD COLUMN latency_max_ms AggregateFunction(max, Float64) ALIAS arrayReduce('maxState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), latency_histMap.idx));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'ttft_count'
ALTER TABLE {database}.usage_1d ADD COLUMN ttft_count AggregateFunction(sum, UInt64) ALIAS arrayReduce('sumState', arrayMap(x -> toUInt64(x), ttft_histMap.cnt));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'ttft_min_ms'
ALTER TABLE {database}.usage_1d ADD COLUMN ttft_min_ms AggregateFunction(min, Float64) ALIAS arrayReduce('minState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), ttft_histMap.idx));
-- costpipe:only-if SELECT count() = 0 FROM system.columns WHERE database = '{database}' AND table = 'usage_1d' AND name = 'ttft_max_ms'
ALTER TABLE {database}.usage_1d ADD COLUMN ttft_max_ms AggregateFunction(max, Float64) ALIAS arrayReduce('maxState', arrayMap(i -> if(i = -32768, 0., 0.99 * pow(101 / 99, i)), ttft_histMap.idx));

-- 3. usage_1m: its input table and view.
CREATE TABLE IF NOT EXISTS {database}.usage_1m_input_v8
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1m_mv_v8 TO {database}.usage_1m AS
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
FROM {database}.usage_1m_input_v8;

-- 4. usage_1h: its input table and view.
CREATE TABLE IF NOT EXISTS {database}.usage_1h_input_v8
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1h_mv_v8 TO {database}.usage_1h AS
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
FROM {database}.usage_1h_input_v8;

-- 5. usage_1d: its input table and view.
CREATE TABLE IF NOT EXISTS {database}.usage_1d_input_v8
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

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1d_mv_v8 TO {database}.usage_1d AS
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
FROM {database}.usage_1d_input_v8;
