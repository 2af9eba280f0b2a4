package notifications

import (
	"bytes"
	"embed"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"

	"mercato/internal/platform/errs"
)

// The locales a customer may choose; en is the default and the staff's.
const (
	LocaleEN = "en"
	LocaleZH = "zh-CN"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// mailData is what every template sees.
type mailData struct {
	Name        string
	Number      string // the order number
	Total       string // formatted, with its currency
	Refund      string // formatted refund, "" when none
	TrackingURL string
	SKU         string
	Available   int64
	Threshold   int64
}

// renderer holds the parsed templates of every locale.
type renderer struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

func newRenderer() *renderer {
	r := &renderer{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, loc := range []string{LocaleEN, LocaleZH} {
		// The templates are part of the binary: a parse error is a build fault.
		r.text[loc] = texttemplate.Must(texttemplate.New(loc).ParseFS(templateFS, "templates/"+loc+".txt.tmpl"))
		r.html[loc] = htmltemplate.Must(htmltemplate.New(loc).ParseFS(templateFS, "templates/"+loc+".html.tmpl"))
	}
	return r
}

// render returns kind's subject, text and HTML bodies in locale (en when the
// locale has no template of that kind).
func (r *renderer) render(kind, locale string, d mailData) (subject, text, html string, err error) {
	const op = "notifications.render"
	if r.text[locale] == nil || r.text[locale].Lookup(kind+".subject") == nil {
		locale = LocaleEN
	}
	var b bytes.Buffer
	run := func(exec func() error) string {
		b.Reset()
		if err == nil {
			err = exec()
		}
		return b.String()
	}
	subject = run(func() error { return r.text[locale].ExecuteTemplate(&b, kind+".subject", d) })
	text = run(func() error { return r.text[locale].ExecuteTemplate(&b, kind+".text", d) })
	html = run(func() error { return r.html[locale].ExecuteTemplate(&b, kind+".html", d) })
	if err != nil {
		return "", "", "", errs.E(op, errs.Internal, err)
	}
	return strings.TrimSpace(subject), text, html, nil
}
