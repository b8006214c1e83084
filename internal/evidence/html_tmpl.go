package evidence

import (
	"bytes"
	"html/template"
)

var page = template.Must(template.New("p").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>rootwarden evidence</title></head><body><pre>{{.Kind}}</pre></body></html>`))

func renderHTML(p Pack) ([]byte, error) {
	var b bytes.Buffer
	err := page.Execute(&b, p)
	return b.Bytes(), err
}
