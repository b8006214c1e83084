package evidence

// HTML renders the pack as one self-contained page (html.go's template is filled in
// by the HTML report work).
func HTML(p Pack) ([]byte, error) { return renderHTML(p) }
