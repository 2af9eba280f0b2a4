package channels

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"mercato/internal/money"
	"mercato/internal/orders"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/web"
)

// CSV import limits.
const (
	MaxCSVBody = 2 << 20 // bytes
	MaxCSVRows = 10_000
)

// csvColumns are the CSV import's columns, in any order, all required in
// the header: one row per order line; rows of one external_id form one
// order (the first row's customer and address stand); unit_price is in
// minor units of currency.
var csvColumns = []string{"external_id", "sku", "quantity", "unit_price", "currency", "customer_email", "customer_name",
	"ship_name", "ship_line1", "ship_line2", "ship_city", "ship_region", "ship_postal_code", "ship_country"}

// CSVReport is what a CSV import did, order by order.
type CSVReport struct {
	Imported   int        `json:"imported" doc:"orders created"`
	Duplicates int        `json:"duplicates" doc:"orders imported before (nothing done)"`
	Failed     int        `json:"failed" doc:"orders refused (each listed in errors)"`
	Errors     []CSVError `json:"errors"`
}

// CSVError is one refused order: its first row and the problem.
type CSVError struct {
	Row        int    `json:"row" doc:"1-based, the header being row 1."`
	ExternalID string `json:"external_id"`
	Code       string `json:"code"`
	Message    string `json:"message"`
}

type csvOrder struct {
	row int
	in  ImportRequest
	bad string // a row problem found while reading
}

// ImportCSV imports channel code's orders from r (csvColumns), each order
// in a unit of its own through Import (once per external_id, as the API).
// A malformed file or header is 400 and imports nothing; a refused order
// is listed and the others go on.
func (s *Service) ImportCSV(ctx context.Context, code string, r io.Reader) (CSVReport, error) {
	const op = "channels.ImportCSV"
	var one int
	if err := s.db.Reader().QueryRowContext(ctx, `SELECT 1 FROM channels_channels WHERE code = $1`, code).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return CSVReport{}, errs.E(op, errs.NotFound, "no such channel")
	} else if err != nil {
		return CSVReport{}, errs.E(op, errs.Internal, err)
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	head, err := cr.Read()
	if err != nil {
		return CSVReport{}, errs.E(op, errs.Malformed, "the CSV file has no header row")
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(h)] = i
	}
	for _, c := range csvColumns {
		if _, ok := col[c]; !ok {
			return CSVReport{}, errs.E(op, errs.Malformed, "the CSV header lacks the column "+c,
				[]errs.FieldError{{Field: c, Message: "missing column"}})
		}
	}
	var list []*csvOrder
	byID := map[string]*csvOrder{}
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return CSVReport{}, errs.E(op, errs.Malformed, "the CSV file is malformed at row "+strconv.Itoa(row))
		}
		if row > MaxCSVRows+1 {
			return CSVReport{}, errs.E(op, errs.Invalid, errs.CodeValidation, "the request has invalid fields",
				[]errs.FieldError{{Field: "body", Message: "at most " + strconv.Itoa(MaxCSVRows) + " rows"}})
		}
		get := func(c string) string { return strings.TrimSpace(rec[col[c]]) }
		ext := get("external_id")
		o := byID[ext]
		if o == nil {
			o = &csvOrder{row: row, in: ImportRequest{ExternalID: ext,
				Customer: orders.ImportCustomer{Email: get("customer_email"), Name: get("customer_name")},
				ShippingAddress: &orders.Address{Name: get("ship_name"), Line1: get("ship_line1"), Line2: get("ship_line2"),
					City: get("ship_city"), Region: get("ship_region"), PostalCode: get("ship_postal_code"), Country: get("ship_country")}}}
			byID[ext] = o
			list = append(list, o)
		}
		qty, qerr := strconv.Atoi(get("quantity"))
		amount, perr := strconv.ParseInt(get("unit_price"), 10, 64)
		price, merr := money.New(amount, get("currency"))
		switch {
		case qerr != nil:
			o.bad = "row " + strconv.Itoa(row) + ": quantity must be a whole number"
		case perr != nil:
			o.bad = "row " + strconv.Itoa(row) + ": unit_price must be whole minor units"
		case merr != nil:
			o.bad = "row " + strconv.Itoa(row) + ": currency must be an ISO 4217 code"
		}
		o.in.Lines = append(o.in.Lines, orders.ImportLine{SKU: get("sku"), Quantity: qty, UnitPrice: price})
	}
	rep := CSVReport{Errors: []CSVError{}}
	for _, o := range list {
		if o.bad != "" {
			rep.Failed++
			rep.Errors = append(rep.Errors, CSVError{Row: o.row, ExternalID: o.in.ExternalID, Code: string(errs.CodeValidation), Message: o.bad})
			continue
		}
		im, err := s.Import(ctx, code, o.in)
		switch {
		case errs.Is(err, errs.Internal) || errs.Is(err, errs.Unavailable) || ctx.Err() != nil:
			return rep, err // not the file's fault: stop (what is imported stays, a re-send skips it)
		case err != nil:
			p := web.ProblemOf(err)
			msg := p.Detail
			if len(p.Errors) > 0 {
				msg += ": " + p.Errors[0].Field + " " + p.Errors[0].Message
			}
			rep.Failed++
			rep.Errors = append(rep.Errors, CSVError{Row: o.row, ExternalID: o.in.ExternalID, Code: p.Code, Message: msg})
		case im.Created:
			rep.Imported++
		default:
			rep.Duplicates++
		}
	}
	return rep, nil
}

func (s *Service) handleImportCSV(w http.ResponseWriter, r *http.Request) {
	body, err := web.Body(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	rep, err := s.ImportCSV(r.Context(), r.PathValue("code"), bytes.NewReader(body))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, rep)
}
