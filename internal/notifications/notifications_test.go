package notifications

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"mercato/internal/inventory"
	"mercato/internal/orders"
	"mercato/internal/payments"
	"mercato/internal/platform/event"
)

// relay is an SMTP config pointing at d.
func relay(d *smtpd, mode TLSMode, client *tls.Config) *SMTP {
	return &SMTP{Addr: d.addr(), From: "shop@mercato.test", TLS: mode, Username: d.user, Password: d.pass, TLSConfig: client}
}

// The customer's mail, in their locale, over STARTTLS and AUTH PLAIN: every
// kind's subject and both parts, the tracking link on shipped.
func TestOrderMailInBothLanguages(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	var d *smtpd
	forEachEngine(t, func() Config {
		d = startSMTPD(t, srvTLS, "mailer", "s3cret")
		return Config{SMTP: relay(d, TLSRequire, cliTLS)}
	}, func(t *testing.T, e *env) {
		e.shop.addOrder("o-en", "M-1001", "c-en", "Alice", 1250)
		e.shop.addOrder("o-zh", "M-1002", "c-zh", "王芳", 9900)
		e.setLocale("c-zh", LocaleZH)
		tests := []struct {
			order, locale, kind string
			ev                  func(order string) error
			subject             string
			text, html          []string
		}{
			{"o-en", "en", KindOrderPlaced, nil, "Order M-1001 received", []string{"Hello Alice", "12.50 EUR"}, []string{"<b>M-1001</b>"}},
			{"o-zh", "zh", KindOrderPlaced, nil, "订单 M-1002 已收到", []string{"王芳，您好", "99.00 EUR"}, []string{"<b>M-1002</b>"}},
			{"o-en", "en", KindOrderPaid, nil, "Order M-1001 paid", []string{"payment for order M-1001"}, []string{"has arrived"}},
			{"o-zh", "zh", KindOrderPaid, nil, "订单 M-1002 已付款", []string{"已付款"}, []string{"备货"}},
			{"o-en", "en", KindOrderShipped, nil, "Order M-1001 shipped", []string{"Track it here: https://track.example/o-en/s-1?a=1&b=2"},
				[]string{`<a href="https://track.example/o-en/s-1?a=1&amp;b=2">`}},
			{"o-zh", "zh", KindOrderShipped, nil, "订单 M-1002 已发货", []string{"物流跟踪：https://track.example/o-zh/s-1?a=1&b=2"},
				[]string{`<a href="https://track.example/o-zh/s-1?a=1&amp;b=2">物流跟踪</a>`}},
			{"o-en", "en", KindOrderDelivered, nil, "Order M-1001 delivered", []string{"was delivered"}, []string{"Enjoy!"}},
			{"o-zh", "zh", KindOrderDelivered, nil, "订单 M-1002 已送达", []string{"已送达"}, []string{"祝您购物愉快"}},
			{"o-en", "en", KindOrderCancelled, nil, "Order M-1001 cancelled", []string{"12.50 EUR will be refunded"}, []string{"will be refunded"}},
			{"o-zh", "zh", KindPaymentRefunded, nil, "订单 M-1002 退款", []string{"退款 30.00 EUR"}, []string{"退款 30.00 EUR"}},
		}
		for _, tc := range tests {
			e.deliver(e.eventFor(tc.kind, tc.order))
		}
		if n := e.send(); n != int64(len(tests)) {
			t.Fatalf("sent %d, want %d", n, len(tests))
		}
		got := d.received()
		if len(got) != len(tests) {
			t.Fatalf("received %d messages, want %d", len(got), len(tests))
		}
		for i, tc := range tests {
			r := got[i]
			if !r.tls {
				t.Errorf("%s %s: not sent over STARTTLS", tc.kind, tc.order)
			}
			if want := strings.TrimPrefix(tc.order, "o-"); r.to != "c-"+want+"@example.com" || r.from != "shop@mercato.test" {
				t.Errorf("%s: envelope %s → %s", tc.kind, r.from, r.to)
			}
			m := parseMail(t, r.data)
			if m.subject != tc.subject {
				t.Errorf("%s %s: subject %q, want %q", tc.kind, tc.order, m.subject, tc.subject)
			}
			if tc.locale == "zh" && !strings.HasPrefix(m.header.Get("Subject"), "=?UTF-8?b?") {
				t.Errorf("%s: Chinese subject not RFC 2047 encoded: %q", tc.kind, m.header.Get("Subject"))
			}
			for _, s := range tc.text {
				if !strings.Contains(m.text, s) {
					t.Errorf("%s %s: text lacks %q:\n%s", tc.kind, tc.order, s, m.text)
				}
			}
			for _, s := range tc.html {
				if !strings.Contains(m.html, s) {
					t.Errorf("%s %s: html lacks %q:\n%s", tc.kind, tc.order, s, m.html)
				}
			}
		}
		for _, m := range e.messages("") {
			if m.Status != StatusSent || m.Attempts != 1 || m.SentAt == nil || !m.SentAt.Equal(e.clk.Now()) {
				t.Errorf("message %s %s: %+v, want sent after 1 attempt", m.Kind, m.OrderID, m)
			}
		}
		// Sent messages keep no bodies.
		var bodies int
		if err := e.db.Reader().QueryRow(`SELECT COUNT(*) FROM notifications_messages WHERE text_body <> '' OR html_body <> ''`).Scan(&bodies); err != nil || bodies != 0 {
			t.Errorf("bodies kept after sending: %d (%v)", bodies, err)
		}
		if n := e.send(); n != 0 || len(d.received()) != len(tests) {
			t.Errorf("a second run sent %d", n)
		}
	})
}

// eventFor builds the event of kind about order.
func (e *env) eventFor(kind, order string) (ev event.Envelope, err error) {
	t := e.t
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	switch kind {
	case KindOrderPlaced: // as the orders module emits it: the order's customer, number and total
		d := orders.PlacedData{OrderID: order, Number: "N", Currency: "EUR", Lines: []orders.EventLine{}}
		if o, ok := e.shop.orders[order]; ok {
			d.Number, d.Total, d.Currency = o.Number, o.Total.Amount(), o.Total.Currency()
			if o.CustomerID != nil {
				d.CustomerID = *o.CustomerID
			}
		}
		return orders.OrderPlaced.New(order, at, d)
	case KindOrderPaid:
		return orders.OrderPaid.New(order, at, orders.PaidData{OrderID: order, Method: "card", Currency: "EUR"})
	case KindOrderShipped:
		return orders.OrderShipped.New(order, at, orders.ShippedData{OrderID: order, ShipmentID: "s-1"})
	case KindOrderDelivered:
		return orders.OrderDelivered.New(order, at, orders.FulfilledData{OrderID: order})
	case KindOrderCancelled:
		return orders.OrderCancelled.New(order, at, orders.CancelledData{OrderID: order, By: "customer", WasPaid: true, RefundTotal: 1250, Currency: "EUR"})
	case KindPaymentRefunded:
		return payments.PaymentRefunded.New("p-"+order, at, payments.RefundedData{PaymentID: "p-" + order, OrderID: order, RefundID: "r-1",
			Amount: 3000, TotalRefunded: 3000, Currency: "EUR", Reason: "requested_by_customer"})
	case KindLowStock:
		return inventory.LowStock.New(order, at, inventory.LowStockData{SKU: order, Available: 2, Threshold: 5})
	}
	t.Fatalf("no event for %s", kind)
	return
}
