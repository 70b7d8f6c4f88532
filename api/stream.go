package api

import "github.com/go-chi/chi/v5"

// streamRoutes mounts /v1/stream (see issue: streams).
func (s *Server) streamRoutes(r chi.Router) {}
