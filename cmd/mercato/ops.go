package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"mercato/internal/accounts"
	"mercato/internal/catalog/search"
	"mercato/internal/platform/errs"
)

// redisPing returns a readiness check that sends PING over RESP.
func redisPing(rawURL string) func(context.Context) error {
	return func(ctx context.Context) error {
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("redis: bad URL")
		}
		host := u.Host
		if !strings.Contains(host, ":") {
			host += ":6379"
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return err
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		} else {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
		}
		if pw, ok := u.User.Password(); ok {
			fmt.Fprintf(conn, "AUTH %s\r\n", pw)
			if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
				return fmt.Errorf("redis: auth failed")
			}
		}
		if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
			return err
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "+PONG") {
			return fmt.Errorf("redis: unexpected answer")
		}
		return nil
	}
}

// The demo logins --demo creates (a demo is for trying the shop locally).
var demoUsers = []struct{ email, password, name, role string }{
	{"admin@demo.mercato.test", "demo-admin-pass", "Demo Admin", "admin"},
	{"operator@demo.mercato.test", "demo-operator-pass", "Demo Operator", "operator"},
	{"support@demo.mercato.test", "demo-support-pass", "Demo Support", "customer_service"},
	{"shopper@demo.mercato.test", "demo-shopper-pass", "Demo Shopper", "customer"},
}

// seedDemo creates the demo users that do not exist yet and prints the logins.
func seedDemo(ctx context.Context, acc *accounts.Service, out io.Writer) error {
	for _, u := range demoUsers {
		if _, err := acc.CreateUser(ctx, u.email, u.password, u.name, []string{u.role}); err != nil && errs.CodeOf(err) != errs.CodeEmailTaken {
			return fmt.Errorf("demo user %s: %w", u.email, err)
		}
	}
	fmt.Fprintln(out, "demo logins (POST /api/v1/auth/login):")
	for _, u := range demoUsers {
		fmt.Fprintf(out, "  %-17s %-28s %s\n", u.role, u.email, u.password)
	}
	return nil
}

// demoStock is the units --demo puts in for each demo SKU.
const demoStock = 100

// seedDemoStock stocks every active product's SKUs that have no stock yet
// with demoStock units at the default location (a second start adds none),
// so that the demo shopper can check out.
func seedDemoStock(ctx context.Context, sh *shop) (int, error) {
	n := 0
	err := sh.catalog.Scan(ctx, 500, func(docs []search.Document) error {
		for _, d := range docs {
			for _, sku := range d.SKUs {
				if _, err := sh.inventory.Stock(ctx, sku); errs.KindOf(err) != errs.NotFound {
					if err != nil {
						return err
					}
					continue // stocked already
				}
				if _, err := sh.inventory.SetStock(ctx, sku, "", demoStock, ""); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}
