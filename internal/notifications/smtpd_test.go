package notifications

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is one message the test SMTP server accepted.
type received struct {
	from, to string
	tls      bool // delivered after STARTTLS
	data     []byte
}

// smtpd is a tiny SMTP receiver on loopback: EHLO/HELO, STARTTLS (when it
// has a certificate), AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT. It
// keeps what it accepts and can answer 4xx or 5xx to the next DATAs.
type smtpd struct {
	t        testing.TB
	ln       net.Listener
	tlsCfg   *tls.Config // nil: no STARTTLS
	user     string      // "" accepts no AUTH
	pass     string
	mu       sync.Mutex
	msgs     []received
	tries    int      // DATA commands seen
	answers  []string // replies to the next DATAs instead of 250
	authSeen bool
	wg       sync.WaitGroup
}

func startSMTPD(t testing.TB, tlsCfg *tls.Config, user, pass string) *smtpd {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpd{t: t, ln: ln, tlsCfg: tlsCfg, user: user, pass: pass}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpd) addr() string { return s.ln.Addr().String() }

// failNext makes the next DATAs answer these replies (e.g. "451 try later").
func (s *smtpd) failNext(replies ...string) {
	s.mu.Lock()
	s.answers = append(s.answers, replies...)
	s.mu.Unlock()
}

func (s *smtpd) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func (s *smtpd) dataTries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries
}

func (s *smtpd) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.session(c) }()
	}
}

func (s *smtpd) session(c net.Conn) {
	defer func() { c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Minute)) // a stuck client must not hang the test
	r := bufio.NewReader(c)
	reply := func(l string) { io.WriteString(c, l+"\r\n") }
	reply("220 localhost ESMTP test")
	var cur received
	secure := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO":
			ext := []string{"250-localhost", "250-8BITMIME"}
			if s.tlsCfg != nil && !secure {
				ext = append(ext, "250-STARTTLS")
			}
			ext = append(ext, "250 AUTH PLAIN")
			for _, l := range ext {
				reply(l)
			}
		case "HELO", "NOOP", "RSET":
			cur = received{}
			reply("250 ok")
		case "STARTTLS":
			if s.tlsCfg == nil || secure {
				reply("502 no")
				continue
			}
			reply("220 go ahead")
			tc := tls.Server(c, s.tlsCfg)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, r, secure = tc, bufio.NewReader(tc), true
			cur = received{}
		case "AUTH":
			f := strings.Fields(line)
			raw, err := base64.StdEncoding.DecodeString(f[len(f)-1])
			parts := strings.Split(string(raw), "\x00")
			if err != nil || len(f) != 3 || !strings.EqualFold(f[1], "PLAIN") || len(parts) != 3 || parts[1] != s.user || parts[2] != s.pass || s.user == "" {
				reply("535 5.7.8 bad credentials")
				continue
			}
			s.mu.Lock()
			s.authSeen = true
			s.mu.Unlock()
			reply("235 ok")
		case "MAIL":
			if s.user != "" && !s.authed() {
				reply("530 5.7.0 authentication required")
				continue
			}
			cur.from = addrOf(line)
			reply("250 ok")
		case "RCPT":
			cur.to = addrOf(line)
			reply("250 ok")
		case "DATA":
			reply("354 end with .")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, ".")) // undo dot-stuffing
			}
			s.mu.Lock()
			s.tries++
			ans := "250 queued"
			if len(s.answers) > 0 {
				ans, s.answers = s.answers[0], s.answers[1:]
			} else {
				cur.tls, cur.data = secure, []byte(b.String())
				s.msgs = append(s.msgs, cur)
			}
			s.mu.Unlock()
			reply(ans)
			cur = received{}
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("500 unknown command")
		}
	}
}

func (s *smtpd) authed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authSeen
}

func addrOf(line string) string {
	i, j := strings.Index(line, "<"), strings.Index(line, ">")
	if i < 0 || j < i {
		return ""
	}
	return line[i+1 : j]
}

// selfSigned returns a server config with a fresh certificate for
// 127.0.0.1 and a client config trusting it.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mercato test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return server, &tls.Config{RootCAs: pool}
}

// parsed is a received message read back: its decoded subject and parts.
type parsed struct {
	subject, text, html string
	header              mail.Header
}

// parseMail reads a multipart/alternative message as a mail client would.
func parseMail(t testing.TB, data []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	var dec mime.WordDecoder
	subj, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", m.Header.Get("Content-Type"), err)
	}
	p := parsed{subject: subj, header: m.Header}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		switch ct := part.Header.Get("Content-Type"); {
		case strings.HasPrefix(ct, "text/plain"):
			p.text = string(b)
		case strings.HasPrefix(ct, "text/html"):
			p.html = string(b)
		default:
			t.Fatalf("unexpected part %q", ct)
		}
	}
	if p.text == "" || p.html == "" {
		t.Fatalf("message lacks a part: text %q html %q", p.text, p.html)
	}
	return p
}
