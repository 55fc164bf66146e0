//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/vault/api"
)

// The chaos soak's report: what it counts, how it names a client-visible
// error, what it reads from the logs, and the tables it prints.

type opCount struct {
	OK     int `json:"ok"`
	Errors int `json:"errors"`
}

// chaosReport is the soak's result, printed as a table and written as JSON.
type chaosReport struct {
	Seed        uint64  `json:"seed"`
	Cycles      int     `json:"cycles"`
	Workers     int     `json:"workers"`
	FaultRate   float64 `json:"fault_rate"`
	DurationSec float64 `json:"duration_seconds"`

	Operations   map[chaosOp]*opCount `json:"operations"`
	Faults       map[string]int       `json:"faults"`
	QuayAPICalls int                  `json:"quay_api_calls"`
	// FaultedShare is faulted calls / Quay API calls.
	FaultedShare float64        `json:"faulted_share"`
	ClientErrors map[string]int `json:"client_errors"`
	// ClientErrorClasses groups ClientErrors by cause.
	ClientErrorClasses map[string]int `json:"client_error_classes"`
	// QuayRetries are the engine's retried Quay calls (its trace log).
	QuayRetries int `json:"quay_retries"`
	// RevocationRetries are Vault's retried revocations (its log).
	RevocationRetries int `json:"revocation_retries"`
	// Irrevocable are leases Vault gave up revoking (after six attempts).
	Irrevocable int `json:"irrevocable_leases"`
	// StaticLogins are registry logins with the password static-creds
	// just served. A refused one is read again: when the next read serves
	// another password without healing anything, a rotation (the schedule
	// or a worker's rotate-role) came between the read and the login, and
	// it counts in StaticRotatedMeanwhile; otherwise static-creds served a
	// password Quay no longer accepted. That can happen under faults: a
	// read that cannot reach Quay serves the stored password, which a
	// rotation whose answer was lost (and whose read-back failed too) left
	// stale; the next read that reaches Quay heals it.
	StaticLogins           opCount   `json:"static_creds_logins"`
	StaticRotatedMeanwhile int       `json:"static_creds_rotated_meanwhile"`
	PluginKills            int       `json:"plugin_kills"`
	LeaderKills            int       `json:"leader_kills"`
	FailoverSec            []float64 `json:"failover_seconds"`

	// OrphansRemoved counts what the engine cleaned up by itself during
	// and after the run, by mechanism (its logs and tidy reports).
	OrphansRemoved map[string]int `json:"orphans_removed"`
	// OrphansAfterRevoke is what Quay held right after every lease was
	// revoked and tidy ran, that nothing owned.
	OrphansAfterRevoke []string `json:"orphans_after_revoke"`
	// OrphansExpired are OAuth tokens among OrphansAfterRevoke that left
	// Quay's list by expiring (Quay still holds them, expired) rather than
	// being deleted by the engine, with their names.
	OrphansExpired []string `json:"orphans_expired_not_deleted"`
	// TimeToCleanSec is from the final revocation until Quay held only
	// what Vault owns and every static password worked.
	TimeToCleanSec float64 `json:"time_to_clean_seconds"`
	LeasesLeft     int     `json:"leases_left"`
	RootTokens     int     `json:"root_tokens"`
	OrphansLeft    int     `json:"orphans_left"`
	SecretsSeen    int     `json:"secrets_seen"`
	SecretsInLogs  int     `json:"secrets_in_logs"`
	LogBytes       int64   `json:"log_bytes_scanned"`

	Result   string   `json:"result"`
	Failures []string `json:"failures,omitempty"`
	Replay   string   `json:"replay"`
}

// errorCause is the cause of a client-visible error, from its kind.
func errorCause(kind string) string {
	switch {
	case strings.Contains(kind, "csrf") || strings.Contains(kind, "CSRF"):
		return "the root token was rotated away under the request (Quay 403 CSRF)"
	case strings.Contains(kind, "active cluster node not found"):
		return "no active node yet (failover)"
	case strings.HasPrefix(kind, "transport "):
		return "connection to a node that was killed"
	case strings.Contains(kind, "rpc error") || strings.HasPrefix(kind, "500 internal error"):
		return "the plugin process was killed (Vault restarts it)"
	case strings.Contains(kind, "lease not found"):
		return "the lease had expired"
	case strings.HasPrefix(kind, "409 "):
		return "a tidy was already running"
	case strings.Contains(kind, "Too Many Requests"):
		return "Quay fault: 429 after the retries"
	case strings.Contains(kind, "Bad Gateway") || strings.Contains(kind, "Service Unavailable"):
		return "Quay fault: 502/503 (calls that create are not retried)"
	case strings.Contains(kind, "timed out waiting for Quay"):
		return "Quay fault: slower than request_timeout"
	case strings.Contains(kind, "Quay unreachable"):
		return "Quay fault: dropped connection"
	}
	return "other (see client_errors)"
}

var (
	errUUID   = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	errLease  = regexp.MustCompile(`quay/creds/[a-z]+/[A-Za-z0-9]+`)
	errRobot  = regexp.MustCompile(`vault_[a-z0-9_]+`)
	errApp    = regexp.MustCompile(`applications/[A-Za-z0-9]+`)
	errSpace  = regexp.MustCompile(`\s+`)
	errMulti  = regexp.MustCompile(`^[0-9]+ errors? occurred:\s*\*\s*`)
	errNumber = regexp.MustCompile(`[0-9]+(\.[0-9]+)?(ms|s|µs)?`)
	errAddr   = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)
)

// classifyError turns a client-visible error into a kind: the HTTP status
// and Vault's message with the variable parts blanked.
func classifyError(err error) string {
	var re *api.ResponseError
	msg := err.Error()
	prefix := "transport"
	if errors.As(err, &re) {
		prefix = strconv.Itoa(re.StatusCode)
		msg = strings.Join(re.Errors, "; ")
	}
	msg = errSpace.ReplaceAllString(strings.TrimSpace(msg), " ")
	msg = errMulti.ReplaceAllString(msg, "")
	msg = errAddr.ReplaceAllString(msg, "<addr>")
	msg = errUUID.ReplaceAllString(msg, "<id>")
	msg = errLease.ReplaceAllString(msg, "<lease>")
	msg = errRobot.ReplaceAllString(msg, "<robot>")
	msg = errApp.ReplaceAllString(msg, "applications/<client>")
	msg = errNumber.ReplaceAllString(msg, "N")
	return prefix + " " + redactSecrets(msg)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Log lines that mark a credential the engine cleaned up by itself.
var cleanupLines = map[string]*regexp.Regexp{
	"write-ahead rollback: OAuth token":     regexp.MustCompile(`rolled back OAuth token of a failed request`),
	"write-ahead rollback: robot":           regexp.MustCompile(`rolled back robot of a failed request`),
	"root rotation recovery":                regexp.MustCompile(`interrupted root rotation: deleted|deleted a root token nothing owned`),
	"static rotation rolled forward":        regexp.MustCompile(`recovered the token of an interrupted rotation`),
	"tidy (orphaned robots)":                regexp.MustCompile(`tidy deleted an orphaned robot`),
	"quay retries (engine, debug)":          regexp.MustCompile(`quay call will be retried`),
	"revocation retries (vault expiration)": regexp.MustCompile(`\[ERROR\] *expiration: failed to revoke lease`),
	"irrevocable (vault expiration)":        regexp.MustCompile(`marking lease as irrevocable`),
}

// chaosScanLogs counts the engine's clean-ups and retries in the logs and
// checks that no secret the soak saw appears in any log.
func (cs *clusterStack) chaosScanLogs(t *testing.T, st *chaosState) {
	t.Helper()
	rep := st.report
	logs := map[string]string{"quay-emulator": cs.Quay.Log()}
	for i, v := range cs.C.Nodes {
		logs["vault "+cs.C.Name(i)] = v.Log()
	}
	for _, text := range logs {
		rep.LogBytes += int64(len(text))
		for label, re := range cleanupLines {
			n := len(re.FindAllStringIndex(text, -1))
			switch {
			case strings.HasPrefix(label, "quay retries"):
				rep.QuayRetries += n
			case strings.HasPrefix(label, "revocation retries"):
				rep.RevocationRetries += n
			case strings.HasPrefix(label, "irrevocable"):
				rep.Irrevocable += n
			default:
				rep.OrphansRemoved[label] += n
			}
		}
	}
	st.mu.Lock()
	secrets := make([]string, 0, len(st.secrets))
	for s := range st.secrets {
		secrets = append(secrets, s)
	}
	st.mu.Unlock()
	rep.SecretsSeen = len(secrets)
	for name, text := range logs {
		if found := findSecrets(text, secrets); len(found) > 0 {
			rep.SecretsInLogs += len(found)
			t.Errorf("%d secrets the soak saw appear in the %s log (first at byte %d)", len(found), name, found[0])
		}
	}
	if rep.SecretsSeen < 3 {
		t.Errorf("the soak saw only %d secrets: the log check proves nothing", rep.SecretsSeen)
	}
}

// findSecrets returns the offsets in text where one of secrets begins. It
// looks up every 16-character window of runs of token characters in a map
// of the secrets' first 16 characters, so it reads the text once.
func findSecrets(text string, secrets []string) []int {
	const k = 16
	byPrefix := map[string][]string{}
	for _, s := range secrets {
		if len(s) >= k {
			byPrefix[s[:k]] = append(byPrefix[s[:k]], s)
		}
	}
	tokenChar := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+/=._-", c) >= 0
	}
	var found []int
	for i := 0; i+k <= len(text); i++ {
		if !tokenChar(text[i]) {
			continue
		}
		cands, ok := byPrefix[text[i:i+k]]
		if !ok {
			continue
		}
		for _, s := range cands {
			if strings.HasPrefix(text[i:], s) {
				found = append(found, i)
				break
			}
		}
	}
	return found
}

// print writes the report as tables.
func (r *chaosReport) print(out *os.File) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nchaos soak: seed %d, %d cycles x %d workers in %s, result %s\n", r.Seed, r.Cycles, r.Workers, (time.Duration(r.DurationSec) * time.Second).String(), strings.ToUpper(r.Result))
	fmt.Fprintf(w, "\noperation\tok\tclient-visible errors\n")
	for _, op := range sortedKeys(r.Operations) {
		fmt.Fprintf(w, "%s\t%d\t%d\n", op, r.Operations[op].OK, r.Operations[op].Errors)
	}
	fmt.Fprintf(w, "\nfault\tQuay calls\n")
	for _, k := range sortedKeys(r.Faults) {
		fmt.Fprintf(w, "%s\t%d\n", k, r.Faults[k])
	}
	fmt.Fprintf(w, "faulted share of %d Quay API calls\t%.1f%%\n", r.QuayAPICalls, 100*r.FaultedShare)
	fmt.Fprintf(w, "\nclient-visible errors by cause (each kind in the JSON report)\tcount\n")
	for _, k := range sortedKeys(r.ClientErrorClasses) {
		fmt.Fprintf(w, "%s\t%d\n", k, r.ClientErrorClasses[k])
	}
	fmt.Fprintf(w, "\nretries and kills\t\n")
	fmt.Fprintf(w, "Quay calls retried by the engine\t%d\n", r.QuayRetries)
	fmt.Fprintf(w, "revocations retried by Vault\t%d\n", r.RevocationRetries)
	fmt.Fprintf(w, "leases Vault marked irrevocable\t%d\n", r.Irrevocable)
	fmt.Fprintf(w, "static-creds passwords Quay accepted / rotated before the login / stale when served\t%d / %d / %d\n", r.StaticLogins.OK, r.StaticRotatedMeanwhile, r.StaticLogins.Errors)
	fmt.Fprintf(w, "plugin processes killed\t%d\n", r.PluginKills)
	fmt.Fprintf(w, "leaders killed (failover seconds)\t%d %v\n", r.LeaderKills, roundAll(r.FailoverSec))
	fmt.Fprintf(w, "\norphans\t\n")
	for _, k := range sortedKeys(r.OrphansRemoved) {
		fmt.Fprintf(w, "removed by %s\t%d\n", k, r.OrphansRemoved[k])
	}
	fmt.Fprintf(w, "left right after the final revoke + tidy\t%d\n", len(r.OrphansAfterRevoke))
	fmt.Fprintf(w, "of which OAuth tokens that expired in Quay, never deleted\t%d\n", len(r.OrphansExpired))
	fmt.Fprintf(w, "time until Quay held only what Vault owns\t%.0fs\n", r.TimeToCleanSec)
	fmt.Fprintf(w, "\nend state\t\n")
	fmt.Fprintf(w, "orphans in Quay\t%d\n", r.OrphansLeft)
	fmt.Fprintf(w, "leases left\t%d\n", r.LeasesLeft)
	fmt.Fprintf(w, "valid root tokens\t%d\n", r.RootTokens)
	fmt.Fprintf(w, "secrets in logs (of %d seen, %d MB scanned)\t%d\n", r.SecretsSeen, r.LogBytes>>20, r.SecretsInLogs)
	fmt.Fprintf(w, "\nreplay\t%s\n", r.Replay)
	w.Flush()
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func roundAll(xs []float64) []string {
	var out []string
	for _, x := range xs {
		out = append(out, strconv.FormatFloat(x, 'f', 1, 64))
	}
	return out
}

func TestFindSecrets(t *testing.T) {
	secrets := []string{"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "abcdefghijklmnopqrstuvwxyz0123456789ABCD"}
	for text, want := range map[string]int{
		"nothing here": 0,
		`token="ABCDEFGHIJKLMNOPQRSTUVWXYZ012345" more`:                                 1,
		"prefixABCDEFGHIJKLMNOPQRSTUVWXYZ012345suffix":                                  1,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ01234 (one short)":                                   0,
		"a abcdefghijklmnopqrstuvwxyz0123456789ABCD b ABCDEFGHIJKLMNOPQRSTUVWXYZ012345": 2,
	} {
		if got := findSecrets(text, secrets); len(got) != want {
			t.Errorf("findSecrets(%q) found %d, want %d", text, len(got), want)
		}
	}
}
