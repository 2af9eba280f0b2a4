package catalog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"mercato/internal/platform/errs"
)

// redisCache is the Cache replicas share: a Redis reached with a small
// RESP2 client over a pool of connections (GET, SET … PX, DEL). It is
// written on the standard library: the go-redis module needs modules this
// build does not carry.
type redisCache struct {
	addr     string
	user     string
	password string
	db       int
	prefix   string
	ttl      time.Duration

	mu     sync.Mutex
	idle   []*redisConn // guarded by mu
	closed bool         // guarded by mu
}

// maxIdleRedis bounds the idle connections a redisCache keeps.
const maxIdleRedis = 64

type redisConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

// NewRedisCache returns a cache in the Redis at rawURL
// (redis://[user:password@]host[:port][/db]), its keys prefixed with
// prefix, each kept at most ttl. close releases its connections.
func NewRedisCache(rawURL, prefix string, ttl time.Duration) (c Cache, close func() error, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "redis" || u.Host == "" {
		return nil, nil, errs.E("catalog.NewRedisCache", errs.Invalid, "the Redis URL must be redis://host[:port][/db]")
	}
	rc := &redisCache{addr: u.Host, prefix: prefix, ttl: ttl}
	if u.Port() == "" {
		rc.addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	if u.User != nil {
		rc.user = u.User.Username()
		rc.password, _ = u.User.Password()
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if rc.db, err = strconv.Atoi(p); err != nil || rc.db < 0 {
			return nil, nil, errs.E("catalog.NewRedisCache", errs.Invalid, "the Redis database must be a number")
		}
	}
	return rc, rc.close, nil
}

func (r *redisCache) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, c := range r.idle {
		c.c.Close()
	}
	r.idle = nil
	return nil
}

func (r *redisCache) Shared() bool { return true }

func (r *redisCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := r.do(ctx, "GET", r.prefix+key)
	if err != nil {
		return nil, false, err
	}
	if v == nil {
		return nil, false, nil
	}
	b, ok := v.([]byte)
	if !ok {
		return nil, false, errs.E("catalog.redis", errs.Unavailable, "unexpected reply to GET")
	}
	return b, true, nil
}

func (r *redisCache) Set(ctx context.Context, key string, value []byte) error {
	_, err := r.do(ctx, "SET", r.prefix+key, string(value), "PX", strconv.FormatInt(r.ttl.Milliseconds(), 10))
	return err
}

func (r *redisCache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	args := []string{"DEL"}
	for _, k := range keys {
		args = append(args, r.prefix+k)
	}
	_, err := r.do(ctx, args...)
	return err
}

// pttl is the remaining lifetime of key (tests).
func (r *redisCache) pttl(ctx context.Context, key string) (time.Duration, error) {
	v, err := r.do(ctx, "PTTL", r.prefix+key)
	if err != nil {
		return 0, err
	}
	n, _ := v.(int64)
	return time.Duration(n) * time.Millisecond, nil
}

// do sends one command and reads its reply: nil (a nil bulk string),
// []byte, string (a status), int64 or an error.
func (r *redisCache) do(ctx context.Context, args ...string) (any, error) {
	c, err := r.conn(ctx)
	if err != nil {
		return nil, errs.E("catalog.redis", errs.Unavailable, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.c.SetDeadline(dl)
	} else {
		c.c.SetDeadline(time.Now().Add(2 * time.Second))
	}
	v, err := c.roundTrip(args)
	var re redisError
	if err != nil && !errors.As(err, &re) {
		c.c.Close() // the stream may be out of step
		return nil, errs.E("catalog.redis", errs.Unavailable, err)
	}
	r.put(c)
	if err != nil {
		return nil, errs.E("catalog.redis", errs.Unavailable, err)
	}
	return v, nil
}

func (r *redisCache) conn(ctx context.Context) (*redisConn, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("redis cache closed")
	}
	if n := len(r.idle); n > 0 {
		c := r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return c, nil
	}
	r.mu.Unlock()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return nil, err
	}
	c := &redisConn{c: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	nc.SetDeadline(time.Now().Add(2 * time.Second))
	if r.password != "" {
		auth := []string{"AUTH", r.password}
		if r.user != "" {
			auth = []string{"AUTH", r.user, r.password}
		}
		if _, err := c.roundTrip(auth); err != nil {
			nc.Close()
			return nil, fmt.Errorf("redis auth: %w", err)
		}
	}
	if r.db != 0 {
		if _, err := c.roundTrip([]string{"SELECT", strconv.Itoa(r.db)}); err != nil {
			nc.Close()
			return nil, fmt.Errorf("redis select: %w", err)
		}
	}
	return c, nil
}

func (r *redisCache) put(c *redisConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.idle) >= maxIdleRedis {
		c.c.Close()
		return
	}
	r.idle = append(r.idle, c)
}

// redisError is an error reply (-ERR …): the connection stays usable.
type redisError string

func (e redisError) Error() string { return "redis: " + string(e) }

func (c *redisConn) roundTrip(args []string) (any, error) {
	fmt.Fprintf(c.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c.w, "$%d\r\n%s\r\n", len(a), a)
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	return c.reply()
}

// maxRedisValue bounds a bulk reply a cache read accepts.
const maxRedisValue = 16 << 20

func (c *redisConn) reply() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis: empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, redisError(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n > maxRedisValue {
			return nil, errors.New("redis: bad bulk length")
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, b); err != nil {
			return nil, err
		}
		return b[:n], nil
	}
	return nil, errors.New("redis: unexpected reply type")
}
