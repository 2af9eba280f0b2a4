package event

import (
	"fmt"
	"strings"
)

// Pattern selects event types for a subscription:
//
//	order.paid   one type
//	order.*      every type of one aggregate (order.placed, order.paid, …)
//	*.created    one verb of every aggregate (product.created, …)
//	*            every type (also written *.*)
//
// The zero Pattern matches nothing; make one with ParsePattern.
type Pattern struct{ noun, verb string }

// ParsePattern parses a pattern. Each of the two words is either "*" or a
// word of an event type (see CheckType).
func ParsePattern(s string) (Pattern, error) {
	if s == "*" {
		return Pattern{"*", "*"}, nil
	}
	noun, verb, ok := strings.Cut(s, ".")
	if ok && (noun == "*" || isWord(noun)) && (verb == "*" || isWord(verb)) {
		return Pattern{noun, verb}, nil
	}
	return Pattern{}, fmt.Errorf("event pattern %q is not noun.verb, noun.*, *.verb or *", s)
}

// String is the pattern's canonical text ("*" for everything).
func (p Pattern) String() string {
	if p.noun == "*" && p.verb == "*" {
		return "*"
	}
	return p.noun + "." + p.verb
}

// Match reports whether event type typ is selected by p.
func (p Pattern) Match(typ string) bool {
	if p.noun == "" {
		return false
	}
	noun, verb, ok := strings.Cut(typ, ".")
	return ok && (p.noun == "*" || p.noun == noun) && (p.verb == "*" || p.verb == verb)
}

// Noun is the aggregate noun p is limited to, or "*" when it spans every
// aggregate.
func (p Pattern) Noun() string { return p.noun }

// Subject is the bus subject filter selecting exactly p's events
// (mercato.order.*, mercato.*.created, mercato.*.*).
func (p Pattern) Subject() string { return SubjectPrefix + p.noun + "." + p.verb }
