package notifications

import (
	"context"
	"testing"
	"time"

	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// BenchmarkSendDue measures the sender on SQLite — claim, build, SMTP to
// the loopback receiver, settle — against the same receiver given the
// prebuilt message alone (SMTP.Send: the relay's share), in the same run.
func BenchmarkSendDue(b *testing.B) {
	d := startSMTPD(b, nil, "", "")
	db := sqldbtest.Open(b, sqldb.SQLite, Migrations())
	svc := New(moduleFor(db), Deps{}, Config{SMTP: relay(d, TLSAuto, nil), BatchSize: b.N})
	ctx := context.Background()
	msg, err := buildMessage("shop@mercato.test", "c@example.com", "订单 M-1 已付款", "text", "<p>html</p>", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	err = db.Do(ctx, func(tx *sqldb.Tx) error {
		for range b.N {
			if err := svc.record(ctx, tx, event.NewID(), record{customerID: "c", recipient: "c@example.com", kind: KindOrderPaid,
				orderID: "o", locale: LocaleZH, data: mailData{Name: "王芳", Number: "M-1", Total: "1.00 EUR"}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := svc.cfg.SMTP.Send(ctx, "c@example.com", msg); err != nil {
			b.Fatal(err)
		}
	}
	ref := float64(b.N) / time.Since(start).Seconds()
	start = time.Now()
	n, err := svc.SendDue(ctx)
	if err != nil || n != int64(b.N) {
		b.Fatalf("sent %d of %d: %v", n, b.N, err)
	}
	got := float64(b.N) / time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(got, "sent_msg/s")
	b.ReportMetric(ref, "ref_smtp_only_msg/s")
	b.ReportMetric(got/ref, "x_smtp_only")
	b.ReportMetric(0, "ns/op")
}
