-- 0002: stable, finalised views for analysts (documented in docs/sql.md).
--
-- The rollup tables hold aggregate *states* split by Kafka partition; these views merge
-- them into plain numbers, one row per (ts, tenant, application, provider, model,
-- error_type), and hide the exactly-once columns src_*. Their columns are a contract:
-- add columns in a new migration, never rename or drop one.
--   cost_usd        Decimal(38, 12) USD, exact
--   gpu_us, *_sum_us  UInt64 microseconds (exact); gpu_ms Float64 milliseconds
--   *_avg_ms, *_min_ms, *_max_ms  Nullable(Float64) milliseconds, NULL when *_count = 0
--   *_hist_idx / *_hist_cnt  the merged histogram (pipelines/sketch bucket index -> count);
--                   sumMap them over any set of rows before computing a quantile.
-- The aliases shadow the state columns they merge (sumMerge(requests) AS requests), the
-- AggregatingMergeTree idiom; later expressions (latency_count > 0) see the merged value.
-- {database} is replaced by the target database name.

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
    sumMapMerge(latency_hist).2 AS latency_hist_cnt,
    sumMerge(ttft_count) AS ttft_count,
    sumMerge(ttft_sum_us) AS ttft_sum_us,
    if(ttft_count > 0, ttft_sum_us / ttft_count / 1000, NULL) AS ttft_avg_ms,
    if(ttft_count > 0, minMerge(ttft_min_ms), NULL) AS ttft_min_ms,
    if(ttft_count > 0, maxMerge(ttft_max_ms), NULL) AS ttft_max_ms,
    sumMapMerge(ttft_hist).1 AS ttft_hist_idx,
    sumMapMerge(ttft_hist).2 AS ttft_hist_cnt
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
    sumMapMerge(latency_hist).2 AS latency_hist_cnt,
    sumMerge(ttft_count) AS ttft_count,
    sumMerge(ttft_sum_us) AS ttft_sum_us,
    if(ttft_count > 0, ttft_sum_us / ttft_count / 1000, NULL) AS ttft_avg_ms,
    if(ttft_count > 0, minMerge(ttft_min_ms), NULL) AS ttft_min_ms,
    if(ttft_count > 0, maxMerge(ttft_max_ms), NULL) AS ttft_max_ms,
    sumMapMerge(ttft_hist).1 AS ttft_hist_idx,
    sumMapMerge(ttft_hist).2 AS ttft_hist_cnt
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
    sumMapMerge(latency_hist).2 AS latency_hist_cnt,
    sumMerge(ttft_count) AS ttft_count,
    sumMerge(ttft_sum_us) AS ttft_sum_us,
    if(ttft_count > 0, ttft_sum_us / ttft_count / 1000, NULL) AS ttft_avg_ms,
    if(ttft_count > 0, minMerge(ttft_min_ms), NULL) AS ttft_min_ms,
    if(ttft_count > 0, maxMerge(ttft_max_ms), NULL) AS ttft_max_ms,
    sumMapMerge(ttft_hist).1 AS ttft_hist_idx,
    sumMapMerge(ttft_hist).2 AS ttft_hist_cnt
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
