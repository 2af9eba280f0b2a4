package catalog

import "net/http"

// MaxImportBody bounds a CSV import's body.
const MaxImportBody = 8 << 20

// ImportReport is the answer of a CSV import.
type ImportReport struct {
	Imported int           `json:"imported" doc:"products created"`
	Updated  int           `json:"updated" doc:"products changed"`
	Failed   int           `json:"failed" doc:"products refused"`
	Errors   []ImportError `json:"errors"`
}

// ImportError is one refused row.
type ImportError struct {
	Row     int    `json:"row"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (s *Service) handleImport(w http.ResponseWriter, r *http.Request) {}
func (s *Service) handleExport(w http.ResponseWriter, r *http.Request) {}
