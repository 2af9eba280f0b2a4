package notifications

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/event"
)

// TLSMode says when the SMTP client upgrades the connection with STARTTLS.
type TLSMode string

const (
	// TLSAuto upgrades when the server offers STARTTLS (the default).
	TLSAuto TLSMode = "auto"
	// TLSRequire refuses to send over a server that does not offer STARTTLS.
	TLSRequire TLSMode = "require"
	// TLSOff never upgrades.
	TLSOff TLSMode = "off"
)

// SMTP is an SMTP relay: host:port, optional AUTH PLAIN credentials, the
// envelope sender and how STARTTLS is used.
type SMTP struct {
	Addr     string // host:port
	Username string // AUTH PLAIN when set
	Password string
	From     string // the From address (required)
	TLS      TLSMode
	// TLSConfig, when set, verifies the server's certificate (tests give
	// their self-signed root); nil verifies against the system roots.
	TLSConfig *tls.Config
	// Dial connects (default net.Dialer with a 30 s timeout).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// ParseSMTPURL reads smtp://user:pass@host:port (port 587 by default).
func ParseSMTPURL(raw string) (SMTP, error) {
	const op = "notifications.ParseSMTPURL"
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return SMTP{}, errs.E(op, errs.Invalid, "want smtp://[user:pass@]host[:port]")
	}
	s := SMTP{Addr: u.Host, TLS: TLSAuto}
	if u.Port() == "" {
		s.Addr = net.JoinHostPort(u.Hostname(), "587")
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	return s, nil
}

// sendError is a failed delivery; temporary ones (4xx answers, network
// faults) are retried, permanent ones (5xx) fail the message at once.
type sendError struct {
	err       error
	temporary bool
}

func (e *sendError) Error() string { return e.err.Error() }

func classify(err error) error {
	if err == nil {
		return nil
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return &sendError{err: err, temporary: tp.Code >= 400 && tp.Code < 500}
	}
	return &sendError{err: err, temporary: true}
}

// Send delivers one message: EHLO, STARTTLS (per TLS), AUTH PLAIN, MAIL,
// RCPT, DATA, QUIT.
func (s SMTP) Send(ctx context.Context, to string, msg []byte) error {
	dial := s.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second}
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	conn, err := dial(ctx, s.Addr)
	if err != nil {
		return classify(err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	}
	host, _, _ := net.SplitHostPort(s.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return classify(err)
	}
	defer c.Close()
	if err := c.Hello("mercato"); err != nil {
		return classify(err)
	}
	if s.TLS != TLSOff {
		if ok, _ := c.Extension("STARTTLS"); ok {
			cfg := &tls.Config{ServerName: host}
			if s.TLSConfig != nil {
				cfg = s.TLSConfig.Clone()
				if cfg.ServerName == "" {
					cfg.ServerName = host
				}
			}
			if err := c.StartTLS(cfg); err != nil {
				return &sendError{err: err, temporary: true}
			}
		} else if s.TLS == TLSRequire {
			return &sendError{err: errors.New("smtp: the server does not offer STARTTLS (--smtp-tls=require)"), temporary: true}
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return classify(err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return classify(err)
	}
	if err := c.Rcpt(to); err != nil {
		return classify(err)
	}
	w, err := c.Data()
	if err != nil {
		return classify(err)
	}
	if _, err := w.Write(msg); err != nil {
		return classify(err)
	}
	if err := w.Close(); err != nil {
		return classify(err)
	}
	return classify(c.Quit())
}

// buildMessage writes an RFC 5322 multipart/alternative message (text then
// HTML, both UTF-8 quoted-printable) with an RFC 2047 encoded subject.
func buildMessage(from, to, subject, text, html string, date time.Time) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range []struct{ ctype, content string }{{"text/plain; charset=UTF-8", text}, {"text/html; charset=UTF-8", html}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if _, err := qw.Write([]byte(strings.ReplaceAll(p.content, "\n", "\r\n"))); err != nil {
			return nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	var m bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&m, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", to)
	hdr("Subject", mime.BEncoding.Encode("UTF-8", subject))
	hdr("Date", date.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+event.NewID()+"@mercato>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	m.WriteString("\r\n")
	m.Write(body.Bytes())
	return m.Bytes(), nil
}
