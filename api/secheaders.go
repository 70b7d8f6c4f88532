package api

import "net/http"

// DashboardCSP is the Content-Security-Policy of the dashboard's files.
// The dashboard loads only its own scripts and styles (no inline script,
// style or event-handler attribute), talks only to its own origin (fetch,
// and the WebSocket: CSP Level 3 makes 'self' cover ws: and wss: on the
// same host and port, as Chromium, Firefox and Safari 15.4+ do), and
// draws its favicon from a data: URI. It may not be framed.
const DashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// apiCSP is the policy of every other answer: JSON, problem documents and
// metrics are never a document that runs or embeds anything.
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// securityHeaders sets, on every answer, the headers that keep browsers
// from sniffing types, framing the gateway or leaking URLs in Referer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", apiCSP)
		next.ServeHTTP(w, r)
	})
}

// dashboardPolicy replaces the API's policy with DashboardCSP on the
// dashboard's files.
func dashboardPolicy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", DashboardCSP)
		next.ServeHTTP(w, r)
	})
}
