package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// send makes one attempt at j by its endpoint's kind: a webhook POSTs the
// envelope (post), a connector maps it first (sendConnector).
func (d *Dispatcher) send(ctx context.Context, j job) outcome {
	kind, err := d.s.conns.kindOf(ctx, d.s, j.endpointID)
	if err != nil {
		return outcome{err: "endpoint: " + clip(err.Error(), 500)}
	}
	if kind == KindWebhook {
		return d.post(ctx, j)
	}
	return d.sendConnector(ctx, j)
}

// sendConnector delivers j through its connector: an http_json POST of the
// mapped body, or a durable append of the mapped row to a file_drop file.
func (d *Dispatcher) sendConnector(ctx context.Context, j job) outcome {
	t, err := d.s.conns.get(ctx, d.s, j.endpointID)
	if err != nil {
		return outcome{err: "connector: " + clip(err.Error(), 500)}
	}
	env, err := decodeEnvelope(j.envelope)
	if err != nil {
		return outcome{err: err.Error()}
	}
	switch t.kind {
	case KindHTTPJSON:
		body, err := t.mapping.JSON(env)
		if err != nil {
			return outcome{err: "mapping: " + clip(err.Error(), 500)}
		}
		return d.postBody(ctx, j, body, t.headers)
	case KindFileDrop:
		row, err := dropRow(t.format, j.eventID, t.mapping, env)
		if err != nil {
			return outcome{err: "mapping: " + clip(err.Error(), 500)}
		}
		start := time.Now()
		file, err := t.drop.Append(row)
		if err != nil {
			return outcome{latency: time.Since(start), err: "file: " + clip(err.Error(), 500)}
		}
		return outcome{done: true, latency: time.Since(start), excerpt: "appended to " + file}
	}
	return outcome{err: "unknown connector kind " + t.kind}
}

// connTransport is a connector's parsed settings, as of its stored ones.
type connTransport struct {
	stored  string // url, config and sealed headers it was built from
	kind    string
	mapping *mapping
	headers http.Header // http_json's static headers
	format  string      // file_drop's
	drop    *dropWriter // file_drop's writer
}

// connCache keeps each endpoint's kind (fixed at registration) and each
// connector's transport, rebuilt when the connector changes. Safe for
// concurrent use.
type connCache struct {
	mu    sync.Mutex // guards the maps
	kinds map[string]string
	ts    map[string]*connTransport
}

func newConnCache() *connCache {
	return &connCache{kinds: map[string]string{}, ts: map[string]*connTransport{}}
}

// kindOf is endpoint id's kind.
func (c *connCache) kindOf(ctx context.Context, s *Service, id string) (string, error) {
	c.mu.Lock()
	k, ok := c.kinds[id]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT kind FROM webhooks_endpoints WHERE id = $1`, id).Scan(&k); err != nil {
		return "", err
	}
	c.mu.Lock()
	c.kinds[id] = k
	c.mu.Unlock()
	return k, nil
}

// get returns connector id's transport, (re)building it when the
// connector's settings changed since it was built. A file_drop writer whose settings changed
// closes its file first, so that one file has one format.
func (c *connCache) get(ctx context.Context, s *Service, id string) (*connTransport, error) {
	var kind, url, config, sealed string
	err := s.db.Reader().QueryRowContext(ctx, `SELECT kind, url, config, headers_sealed
		FROM webhooks_endpoints WHERE id = $1`, id).Scan(&kind, &url, &config, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errors.New("deleted")
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	stored := url + "\x00" + config + "\x00" + sealed
	old := c.ts[id]
	if old != nil && old.stored == stored {
		return old, nil
	}
	var cfg connectorConfig
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	t := &connTransport{stored: stored, kind: kind, format: cfg.Format}
	// Checked at registration; at run time every data field is accepted, so
	// that a payload change never strands deliveries.
	if t.mapping, err = parseMapping(cfg.Template, kind == KindFileDrop && cfg.Format == FormatCSV, nil); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	switch kind {
	case KindHTTPJSON:
		h, err := s.openHeaders(id, sealed)
		if err != nil {
			return nil, fmt.Errorf("headers: %w", err)
		}
		t.headers = http.Header{}
		for k, v := range h {
			t.headers.Set(k, v)
		}
	case KindFileDrop:
		age := time.Duration(cfg.RotateSeconds) * time.Second
		if old != nil && old.drop != nil {
			// One writer per connector, so that two never share a file.
			if err := old.drop.reconfigure(cfg.Format, t.mapping.Columns(), cfg.RotateBytes, age); err != nil {
				return nil, fmt.Errorf("close the previous file: %w", err)
			}
			t.drop = old.drop
		} else {
			t.drop = newDropWriter(s.cfg.ConnectorDir, url[len("file:"):], cfg.Format, t.mapping.Columns(), cfg.RotateBytes, age, s.db.Now)
		}
	}
	c.ts[id] = t
	return t, nil
}

// forget drops a deleted connector, closing its file.
func (c *connCache) forget(id string) {
	c.mu.Lock()
	t := c.ts[id]
	delete(c.ts, id)
	delete(c.kinds, id)
	c.mu.Unlock()
	if t != nil && t.drop != nil {
		t.drop.Close()
	}
}

func (c *connCache) drops() []*dropWriter {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*dropWriter
	for _, t := range c.ts {
		if t.drop != nil {
			out = append(out, t.drop)
		}
	}
	return out
}

// RotateFiles closes the file_drop files of this process that are due by
// age (the webhooks.filedrop job; appends rotate too) and reports how many.
func (s *Service) RotateFiles(ctx context.Context) (int64, error) {
	var n int64
	var errs []error
	for _, w := range s.conns.drops() {
		closed, err := w.Rotate()
		if closed {
			n++
		}
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// CloseFiles closes every open file_drop file under its final name (at a
// clean stop; a crash leaves the temporary file, recovered on the next
// write).
func (s *Service) CloseFiles() error {
	var errs []error
	for _, w := range s.conns.drops() {
		errs = append(errs, w.Close())
	}
	return errors.Join(errs...)
}
