package main

import (
	"context"
	"fmt"
	"io"

	"mercato/internal/platform/event"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
)

// cmdDebug holds test-only sub-commands (not listed in the usage text):
//
//	mercato debug emit-events --count N --aggregates K [--batch B]
//
// appends N events of type debug.emitted over K aggregates to the outbox, B
// per transaction, from a separate process — the path the whole-binary crash
// test uses to feed a running server's relay.
func cmdDebug(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "emit-events" {
		return usagef(nil, "debug emit-events is the only debug command")
	}
	fs := newFlagSet("debug emit-events [flags]", "Append test events to the outbox (test-only).")
	var st storeFlags
	st.register(fs)
	var count, aggregates, batch int
	var prefix string
	fs.IntVar(&count, "count", 1000, "events to append")
	fs.IntVar(&aggregates, "aggregates", 10, "aggregates to spread them over")
	fs.IntVar(&batch, "batch", 50, "events per transaction")
	fs.StringVar(&prefix, "prefix", "agg", "aggregate id prefix")
	if done, err := helpOK(parse(fs, args[1:], getenv, stdout)); done {
		return err
	}
	if count < 0 || aggregates < 1 || batch < 1 {
		return usagef(fs, "--count must be ≥ 0, --aggregates and --batch ≥ 1")
	}
	db, err := st.open(ctx, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	emitted := 0
	for emitted < count {
		n := min(batch, count-emitted)
		err := db.InTx(ctx, func(tx *sqldb.Tx) error {
			evs := make([]*event.Envelope, n)
			for i := range n {
				agg := fmt.Sprintf("%s-%d", prefix, (emitted+i)%aggregates)
				e, err := debugEmitted.New(agg, tx.Now, debugPayload{N: emitted + i})
				if err != nil {
					return err
				}
				evs[i] = &e
			}
			return outbox.Append(ctx, tx, evs...)
		})
		if err != nil {
			return err
		}
		emitted += n
		fmt.Fprintf(stdout, "emitted %d\n", emitted)
	}
	return nil
}

// debugEmitted is the event type of debug emit-events (test-only).
var debugEmitted = event.Define[debugPayload]("debug.emitted", 1,
	"Test-only: appended by `mercato debug emit-events`.")

type debugPayload struct {
	N int `json:"n"`
}
