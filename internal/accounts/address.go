package accounts

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
)

// maxAddresses bounds one customer's address book.
const maxAddresses = 50

// Address is an entry of a customer's address book; its fields are those of
// API.md's shipping_address. Exactly one address of a non-empty book is the
// default.
type Address struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Line1      string    `json:"line1"`
	Line2      string    `json:"line2,omitempty"`
	City       string    `json:"city"`
	Region     string    `json:"region"`
	PostalCode string    `json:"postal_code"`
	Country    string    `json:"country"` // ISO 3166-1 alpha-2, upper-case
	Phone      string    `json:"phone,omitempty"`
	IsDefault  bool      `json:"is_default"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// AddressRequest is the body of POST /api/v1/me/addresses.
type AddressRequest struct {
	Name       string `json:"name" maxlen:"200"`
	Line1      string `json:"line1" maxlen:"200"`
	Line2      string `json:"line2,omitempty" maxlen:"200"`
	City       string `json:"city" maxlen:"100"`
	Region     string `json:"region" maxlen:"100"`
	PostalCode string `json:"postal_code" maxlen:"20"`
	Country    string `json:"country" maxlen:"2"`
	Phone      string `json:"phone,omitempty" maxlen:"32"`
	IsDefault  bool   `json:"is_default,omitempty"`
}

// AddressPatch is the body of PATCH /api/v1/me/addresses/{id}: absent
// fields stay as they are. is_default true makes the address the default;
// false is refused on the default (make another one the default instead).
type AddressPatch struct {
	Name       *string `json:"name,omitempty" maxlen:"200"`
	Line1      *string `json:"line1,omitempty" maxlen:"200"`
	Line2      *string `json:"line2,omitempty" maxlen:"200"`
	City       *string `json:"city,omitempty" maxlen:"100"`
	Region     *string `json:"region,omitempty" maxlen:"100"`
	PostalCode *string `json:"postal_code,omitempty" maxlen:"20"`
	Country    *string `json:"country,omitempty" maxlen:"2"`
	Phone      *string `json:"phone,omitempty" maxlen:"32"`
	IsDefault  *bool   `json:"is_default,omitempty"`
}

// addressCaps are the address fields' maximum lengths, in characters.
var addressCaps = map[string]int{"name": 200, "line1": 200, "line2": 200, "city": 100, "region": 100,
	"postal_code": 20, "country": 2, "phone": 32}

// check normalises a (every text field NFC and trimmed, the country upper
// case) and records every problem with it: see textField (control and
// invisible characters refused, lengths capped).
func (a *Address) check(v *errs.Validation) {
	for _, f := range []struct {
		field    string
		p        *string
		required bool
	}{{"name", &a.Name, true}, {"line1", &a.Line1, true}, {"line2", &a.Line2, false}, {"city", &a.City, true},
		{"region", &a.Region, true}, {"postal_code", &a.PostalCode, true}} {
		*f.p = textField(v, f.field, *f.p, f.required, addressCaps[f.field])
	}
	a.Phone, a.Country = strings.TrimSpace(a.Phone), strings.ToUpper(strings.TrimSpace(a.Country))
	v.Check(isCountry(a.Country), "country", "must be an ISO 3166-1 alpha-2 code, e.g. DE or CN")
	v.Check(len(a.Phone) <= addressCaps["phone"] && validPhone(a.Phone), "phone",
		"must be a phone number (digits, spaces, ()-. and a leading +), at most 32 characters")
}

// precheckAddress refuses (422) an address request whose fields exceed
// their caps, before any other work; set holds the fields sent.
func precheckAddress(set map[string]*string) error {
	var v errs.Validation
	for field, p := range set {
		if p != nil && len(*p) > 4*addressCaps[field] {
			v.Add(field, "must be at most "+strconv.Itoa(addressCaps[field])+" characters")
		}
	}
	return v.Err("accounts.address")
}

func (in AddressRequest) fields() map[string]*string {
	return map[string]*string{"name": &in.Name, "line1": &in.Line1, "line2": &in.Line2, "city": &in.City,
		"region": &in.Region, "postal_code": &in.PostalCode, "country": &in.Country, "phone": &in.Phone}
}

func (p AddressPatch) fields() map[string]*string {
	return map[string]*string{"name": p.Name, "line1": p.Line1, "line2": p.Line2, "city": p.City,
		"region": p.Region, "postal_code": p.PostalCode, "country": p.Country, "phone": p.Phone}
}

func validPhone(p string) bool {
	if p == "" {
		return true
	}
	digits := 0
	for i, r := range p {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')', r == '.':
		default:
			return false
		}
	}
	return digits >= 4 && digits <= 20
}

const addressColumns = `id, name, line1, line2, city, region, postal_code, country, phone, is_default, created_at, updated_at`

func scanAddress(sc scanner) (Address, error) {
	var a Address
	var def int
	var created, updated int64
	err := sc.Scan(&a.ID, &a.Name, &a.Line1, &a.Line2, &a.City, &a.Region, &a.PostalCode, &a.Country, &a.Phone,
		&def, &created, &updated)
	a.IsDefault, a.CreatedAt, a.UpdatedAt = def != 0, sqldb.FromMicros(created), sqldb.FromMicros(updated)
	return a, err
}

// listAddresses returns userID's addresses, the default first, then newest first.
func listAddresses(ctx context.Context, q querier, userID string) ([]Address, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+addressColumns+` FROM accounts_addresses
		WHERE user_id = $1 ORDER BY is_default DESC, id DESC`, userID)
	if err != nil {
		return nil, errs.E("accounts.listAddresses", errs.Internal, err)
	}
	defer rows.Close()
	out := []Address{}
	for rows.Next() {
		a, err := scanAddress(rows)
		if err != nil {
			return nil, errs.E("accounts.listAddresses", errs.Internal, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, errs.E("accounts.listAddresses", errs.Internal, err)
	}
	return out, nil
}

var errAddressNotFound = errs.E("accounts", errs.NotFound, "the address does not exist")

// addressOf loads address id of userID; NotFound for another's address.
func addressOf(ctx context.Context, q querier, userID, id string) (Address, error) {
	a, err := scanAddress(q.QueryRowContext(ctx, `SELECT `+addressColumns+` FROM accounts_addresses
		WHERE id = $1 AND user_id = $2`, id, userID))
	if isNoRows(err) {
		return Address{}, errAddressNotFound
	}
	if err != nil {
		return Address{}, errs.E("accounts.address", errs.Internal, err)
	}
	return a, nil
}

// lockBook serialises the changes of userID's address book: the count cap
// and the one default are decided by reading the book, so two units that
// change one book must not read it at once. On PostgreSQL it locks the
// user's row until tx ends (lock order: the user row, then its addresses);
// SQLite's one writer serialises every unit already.
func lockBook(ctx context.Context, tx *sqldb.Tx, userID string) error {
	if tx.Engine() != sqldb.Postgres {
		return nil
	}
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts_users WHERE id = $1 FOR UPDATE`, userID).Scan(&one)
	if isNoRows(err) {
		return errUserNotFound
	}
	if err != nil {
		return errs.E("accounts.lockBook", errs.Internal, err)
	}
	return nil
}

// makeDefault makes address id userID's only default, in tx.
func makeDefault(ctx context.Context, tx *sqldb.Tx, userID, id string) error {
	const op = "accounts.makeDefault"
	if _, err := exec(ctx, tx, op, `UPDATE accounts_addresses SET is_default = 0 WHERE user_id = $1 AND is_default = 1 AND id <> $2`, userID, id); err != nil {
		return err
	}
	_, err := exec(ctx, tx, op, `UPDATE accounts_addresses SET is_default = 1 WHERE id = $1 AND user_id = $2`, id, userID)
	return err
}

// addAddress adds an address to userID's book; the first address, or one
// with IsDefault, becomes the default. Invalid for bad fields or a full book.
func (s *Service) addAddress(ctx context.Context, tx *sqldb.Tx, userID string, in AddressRequest) (Address, error) {
	const op = "accounts.addAddress"
	a := Address{ID: newID(), Name: in.Name, Line1: in.Line1, Line2: in.Line2, City: in.City, Region: in.Region,
		PostalCode: in.PostalCode, Country: in.Country, Phone: in.Phone, CreatedAt: tx.Now, UpdatedAt: tx.Now}
	var v errs.Validation
	a.check(&v)
	if err := v.Err(op); err != nil {
		return Address{}, err
	}
	if err := lockBook(ctx, tx, userID); err != nil {
		return Address{}, err
	}
	// One statement counts the book and inserts unless it is full: the
	// first address is the default at once. (On PostgreSQL the count's
	// snapshot is taken after lockBook's lock, so it sees every committed
	// change of the book.)
	var first int
	err := tx.QueryRowContext(ctx, `INSERT INTO accounts_addresses (`+addressColumns+`, user_id)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN n = 0 THEN 1 ELSE 0 END, $10, $10, $11
		FROM (SELECT count(*) AS n FROM accounts_addresses WHERE user_id = $11) book WHERE n < $12
		RETURNING is_default`,
		a.ID, a.Name, a.Line1, a.Line2, a.City, a.Region, a.PostalCode, a.Country, a.Phone,
		sqldb.Micros(tx.Now), userID, maxAddresses).Scan(&first)
	if isNoRows(err) {
		return Address{}, errs.E(op, errs.Invalid, errs.CodeLimitExceeded, "the address book is full (50 addresses)")
	}
	if err != nil {
		return Address{}, errs.E(op, errs.Internal, err)
	}
	if in.IsDefault {
		if err := makeDefault(ctx, tx, userID, a.ID); err != nil {
			return Address{}, err
		}
	}
	a.IsDefault = first == 1 || in.IsDefault
	return a, nil
}

// updateAddress applies p to userID's address id. NotFound for another's.
func (s *Service) updateAddress(ctx context.Context, tx *sqldb.Tx, userID, id string, p AddressPatch) (Address, error) {
	const op = "accounts.updateAddress"
	if err := lockBook(ctx, tx, userID); err != nil {
		return Address{}, err
	}
	a, err := addressOf(ctx, tx, userID, id)
	if err != nil {
		return Address{}, err
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&a.Name, p.Name)
	set(&a.Line1, p.Line1)
	set(&a.Line2, p.Line2)
	set(&a.City, p.City)
	set(&a.Region, p.Region)
	set(&a.PostalCode, p.PostalCode)
	set(&a.Country, p.Country)
	set(&a.Phone, p.Phone)
	var v errs.Validation
	a.check(&v)
	v.Check(p.IsDefault == nil || *p.IsDefault || !a.IsDefault, "is_default", "make another address the default instead")
	if err := v.Err(op); err != nil {
		return Address{}, err
	}
	a.UpdatedAt = tx.Now
	if _, err := exec(ctx, tx, op, `UPDATE accounts_addresses SET name = $1, line1 = $2, line2 = $3, city = $4,
		region = $5, postal_code = $6, country = $7, phone = $8, updated_at = $9 WHERE id = $10 AND user_id = $11`,
		a.Name, a.Line1, a.Line2, a.City, a.Region, a.PostalCode, a.Country, a.Phone, sqldb.Micros(tx.Now), id, userID); err != nil {
		return Address{}, err
	}
	if p.IsDefault != nil && *p.IsDefault && !a.IsDefault {
		if err := makeDefault(ctx, tx, userID, id); err != nil {
			return Address{}, err
		}
		a.IsDefault = true
	}
	return a, nil
}

// deleteAddress removes userID's address id; when it was the default, the
// newest remaining address becomes the default. NotFound for another's.
func (s *Service) deleteAddress(ctx context.Context, tx *sqldb.Tx, userID, id string) error {
	const op = "accounts.deleteAddress"
	if err := lockBook(ctx, tx, userID); err != nil {
		return err
	}
	a, err := addressOf(ctx, tx, userID, id)
	if err != nil {
		return err
	}
	if _, err := exec(ctx, tx, op, `DELETE FROM accounts_addresses WHERE id = $1 AND user_id = $2`, id, userID); err != nil {
		return err
	}
	if !a.IsDefault {
		return nil
	}
	var next string
	err = tx.QueryRowContext(ctx, `SELECT id FROM accounts_addresses WHERE user_id = $1 ORDER BY id DESC LIMIT 1`, userID).Scan(&next)
	if isNoRows(err) {
		return nil
	}
	if err != nil {
		return errs.E(op, errs.Internal, err)
	}
	return makeDefault(ctx, tx, userID, next)
}

// isoCountries holds the 249 officially assigned ISO 3166-1 alpha-2 codes.
const isoCountries = `
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO
JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR
MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO
RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV
TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW`

var countries = sync.OnceValue(func() []string { return strings.Fields(isoCountries) })

// isCountry reports whether c (upper-case) is an assigned alpha-2 code.
func isCountry(c string) bool {
	_, ok := slices.BinarySearch(countries(), c)
	return ok
}
