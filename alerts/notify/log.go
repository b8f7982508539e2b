package notify

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
)

// Log delivers notifications as one structured log line each: level WARN
// for a firing alert, INFO for a resolved one, message "alert firing" or
// "alert resolved". It never fails. Safe for concurrent use.
type Log struct {
	name   string
	logger *slog.Logger
}

// NewLog builds a log receiver writing to logger (default slog.Default()).
func NewLog(name string, logger *slog.Logger) *Log {
	if logger == nil {
		logger = slog.Default()
	}
	return &Log{name: name, logger: logger}
}

// Name returns the receiver's configured name.
func (l *Log) Name() string { return l.name }

// Deliver writes the line with the attributes receiver, id, type, rule,
// kind, group (a group of the dimension values), value, threshold,
// period_start, period_end and started_at (when not zero), summary, labels,
// annotations and contributors (when any).
func (l *Log) Deliver(ctx context.Context, n Notification) error {
	level, msg := slog.LevelWarn, "alert firing"
	if n.Type == TypeResolved {
		level, msg = slog.LevelInfo, "alert resolved"
	}
	attrs := []slog.Attr{
		slog.String("receiver", l.name),
		slog.String("id", n.ID),
		slog.String("type", n.Type),
		slog.String("rule", n.Rule),
		slog.String("kind", n.Kind),
		mapAttr("group", n.Group),
		slog.Float64("value", n.Value),
		slog.Float64("threshold", n.Threshold),
	}
	for _, t := range []struct {
		key string
		v   string
	}{{"period_start", formatTime(n.PeriodStart)}, {"period_end", formatTime(n.PeriodEnd)}, {"started_at", formatTime(n.StartedAt)}} {
		if t.v != "" {
			attrs = append(attrs, slog.String(t.key, t.v))
		}
	}
	attrs = append(attrs, slog.String("summary", n.Summary), mapAttr("labels", n.Labels), mapAttr("annotations", n.Annotations))
	if len(n.Contributors) > 0 {
		cs := make([]any, 0, len(n.Contributors))
		for i, c := range n.Contributors {
			cs = append(cs, slog.Group(fmt.Sprint(i),
				mapAttr("group", c.Group), slog.Float64("value", c.Value),
				slog.Float64("baseline", c.Baseline), slog.Float64("share", c.Share)))
		}
		attrs = append(attrs, slog.Group("contributors", cs...))
	}
	l.logger.LogAttrs(ctx, level, msg, attrs...)
	return nil
}

// mapAttr is a group attribute of m's entries, sorted by key.
func mapAttr(key string, m map[string]string) slog.Attr {
	as := make([]any, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		as = append(as, slog.String(k, m[k]))
	}
	return slog.Group(key, as...)
}
