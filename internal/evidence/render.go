package evidence

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Formats the pack renders to.
var Formats = []string{"json", "csv", "html"}

// Render writes the pack in format (json, csv or html).
func Render(p Pack, format string) ([]byte, string, error) {
	switch format {
	case "", "json":
		b, err := JSON(p)
		return b, "application/json", err
	case "csv":
		b, err := CSV(p)
		return b, "text/csv; charset=utf-8", err
	case "html":
		b, err := HTML(p)
		return b, "text/html; charset=utf-8", err
	}
	return nil, "", fmt.Errorf("unknown format %q (json, csv, html)", format)
}

// JSON is the pack's stable form (docs/evidence.md).
func JSON(p Pack) ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// CSVHeader is the first row of the CSV form: one row per case event.
var CSVHeader = []string{"case_id", "account_id", "account_name", "ou_path", "severity", "state_at_end",
	"detected_by", "detected_at", "approved_by", "ticket", "removed_how", "removed_by", "verified_at",
	"time_to_remediate_seconds", "sla_breached",
	"event_id", "stream_seq", "seq", "at", "type", "from", "to", "actor_kind", "actor_id", "actor_name", "reason", "in_period"}

// CSV is one row per case event with its case's columns repeated; spreadsheet
// formulas are neutralised (a leading =, +, -, @ gets a quote).
func CSV(p Pack) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(CSVHeader)
	for _, c := range p.Cases {
		approved, removedHow, removedBy, verifiedAt, ttr := "", "", "", "", ""
		if c.Approved != nil {
			approved = c.Approved.By.String()
		}
		if c.Removed != nil {
			removedHow = c.Removed.How
			if c.Removed.By != nil {
				removedBy = c.Removed.By.String()
			}
		}
		if c.Verified != nil {
			verifiedAt = ts(c.Verified.At)
		}
		if c.TTRSeconds != nil {
			ttr = strconv.FormatInt(*c.TTRSeconds, 10)
		}
		ticket := ""
		if c.Ticket != nil {
			ticket = strings.TrimSpace(c.Ticket.System + " " + c.Ticket.ID + " " + c.Ticket.URL)
		}
		for _, e := range c.Timeline {
			row := []string{c.CaseID, c.AccountID, c.AccountName, c.OUPath, c.Severity, c.StateAtEnd,
				c.Detected.By, ts(c.Detected.At), approved, ticket, removedHow, removedBy, verifiedAt, ttr,
				strconv.FormatBool(c.SLABreach),
				e.EventID, strconv.FormatUint(e.StreamSeq, 10), strconv.Itoa(e.Seq), ts(e.At), e.Type, e.From, e.To,
				string(e.Actor.Kind), e.Actor.ID, e.Actor.Name, e.Reason, strconv.FormatBool(e.InPeriod)}
			for i := range row {
				row[i] = cell(row[i])
			}
			_ = w.Write(row)
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

// cell keeps a spreadsheet from reading a value as a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
