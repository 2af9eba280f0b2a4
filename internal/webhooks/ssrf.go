package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Resolver resolves a host name to its addresses (net.Resolver has this
// method; tests give a fake one).
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

type netResolver struct{}

func (netResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return net.DefaultResolver.LookupIPAddr(ctx, host)
}

// ErrPrivateAddress is the refusal of an address that is not public.
var ErrPrivateAddress = errors.New("webhooks: the address is loopback, private, link-local or otherwise not public")

// Guard refuses webhook URLs and connections to non-public addresses unless
// AllowPrivate is set. It checks at registration (CheckURL) and at dial time
// (DialContext): the host is resolved by Resolver, every address checked,
// and only a checked address dialled, with the dialer's Control checking the
// connected address once more — so a DNS answer that changed since
// registration is caught.
type Guard struct {
	AllowPrivate bool
	Resolver     Resolver
}

// blocked are the non-public ranges netip's predicates do not name.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// Public reports whether ip is a public unicast address: not loopback,
// private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local
// (169.254/16, fe80::/10), unspecified, multicast or reserved. An
// IPv4-mapped IPv6 address is judged as its IPv4 address.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

func (g *Guard) allowed(ip netip.Addr) bool { return g.AllowPrivate || Public(ip) }

// CheckURL parses raw and refuses what may not be a webhook URL: not http
// or https, no host, user information, a fragment, or a host that does not
// resolve or resolves to any address that is not public. It sends nothing.
func (g *Guard) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("is not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, errors.New("must be an http or https URL")
	case u.Hostname() == "":
		return nil, errors.New("must name a host")
	case u.User != nil:
		return nil, errors.New("must not carry user information")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, errors.New("must not carry a fragment")
	}
	if _, err := g.resolve(ctx, u.Hostname()); err != nil {
		return nil, err
	}
	return u, nil
}

// resolve returns host's addresses, all allowed, or an error.
func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if !g.allowed(ip) {
			return nil, ErrPrivateAddress
		}
		return []netip.Addr{ip}, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	as, err := g.Resolver.LookupIPAddr(rctx, host)
	if err != nil || len(as) == 0 {
		return nil, errors.New("host does not resolve")
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !g.allowed(ip) {
			// One private answer refuses the host: a later dial might pick it.
			return nil, ErrPrivateAddress
		}
		out = append(out, ip)
	}
	return out, nil
}

// DialContext dials addr ("host:port") after resolving the host and
// checking every address; the net.Dialer's Control checks the address
// actually connected to.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := g.resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", host, err)
	}
	d := net.Dialer{Timeout: 10 * time.Second, Control: g.control}
	var errList []error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errList = append(errList, err)
	}
	return nil, errors.Join(errList...)
}

// control refuses a connection to a non-public address (the last line of
// the guard: whatever resolved, this is where the socket goes).
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	if !g.allowed(ap.Addr()) {
		return fmt.Errorf("dial %s: %w", address, ErrPrivateAddress)
	}
	return nil
}

type netIPAddr = net.IPAddr

// publicIP is a public address (TEST-NET is blocked, so one of a public DNS
// service): what noResolve answers for syntax-only checks.
var publicIP = net.IPv4(8, 8, 8, 8)
