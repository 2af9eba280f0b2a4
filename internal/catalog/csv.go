package catalog

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// The CSV import and export. One row per variant; the rows of one product
// share its handle (the export writes the product id) and its product
// columns are read from its first row. The columns, in the export's order:
//
//	handle, title, description, status, category_ids, tax_class, channels,
//	media, sku, variant_title, price_amount, currency, compare_at_amount,
//	weight_grams, attributes
//
// Lists are separated by "|" (category_ids, channels, media URLs);
// attributes are "name=value" pairs separated by "|". Required: handle,
// title, sku, price_amount, currency. A product whose handle is the id of a
// product, or one of whose SKUs a product has, updates that product (its
// variants upserted by SKU, the others kept); any other is created. Each
// product is one unit: all its rows commit, or none and each failure is
// reported with its row (1 is the header) and column. Importing the same
// file again changes nothing.
var csvColumns = []string{"handle", "title", "description", "status", "category_ids", "tax_class", "channels", "media",
	"sku", "variant_title", "price_amount", "currency", "compare_at_amount", "weight_grams", "attributes"}

var csvRequired = []string{"handle", "title", "sku", "price_amount", "currency"}

// MaxImportBody bounds a CSV import's body; MaxImportRows its rows.
const (
	MaxImportBody = 8 << 20
	MaxImportRows = 50_000
)

// ImportReport is the answer of a CSV import.
type ImportReport struct {
	Imported  int           `json:"imported" doc:"products created"`
	Updated   int           `json:"updated" doc:"products changed"`
	Unchanged int           `json:"unchanged" doc:"products the file holds as they are"`
	Failed    int           `json:"failed" doc:"products refused (each of their errors is listed)"`
	Errors    []ImportError `json:"errors"`
}

// ImportError is one refused row.
type ImportError struct {
	Row     int    `json:"row"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// csvGroup is the rows of one product.
type csvGroup struct {
	handle string
	rows   []int // row numbers (1 is the header)
	in     ProductInput
	bad    []ImportError
}

// ImportCSV imports r (see csvColumns). A header that lacks a required
// column or names an unknown one, or a file that is not CSV, is 422.
func (s *Service) ImportCSV(ctx context.Context, r io.Reader) (ImportReport, error) {
	const op = "catalog.ImportCSV"
	body, err := io.ReadAll(r)
	if err != nil {
		return ImportReport{}, errs.E(op, errs.Malformed, "the body could not be read", err)
	}
	// No store keeps NUL or invalid UTF-8: refused before any row is read.
	if !utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0 {
		return ImportReport{}, csvInvalid("body", "must be UTF-8 text without NUL characters")
	}
	cr := csv.NewReader(bytes.NewReader(body))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if len(header) > len(csvColumns) {
		return ImportReport{}, csvInvalid("header", "holds more columns than the import reads")
	}
	if err != nil {
		return ImportReport{}, csvInvalid("header", "the body is not CSV with a header row")
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))
		if !slices.Contains(csvColumns, h) {
			return ImportReport{}, csvInvalid("header", "unknown column "+strconv.Quote(clip(h)))
		}
		col[h] = i
	}
	for _, c := range csvRequired {
		if _, ok := col[c]; !ok {
			return ImportReport{}, csvInvalid("header", "the column "+c+" is required")
		}
	}
	var groups []*csvGroup
	byHandle := map[string]*csvGroup{}
	rep := ImportReport{Errors: []ImportError{}}
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line := row
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			return ImportReport{}, csvInvalid("row "+strconv.Itoa(line), "is not valid CSV")
		}
		if row-1 > MaxImportRows {
			return ImportReport{}, csvInvalid("body", "holds more than "+strconv.Itoa(MaxImportRows)+" rows")
		}
		get := func(c string) string {
			if i, ok := col[c]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		h := get("handle")
		g := byHandle[h]
		if g == nil {
			g = &csvGroup{handle: h}
			byHandle[h] = g
			groups = append(groups, g)
			g.in = ProductInput{Title: get("title"), Description: strings.ReplaceAll(get("description"), `\n`, "\n"),
				Status: get("status"), CategoryIDs: splitList(get("category_ids")), TaxClass: get("tax_class")}
			if c := get("channels"); c != "" {
				g.in.Channels = splitList(c)
			}
			for _, u := range splitList(get("media")) {
				g.in.Media = append(g.in.Media, Media{URL: u})
			}
			if h == "" || len(h) > 64 {
				g.bad = append(g.bad, ImportError{Row: row, Field: "handle", Message: "is required, at most 64 characters"})
			}
		}
		g.rows = append(g.rows, row)
		v, bad := parseVariant(row, get)
		g.in.Variants = append(g.in.Variants, v)
		g.bad = append(g.bad, bad...)
	}
	logged := 0
	for i, g := range groups {
		if len(g.bad) == 0 {
			var outcome string
			err := s.write.Do(ctx, func(tx *sqldb.Tx) (err error) {
				outcome, err = s.importTx(ctx, tx, g)
				return err
			})
			switch {
			case err == nil:
				switch outcome {
				case "created":
					rep.Imported++
				case "updated":
					rep.Updated++
				default:
					rep.Unchanged++
				}
			case errs.KindOf(err) == errs.Internal:
				return rep, errs.E(op, err)
			default:
				g.bad = rowErrors(g, err)
			}
		}
		if len(g.bad) > 0 {
			rep.Failed++
			rep.Errors = append(rep.Errors, g.bad...)
		}
		// Progress: a log line each time another ImportProgress rows are done.
		done := g.rows[len(g.rows)-1] - 1
		if done/s.cfg.ImportProgress > logged {
			logged = done / s.cfg.ImportProgress
			s.log.Info("catalog: import progress", "rows", done, "products", i+1, "of", len(groups),
				"imported", rep.Imported, "updated", rep.Updated, "failed", rep.Failed)
		}
	}
	return rep, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func csvInvalid(field, msg string) error {
	return errs.E("catalog.ImportCSV", errs.Invalid, errs.CodeValidation, "the CSV cannot be imported",
		[]errs.FieldError{{Field: field, Message: msg}})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, "|") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseVariant reads a row's variant columns.
func parseVariant(row int, get func(string) string) (VariantInput, []ImportError) {
	var bad []ImportError
	v := VariantInput{SKU: get("sku"), Title: get("variant_title"), Attributes: map[string]string{}}
	amount := func(c string) (int64, bool) {
		n, err := strconv.ParseInt(get(c), 10, 64)
		if err != nil || n < 0 {
			bad = append(bad, ImportError{Row: row, Field: c, Message: "must be a non-negative integer amount in minor units"})
			return 0, false
		}
		return n, true
	}
	cur := get("currency")
	if n, ok := amount("price_amount"); ok {
		m, err := money.New(n, cur)
		if err != nil {
			bad = append(bad, ImportError{Row: row, Field: "currency", Message: "must be an ISO 4217 code"})
		} else {
			v.Price = m
		}
	}
	if get("compare_at_amount") != "" {
		if n, ok := amount("compare_at_amount"); ok {
			if m, err := money.New(n, cur); err == nil {
				v.CompareAtPrice = &m
			}
		}
	}
	if w := get("weight_grams"); w != "" {
		n, err := strconv.ParseInt(w, 10, 64)
		if err != nil {
			bad = append(bad, ImportError{Row: row, Field: "weight_grams", Message: "must be an integer"})
		}
		v.WeightGrams = n
	}
	for _, kv := range splitList(get("attributes")) {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			bad = append(bad, ImportError{Row: row, Field: "attributes", Message: "must be name=value pairs separated by |"})
			continue
		}
		v.Attributes[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return v, bad
}

// importTx creates or updates the product of g in tx.
func (s *Service) importTx(ctx context.Context, tx *sqldb.Tx, g *csvGroup) (string, error) {
	id := ""
	if _, err := loadProduct(ctx, tx, g.handle, false); err == nil {
		id = g.handle
	} else if !errs.Is(err, errs.NotFound) {
		return "", err
	}
	if id == "" {
		skus := make([]string, len(g.in.Variants))
		for i, v := range g.in.Variants {
			skus[i] = v.SKU
		}
		have, err := s.VariantsTx(ctx, tx, DefaultChannel, skus)
		if err != nil {
			return "", err
		}
		for _, sku := range skus {
			if v, ok := have[sku]; ok {
				id = v.ProductID
				break
			}
		}
	}
	if id == "" {
		_, err := s.CreateProductTx(ctx, tx, g.in)
		return "created", err
	}
	old, err := loadProduct(ctx, tx, id, false)
	if err != nil {
		return "", err
	}
	// Variants upserted by SKU: the file's replace the stored ones of the
	// same SKU, the file's new ones follow, the others stay.
	vs := inputOf(old).Variants
	for _, v := range g.in.Variants {
		if i := slices.IndexFunc(vs, func(x VariantInput) bool { return x.SKU == v.SKU }); i >= 0 {
			vs[i] = v
		} else {
			vs = append(vs, v)
		}
	}
	in := g.in
	patch := ProductPatch{Title: &in.Title, Description: &in.Description, CategoryIDs: &in.CategoryIDs, Variants: &vs,
		TaxClass: &in.TaxClass, Media: &in.Media, Channels: &in.Channels}
	if in.Status != "" {
		patch.Status = &in.Status
	}
	if in.TaxClass == "" {
		patch.TaxClass = nil
	}
	if in.Channels == nil {
		patch.Channels = nil
	}
	if in.Media == nil {
		empty := []Media{}
		patch.Media = &empty
	}
	p, err := s.UpdateProductTx(ctx, tx, id, patch)
	if err != nil {
		return "", err
	}
	if p.Version == old.Version {
		return "unchanged", nil
	}
	return "updated", nil
}

// variantColumn maps a variant's API field to its CSV column.
var variantColumn = map[string]string{"sku": "sku", "title": "variant_title", "price": "price_amount", "price.amount": "price_amount",
	"price.currency": "currency", "compare_at_price": "compare_at_amount", "compare_at_price.amount": "compare_at_amount",
	"compare_at_price.currency": "currency", "weight_grams": "weight_grams", "attributes": "attributes"}

// rowErrors turns a product's refusal into row errors.
func rowErrors(g *csvGroup, err error) []ImportError {
	var e *errs.Error
	errors.As(err, &e)
	msg := err.Error()
	if e != nil {
		msg = e.Msg
	}
	if e == nil || len(e.Fields) == 0 {
		return []ImportError{{Row: g.rows[0], Field: "", Message: msg}}
	}
	var out []ImportError
	for _, f := range e.Fields {
		row, field := g.rows[0], f.Field
		if rest, ok := strings.CutPrefix(f.Field, "variants."); ok {
			n, after, _ := strings.Cut(rest, ".")
			if i, err := strconv.Atoi(n); err == nil && i < len(g.rows) {
				row = g.rows[i]
			}
			if c, ok := variantColumn[after]; ok {
				field = c
			} else if strings.HasPrefix(after, "attributes") {
				field = "attributes"
			}
		} else if i := strings.IndexByte(field, '.'); i > 0 {
			field = field[:i]
		}
		out = append(out, ImportError{Row: row, Field: field, Message: f.Message})
	}
	return out
}

// ExportCSV writes every product (any status, oldest first) as the
// import reads it.
func (s *Service) ExportCSV(ctx context.Context, w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(csvColumns)
	after := ""
	for {
		rows, err := s.db.Reader().QueryContext(ctx, `SELECT id FROM catalog_products WHERE id > $1 ORDER BY id LIMIT 200`, after)
		if err != nil {
			return internal("catalog.ExportCSV", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return internal("catalog.ExportCSV", err)
		}
		if len(ids) == 0 {
			break
		}
		ps, err := loadProducts(ctx, s.db.Reader(), ids, false)
		if err != nil {
			return err
		}
		for _, id := range ids {
			p := ps[id]
			var media []string
			for _, m := range p.Media {
				media = append(media, m.URL)
			}
			for _, v := range p.Variants {
				var attrs []string
				for _, k := range sortedKeys(v.Attributes) {
					attrs = append(attrs, k+"="+v.Attributes[k])
				}
				compare := ""
				if v.CompareAtPrice != nil {
					compare = strconv.FormatInt(v.CompareAtPrice.Amount(), 10)
				}
				cw.Write([]string{p.ID, p.Title, strings.ReplaceAll(p.Description, "\n", `\n`), p.Status,
					strings.Join(p.CategoryIDs, "|"), p.TaxClass, strings.Join(p.Channels, "|"), strings.Join(media, "|"),
					v.SKU, v.Title, strconv.FormatInt(v.Price.Amount(), 10), v.Price.Currency(), compare,
					strconv.FormatInt(v.WeightGrams, 10), strings.Join(attrs, "|")})
			}
		}
		after = ids[len(ids)-1]
	}
	cw.Flush()
	return cw.Error()
}

func (s *Service) handleImport(w http.ResponseWriter, r *http.Request) {
	body, err := web.Body(r)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	rep, err := s.ImportCSV(r.Context(), bytes.NewReader(body))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, rep)
}

func (s *Service) handleExport(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := s.ExportCSV(r.Context(), &buf); err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="products.csv"`)
	w.Header().Set("Cache-Control", "private, no-store")
	w.Write(buf.Bytes())
}
