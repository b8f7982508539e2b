-- 0005: growth_daily, the growth and month-end forecast of every day, written by
-- `costpipe derive` (docs/sql.md "growth_daily"; docs/design.md "Derived growth in
-- ClickHouse").
--
-- One row per (day, metric, scope, tenant, provider, model): the growth fields of
-- `costpipe query growth` and the forecast fields of `costpipe query forecast` as of the
-- end of the UTC day `day`. scope is 'total', 'tenant', 'model' (provider and model) or
-- 'tenant_model'; the dimensions a scope does not group by are ''.
-- ReplacingMergeTree(computed_at): deriving a day again inserts rows with the same key
-- and a newer computed_at, which replace the old ones when parts merge. Until then both
-- may be there: readers use FINAL (or argMax(tuple(...), computed_at) per key).
-- Nullable columns are NULL where the number cannot be known (note / forecast_note say
-- why); they cannot be in the sort key and are not.
-- The columns are declared once in analytics/derive.go (growthColumns); a test DESCRIBEs
-- the table against that list. {database} is replaced by the target database name.
CREATE TABLE IF NOT EXISTS {database}.growth_daily
(
    day            Date,
    metric         String,
    scope          String,
    tenant         String,
    provider       String,
    model          String,
    last_7d        Nullable(Float64),
    prev_7d        Nullable(Float64),
    wow_pct        Nullable(Float64),
    dod_pct        Nullable(Float64),
    window_days    UInt16,
    days_used      UInt16,
    zero_days      UInt16,
    daily_rate     Nullable(Float64),
    rate_ci_low    Nullable(Float64),
    rate_ci_high   Nullable(Float64),
    cmgr_pct       Nullable(Float64),
    doubling_days  Nullable(Float64),
    halving_days   Nullable(Float64),
    note           String,
    period_start   Date,
    days_left      UInt16,
    to_date        Float64,
    forecast_p10   Nullable(Float64),
    forecast_p50   Nullable(Float64),
    forecast_p90   Nullable(Float64),
    method         String,
    mase           Nullable(Float64),
    coverage       Nullable(Float64),
    forecast_note  String,
    computed_at    DateTime('UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(day)
ORDER BY (metric, scope, tenant, provider, model, day);
