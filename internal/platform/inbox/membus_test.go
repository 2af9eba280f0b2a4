package inbox

import (
	"context"
	"strings"
	"sync"
	"time"

	"mercato/internal/platform/bus"
)

// memBus is a stand-in bus used until natsbus exists.
type memBus struct {
	mu     sync.Mutex
	log    []bus.Message
	seen   map[string]bool
	cons   map[string]*memCons
	notify chan struct{}
}

type memCons struct {
	subjects []string
	cursor   int
	unacked  map[int]bool
	redo     map[int]time.Time
	count    map[int]int
}

func newMemBus() *memBus {
	return &memBus{seen: map[string]bool{}, cons: map[string]*memCons{}, notify: make(chan struct{})}
}

func (b *memBus) Publish(ctx context.Context, msgs []bus.Message) error {
	b.mu.Lock()
	for _, m := range msgs {
		if !b.seen[m.ID] {
			b.seen[m.ID] = true
			b.log = append(b.log, m)
		}
	}
	close(b.notify)
	b.notify = make(chan struct{})
	b.mu.Unlock()
	return nil
}

func (c *memCons) match(s string) bool {
	for _, f := range c.subjects {
		if strings.HasPrefix(s, strings.TrimSuffix(f, ">")) {
			return true
		}
	}
	return false
}

type memDelivery struct {
	b   *memBus
	c   *memCons
	i   int
	n   int
	msg bus.Message
}

func (d *memDelivery) Message() bus.Message { return d.msg }
func (d *memDelivery) Attempt() int         { return d.n }
func (d *memDelivery) Ack() error {
	d.b.mu.Lock()
	delete(d.c.unacked, d.i)
	d.b.mu.Unlock()
	return nil
}
func (d *memDelivery) Nak(delay time.Duration) error {
	d.b.mu.Lock()
	d.c.redo[d.i] = time.Now().Add(delay)
	d.b.mu.Unlock()
	return nil
}

func (b *memBus) Consume(ctx context.Context, cfg bus.ConsumerConfig, batch int, fn func(context.Context, []bus.Delivery)) error {
	b.mu.Lock()
	c := b.cons[cfg.Durable]
	if c == nil {
		c = &memCons{subjects: cfg.Subjects, unacked: map[int]bool{}, redo: map[int]time.Time{}, count: map[int]int{}}
		b.cons[cfg.Durable] = c
	}
	b.mu.Unlock()
	for {
		b.mu.Lock()
		var ds []bus.Delivery
		now := time.Now()
		next := now.Add(time.Second)
		for i, at := range c.redo {
			if len(ds) >= batch {
				break
			}
			if !at.After(now) {
				delete(c.redo, i)
				c.count[i]++
				ds = append(ds, &memDelivery{b, c, i, c.count[i], b.log[i]})
			} else if at.Before(next) {
				next = at
			}
		}
		for len(ds) < batch && c.cursor < len(b.log) {
			i := c.cursor
			c.cursor++
			if !c.match(b.log[i].Subject) {
				continue
			}
			c.unacked[i] = true
			c.count[i]++
			ds = append(ds, &memDelivery{b, c, i, c.count[i], b.log[i]})
		}
		wake := b.notify
		b.mu.Unlock()
		if len(ds) > 0 {
			fn(ctx, ds)
			continue
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (b *memBus) Pending(ctx context.Context, durable string) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.cons[durable]
	if c == nil {
		return 0, nil
	}
	n := int64(len(c.unacked))
	for i := c.cursor; i < len(b.log); i++ {
		if c.match(b.log[i].Subject) {
			n++
		}
	}
	return n, nil
}
