-- 0006: the alert evaluator's state, silences and notification log (`costpipe alerts
-- run`; docs/alerts.md, docs/design.md "Alerts"). Every statement is repeatable.
--
-- alerts_state: one row per evaluation that changed an alert (rule, instance = group and
-- threshold), newest version wins. ReplacingMergeTree(version): readers take
-- argMax(…, version) per (rule, instance) (or FINAL); old versions go when parts merge.
CREATE TABLE IF NOT EXISTS {database}.alerts_state
(
    rule            String,
    instance        String,
    kind            String,
    group_json      String,
    threshold       String,
    state           String,
    active_at       DateTime('UTC'),
    fired_at        DateTime('UTC'),
    last_active     DateTime('UTC'),
    resolved_at     DateTime('UTC'),
    period_start    DateTime('UTC'),
    period_end      DateTime('UTC'),
    value           Float64,
    threshold_value Float64,
    summary         String,
    contributors    String,
    replica         String,
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (rule, instance);

-- alerts_silences: one row per change of a silence (added, expired), newest version wins.
CREATE TABLE IF NOT EXISTS {database}.alerts_silences
(
    id          String,
    matchers    String,
    starts_at   DateTime('UTC'),
    ends_at     DateTime('UTC'),
    created_by  String,
    comment     String,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- alerts_notifications: the notification log, append only. Per (id = idempotency key,
-- receiver) a replica first inserts a claim (status 'sending', its replica id, a random
-- nonce, the claim round), waits, reads the round's claims back and delivers only when
-- its claim is the smallest (nonce, replica); then it appends 'delivered' or 'dead'
-- (final), or 'released' (gave up before an answer: the round is void).
CREATE TABLE IF NOT EXISTS {database}.alerts_notifications
(
    id          String,
    receiver    String,
    round       UInt32,
    status      String,
    replica     String,
    nonce       UInt64,
    at          DateTime('UTC'),
    rule        String,
    type        String,
    group_json  String,
    attempts    UInt32,
    error       String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (id, receiver, round, nonce);
