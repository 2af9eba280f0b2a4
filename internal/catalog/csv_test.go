package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"mercato/internal/platform/module"
	"mercato/internal/platform/web/webtest"
)

const csvHeader = "handle,title,description,status,category_ids,tax_class,channels,media,sku,variant_title,price_amount,currency,compare_at_amount,weight_grams,attributes\n"

func TestCSVImportExport(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, e *env) {
		cat := e.category("Tea", "")
		file := csvHeader +
			"green,Longjing 龙井,\"Spring, pan-fired\",active," + cat.ID + ",reduced,web|pos,https://img.example.com/a.jpg,LJ-50,50 g,2800,EUR,3200,60,weight=50 g\n" +
			"green,,,,,,,,LJ-100,100 g,4800,EUR,,110,weight=100 g\n" +
			"bad,Broken,,active,,,,,BR-1,,-5,EUR,,,\n" +
			"bad,,,,,,,,BR-2,,10,XXX,,,\n" +
			"nocat,No such category,,active,missing-cat,,,,NC-1,,100,EUR,,,\n"
		csvPost := func(body string) *webtest.Response {
			return e.operator.Do("POST", "/api/v1/admin/products/import", body, "Content-Type: text/csv; charset=utf-8")
		}
		r := csvPost(file)
		r.WantStatus(t, http.StatusOK)
		var rep ImportReport
		r.Decode(t, &rep)
		if rep.Imported != 1 || rep.Failed != 2 || rep.Updated != 0 {
			t.Fatalf("report %+v", rep)
		}
		want := []ImportError{{Row: 4, Field: "price_amount"}, {Row: 5, Field: "currency"}, {Row: 6, Field: "category_ids"}}
		if len(rep.Errors) != len(want) {
			t.Fatalf("errors %+v", rep.Errors)
		}
		for i, w := range want {
			if rep.Errors[i].Row != w.Row || rep.Errors[i].Field != w.Field || rep.Errors[i].Message == "" {
				t.Errorf("error %d = %+v, want row %d field %s", i, rep.Errors[i], w.Row, w.Field)
			}
		}
		list := e.cs.Do("GET", "/api/v1/admin/products", nil)
		if list.Field("items.0.title") != "Longjing 龙井" || list.Field("items.0.variants.1.sku") != "LJ-100" ||
			list.Field("items.0.tax_class") != "reduced" || list.Field("items.0.variants.0.compare_at_price.amount") != float64(3200) ||
			list.Field("items.1") != nil {
			t.Fatalf("imported: %s", list.Body)
		}
		// Importing it again changes nothing.
		events := e.count("outbox")
		r = csvPost(file)
		r.Decode(t, &rep)
		if rep.Imported != 0 || rep.Unchanged != 1 || rep.Failed != 2 || e.count("outbox") != events {
			t.Fatalf("second import %+v", rep)
		}
		// An export re-imports to the same catalogue.
		ex := e.cs.Do("GET", "/api/v1/admin/products/export", nil)
		ex.WantStatus(t, http.StatusOK)
		if !strings.HasPrefix(ex.Header.Get("Content-Type"), "text/csv") || !strings.HasPrefix(string(ex.Body), strings.TrimSuffix(csvHeader, "\n")) {
			t.Fatalf("export: %v %s", ex.Header, ex.Body)
		}
		r = csvPost(string(ex.Body))
		r.Decode(t, &rep)
		if rep.Unchanged != 1 || rep.Imported+rep.Updated+rep.Failed != 0 {
			t.Fatalf("re-import of the export %+v", rep)
		}
		// A change through the file updates by SKU.
		r = csvPost(csvHeader + "other-handle,Longjing 龙井,\"Spring, pan-fired\",active," + cat.ID + ",reduced,web|pos,https://img.example.com/a.jpg,LJ-50,50 g,2900,EUR,3200,60,weight=50 g\n")
		r.Decode(t, &rep)
		if rep.Updated != 1 || e.count("catalog_products") != 1 || e.count("catalog_variants") != 2 {
			t.Fatalf("update by SKU %+v", rep)
		}

		webtest.AssertProblem(t, e.operator.Do("POST", "/api/v1/admin/products/import", file), http.StatusUnsupportedMediaType, "unsupported_media_type")
		webtest.AssertFieldError(t, webtest.AssertProblem(t, csvPost("title,sku\nx,y\n"), 422, "validation_failed"), "header")
		webtest.AssertFieldError(t, webtest.AssertProblem(t, csvPost(csvHeader[:len(csvHeader)-1]+",colour\n"), 422, "validation_failed"), "header")
		webtest.AssertProblem(t, e.cs.Do("POST", "/api/v1/admin/products/import", file, "Content-Type: text/csv"), http.StatusForbidden, "forbidden")
		// What no store keeps is refused whole, on every engine, never a 500.
		for _, bad := range []string{"x,\xff\xfe,,active,,,,,BAD-1,,1,EUR,,,\n", "x,nul\x00,,active,,,,,BAD-1,,1,EUR,,,\n",
			"x,\"unterminated,,active,,,,,BAD-1,,1,EUR,,,\n"} {
			webtest.AssertProblem(t, csvPost(csvHeader+bad), 422, "validation_failed")
		}
		long := csvHeader + "long," + strings.Repeat("t", 300) + ",,active,,,,,LONG-1," + strings.Repeat("v", 300) + ",1,EUR,,,\n"
		r = csvPost(long)
		r.Decode(t, &rep)
		if rep.Failed != 1 || len(rep.Errors) != 2 || rep.Errors[0].Field != "title" || rep.Errors[1].Field != "variant_title" {
			t.Fatalf("long fields: %+v", rep)
		}
	})
}

// TestImportProgress: a large import logs its progress every
// ImportProgress rows.
func TestImportProgress(t *testing.T) {
	var logs strings.Builder
	db := openSQLite(t)
	s := New(module.Platform{DB: db, Write: db, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, Config{ImportProgress: 2})
	file := csvHeader
	for i := range 5 {
		file += fmt.Sprintf("h%d,Product %d,,active,,,,,PRG-%d,,100,EUR,,,\n", i, i, i)
	}
	rep, err := s.ImportCSV(context.Background(), strings.NewReader(file))
	if err != nil || rep.Imported != 5 {
		t.Fatalf("%+v %v", rep, err)
	}
	if n := strings.Count(logs.String(), "import progress"); n != 2 {
		t.Fatalf("%d progress lines, want 2 (after rows 2 and 4):\n%s", n, logs.String())
	}
}
