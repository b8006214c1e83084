package detector

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// rootUser is the user column of the root row of a credential report.
const rootUser = "<root_account>"

// parseRootKeys reads the root row of a credential report (CSV, header first) and
// returns the root access keys it describes, slot 1 before slot 2. Columns are found
// by name, so added columns or another order do not matter. A slot is a key when the
// report says it is active or gives a rotation (creation) date.
func parseRootKeys(content []byte) ([]model.KeyDetail, error) {
	r := csv.NewReader(bytes.NewReader(content))
	r.FieldsPerRecord = -1
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("credential report: read header: %w", err)
	}
	col := make(map[string]int, len(header))
	for i, h := range header {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	if _, ok := col["user"]; !ok {
		return nil, errors.New("credential report: no user column")
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("credential report: no <root_account> row")
		}
		if err != nil {
			return nil, fmt.Errorf("credential report: %w", err)
		}
		get := func(name string) string {
			i, ok := col[name]
			if !ok || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		if get("user") != rootUser {
			continue
		}
		keys := []model.KeyDetail{}
		for slot := 1; slot <= 2; slot++ {
			p := fmt.Sprintf("access_key_%d_", slot)
			active, _ := parseReportBool(get(p + "active"))
			k := model.KeyDetail{
				Slot:            slot,
				Active:          active,
				LastRotated:     parseReportTime(get(p + "last_rotated")),
				LastUsedAt:      parseReportTime(get(p + "last_used_date")),
				LastUsedRegion:  reportText(get(p + "last_used_region")),
				LastUsedService: reportText(get(p + "last_used_service")),
			}
			if k.Active || k.LastRotated != nil {
				keys = append(keys, k)
			}
		}
		return keys, nil
	}
}

// parseReportBool reads true/false in any case; N/A, no_information, not_supported
// and anything else are unknown (false, false).
func parseReportBool(s string) (value, known bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// parseReportTime reads an ISO 8601 time such as 2024-05-01T10:00:00+00:00; N/A,
// no_information, not_supported and unreadable values are nil.
func parseReportTime(s string) *time.Time {
	if reportText(s) == "" {
		return nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return &t
		}
	}
	return nil
}

// reportText is s, or "" for the report's words for "nothing".
func reportText(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "n/a", "no_information", "not_supported", "none":
		return ""
	}
	return strings.TrimSpace(s)
}
