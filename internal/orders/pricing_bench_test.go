package orders

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/module"
	"mercato/internal/platform/notify"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/promotions"
	"mercato/internal/rates"
)

// BenchmarkPlaceCoupon: placements per second through a real group-commit
// batcher with the real promotions and rates modules, of carts with a
// coupon entered (quoted, redeemed in the unit) next to carts without one,
// measured in the same run on each engine in 4 alternating rounds (which
// side goes first alternates too), with the writer's statements per
// placement of each side (target: ratio ≥ 0.9).
func BenchmarkPlaceCoupon(b *testing.B) {
	for _, eng := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(eng), func(b *testing.B) {
			db := sqldbtest.Open(b, eng, pricedSources()...)
			e := newEnv(b, db)
			db.SetClock(time.Now)
			gc := groupcommit.New(db, groupcommit.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer gc.Close()
			p := module.Platform{DB: db, Write: gc, Idem: e.svc.idem, Logger: e.svc.logger, Notify: notify.New(db)}
			promos := promotions.New(p, promotions.Config{})
			e.svc.promos, e.svc.rates = promos, testRates{rates.New(p, rates.Config{})}
			runHub(b, p.Notify)
			if _, err := promos.Create(context.Background(), staff, promotions.Rule{Name: "bench", Kind: "percentage",
				PercentBP: 1000, Codes: []string{"BENCH"}}); err != nil {
				b.Fatal(err)
			}
			n := max(b.N, 64)
			with, without := e.benchCarts(n, 64), e.benchCarts(n, 64)
			if _, err := db.Writer().Exec(`UPDATE orders_carts SET coupons = '["BENCH"]' WHERE id IN (` + inList(with) + `)`); err != nil {
				b.Fatal(err)
			}
			// Alternating rounds, so that the machine's load weighs on both.
			const rounds = 4
			var tWith, tWithout time.Duration
			var sWith, sWithout int64 // the writer's statements
			var lo, hi float64
			b.ResetTimer()
			for r := range rounds {
				part := func(ids []string) []string { return ids[r*len(ids)/rounds : (r+1)*len(ids)/rounds] }
				// Which side goes first alternates too (with, without;
				// without, with; …): neither always follows the other.
				var dw, dwo time.Duration
				for k := range 2 {
					start, s0 := time.Now(), db.WriteStats()
					if (k+r)%2 == 0 {
						e.place(b, gc, part(with))
						dw, sWith = time.Since(start), sWith+db.WriteStats().Sub(s0).Statements
					} else {
						e.place(b, gc, part(without))
						dwo, sWithout = time.Since(start), sWithout+db.WriteStats().Sub(s0).Statements
					}
				}
				w, wo := part(with), part(without)
				tWith, tWithout = tWith+dw, tWithout+dwo
				ratio := (float64(len(w)) / dw.Seconds()) / (float64(len(wo)) / dwo.Seconds())
				if r == 0 || ratio < lo {
					lo = ratio
				}
				if r == 0 || ratio > hi {
					hi = ratio
				}
			}
			b.StopTimer()
			couponed, plain := float64(len(with))/tWith.Seconds(), float64(len(without))/tWithout.Seconds()
			b.ReportMetric(couponed, "placements/s")
			b.ReportMetric(plain, "ref_no_coupon/s")
			b.ReportMetric(lo, "round_ratio_min")
			b.ReportMetric(hi, "round_ratio_max")
			b.ReportMetric(couponed/plain, "ratio")
			if eng == sqldb.SQLite { // WriteStats counts the statements of SQLite's writer
				b.ReportMetric(float64(sWith)/float64(len(with)), "stmts/placement")
				b.ReportMetric(float64(sWithout)/float64(len(without)), "ref_stmts/placement")
			}
		})
	}
}

// runHub runs the notification hub of the benchmark's caches (on
// PostgreSQL they are trusted only while it listens; they subscribe when
// their modules are made, before it runs) and waits until it listens.
func runHub(b *testing.B, hub *notify.Hub) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	for !hub.Trusted() {
		time.Sleep(time.Millisecond)
	}
}

func inList(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ", "
		}
		s += "'" + id + "'"
	}
	return s
}

// BenchmarkQuote: POST …/quote's use case (QuoteTx in a unit: the cart, the
// catalog, 10 active promotions, the rates tables with 100 tax rates, the
// engine) for a 10-line cart, with its p99 next to the same quote with no
// promotions and no tables, alternately in the same run, and the
// difference of the two p99s (target: the rule sets add < 1 ms p99) and of
// the two means (what the rules cost, less swayed by the machine's load).
func BenchmarkQuote(b *testing.B) {
	for _, eng := range []sqldb.Engine{sqldb.SQLite, sqldb.Postgres} {
		b.Run(string(eng), func(b *testing.B) {
			ctx := context.Background()
			db := sqldbtest.Open(b, eng, pricedSources()...)
			e := newEnv(b, db)
			db.SetClock(time.Now)
			p := module.Platform{DB: db, Write: db, Idem: e.svc.idem, Logger: e.svc.logger, Notify: notify.New(db)}
			promos, rts := promotions.New(p, promotions.Config{}), rates.New(p, rates.Config{})
			runHub(b, p.Notify)
			for i := range 10 {
				if _, err := promos.Create(ctx, staff, promotions.Rule{Name: "p" + itoa(i), Kind: "percentage", PercentBP: 100}); err != nil {
					b.Fatal(err)
				}
			}
			var regions []rates.TaxRegion
			for i := range 50 {
				regions = append(regions, rates.TaxRegion{Country: "US", Region: "R" + itoa(i), Rounding: "line",
					Rates: []rates.TaxRate{{Class: "standard", BP: 500}, {Class: "reduced", BP: 100}}})
			}
			if _, err := rts.PutTax(ctx, rates.Actor{ID: "op"}, rates.TaxRequest{Regions: regions}); err != nil {
				b.Fatal(err)
			}
			carts := e.benchCarts(1, 10)
			caller := Caller{CustomerID: "u-bench", Channel: "web"}
			if err := db.Do(ctx, func(tx *sqldb.Tx) error {
				for i := 1; i < 10; i++ {
					if _, err := e.svc.SetItemTx(ctx, tx, caller, carts[0], "B"+itoa(i), 1); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			in := CheckoutRequest{ShippingAddress: &Address{Name: "A", Line1: "1", City: "C", Region: "R49", PostalCode: "1", Country: "US"}}
			run := func(n int) []time.Duration {
				ds := make([]time.Duration, n)
				for i := range ds {
					start := time.Now()
					if err := db.Do(ctx, func(tx *sqldb.Tx) error {
						q, err := e.svc.QuoteTx(ctx, tx, caller, carts[0], in)
						if err == nil && len(q.Lines) != 10 {
							b.Fatalf("%d lines", len(q.Lines))
						}
						return err
					}); err != nil {
						b.Fatal(err)
					}
					ds[i] = time.Since(start)
				}
				return ds
			}
			withRules := func(on bool) {
				if on {
					e.svc.promos, e.svc.rates = promos, testRates{rts}
				} else {
					e.svc.promos, e.svc.rates = nil, nil
				}
			}
			withRules(true)
			run(10) // fill the caches
			// One quote with the rule sets, one without, alternately, so that
			// the machine's load weighs on both.
			full, bare := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				withRules(true)
				full = append(full, run(1)...)
				withRules(false)
				bare = append(bare, run(1)...)
			}
			b.StopTimer()
			b.ReportMetric(float64(p99(full).Microseconds()), "p99_µs")
			b.ReportMetric(float64(p99(bare).Microseconds()), "ref_bare_p99_µs")
			b.ReportMetric(float64((p99(full) - p99(bare)).Microseconds()), "added_p99_µs")
			b.ReportMetric(float64((mean(full) - mean(bare)).Microseconds()), "added_mean_µs")
		})
	}
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(max(len(ds), 1))
}

func p99(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[max(0, (len(s)*99+99)/100-1)] // the ⌈0.99 n⌉-th smallest
}
