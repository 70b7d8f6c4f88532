package api

import "github.com/go-chi/chi/v5"

// webhookRoutes mounts /v1/webhooks (see issue: webhooks).
func (s *Server) webhookRoutes(r chi.Router) {}
