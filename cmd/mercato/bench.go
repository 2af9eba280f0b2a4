package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// `mercato bench` drives a running server over HTTP as many buyers (issue
// #15). This file holds the command, the HTTP client and the figures; the
// scenarios are in bench_shop.go, the database reference in
// bench_reference.go.

const benchUsage = `Usage: mercato bench <scenario> [flags]

Scenarios (each drives a RUNNING server over its HTTP API):
  checkout     buyers loop cart → item → checkout → pay; orders/s and latencies
  flash-sale   many guest buyers race to check out one SKU; oversell read back
  reference    one-row-one-commit rate of the database at the server's durability
               (and pgbench -N on PostgreSQL), the yardstick for the others

Run "mercato bench <scenario> --help" for its flags.
`

func cmdBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return textUsage(benchUsage, "bench needs a scenario")
	}
	switch args[0] {
	case "checkout":
		return cmdBenchCheckout(ctx, args[1:], getenv, stdout, stderr)
	case "flash-sale":
		return cmdBenchFlashSale(ctx, args[1:], getenv, stdout, stderr)
	case "reference":
		return cmdBenchReference(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, benchUsage)
		return nil
	}
	return textUsage(benchUsage, "unknown bench scenario %q", args[0])
}

// benchClient is one caller of the API: a shared keep-alive HTTP client and
// the caller's bearer token (empty: anonymous).
type benchClient struct {
	base  string
	hc    *http.Client
	token string
}

// newBenchHTTP returns an HTTP client whose keep-alive pool holds conns
// connections to the one server.
func newBenchHTTP(conns int) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

func (c *benchClient) as(token string) *benchClient {
	return &benchClient{base: c.base, hc: c.hc, token: token}
}

// answer is what the server said: the status (0 when no answer came), the
// problem code of an error answer, and the body.
type answer struct {
	status int
	code   string
	body   []byte
	err    error // transport failure
}

// ok reports whether the answer has status want.
func (a answer) ok(want int) bool { return a.err == nil && a.status == want }

// label names the answer for the error table: "409 out_of_stock",
// "transport".
func (a answer) label() string {
	if a.err != nil || a.status == 0 {
		return "transport"
	}
	if a.code != "" {
		return fmt.Sprintf("%d %s", a.status, a.code)
	}
	return strconv.Itoa(a.status)
}

// decode unmarshals the answer's body into v.
func (a answer) decode(v any) error {
	if err := json.Unmarshal(a.body, v); err != nil {
		return fmt.Errorf("%s: %w", a.label(), err)
	}
	return nil
}

// do sends one request; key, when not empty, is its Idempotency-Key, and
// extra holds more headers as name/value pairs.
func (c *benchClient) do(ctx context.Context, method, path string, body any, key string, extra ...string) answer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return answer{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{status: resp.StatusCode, err: err}
	}
	a := answer{status: resp.StatusCode, body: b}
	if resp.StatusCode >= 400 {
		var p struct {
			Code string `json:"code"`
		}
		json.Unmarshal(b, &p)
		a.code = p.Code
	}
	return a
}

// expect is do that turns any status but want into an error (for setup
// steps, where every failure ends the run).
func (c *benchClient) expect(ctx context.Context, want int, method, path string, body any, key string, v any) error {
	a := c.do(ctx, method, path, body, key)
	if !a.ok(want) {
		if a.err != nil {
			return fmt.Errorf("%s %s: %w", method, path, a.err)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, a.label(), truncate(a.body, 300))
	}
	if v != nil {
		return a.decode(v)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// adminLogin returns a staff token: token itself when set, else one from
// logging in with email and password.
func adminLogin(ctx context.Context, c *benchClient, token, email, password string) (string, error) {
	if token != "" {
		return token, nil
	}
	if email == "" || password == "" {
		return "", errors.New("no admin credentials: give --admin-token, or --admin-email and --admin-password " +
			"(or MERCATO_BOOTSTRAP_ADMIN_EMAIL/PASSWORD)")
	}
	var r struct {
		Token string `json:"token"`
	}
	if err := c.expect(ctx, http.StatusOK, "POST", "/api/v1/auth/login",
		map[string]string{"email": email, "password": password}, "", &r); err != nil {
		return "", fmt.Errorf("admin login: %w", err)
	}
	return r.Token, nil
}

// latencies collects the durations of one step. Not safe for concurrent
// use: each buyer keeps its own and they are merged at the end.
type latencies []time.Duration

// Latency is the summary of a step's durations, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func summarize(d latencies) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := max(0, int(math.Ceil(p*float64(len(s))))-1)
		return float64(s[i].Microseconds()) / 1000
	}
	return Latency{Count: len(s), P50: q(0.50), P99: q(0.99), P999: q(0.999), Max: q(1)}
}

// tally is the counts and durations one buyer saw; merged at the end.
type tally struct {
	steps  map[string]latencies
	errors map[string]int // "step: 409 out_of_stock" → count
}

func newTally() *tally { return &tally{steps: map[string]latencies{}, errors: map[string]int{}} }

func (t *tally) merge(o *tally) {
	for k, v := range o.steps {
		t.steps[k] = append(t.steps[k], v...)
	}
	for k, v := range o.errors {
		t.errors[k] += v
	}
}

// progress prints a line a second to w (stderr), \r-updated, until stop
// is called, and the last one then: the elapsed time and what line() says.
func progress(w io.Writer, start time.Time, line func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				fmt.Fprintf(w, "\r%6.1fs  %s   ", time.Since(start).Seconds(), line())
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		fmt.Fprintf(w, "\r%6.1fs  %s   \n", time.Since(start).Seconds(), line())
	}
}

// loadAverage is /proc/loadavg's first three figures ("" where there is
// none): the figures of a shared machine mean little without it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// benchCommon are the flags every HTTP scenario takes.
type benchCommon struct {
	url           string
	buyers        int
	adminToken    string
	adminEmail    string
	adminPassword string
	jsonOut       bool
	settle        time.Duration
	ref           referenceFlags
}

func (b *benchCommon) register(fs *flag.FlagSet, buyers int) {
	fs.StringVar(&b.url, "url", "http://127.0.0.1:8080", "base URL of the running server")
	fs.IntVar(&b.buyers, "buyers", buyers, "concurrent buyers (the HTTP connection pool has as many connections)")
	fs.StringVar(&b.adminToken, "admin-token", "", "a staff token for setup and read-back (else --admin-email and --admin-password)")
	fs.StringVar(&b.adminEmail, "admin-email", "", "staff e-mail for setup and read-back (default MERCATO_BOOTSTRAP_ADMIN_EMAIL)")
	fs.StringVar(&b.adminPassword, "admin-password", "", "staff password (default MERCATO_BOOTSTRAP_ADMIN_PASSWORD)")
	fs.BoolVar(&b.jsonOut, "json", false, "print the summary as JSON on stdout")
	fs.DurationVar(&b.settle, "settle-timeout", 2*time.Minute, "how long to wait for the event consumers to settle before reading back")
	b.ref.register(fs)
}

// credentials fills the admin login from the bootstrap admin's environment
// when no flag named one.
func (b *benchCommon) credentials(getenv func(string) string) {
	if b.adminEmail == "" {
		b.adminEmail = getenv("MERCATO_BOOTSTRAP_ADMIN_EMAIL")
	}
	if b.adminPassword == "" {
		b.adminPassword = getenv("MERCATO_BOOTSTRAP_ADMIN_PASSWORD")
	}
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printLatencyTable writes the per-step latency rows of steps in order.
func printLatencyTable(w io.Writer, steps []string, lat map[string]Latency) {
	fmt.Fprintf(w, "  %-10s %9s %9s %9s %9s %9s\n", "step", "count", "p50 ms", "p99 ms", "p99.9 ms", "max ms")
	for _, s := range steps {
		l, ok := lat[s]
		if !ok {
			continue
		}
		fmt.Fprintf(w, "  %-10s %9d %9.2f %9.2f %9.2f %9.2f\n", s, l.Count, l.P50, l.P99, l.P999, l.Max)
	}
}

// printErrors writes the error table, largest first ("none" when empty).
func printErrors(w io.Writer, errs map[string]int) {
	if len(errs) == 0 {
		fmt.Fprintln(w, "  errors: none")
		return
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if errs[a] != errs[b] {
			return errs[b] - errs[a]
		}
		return strings.Compare(a, b)
	})
	fmt.Fprintln(w, "  errors:")
	for _, k := range keys {
		fmt.Fprintf(w, "    %7d  %s\n", errs[k], k)
	}
}
