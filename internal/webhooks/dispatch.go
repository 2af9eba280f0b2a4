package webhooks

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mercato/internal/platform/event"
	"mercato/internal/platform/sqldb"
)

// Dispatcher delivers recorded deliveries, outside transactions. While Run
// runs, the consumer claims most new deliveries in the transaction that
// records them and hands them over at its commit (Service.RecordTx); Step
// claims what else is due (by the database clock, sqldb.DB.Now): retries,
// fifo endpoints' events, deliveries whose lease ran out, and all of them
// with Config.PollOnly. Each delivery runs in a goroutine of its own. Run
// steps whenever woken or every Config.Poll. Safe for concurrent use;
// replicas may each run one (claims are conditional writes).
type Dispatcher struct {
	s       *Service
	client  *http.Client
	wake    chan struct{}
	live    atomic.Int32 // Runs running: the consumer claims at record time
	mu      sync.Mutex
	idle    *sync.Cond // signalled (on mu) when running drops to 0
	running int        // deliveries started or queued and not yet settled (under mu)
	eps     map[string]*epState
	held    map[string]bool // ids of the deliveries handed over and not yet settled (under mu)
	claims  atomic.Int64    // claim UPDATEs run (tests count them)

	smu      sync.Mutex // guards outcomes and settling
	outcomes []settled  // attempts made and not yet settled
	settling bool       // a settleLoop runs
}

// epState is one endpoint's concurrency and circuit breaker, in memory.
type epState struct {
	inflight  int
	queued    []job     // handed over while the endpoint was at its limit
	backlog   bool      // it may have due deliveries that no step has claimed yet
	fails     int       // consecutive failures
	openUntil time.Time // the breaker is open until then (when fails >= threshold)
}

func newDispatcher(s *Service) *Dispatcher {
	tr := &http.Transport{
		Proxy:               nil, // a proxy would dial for us, past the guard
		DialContext:         s.guard.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: max(64, s.cfg.MaxInFlight), // endpoints may share a host

		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	d := &Dispatcher{s: s, wake: make(chan struct{}, 1), eps: map[string]*epState{}, held: map[string]bool{},
		client: &http.Client{Transport: tr,
			// A redirect is not followed: a 3xx is a failed attempt.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	d.idle = sync.NewCond(&d.mu)
	return d
}

// Wake makes Run step at once.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Wait returns when no delivery is in flight (every one started so far has
// been settled). It may be called concurrently with Step.
func (d *Dispatcher) Wait() {
	d.mu.Lock()
	for d.running > 0 {
		d.idle.Wait()
	}
	d.mu.Unlock()
}

func (d *Dispatcher) busy() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running > 0
}

// Flush steps and waits until a step starts nothing: every delivery due now
// (by the database clock) has been tried. Tests drive the dispatcher with it
// and a fake clock.
func (d *Dispatcher) Flush(ctx context.Context) error {
	for {
		busy := d.busy() // started earlier: their slots free up when they settle
		n, err := d.Step(ctx)
		d.Wait()
		if err != nil || n == 0 && !busy {
			return err
		}
	}
}

// Run delivers until ctx ends, then waits for the deliveries in flight.
func (d *Dispatcher) Run(ctx context.Context) error {
	defer d.Wait()
	d.live.Add(1)
	defer d.live.Add(-1)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-t.C:
		}
		if _, err := d.Step(ctx); err != nil && ctx.Err() == nil {
			d.s.log.Error("webhooks: dispatch", "err", err)
		}
		t.Reset(d.s.cfg.Poll)
	}
}

// claiming reports whether new deliveries are claimed at record time: Run
// runs in this process and Config.PollOnly is not set.
func (d *Dispatcher) claiming() bool { return !d.s.cfg.PollOnly && d.live.Load() > 0 }

// lease is how long a claim made at now holds: longer than an attempt, so
// that only a crashed process's claims come due again.
func (d *Dispatcher) lease(now time.Time) time.Time { return now.Add(d.s.cfg.Timeout + time.Minute) }

// accepts reports whether a new delivery to endpoint id may be claimed at
// record time: its breaker is closed and fewer than BatchSize (at least
// 2·MaxInFlight) of its deliveries are in flight or queued. A handed-over
// delivery is never claimed again by this process's steps (held); another
// replica's only once its lease has run out, which takes a receiver slow
// enough to hold the queue that long without failing (failures open the
// breaker, which sends the queue back to pending).
func (d *Dispatcher) accepts(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.eps[id]
	return st == nil || st.fails < d.s.cfg.BreakerThreshold &&
		st.inflight+len(st.queued) < max(d.s.cfg.BatchSize, 2*d.s.cfg.MaxInFlight)
}

// noteBacklog records that endpoint id has a delivery recorded pending:
// the next settling of one of its deliveries wakes a step.
func (d *Dispatcher) noteBacklog(id string) {
	d.mu.Lock()
	d.state(id).backlog = true
	d.mu.Unlock()
}

// handoff takes over deliveries claimed at record time: each starts at
// once while its endpoint is under its limit, or queues until one of the
// endpoint's deliveries settles.
func (d *Dispatcher) handoff(js []job) {
	var start []job
	d.mu.Lock()
	for _, j := range js {
		st := d.state(j.endpointID)
		d.running++
		d.held[j.id] = true
		if st.fails < d.s.cfg.BreakerThreshold && st.inflight < d.s.cfg.MaxInFlight {
			st.inflight++
			start = append(start, j)
		} else {
			st.queued = append(st.queued, j)
		}
	}
	d.mu.Unlock()
	for _, j := range start {
		go d.deliver(context.Background(), j)
	}
}

// unclaim makes queued deliveries pending again (their endpoint's breaker
// opened while they waited): the dispatcher claims them when it lets
// deliveries through again.
func (d *Dispatcher) unclaim(js []job) {
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.id
	}
	ctx := context.Background()
	err := d.s.write.Do(ctx, func(tx *sqldb.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhooks_deliveries SET status = 'pending', next_at = $1
			WHERE status = 'delivering' AND id IN (`+sqldb.Placeholders(2, len(ids))+`)`,
			append([]any{sqldb.Micros(tx.Now)}, sqldb.Args(ids)...)...)
		return err
	})
	if err != nil {
		// They stay claimed until their lease ends; then they are tried again.
		d.s.log.Error("webhooks: unclaim", "deliveries", len(ids), "err", err)
	}
	d.mu.Lock()
	for _, j := range js {
		delete(d.held, j.id)
	}
	d.state(js[0].endpointID).backlog = true
	if d.running -= len(js); d.running == 0 {
		d.idle.Broadcast()
	}
	d.mu.Unlock()
	d.Wake()
}

// runPeriod is the dispatch job's run: Run for one period.
func (d *Dispatcher) runPeriod(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, dispatchPeriod)
	defer cancel()
	return 0, d.Run(ctx)
}

// job is one claimed delivery.
type job struct {
	id, endpointID, eventID, envelope string
	attempts                          int
	order                             int // position among the step's candidates
	url                               string
	secrets                           []string
}

// dueEndpoint is an enabled endpoint with due deliveries.
type dueEndpoint struct {
	id, url, sealed string
	fifo            bool
	prevSealed      sql.NullString
	prevUntil       sql.NullInt64
}

// Step claims the deliveries due now that the endpoints' concurrency limits
// and circuit breakers allow, starts them, and reports how many it started.
// For a fifo endpoint only the first undelivered event of each aggregate
// (in sequence order) is due: one in flight per aggregate.
func (d *Dispatcher) Step(ctx context.Context) (int, error) {
	now := d.s.db.Now()
	eps, err := d.dueEndpoints(ctx, now)
	if err != nil {
		return 0, err
	}
	var cands []job
	for _, ep := range eps {
		free := d.free(ep.id, now)
		if free == 0 {
			d.noteBacklog(ep.id) // due, and waiting for a slot
			continue
		}
		secrets, err := d.secrets(ep, now)
		if err != nil {
			d.s.log.Error("webhooks: endpoint secret", "endpoint", ep.id, "err", err)
			continue
		}
		limit := min(free, d.s.cfg.BatchSize)
		js, err := d.dueOf(ctx, ep, now, limit)
		if err != nil {
			return 0, err
		}
		js = d.unheld(ep.id, js, len(js) == limit)
		for i := range js {
			js[i].url, js[i].secrets, js[i].order = ep.url, secrets, len(cands)+i
		}
		cands = append(cands, js...)
	}
	if len(cands) == 0 {
		return 0, nil
	}
	claimed, err := d.claim(ctx, cands, now)
	if err != nil {
		return 0, err
	}
	for _, j := range claimed {
		d.acquire(j.endpointID)
		go d.deliver(context.WithoutCancel(ctx), j)
	}
	return len(claimed), nil
}

// claim marks the candidates that are still due as delivering, until a
// lease that outlasts an attempt (a crashed replica's claims come due again
// then), with one conditional UPDATE, and returns those it claimed: of two
// replicas claiming one row, only one's UPDATE returns it.
func (d *Dispatcher) claim(ctx context.Context, cands []job, now time.Time) ([]job, error) {
	byID := make(map[string]job, len(cands))
	var q strings.Builder
	q.WriteString(`UPDATE webhooks_deliveries SET status = 'delivering', next_at = $1
		WHERE status IN ('pending', 'delivering') AND next_at <= $2 AND id IN (`)
	args := []any{sqldb.Micros(d.lease(now)), sqldb.Micros(now)}
	for i, j := range cands {
		byID[j.id] = j
		if i > 0 {
			q.WriteString(", ")
		}
		args = append(args, j.id)
		q.WriteString("$" + strconv.Itoa(len(args)))
	}
	q.WriteString(") RETURNING id")
	var claimed []job
	d.claims.Add(1)
	err := d.s.write.Do(ctx, func(tx *sqldb.Tx) error {
		claimed = claimed[:0]
		rows, err := tx.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			claimed = append(claimed, byID[id])
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: claim: %w", err)
	}
	// Start them in the order they were due (RETURNING's order is the engine's).
	slices.SortFunc(claimed, func(a, b job) int { return cmp.Compare(a.order, b.order) })
	return claimed, nil
}

func (d *Dispatcher) dueEndpoints(ctx context.Context, now time.Time) ([]dueEndpoint, error) {
	rows, err := d.s.db.Reader().QueryContext(ctx, `SELECT e.id, e.url, e.fifo, e.secret_sealed,
			e.previous_secret_sealed, e.previous_secret_until
		FROM webhooks_endpoints e WHERE e.enabled = 1 AND EXISTS (SELECT 1 FROM webhooks_deliveries d
			WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'delivering') AND d.next_at <= $1)
		ORDER BY e.id`, sqldb.Micros(now))
	if err != nil {
		return nil, fmt.Errorf("webhooks: due endpoints: %w", err)
	}
	defer rows.Close()
	var out []dueEndpoint
	for rows.Next() {
		var ep dueEndpoint
		var fifo int
		if err := rows.Scan(&ep.id, &ep.url, &fifo, &ep.sealed, &ep.prevSealed, &ep.prevUntil); err != nil {
			return nil, fmt.Errorf("webhooks: due endpoints: %w", err)
		}
		ep.fifo = fifo == 1
		out = append(out, ep)
	}
	return out, rows.Err()
}

// dueOf returns up to limit due deliveries of ep.
func (d *Dispatcher) dueOf(ctx context.Context, ep dueEndpoint, now time.Time, limit int) ([]job, error) {
	// The envelope by primary key for each row the LIMIT keeps (a subquery
	// rather than a join: no plan that reads the events table first).
	q := `SELECT d.id, d.event_id, (SELECT ev.envelope FROM webhooks_events ev WHERE ev.event_id = d.event_id),
			d.attempts FROM webhooks_deliveries d
		WHERE d.endpoint_id = $1 AND d.status IN ('pending', 'delivering') AND d.next_at <= $2`
	if ep.fifo {
		q += ` AND NOT EXISTS (SELECT 1 FROM webhooks_deliveries p WHERE p.endpoint_id = d.endpoint_id
			AND p.aggregate_type = d.aggregate_type AND p.aggregate_id = d.aggregate_id
			AND p.fifo = 1 AND p.status IN ('pending', 'delivering')
			AND (p.sequence < d.sequence OR (p.sequence = d.sequence AND p.id < d.id)))`
	}
	q += ` ORDER BY d.next_at, d.id LIMIT $3`
	rows, err := d.s.db.Reader().QueryContext(ctx, q, ep.id, sqldb.Micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: due deliveries: %w", err)
	}
	defer rows.Close()
	var out []job
	for rows.Next() {
		j := job{endpointID: ep.id}
		if err := rows.Scan(&j.id, &j.eventID, &j.envelope, &j.attempts); err != nil {
			return nil, fmt.Errorf("webhooks: due deliveries: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// secrets opens the endpoint's signing secrets: the current one, and the
// previous one while its rotation window lasts.
func (d *Dispatcher) secrets(ep dueEndpoint, now time.Time) ([]string, error) {
	cur, err := d.s.seal.open(ep.id, ep.sealed)
	if err != nil {
		return nil, err
	}
	out := []string{cur}
	if ep.prevSealed.Valid && ep.prevUntil.Valid && now.Before(sqldb.FromMicros(ep.prevUntil.Int64)) {
		prev, err := d.s.seal.open(ep.id, ep.prevSealed.String)
		if err != nil {
			return nil, err
		}
		out = append(out, prev)
	}
	return out, nil
}

// free is how many more deliveries endpoint id may start now: the
// concurrency limit less those in flight; 0 while its breaker is open, 1
// probe (when none is in flight) once the cool-down is over.
func (d *Dispatcher) free(id string, now time.Time) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.eps[id]
	if st == nil {
		return d.s.cfg.MaxInFlight
	}
	if st.fails >= d.s.cfg.BreakerThreshold {
		if now.Before(st.openUntil) || st.inflight > 0 {
			return 0
		}
		return 1 // half-open
	}
	return max(0, d.s.cfg.MaxInFlight-st.inflight)
}

func (d *Dispatcher) acquire(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.state(id).inflight++
	d.running++
}

// state is endpoint id's state, made on first use (under mu).
func (d *Dispatcher) state(id string) *epState {
	st := d.eps[id]
	if st == nil {
		st = &epState{}
		d.eps[id] = st
	}
	return st
}

// unheld drops from js the deliveries handed over to this dispatcher (a
// queued one whose lease ran out is its own, not to be claimed again) and
// notes whether endpoint id may have more due than a step took.
func (d *Dispatcher) unheld(id string, js []job, more bool) []job {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.state(id).backlog = more
	return slices.DeleteFunc(js, func(j job) bool { return d.held[j.id] })
}

// release frees the slot of an attempt at endpoint id that has its
// answer (its outcome is yet to be settled: the slot bounds the requests a
// receiver has to serve at once, not the writes behind them): a success
// closes the breaker, a failure counts towards opening it (again, after a
// failed probe). The endpoint's next queued delivery takes the freed slot;
// when the breaker opens, the queued ones go back to pending.
func (d *Dispatcher) release(id string, ok bool, now time.Time) {
	d.mu.Lock()
	st := d.eps[id]
	st.inflight--
	if ok {
		st.fails = 0
	} else {
		st.fails++
		if st.fails >= d.s.cfg.BreakerThreshold {
			st.openUntil = now.Add(d.s.cfg.BreakerCooldown)
		}
	}
	var next []job
	var back []job
	switch {
	case len(st.queued) == 0:
	case st.fails >= d.s.cfg.BreakerThreshold:
		back, st.queued = st.queued, nil
	case st.inflight < d.s.cfg.MaxInFlight:
		next, st.queued = st.queued[:1], st.queued[1:]
		st.inflight++
	}
	d.mu.Unlock()
	for _, j := range next {
		go d.deliver(context.Background(), j)
	}
	if len(back) > 0 {
		go d.unclaim(back)
	}
	// With claims at record time a freed slot matters to a step only when
	// the endpoint has deliveries waiting in the table; the poll finds the
	// retries that come due.
	if !d.claiming() || st.backlog || !ok {
		d.Wake()
	}
}

// finish ends deliveries whose outcomes are settled (or left to their
// lease): Wait returns once every started one is finished.
func (d *Dispatcher) finish(batch []settled) {
	d.mu.Lock()
	for _, x := range batch {
		delete(d.held, x.j.id)
	}
	if d.running -= len(batch); d.running == 0 {
		d.idle.Broadcast()
	}
	d.mu.Unlock()
}

// BreakerOpen reports whether endpoint id's circuit breaker is open now.
func (d *Dispatcher) BreakerOpen(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.eps[id]
	return st != nil && st.fails >= d.s.cfg.BreakerThreshold && d.s.db.Now().Before(st.openUntil)
}

// maxExcerpt bounds the response text kept per attempt.
const maxExcerpt = 1024

// outcome is what one attempt got.
type outcome struct {
	status     int
	latency    time.Duration
	excerpt    string
	err        string
	retryAfter time.Duration // from a 429's Retry-After; 0 when absent
	done       bool          // delivered without HTTP (a file_drop append)
}

func (o outcome) ok() bool { return o.err == "" && (o.done || o.status >= 200 && o.status < 300) }

// deliver makes one attempt at j, frees its slot and queues its outcome to
// be settled.
func (d *Dispatcher) deliver(ctx context.Context, j job) {
	o := d.send(ctx, j) // by the endpoint's kind (transport.go)
	// 429 and 410 are answers of a live receiver: they do not trip the breaker.
	d.release(j.endpointID, o.ok() || o.status == http.StatusTooManyRequests || o.status == http.StatusGone, d.s.db.Now())
	d.settle(settled{j: j, o: o})
}

// settled is one attempt's outcome waiting to be written.
type settled struct {
	j job
	o outcome
}

// maxSettle caps the outcomes written in one statement.
const maxSettle = 256

// settle queues x; one goroutine at a time writes what queued meanwhile,
// so that the outcomes of many attempts cost one UPDATE (and one INSERT of
// the failed tries) per batch instead of two statements each.
func (d *Dispatcher) settle(x settled) {
	d.smu.Lock()
	d.outcomes = append(d.outcomes, x)
	start := !d.settling
	d.settling = true
	d.smu.Unlock()
	if start {
		go d.settleLoop()
	}
}

func (d *Dispatcher) settleLoop() {
	ctx := context.Background()
	for {
		d.smu.Lock()
		batch := d.outcomes
		if len(batch) > maxSettle {
			batch, d.outcomes = batch[:maxSettle], batch[maxSettle:]
		} else {
			d.outcomes = nil
		}
		if len(batch) == 0 {
			d.settling = false
			d.smu.Unlock()
			return
		}
		d.smu.Unlock()
		if err := d.s.write.Do(ctx, func(tx *sqldb.Tx) error { return d.settleTx(ctx, tx, batch) }); err != nil {
			// The rows stay claimed until their lease ends; then they are tried again.
			d.s.log.Error("webhooks: settle", "deliveries", len(batch), "err", err)
		}
		d.finish(batch)
	}
}

// post sends j's envelope, signed.
func (d *Dispatcher) post(ctx context.Context, j job) outcome {
	return d.postBody(ctx, j, []byte(j.envelope), nil)
}

// postBody sends body for j, signed, with extra headers besides the
// dispatcher's own (an http_json connector's).
func (d *Dispatcher) postBody(ctx context.Context, j job, body []byte, extra http.Header) outcome {
	ts := d.s.db.Now().Unix()
	sig, err := Sign(j.secrets, j.eventID, ts, body)
	if err != nil {
		return outcome{err: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, d.s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(body))
	if err != nil {
		return outcome{err: "bad URL: " + err.Error()}
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mercato-webhooks/1")
	req.Header.Set("webhook-id", j.eventID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return outcome{latency: time.Since(start), err: excerpt([]byte(clip(err.Error(), 1000)))}
	}
	defer resp.Body.Close()
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, maxExcerpt))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	o := outcome{status: resp.StatusCode, latency: time.Since(start), excerpt: excerpt(buf)}
	if resp.StatusCode == http.StatusTooManyRequests {
		o.retryAfter = retryAfter(resp.Header.Get("Retry-After"), d.s.db.Now())
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		o.err = "redirect not followed (to " + excerpt([]byte(clip(resp.Header.Get("Location"), 200))) + ")"
	}
	return o
}

// settleTx moves each delivery of batch on by its attempt's outcome:
// delivered, the try kept in the row (status, latency, response); back to
// pending after the schedule's delay, or the receiver's Retry-After when a
// 429 asks for longer; dead after the last try. A 410 disables the endpoint
// and leaves the delivery pending for when staff enable it again. One
// UPDATE for the batch (only rows still claimed: a delivery deleted with
// its endpoint meanwhile is skipped), then one INSERT of the failed tries'
// attempt rows.
func (d *Dispatcher) settleTx(ctx context.Context, tx *sqldb.Tx, batch []settled) error {
	now := tx.Now
	var q strings.Builder
	ph := func(b *strings.Builder, from, n int) { sqldb.Params(tx.Engine(), b, from, n) }
	q.WriteString(`UPDATE webhooks_deliveries SET status = v.column2, attempts = v.column3, next_at = v.column4,
		last_status = v.column5, last_error = v.column6, last_latency_us = v.column7, last_response = v.column8,
		updated_at = `)
	ph(&q, 1, 1)
	q.WriteString(` FROM (VALUES `)
	args := []any{sqldb.Micros(now)}
	for i, x := range batch {
		j, o := x.j, x.o
		attempt := j.attempts + 1
		status, attempts, next, lastErr, resp := "pending", attempt, now, o.err, ""
		if lastErr == "" && !o.ok() {
			lastErr = "HTTP " + strconv.Itoa(o.status)
		}
		switch {
		case o.ok():
			status, lastErr, resp = "delivered", "", o.excerpt
		case o.status == http.StatusGone:
			attempts = j.attempts
			if _, err := tx.ExecContext(ctx, `UPDATE webhooks_endpoints SET enabled = 0, disabled_reason = 'gone',
					updated_at = $2 WHERE id = $1 AND enabled = 1`, j.endpointID, sqldb.Micros(now)); err != nil {
				return err
			}
			d.s.log.Warn("webhooks: endpoint answered 410 Gone; disabled", "endpoint", j.endpointID)
		case attempt > len(d.s.cfg.Schedule):
			status = "dead"
		default:
			// A 429's Retry-After is honoured: never sooner than it asks.
			next = now.Add(max(d.jitter(d.s.cfg.Schedule[attempt-1]), o.retryAfter))
		}
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		q.WriteByte('(')
		for k, typ := range settleTypes {
			if k > 0 {
				q.WriteString(", ")
			}
			if i == 0 { // the first row types the columns (PostgreSQL takes parameters as text)
				q.WriteString("CAST(")
				ph(&q, n+k+1, 1)
				q.WriteString(" AS " + typ + ")")
			} else {
				ph(&q, n+k+1, 1)
			}
		}
		q.WriteByte(')')
		args = append(args, j.id, status, attempts, sqldb.Micros(next), o.status, lastErr, o.latency.Microseconds(), resp)
	}
	// Padded to a power of two with copies of the first row (a row joins
	// one of its identical copies): a handful of statement texts, kept by
	// the writer, instead of one per batch size crowding out the others'.
	first := args[1 : 1+len(settleTypes)]
	for n := len(batch); n&(n-1) != 0; n++ {
		q.WriteString(", (")
		ph(&q, len(args)+1, len(first))
		q.WriteByte(')')
		args = append(args, first...)
	}
	// "|| ''" leaves v no column to index: SQLite would otherwise scan the
	// table and probe an automatic index of v, instead of looking each row
	// of v up by primary key.
	q.WriteString(`) AS v WHERE webhooks_deliveries.id = v.column1 || '' AND webhooks_deliveries.status = 'delivering'
		RETURNING webhooks_deliveries.id`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return err
	}
	updated := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		updated[id] = true
	}
	if err := rows.Close(); err != nil {
		return err
	}
	// The failed tries' attempt rows (a successful one is in its delivery's row).
	var fails []any
	for _, x := range batch {
		if x.o.ok() || !updated[x.j.id] {
			continue
		}
		fails = append(fails, event.NewID(), x.j.id, x.j.endpointID, x.j.attempts+1, sqldb.Micros(now), x.o.status,
			x.o.latency.Microseconds(), x.o.excerpt, x.o.err)
	}
	if len(fails) == 0 {
		return nil
	}
	// In chunks of powers of two, for the same reason as above.
	for len(fails) > 0 {
		n := 1
		for 2*n*9 <= len(fails) {
			n *= 2
		}
		q.Reset()
		q.WriteString(`INSERT INTO webhooks_attempts (id, delivery_id, endpoint_id, attempt, attempted_at, status_code,
			latency_us, response, error) VALUES `)
		for i := range n {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteByte('(')
			ph(&q, 9*i+1, 9)
			q.WriteByte(')')
		}
		if _, err := tx.ExecContext(ctx, q.String(), fails[:9*n]...); err != nil {
			return err
		}
		fails = fails[9*n:]
	}
	return nil
}

// settleTypes are the types of the settle statement's VALUES columns: id,
// status, attempts, next_at, last_status, last_error, last_latency_us,
// last_response.
var settleTypes = []string{"TEXT", "TEXT", "INTEGER", "BIGINT", "INTEGER", "TEXT", "BIGINT", "TEXT"}

// jitter shortens or lengthens dur by up to Config.Jitter of it.
func (d *Dispatcher) jitter(dur time.Duration) time.Duration {
	f := 1 + d.s.cfg.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(dur) * f)
}

// maxRetryAfter caps how long a 429's Retry-After may hold a delivery.
const maxRetryAfter = 24 * time.Hour

// retryAfter parses a Retry-After value (seconds or an HTTP date) into a
// delay of at least a second and at most maxRetryAfter; 0 when absent or
// unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	return min(max(d, time.Second), maxRetryAfter)
}

// excerpt is the response text kept for staff: valid UTF-8 without NUL (what
// both engines store), at most maxExcerpt bytes.
func excerpt(b []byte) string {
	s := strings.ReplaceAll(strings.ToValidUTF8(string(b), ""), "\x00", "")
	return clip(s, maxExcerpt)
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

var errNotDead = errors.New("webhooks: the delivery is not dead")
