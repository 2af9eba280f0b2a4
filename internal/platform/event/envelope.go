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
