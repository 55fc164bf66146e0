package backend

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// tidyStatePath records the last tidy run, for the schedule and for
// operators. Each cluster tidies the robots it issued, so the record is
// local; legacyTidyStatePath is where versions before 0.2 kept it.
const (
	tidyStatePath       = localStoragePrefix + "tidy-last"
	legacyTidyStatePath = "tidy/last"
)

type tidyState struct {
	LastRun time.Time   `json:"last_run"`
	Report  *tidyReport `json:"report"`
}

func pathTidy(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "tidy",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefixQuay,
		},
		Fields: map[string]*framework.FieldSchema{
			"dry_run": {
				Type:        framework.TypeBool,
				Description: "Report what would be deleted without deleting anything.",
			},
			"organizations": {
				Type:        framework.TypeCommaStringSlice,
				Description: "More organizations to scan, besides those of the mount's roles, static roles, issued robots and write-ahead entries (for robots of roles deleted long ago).",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:     b.pathTidyWrite,
				Summary:      "Delete robots this mount created that no lease, write-ahead entry or static role owns.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "tidy", OperationSuffix: "robots"},
				Responses:    okWith(tidyReportFields()),
				// Each cluster tidies the robots it issued (their leases
				// are local to it); tidy writes only local storage.
				ForwardPerformanceStandby: true,
			},
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathTidyRead,
				Summary:      "Read the result of the last tidy run.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "tidy-report"},
				Responses: okWith(withFields(tidyReportFields(), map[string]*framework.FieldSchema{
					"last_run": {Type: framework.TypeTime, Description: "When the reported run ended."},
				})),
			},
		},
		HelpSynopsis:    "Find and delete orphaned robots.",
		HelpDescription: pathTidyHelp,
	}}
}

func (b *backend) pathTidyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	var orgs []string
	for _, o := range d.Get("organizations").([]string) {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if !validQuayName(o) {
			return badField("organizations", "%q is not a valid Quay organization name", o), nil
		}
		orgs = append(orgs, o)
	}
	dryRun := d.Get("dry_run").(bool)
	report, err := b.tidyRobots(ctx, req.Storage, dryRun, orgs)
	if err != nil {
		return nil, err
	}
	if !dryRun {
		b.recordTidy(ctx, req.Storage, report)
	}
	resp := &logical.Response{Data: report.data()}
	for _, e := range report.Errors {
		resp.AddWarning(e)
	}
	return resp, nil
}

func (b *backend) pathTidyRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	state, err := getTidyState(ctx, req.Storage)
	if err != nil || state == nil || state.Report == nil {
		return nil, err
	}
	data := state.Report.data()
	data["last_run"] = formatTime(state.LastRun)
	return &logical.Response{Data: data}, nil
}

func (b *backend) recordTidy(ctx context.Context, s logical.Storage, report *tidyReport) {
	if err := putJSON(ctx, s, tidyStatePath, "tidy report", &tidyState{LastRun: b.now().UTC(), Report: report}); err != nil {
		b.logger.Warn("could not record the tidy run", "error", err)
	}
}

func getTidyState(ctx context.Context, s logical.Storage) (*tidyState, error) {
	state, err := getJSON[tidyState](ctx, s, tidyStatePath, "tidy report")
	if err == nil && state == nil {
		state, err = getJSON[tidyState](ctx, s, legacyTidyStatePath, "tidy report")
	}
	return state, err
}

// autoTidy runs tidy from the periodic function when config's tidy_interval
// has passed since the last run.
func (b *backend) autoTidy(ctx context.Context, s logical.Storage, cfg *quayConfig) error {
	if cfg.TidyInterval <= 0 {
		return nil
	}
	state, err := getTidyState(ctx, s)
	if err != nil {
		return err
	}
	if state != nil && !due(state.LastRun.Add(cfg.TidyInterval), b.now()) {
		return nil
	}
	report, err := b.tidyRobots(ctx, s, false, nil)
	if errors.Is(err, errTidyRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	b.recordTidy(ctx, s, report)
	if len(report.OrphansDeleted) > 0 {
		b.logger.Info("scheduled tidy deleted orphaned robots", "count", len(report.OrphansDeleted))
	}
	return nil
}

const pathTidyHelp = `
Quay robots never expire by themselves, so a robot whose lease was lost would
live forever. tidy lists the robots of every namespace the mount uses, picks
those this mount created (name prefix "vault_" and this mount's marker at the
start of the description), and deletes the ones no live lease, write-ahead
entry of a running request, or static role owns. It reports what it found and
removed; dry_run=true only reports. Set tidy_interval on config to run it on a
schedule. The last run's report is at "tidy" (read).
`

// tidyReportFields document a tidy report (tidyReport.data).
func tidyReportFields() map[string]*framework.FieldSchema {
	list := func(what string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeStringSlice, Description: what}
	}
	count := func(what string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeInt, Description: what}
	}
	return map[string]*framework.FieldSchema{
		"dry_run":                     {Type: framework.TypeBool, Description: "Whether the run only reported."},
		"namespaces_scanned":          list("The namespaces whose robots were listed, as <type>/<name>."),
		"robots_scanned":              count("How many robots Quay listed."),
		"robots_owned":                count("This mount's robots that a lease or static role owns."),
		"robots_in_flight":            list("Robots a request still running may be creating (kept)."),
		"robots_of_other_clusters":    list("Robots of this mount another cluster issued (never touched)."),
		"orphans_found":               list("Robots of this mount that nothing owns."),
		"orphans_deleted":             list("Orphans deleted in Quay."),
		"write_ahead_entries_cleared": count("Write-ahead entries of deleted orphans removed."),
		"stale_index_entries_removed": count("Index entries of robots long gone removed."),
		"errors":                      list("What could not be listed or deleted (also returned as warnings)."),
	}
}
