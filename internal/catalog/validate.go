package catalog

import (
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"mercato/internal/money"
	"mercato/internal/platform/errs"
)

var stringType = reflect.TypeFor[string]()

var (
	skuRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}$`)
	codeRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9_\-]{0,31}$`)
	attrKeyRE = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} _\-]{0,63}$`)
)

// cleanText trims s and reports whether it holds control characters
// (newlines and tabs allowed when multiline).
func cleanText(s string, multiline bool) (string, bool) {
	s = strings.TrimSpace(s)
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			return s, false
		}
	}
	return s, true
}

// normalize checks in (a whole product: a create, or a patch applied to
// the stored product) and returns it cleaned: text trimmed, defaults
// filled, lists de-duplicated. Every problem is a field error (422). It
// does not look at the database: unknown categories and taken SKUs are
// the store's to find.
func normalize(in ProductInput) (ProductInput, error) {
	var v errs.Validation
	var ok bool
	if in.Title, ok = cleanText(in.Title, false); !ok {
		v.Add("title", "must not contain control characters")
	} else if in.Title == "" {
		v.Add("title", "is required")
	} else if utf8.RuneCountInString(in.Title) > 200 {
		v.Add("title", "must be at most 200 characters")
	}
	if in.Description, ok = cleanText(in.Description, true); !ok {
		v.Add("description", "must not contain control characters other than newlines and tabs")
	} else if utf8.RuneCountInString(in.Description) > 20000 {
		v.Add("description", "must be at most 20000 characters")
	}
	if in.Status == "" {
		in.Status = StatusDraft
	}
	if !slices.Contains([]string{StatusDraft, StatusActive, StatusArchived}, in.Status) {
		v.Add("status", "must be draft, active or archived")
	}
	if in.TaxClass == "" {
		in.TaxClass = DefaultTaxClass
	}
	if !codeRE.MatchString(in.TaxClass) {
		v.Add("tax_class", "must be 1 to 32 lower-case letters, digits, _ or -")
	}
	in.CategoryIDs = dedupe(in.CategoryIDs)
	if len(in.CategoryIDs) > MaxCategories {
		v.Add("category_ids", "must hold at most "+strconv.Itoa(MaxCategories)+" categories")
	}
	for i, id := range in.CategoryIDs {
		if id == "" {
			v.Add("category_ids."+strconv.Itoa(i), "must not be empty")
		}
	}
	if in.Channels == nil {
		in.Channels = []string{DefaultChannel}
	}
	in.Channels = dedupe(in.Channels)
	if len(in.Channels) > MaxChannels {
		v.Add("channels", "must hold at most "+strconv.Itoa(MaxChannels)+" channels")
	}
	for i, c := range in.Channels {
		if !codeRE.MatchString(c) {
			v.Add("channels."+strconv.Itoa(i), "must be 1 to 32 lower-case letters, digits, _ or -")
		}
	}
	if in.Media == nil {
		in.Media = []Media{}
	}
	if len(in.Media) > MaxMedia {
		v.Add("media", "must hold at most "+strconv.Itoa(MaxMedia)+" items")
	}
	for i, m := range in.Media {
		if !goodURL(m.URL) {
			v.Add("media."+strconv.Itoa(i)+".url", "must be an absolute http or https URL")
		}
		if in.Media[i].Alt, ok = cleanText(m.Alt, false); !ok || utf8.RuneCountInString(m.Alt) > 300 {
			v.Add("media."+strconv.Itoa(i)+".alt", "must be at most 300 characters, without control characters")
		}
	}
	checkVariants(&v, in.Variants)
	return in, v.Err("catalog.validate")
}

func checkVariants(v *errs.Validation, vs []VariantInput) {
	switch {
	case len(vs) == 0:
		v.Add("variants", "must hold at least one variant")
		return
	case len(vs) > MaxVariants:
		v.Add("variants", "must hold at most "+strconv.Itoa(MaxVariants)+" variants")
		return
	}
	currency := ""
	seen := map[string]bool{}
	for i := range vs {
		p := "variants." + strconv.Itoa(i)
		x := &vs[i]
		x.SKU = strings.TrimSpace(x.SKU)
		switch {
		case !skuRE.MatchString(x.SKU):
			v.Add(p+".sku", "must be 1 to 64 letters, digits, '.', '_', '-' or '/', starting with a letter or digit")
		case seen[x.SKU]:
			v.Add(p+".sku", "is given twice")
		}
		seen[x.SKU] = true
		var ok bool
		if x.Title, ok = cleanText(x.Title, false); !ok {
			v.Add(p+".title", "must not contain control characters")
		} else if utf8.RuneCountInString(x.Title) > 200 {
			v.Add(p+".title", "must be at most 200 characters")
		}
		checkPrice(v, p+".price", x.Price, &currency, true)
		if x.CompareAtPrice != nil {
			checkPrice(v, p+".compare_at_price", *x.CompareAtPrice, &currency, false)
		}
		if x.WeightGrams < 0 || x.WeightGrams > 10_000_000 {
			v.Add(p+".weight_grams", "must be from 0 to 10000000")
		}
		if len(x.Attributes) > MaxAttributes {
			v.Add(p+".attributes", "must hold at most "+strconv.Itoa(MaxAttributes)+" attributes")
		}
		if x.Attributes == nil {
			x.Attributes = map[string]string{}
		}
		for _, k := range sortedKeys(x.Attributes) {
			val, ok := cleanText(x.Attributes[k], false)
			if !attrKeyRE.MatchString(k) {
				v.Add(p+".attributes", "a name must be 1 to 64 letters, digits, spaces, _ or -")
			} else if !ok || utf8.RuneCountInString(val) > 200 {
				v.Add(p+".attributes."+k, "must be at most 200 characters, without control characters")
			}
			x.Attributes[k] = val
		}
	}
}

// checkPrice records what is wrong with a price: missing, negative, or in
// another currency than the product's first price (*currency).
func checkPrice(v *errs.Validation, field string, m money.Money, currency *string, required bool) {
	switch {
	case m.Currency() == "":
		if required {
			v.Add(field, "is required")
		}
		return
	case m.IsNegative():
		v.Add(field+".amount", "must not be negative")
	}
	if *currency == "" {
		*currency = m.Currency()
	} else if m.Currency() != *currency {
		v.Add(field+".currency", "must be "+*currency+": a product has one currency")
	}
}

func goodURL(s string) bool {
	if len(s) > 2048 {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil &&
		!strings.ContainsAny(s, " \t\r\n")
}

// dedupe drops repeated values (keeping the first), and returns [] for nil.
func dedupe(in []string) []string {
	out := []string{}
	for _, s := range in {
		s = strings.TrimSpace(s)
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// checkCategoryName cleans a category name.
func checkCategoryName(name string) (string, error) {
	n, ok := cleanText(name, false)
	var v errs.Validation
	switch {
	case !ok:
		v.Add("name", "must not contain control characters")
	case n == "":
		v.Add("name", "is required")
	case utf8.RuneCountInString(n) > 200:
		v.Add("name", "must be at most 200 characters")
	}
	return n, v.Err("catalog.category")
}

// transitionOK reports whether a product may go from status from to to.
func transitionOK(from, to string) bool {
	return !(from == StatusArchived && to == StatusDraft)
}
