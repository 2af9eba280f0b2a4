package catalog

import (
	"encoding/json"
	"time"

	"mercato/internal/money"
)

// The product statuses. Only active products are visible to the public and
// sellable; archived products are delisted. Every transition is allowed
// except archived → draft (a delisted product is relisted as active, or
// stays archived): 409 invalid_transition.
const (
	StatusDraft    = "draft"
	StatusActive   = "active"
	StatusArchived = "archived"
)

// DefaultTaxClass is a product's tax class unless it names one.
const DefaultTaxClass = "standard"

// DefaultChannel is the sales channel a product is on unless it names some.
const DefaultChannel = "web"

// Limits of a product.
const (
	MaxVariants   = 100
	MaxMedia      = 20
	MaxCategories = 20
	MaxChannels   = 10
	MaxAttributes = 30
)

// Product is a product as staff see it (and, with Rating, the public).
type Product struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Status      string    `json:"status" doc:"draft, active or archived"`
	CategoryIDs []string  `json:"category_ids"`
	Variants    []Variant `json:"variants"`
	TaxClass    string    `json:"tax_class"`
	Media       []Media   `json:"media"`
	Channels    []string  `json:"channels"`
	Version     int64     `json:"version" doc:"Counts the product's changes from 1."`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Variant is one sellable SKU of a product.
type Variant struct {
	ID             string            `json:"id"`
	SKU            string            `json:"sku"`
	Title          string            `json:"title"`
	Price          money.Money       `json:"price"`
	CompareAtPrice *money.Money      `json:"compare_at_price,omitempty"`
	WeightGrams    int64             `json:"weight_grams"`
	Attributes     map[string]string `json:"attributes"`
}

// Media is one image of a product.
type Media struct {
	URL string `json:"url" maxlen:"2048"`
	Alt string `json:"alt" maxlen:"300"`
}

// Rating is a product's review summary.
type Rating struct {
	Average float64 `json:"average"`
	Count   int     `json:"count"`
}

// PublicProduct is an active product as the public sees it.
type PublicProduct struct {
	Product
	Rating Rating `json:"rating"`
}

// Category is one node of the category tree.
type Category struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	ParentID  *string   `json:"parent_id"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CategoryCount is a category in the list, with the number of products in
// it or any of its descendants (all statuses for staff, active ones for
// the public).
type CategoryCount struct {
	Category
	ProductCount int `json:"product_count"`
}

// ProductInput is the body of POST /api/v1/admin/products.
type ProductInput struct {
	Title       string         `json:"title" maxlen:"200"`
	Description string         `json:"description" maxlen:"20000"`
	Status      string         `json:"status,omitempty" maxlen:"16"`
	CategoryIDs []string       `json:"category_ids,omitempty" maxlen:"64"`
	Variants    []VariantInput `json:"variants"`
	TaxClass    string         `json:"tax_class,omitempty" maxlen:"32"`
	Media       []Media        `json:"media,omitempty"`
	Channels    []string       `json:"channels,omitempty" maxlen:"32"`
}

// VariantInput is one variant of a ProductInput. A variant is known by its
// SKU: an update keeps the variant (and its id) whose SKU it names again.
type VariantInput struct {
	SKU            string            `json:"sku" maxlen:"64"`
	Title          string            `json:"title,omitempty" maxlen:"200"`
	Price          money.Money       `json:"price"`
	CompareAtPrice *money.Money      `json:"compare_at_price,omitempty"`
	WeightGrams    int64             `json:"weight_grams,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty" maxlen:"200"`
}

// ProductPatch is the body of PATCH /api/v1/admin/products/{id}: the
// fields present replace the product's (JSON merge semantics; a list is
// replaced whole, variants matched by SKU).
type ProductPatch struct {
	Title       *string         `json:"title,omitempty" maxlen:"200"`
	Description *string         `json:"description,omitempty" maxlen:"20000"`
	Status      *string         `json:"status,omitempty" maxlen:"16"`
	CategoryIDs *[]string       `json:"category_ids,omitempty" maxlen:"64"`
	Variants    *[]VariantInput `json:"variants,omitempty"`
	TaxClass    *string         `json:"tax_class,omitempty" maxlen:"32"`
	Media       *[]Media        `json:"media,omitempty"`
	Channels    *[]string       `json:"channels,omitempty" maxlen:"32"`
}

// CategoryInput is the body of POST /api/v1/admin/categories.
type CategoryInput struct {
	Name     string  `json:"name" maxlen:"200"`
	ParentID *string `json:"parent_id,omitempty" maxlen:"64"`
}

// CategoryPatch is the body of PATCH /api/v1/admin/categories/{id}: rename
// (name) and move (parent_id; null moves the category to the root).
type CategoryPatch struct {
	Name     *string     `json:"name,omitempty" maxlen:"200"`
	ParentID OptionalRef `json:"parent_id"`
}

// OptionalRef is a JSON member that may be absent (Set false), null (Set,
// ID "") or an id.
type OptionalRef struct {
	Set bool
	ID  string
}

// UnmarshalJSON reads null or a string of at most 64 bytes.
func (o *OptionalRef) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.ID = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: "value", Type: stringType}
	}
	if len(s) > 64 || s == "" {
		return &json.UnmarshalTypeError{Value: "string of 1 to 64 characters", Type: stringType}
	}
	o.ID = s
	return nil
}

// JSONSchema documents OptionalRef as a nullable string (web.Schemer).
func (OptionalRef) JSONSchema() map[string]any {
	return map[string]any{"type": []string{"string", "null"}, "maxLength": 64}
}
