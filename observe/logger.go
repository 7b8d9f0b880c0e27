package observe

import (
	"context"
	"log/slog"
)

// Logger returns an Observer that logs every event to l with the attributes
// op, id, outcome, duration, bytes_in, bytes_out, fields, version and, on
// failure, err. Expected outcomes (ok, not_found, conflict) log at
// slog.LevelDebug; refused calls (invalid, too_large, closed, unsupported,
// canceled, deadline) at slog.LevelWarn; corrupt records and backend failures at
// slog.LevelError. Ids are logged as they are: wrap l's handler if ids are
// sensitive.
func Logger(l *slog.Logger) Observer {
	return Func(func(ctx context.Context, e Event) {
		outcome := Outcome(e.Err)
		level := slog.LevelDebug
		switch outcome {
		case "ok", "not_found", "conflict":
		case "corrupt", "error":
			level = slog.LevelError
		default:
			level = slog.LevelWarn
		}
		if !l.Enabled(ctx, level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("op", string(e.Op)),
			slog.String("id", e.ID),
			slog.String("outcome", outcome),
			slog.Duration("duration", e.Duration),
			slog.Int("bytes_in", e.BytesIn),
			slog.Int("bytes_out", e.BytesOut),
			slog.Int("fields", e.Fields),
			slog.Uint64("version", e.Version),
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("err", e.Err.Error()))
		}
		l.LogAttrs(ctx, level, "livectx store", attrs...)
	})
}
