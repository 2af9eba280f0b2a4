package orders

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// Compliance is the region rules as the quote and checkout use them (the
// compliance module through an adapter). CheckTx decides a cart for an
// address: a product or category not sellable there is 422
// region_restricted, an amount over a per-order or per-year limit 422
// limit_exceeded, a missing identity a region requires 422
// identity_required, each naming the rule and the figures. CountTx, in
// the checkout's unit, decides the same and adds the order's amount to the
// customer's yearly counter with a conditional write (the limit holds under
// any concurrency); the counter is given back when the order is cancelled
// or expires (the compliance module's consumer). Both return the version of
// the rules checked.
type Compliance interface {
	CheckTx(ctx context.Context, tx *sqldb.Tx, c RegionCheck) (int64, error)
	CountTx(ctx context.Context, tx *sqldb.Tx, orderID string, c RegionCheck) (int64, error)
}

// RegionCheck is what the region rules decide on.
type RegionCheck struct {
	CustomerID      string // "" for a guest
	Country, Region string
	Currency        string
	Amount          int64 // the order's total, minor units
	Lines           []RegionLine
	IdentityGiven   bool
}

// RegionLine is one line as the rules see it.
type RegionLine struct {
	SKU, ProductID string
	CategoryIDs    []string
}

func regionCheck(c *cartRow, q Quote, addr *Address, identity bool) RegionCheck {
	rc := RegionCheck{CustomerID: c.customerID, Currency: q.Currency, Amount: q.Total.Amount(), IdentityGiven: identity}
	if addr != nil {
		rc.Country, rc.Region = addr.Country, addr.Region
	}
	for _, l := range q.Lines {
		rc.Lines = append(rc.Lines, RegionLine{SKU: l.SKU, ProductID: l.ProductID, CategoryIDs: l.CategoryIDs})
	}
	return rc
}

// Identity is a buyer's identity document, given at checkout where a
// region requires it (a real-name ID number for cross-border orders).
type Identity struct {
	Type   string `json:"type" maxlen:"20" doc:"national_id or passport."`
	Number string `json:"number" maxlen:"40" doc:"The document's number; stored masked (last 4) with a keyed hash."`
	Name   string `json:"name" maxlen:"200" doc:"The name on the document."`
}

// StoredIdentity is an identity as an order keeps it: never the number.
type StoredIdentity struct {
	Type   string `json:"type"`
	Masked string `json:"masked" doc:"The number's last 4 characters, the rest as *."`
	Name   string `json:"name"`
	Hash   string `json:"-"`
}

// validate adds in's problems to v: a national_id is 18 characters (17
// digits and a digit or X) with a valid ISO 7064 check character, a
// passport 5 to 20 letters and digits.
func (in Identity) validate(v *errs.Validation) {
	n := strings.ToUpper(strings.TrimSpace(in.Number))
	v.Check(strings.TrimSpace(in.Name) != "", "identity.name", "is required")
	switch in.Type {
	case "national_id":
		v.Check(validNationalID(n), "identity.number", "must be an 18-character national ID number with a valid check character")
	case "passport":
		ok := len(n) >= 5 && len(n) <= 20
		for _, r := range n {
			ok = ok && (r >= '0' && r <= '9' || r >= 'A' && r <= 'Z')
		}
		v.Check(ok, "identity.number", "must be 5 to 20 letters and digits")
	default:
		v.Add("identity.type", "must be national_id or passport")
	}
}

// validNationalID checks an 18-character ID number's ISO 7064 MOD 11-2
// check character.
func validNationalID(n string) bool {
	if len(n) != 18 {
		return false
	}
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 17; i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
		sum += int(n[i]-'0') * weights[i]
	}
	return n[17] == "10X98765432"[sum%11]
}

// stored masks in for keeping: the last 4 characters and an HMAC-SHA256
// of the normalised number under key.
func (in Identity) stored(key []byte) StoredIdentity {
	n := strings.ToUpper(strings.TrimSpace(in.Number))
	keep := 4
	if utf8.RuneCountInString(n) < keep {
		keep = len(n)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in.Type + "\x00" + n))
	return StoredIdentity{Type: in.Type, Name: strings.TrimSpace(in.Name),
		Masked: strings.Repeat("*", len(n)-keep) + n[len(n)-keep:], Hash: hex.EncodeToString(m.Sum(nil))}
}
