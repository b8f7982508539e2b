package serve

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// webFS holds the dashboard: index.html, app.js, app.css and the vendored
// uPlot (web/vendor, with its licence). No build step: the files are
// served as they are.
//
//go:embed web
var webFS embed.FS

// staticHandler serves the dashboard's files with a strict content
// security policy: the page runs only its own scripts and talks only to
// this server.
func staticHandler(web fs.FS) http.Handler {
	files := http.FileServerFS(web)
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := rw.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(rw, r)
	})
}

// dashboard serves the dashboard's files to GET and HEAD. Another method
// is 405 (Allow: GET, HEAD) on a path the dashboard has, and 404 on any
// other path, as a GET of it would be.
func dashboard(web fs.FS) http.Handler {
	files := staticHandler(web)
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			files.ServeHTTP(rw, r)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		if _, err := fs.Stat(web, name); err != nil {
			http.NotFound(rw, r)
			return
		}
		methodNotAllowed(rw, r, false)
	})
}
