package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/web"
)

// Routes returns the catalog's HTTP routes (docs/api.md, "Catalog").
func (s *Service) Routes() []web.Route {
	const tag = "catalog"
	write, read := web.Permission(PermWrite), web.Permission(PermRead)
	listQuery := []string{"q", "category", "min_price", "max_price", "in_stock", "channel", "sort", "limit", "cursor"}
	return []web.Route{
		{Method: "POST", Path: "/api/v1/admin/products", Summary: "Create a product with its variants", Tag: tag, Access: write,
			Description: "SKUs are unique across the shop (409 `sku_taken`); unknown categories, bad money and bad fields are 422.",
			Request:     ProductInput{}, Response: Product{}, Status: http.StatusCreated, Handler: s.handleCreateProduct},
		{Method: "GET", Path: "/api/v1/admin/products", Summary: "List products of any status", Tag: tag, Access: read,
			Query: []string{"status", "category", "q", "channel", "limit", "cursor"}, Response: StaffList{}, Handler: s.handleStaffList},
		{Method: "GET", Path: "/api/v1/admin/products/{id}", Summary: "A product of any status", Tag: tag, Access: read,
			Response: Product{}, Handler: s.handleStaffProduct},
		{Method: "PATCH", Path: "/api/v1/admin/products/{id}", Summary: "Change a product (the fields present replace the stored ones)",
			Description: "Status: `active` lists the product, `archived` delists it; archived → draft is 409 `invalid_transition`. " +
				"`variants` replaces the list, a variant being known by its SKU.",
			Tag: tag, Access: write, Request: ProductPatch{}, Response: Product{}, Handler: s.handlePatchProduct},
		{Method: "POST", Path: "/api/v1/admin/products/import", Summary: "Import products from CSV (one row per variant, upsert by SKU)",
			Description: "Body: `text/csv` (columns in docs/api.md). Each product (its rows, grouped by `handle`) commits alone; the answer reports every refused row.",
			Tag:         tag, Access: write, Response: ImportReport{}, MaxBody: MaxImportBody, BodyType: "text/csv", Handler: s.handleImport},
		{Method: "GET", Path: "/api/v1/admin/products/export", Summary: "Export every product as CSV (the import's columns)",
			Tag: tag, Access: read, Handler: s.handleExport},
		{Method: "GET", Path: "/api/v1/products", Summary: "List or search active products", Tag: tag, Access: web.Public,
			Description: "Without `q`, newest first from the database; with `q`, the search index's hits with `facets`.",
			Query:       listQuery, Response: ProductList{}, Handler: s.handlePublicList},
		{Method: "GET", Path: "/api/v1/products/{id}", Summary: "An active product with its rating", Tag: tag, Access: web.Public,
			Description: "Cacheable: `ETag` and `Cache-Control: public`; `If-None-Match` answers 304. A draft or archived product is 404.",
			Response:    PublicProduct{}, Handler: s.handlePublicProduct},
		{Method: "GET", Path: "/api/v1/categories", Summary: "The category tree with active product counts", Tag: tag, Access: web.Public,
			Response: web.Page[CategoryCount]{}, Handler: s.handleCategories(true)},
		{Method: "GET", Path: "/api/v1/admin/categories", Summary: "The category tree with product counts (any status)", Tag: tag,
			Access: read, Response: web.Page[CategoryCount]{}, Handler: s.handleCategories(false)},
		{Method: "POST", Path: "/api/v1/admin/categories", Summary: "Create a category", Tag: tag, Access: write,
			Request: CategoryInput{}, Response: Category{}, Status: http.StatusCreated, Handler: s.handleCreateCategory},
		{Method: "PATCH", Path: "/api/v1/admin/categories/{id}", Summary: "Rename or move a category (no cycles: 422)", Tag: tag,
			Access: write, Request: CategoryPatch{}, Response: Category{}, Handler: s.handlePatchCategory},
		{Method: "DELETE", Path: "/api/v1/admin/categories/{id}", Summary: "Delete an empty category (409 when it has products or children)",
			Tag: tag, Access: write, Status: http.StatusNoContent, Handler: s.handleDeleteCategory},
	}
}

// inTx runs fn as one unit of the write path and writes its answer.
func (s *Service) inTx(w http.ResponseWriter, r *http.Request, status int, fn func(ctx context.Context, tx *sqldb.Tx) (any, error)) {
	var body any
	err := s.write.Do(r.Context(), func(tx *sqldb.Tx) (err error) {
		body, err = fn(r.Context(), tx)
		return err
	})
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, status, body)
}

func (s *Service) handleCreateProduct(w http.ResponseWriter, r *http.Request) {
	var in ProductInput
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	if _, err := normalize(in); err != nil { // before any key is taken or unit queued
		web.Error(w, r, err)
		return
	}
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		p, err := s.CreateProductTx(ctx, tx, in)
		return http.StatusCreated, p, err
	}})
}

func (s *Service) handlePatchProduct(w http.ResponseWriter, r *http.Request) {
	var in ProductPatch
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	id := r.PathValue("id")
	s.inTx(w, r, http.StatusOK, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.UpdateProductTx(ctx, tx, id, in)
	})
	s.dropNow(r.Context(), id)
}

func (s *Service) handleStaffList(w http.ResponseWriter, r *http.Request) {
	page, err := web.PageParams(r)
	var f Filter
	if err == nil {
		f, err = ParseFilter(r.URL.Query(), false)
	}
	var out StaffList
	if err == nil {
		f.Page = page
		out, err = s.ListProducts(r.Context(), f)
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	web.JSON(w, http.StatusOK, out)
}

func (s *Service) handleStaffProduct(w http.ResponseWriter, r *http.Request) {
	p, err := s.Product(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	b, err := json.Marshal(p)
	if err != nil {
		web.Error(w, r, err)
		return
	}
	writeCached(w, r, `"v`+strconv.FormatInt(p.Version, 10)+`"`, "private, no-store", b)
}

func (s *Service) handlePublicList(w http.ResponseWriter, r *http.Request) {
	page, err := web.PageParams(r)
	var f Filter
	if err == nil {
		f, err = ParseFilter(r.URL.Query(), true)
	}
	var out ProductList
	if err == nil {
		f.Page = page
		out, err = s.PublicProducts(r.Context(), f)
	}
	if err != nil {
		web.Error(w, r, err)
		return
	}
	web.JSON(w, http.StatusOK, out)
}

func (s *Service) handlePublicProduct(w http.ResponseWriter, r *http.Request) {
	etag, body, err := s.PublicDocument(r.Context(), r.PathValue("id"))
	if err != nil {
		web.Error(w, r, err)
		return
	}
	writeCached(w, r, etag, s.publicCacheControl(), body)
}

func (s *Service) publicCacheControl() string {
	return "public, max-age=" + strconv.Itoa(int(s.cfg.PublicMaxAge.Seconds()))
}

// PublicDocument returns the encoded public document of an active product
// and its strong ETag (the product's version and a digest of the
// document, which holds the rating too), from the cache when it holds it.
func (s *Service) PublicDocument(ctx context.Context, id string) (etag string, body []byte, err error) {
	key := productKey(id)
	trusted := s.cacheTrusted()
	if trusted {
		if v, ok, err := s.cache.Get(ctx, key); err == nil && ok {
			if i := strings.IndexByte(string(v[:min(len(v), 128)]), '\n'); i > 0 {
				return string(v[:i]), v[i+1:], nil
			}
		} else if err != nil {
			s.log.Warn("catalog: cache read failed", "err", err)
		}
	}
	gen := s.gen.Load()
	p, err := loadProduct(ctx, s.db.Reader(), id, true)
	if err != nil {
		return "", nil, err
	}
	ratings, err := s.ratings(ctx, []string{id})
	if err != nil {
		return "", nil, err
	}
	body, err = json.Marshal(PublicProduct{Product: p, Rating: ratings[id]})
	if err != nil {
		return "", nil, internal("catalog.PublicDocument", err)
	}
	sum := sha256.Sum256(body)
	etag = `"` + strconv.FormatInt(p.Version, 10) + "-" + hex.EncodeToString(sum[:8]) + `"`
	// A read that raced an invalidation keeps what it read to itself.
	if trusted && s.gen.Load() == gen {
		v := make([]byte, 0, len(etag)+1+len(body))
		v = append(append(append(v, etag...), '\n'), body...)
		if err := s.cache.Set(ctx, key, v); err != nil {
			s.log.Warn("catalog: cache write failed", "err", err)
		}
	}
	return etag, body, nil
}

// writeCached answers a cacheable read: 304 when If-None-Match names
// etag, else the JSON body.
func writeCached(w http.ResponseWriter, r *http.Request, etag, cacheControl string, body []byte) {
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", cacheControl)
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// noneMatch reports whether an If-None-Match header matches etag (weak
// comparison, as RFC 9110 asks for GET).
func noneMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}

func (s *Service) handleCategories(public bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cs, err := s.Categories(r.Context(), public)
		if err != nil {
			web.Error(w, r, err)
			return
		}
		b, err := json.Marshal(web.Page[CategoryCount]{Items: cs})
		if err != nil {
			web.Error(w, r, err)
			return
		}
		sum := sha256.Sum256(b)
		cc := s.publicCacheControl()
		if !public {
			cc = "private, no-store"
		}
		writeCached(w, r, `"`+hex.EncodeToString(sum[:12])+`"`, cc, b)
	}
}

func (s *Service) handleCreateCategory(w http.ResponseWriter, r *http.Request) {
	var in CategoryInput
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	if _, err := checkCategoryName(in.Name); err != nil {
		web.Error(w, r, err)
		return
	}
	s.idem.Run(w, r, s.write, web.Mutation{Commit: func(ctx context.Context, tx *sqldb.Tx) (int, any, error) {
		c, err := s.CreateCategoryTx(ctx, tx, in)
		return http.StatusCreated, c, err
	}})
}

func (s *Service) handlePatchCategory(w http.ResponseWriter, r *http.Request) {
	var in CategoryPatch
	if err := web.Decode(r, &in); err != nil {
		web.Error(w, r, err)
		return
	}
	s.inTx(w, r, http.StatusOK, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return s.UpdateCategoryTx(ctx, tx, r.PathValue("id"), in)
	})
}

func (s *Service) handleDeleteCategory(w http.ResponseWriter, r *http.Request) {
	s.inTx(w, r, http.StatusNoContent, func(ctx context.Context, tx *sqldb.Tx) (any, error) {
		return nil, s.DeleteCategoryTx(ctx, tx, r.PathValue("id"))
	})
}
