package main

import (
	"bufio"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"testing"

	"mercato/internal/platform/web/webtest"
)

// sink is a minimal SMTP receiver on loopback that accepts every message
// (the notifications package's own tests speak STARTTLS and AUTH).
type sink struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
}

func startSink(t *testing.T) *sink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.session(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

func (s *sink) session(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	io.WriteString(c, "220 sink\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch strings.ToUpper(strings.Fields(line + " x")[0]) {
		case "EHLO":
			io.WriteString(c, "250 sink\r\n")
		case "DATA":
			io.WriteString(c, "354 go\r\n")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, b.String())
			s.mu.Unlock()
			io.WriteString(c, "250 ok\r\n")
		case "QUIT":
			io.WriteString(c, "221 bye\r\n")
			return
		default:
			io.WriteString(c, "250 ok\r\n")
		}
	}
}

// last decodes the last message: its subject and its text part.
func (s *sink) last(t *testing.T) (subject, text string) {
	t.Helper()
	s.mu.Lock()
	raw := s.msgs[len(s.msgs)-1]
	s.mu.Unlock()
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	part, err := multipart.NewReader(m.Body, params["boundary"]).NextPart() // the text part, decoded
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(part)
	if err != nil {
		t.Fatal(err)
	}
	return subject, string(b)
}

func (s *sink) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.msgs) }

// TestNotificationsJourney: a customer's order placed and paid through the
// real server reaches the notification log (from the real events) and the
// relay configured by MERCATO_SMTP_URL.
func TestNotificationsJourney(t *testing.T) {
	for name, args := range engines(t) {
		t.Run(name, func(t *testing.T) {
			smtpd := startSink(t)
			c, admin := startShop(t, map[string]string{
				"MERCATO_SMTP_URL":     "smtp://" + smtpd.ln.Addr().String(),
				"MERCATO_SMTP_FROM":    "shop@example.com",
				"MERCATO_TRACKING_URL": "https://shop.example/track/{carrier}/{number}?order={order}",
			}, append(args(t), "--sandbox-carrier-step", "1h")...)
			stockProduct(t, admin, "Desk lamp", "LAMP-1", 6000, 10)
			cat, catID := registerCustomer(t, c, "cat@example.com", "Cat")
			cat.Do("PUT", "/api/v1/me/notification-preferences", map[string]any{"locale": "zh-CN", "marketing": false}).WantStatus(t, http.StatusOK)

			id := checkout(t, cat, "LAMP-1", 1).Field("id").(string)
			cat.Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": "tok_success"}).WantStatus(t, http.StatusOK)
			log := eventually(t, "placed and paid mail sent", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/notifications?customer_id="+catID+"&status=sent", nil)
			}, func(r *webtest.Response) bool { return r.Status == http.StatusOK && r.Field("items.1.kind") != nil })
			if log.Field("items.0.kind") != "order_paid" || log.Field("items.1.kind") != "order_placed" || log.Field("items.0.order_id") != id {
				t.Errorf("log: %s", log.Body)
			}
			if smtpd.count() != 2 {
				t.Errorf("relay received %d messages, want 2", smtpd.count())
			}

			// Shipped: the Chinese mail carries the carrier's tracking link.
			eventually(t, "fulfilment opened on order.paid", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/orders/"+id+"/fulfilment", nil)
			}, func(r *webtest.Response) bool { return r.Status == http.StatusOK })
			sh := admin.Do("POST", "/api/v1/admin/orders/"+id+"/shipments", map[string]any{"carrier": "sandbox"}, "Idempotency-Key: ship-"+id)
			sh.WantStatus(t, http.StatusCreated)
			eventually(t, "shipped mail sent", func() *webtest.Response {
				return admin.Do("GET", "/api/v1/admin/notifications?customer_id="+catID+"&status=sent", nil)
			}, func(r *webtest.Response) bool { return r.Field("items.0.kind") == "order_shipped" })
			subject, text := smtpd.last(t)
			link := "https://shop.example/track/sandbox/" + sh.Field("tracking_number").(string) + "?order=" + id
			if !strings.Contains(subject, "已发货") || !strings.Contains(text, link) {
				t.Errorf("shipped mail %q lacks %s:\n%s", subject, link, text)
			}
		})
	}
}
