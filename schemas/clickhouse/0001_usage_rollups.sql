-- 0001: usage rollups at minute, hour and day granularity.
--
-- Each granularity G in (1m, 1h, 1d) has three objects:
--   usage_G_input  Null engine: the aggregator INSERTs plain partial sums here, one block per
--                  insert that touches exactly one month (one partition of usage_G);
--   usage_G_mv     materialized view turning each inserted row into aggregate states with
--                  arrayReduce('xState', [x]): a projection, no GROUP BY, so one inserted
--                  block becomes exactly one block (one part) of usage_G: atomic;
--   usage_G        AggregatingMergeTree holding the states, merged by ClickHouse.
-- src_topic / src_partition / src_offset carry the Kafka position of the flush that wrote
-- the row: maxMerge(src_offset) per (table, month, src_topic, src_partition) is the
-- high-water mark the aggregator recovers from (docs/design.md, "exactly-once").
-- Durations are summed as integer microseconds (exact, order-independent); min/max are
-- milliseconds with +inf / 0 written when a row has no sample (count = 0).
-- Histograms: DDSketch-style bucket index (alpha = 1%) -> count; index -32768 counts zeros.
-- {database} is replaced by the target database name.

CREATE TABLE IF NOT EXISTS {database}.usage_1m
(
    ts                 DateTime,
    tenant             String,
    application        String,
    provider           String,
    model              String,
    error_type         String,
    src_topic          String,
    src_partition      Int32,
    src_offset         AggregateFunction(max, Int64),
    requests           AggregateFunction(sum, UInt64),
    errors             AggregateFunction(sum, UInt64),
    input_tokens       AggregateFunction(sum, UInt64),
    cached_input_tokens AggregateFunction(sum, UInt64),
    cache_write_tokens AggregateFunction(sum, UInt64),
    output_tokens      AggregateFunction(sum, UInt64),
    reasoning_tokens   AggregateFunction(sum, UInt64),
    gpu_us             AggregateFunction(sum, UInt64),
    unpriced_requests  AggregateFunction(sum, UInt64),
    cost_usd           AggregateFunction(sum, Decimal(38, 12)),
    latency_count      AggregateFunction(sum, UInt64),
    latency_sum_us     AggregateFunction(sum, UInt64),
    latency_min_ms     AggregateFunction(min, Float64),
    latency_max_ms     AggregateFunction(max, Float64),
    latency_hist       AggregateFunction(sumMap, Array(Int16), Array(UInt64)),
    ttft_count         AggregateFunction(sum, UInt64),
    ttft_sum_us        AggregateFunction(sum, UInt64),
    ttft_min_ms        AggregateFunction(min, Float64),
    ttft_max_ms        AggregateFunction(max, Float64),
    ttft_hist          AggregateFunction(sumMap, Array(Int16), Array(UInt64))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, tenant, application, provider, model, error_type, src_topic, src_partition);

CREATE TABLE IF NOT EXISTS {database}.usage_1m_input
(
    ts                 DateTime,
    tenant             String,
    application        String,
    provider           String,
    model              String,
    error_type         String,
    src_topic          String,
    src_partition      Int32,
    src_offset         Int64,
    requests           UInt64,
    errors             UInt64,
    input_tokens       UInt64,
    cached_input_tokens UInt64,
    cache_write_tokens UInt64,
    output_tokens      UInt64,
    reasoning_tokens   UInt64,
    gpu_us             UInt64,
    unpriced_requests  UInt64,
    cost_usd           Decimal(38, 12),
    latency_count      UInt64,
    latency_sum_us     UInt64,
    latency_min_ms     Float64,
    latency_max_ms     Float64,
    latency_hist_idx   Array(Int16),
    latency_hist_cnt   Array(UInt64),
    ttft_count         UInt64,
    ttft_sum_us        UInt64,
    ttft_min_ms        Float64,
    ttft_max_ms        Float64,
    ttft_hist_idx      Array(Int16),
    ttft_hist_cnt      Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1m_mv TO {database}.usage_1m AS
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
FROM {database}.usage_1m_input;

CREATE TABLE IF NOT EXISTS {database}.usage_1h
(
    ts                 DateTime,
    tenant             String,
    application        String,
    provider           String,
    model              String,
    error_type         String,
    src_topic          String,
    src_partition      Int32,
    src_offset         AggregateFunction(max, Int64),
    requests           AggregateFunction(sum, UInt64),
    errors             AggregateFunction(sum, UInt64),
    input_tokens       AggregateFunction(sum, UInt64),
    cached_input_tokens AggregateFunction(sum, UInt64),
    cache_write_tokens AggregateFunction(sum, UInt64),
    output_tokens      AggregateFunction(sum, UInt64),
    reasoning_tokens   AggregateFunction(sum, UInt64),
    gpu_us             AggregateFunction(sum, UInt64),
    unpriced_requests  AggregateFunction(sum, UInt64),
    cost_usd           AggregateFunction(sum, Decimal(38, 12)),
    latency_count      AggregateFunction(sum, UInt64),
    latency_sum_us     AggregateFunction(sum, UInt64),
    latency_min_ms     AggregateFunction(min, Float64),
    latency_max_ms     AggregateFunction(max, Float64),
    latency_hist       AggregateFunction(sumMap, Array(Int16), Array(UInt64)),
    ttft_count         AggregateFunction(sum, UInt64),
    ttft_sum_us        AggregateFunction(sum, UInt64),
    ttft_min_ms        AggregateFunction(min, Float64),
    ttft_max_ms        AggregateFunction(max, Float64),
    ttft_hist          AggregateFunction(sumMap, Array(Int16), Array(UInt64))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, tenant, application, provider, model, error_type, src_topic, src_partition);

CREATE TABLE IF NOT EXISTS {database}.usage_1h_input
(
    ts                 DateTime,
    tenant             String,
    application        String,
    provider           String,
    model              String,
    error_type         String,
    src_topic          String,
    src_partition      Int32,
    src_offset         Int64,
    requests           UInt64,
    errors             UInt64,
    input_tokens       UInt64,
    cached_input_tokens UInt64,
    cache_write_tokens UInt64,
    output_tokens      UInt64,
    reasoning_tokens   UInt64,
    gpu_us             UInt64,
    unpriced_requests  UInt64,
    cost_usd           Decimal(38, 12),
    latency_count      UInt64,
    latency_sum_us     UInt64,
    latency_min_ms     Float64,
    latency_max_ms     Float64,
    latency_hist_idx   Array(Int16),
    latency_hist_cnt   Array(UInt64),
    ttft_count         UInt64,
    ttft_sum_us        UInt64,
    ttft_min_ms        Float64,
    ttft_max_ms        Float64,
    ttft_hist_idx      Array(Int16),
    ttft_hist_cnt      Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1h_mv TO {database}.usage_1h AS
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
FROM {database}.usage_1h_input;

CREATE TABLE IF NOT EXISTS {database}.usage_1d
(
    ts                 DateTime,
    tenant             String,
    application        String,
    provider           String,
    model              String,
    error_type         String,
    src_topic          String,
    src_partition      Int32,
    src_offset         AggregateFunction(max, Int64),
    requests           AggregateFunction(sum, UInt64),
    errors             AggregateFunction(sum, UInt64),
    input_tokens       AggregateFunction(sum, UInt64),
    cached_input_tokens AggregateFunction(sum, UInt64),
    cache_write_tokens AggregateFunction(sum, UInt64),
    output_tokens      AggregateFunction(sum, UInt64),
    reasoning_tokens   AggregateFunction(sum, UInt64),
    gpu_us             AggregateFunction(sum, UInt64),
    unpriced_requests  AggregateFunction(sum, UInt64),
    cost_usd           AggregateFunction(sum, Decimal(38, 12)),
    latency_count      AggregateFunction(sum, UInt64),
    latency_sum_us     AggregateFunction(sum, UInt64),
    latency_min_ms     AggregateFunction(min, Float64),
    latency_max_ms     AggregateFunction(max, Float64),
    latency_hist       AggregateFunction(sumMap, Array(Int16), Array(UInt64)),
    ttft_count         AggregateFunction(sum, UInt64),
    ttft_sum_us        AggregateFunction(sum, UInt64),
    ttft_min_ms        AggregateFunction(min, Float64),
    ttft_max_ms        AggregateFunction(max, Float64),
    ttft_hist          AggregateFunction(sumMap, Array(Int16), Array(UInt64))
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, tenant, application, provider, model, error_type, src_topic, src_partition);

CREATE TABLE IF NOT EXISTS {database}.usage_1d_input
(
    ts                 DateTime,
    tenant             String,
    application        String,
    provider           String,
    model              String,
    error_type         String,
    src_topic          String,
    src_partition      Int32,
    src_offset         Int64,
    requests           UInt64,
    errors             UInt64,
    input_tokens       UInt64,
    cached_input_tokens UInt64,
    cache_write_tokens UInt64,
    output_tokens      UInt64,
    reasoning_tokens   UInt64,
    gpu_us             UInt64,
    unpriced_requests  UInt64,
    cost_usd           Decimal(38, 12),
    latency_count      UInt64,
    latency_sum_us     UInt64,
    latency_min_ms     Float64,
    latency_max_ms     Float64,
    latency_hist_idx   Array(Int16),
    latency_hist_cnt   Array(UInt64),
    ttft_count         UInt64,
    ttft_sum_us        UInt64,
    ttft_min_ms        Float64,
    ttft_max_ms        Float64,
    ttft_hist_idx      Array(Int16),
    ttft_hist_cnt      Array(UInt64)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.usage_1d_mv TO {database}.usage_1d AS
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
FROM {database}.usage_1d_input;
