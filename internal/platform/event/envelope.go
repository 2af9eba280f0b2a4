// Package event is the envelope every domain event travels in (API.md
// "Event stream"), its time-sortable ids, its bus subject, typed event kinds
// and subscription patterns. It holds no shop vocabulary: each module defines
// its own kinds and payload structs (accounts.CustomerRegistered, …) with
// Define, and lists their TypeInfo for the events catalogue (Markdown).
//
// An event type is "noun.verb", past tense (order.placed): the noun names the
// aggregate the event is about, so AggregateType always equals the noun (the
// outbox refuses an event where it does not). Its bus subject is
// "mercato.<type>" (mercato.order.placed).
//
// An event is created by the module whose state changed, appended to the
// outbox in the same transaction as the change (package outbox), relayed to
// the bus, and applied by consumers at most once each (package inbox).
package event

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Envelope is one domain event as stored, published and delivered.
// Sequence increases by one per aggregate, starting at 1, so that receivers
// can order and de-duplicate. SchemaVersion is the version of Data's shape
// for Type (Define's version); it changes when the payload changes
// incompatibly.
type Envelope struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Sequence      int64           `json:"sequence"`
	OccurredAt    time.Time       `json:"occurred_at"`
	Data          json.RawMessage `json:"data"`
}

// SubjectPrefix is the prefix of every event subject on the bus.
const SubjectPrefix = "mercato."

// Subject is the bus subject of e: SubjectPrefix + e.Type.
func (e Envelope) Subject() string { return Subject(e.Type) }

// Subject returns the bus subject of an event type: mercato.<type>.
func Subject(typ string) string { return SubjectPrefix + typ }

// NewID returns a new event id: a UUIDv7, so ids sort by creation time.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Noun returns the aggregate noun of an event type ("order" for
// "order.placed"), or "" when typ is not a valid type.
func Noun(typ string) string {
	if CheckType(typ) != nil {
		return ""
	}
	noun, _, _ := strings.Cut(typ, ".")
	return noun
}

// CheckType reports whether typ is a valid event type: two words joined by a
// dot, each a lower-case letter followed by lower-case letters, digits or
// underscores (inventory.low_stock).
func CheckType(typ string) error {
	noun, verb, ok := strings.Cut(typ, ".")
	if !ok || !isWord(noun) || !isWord(verb) {
		return fmt.Errorf("event type %q is not noun.verb in lower case", typ)
	}
	return nil
}

// isWord reports whether s is [a-z][a-z0-9_]*.
func isWord(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

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
