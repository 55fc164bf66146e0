package docs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The docs' ```shell blocks are examples a reader runs: each command starts
// with "$ ", may continue over lines ending in "\", and may be followed by
// "#" comment lines; nothing else (output goes in a plain ``` block).
// `make docs-check` runs them against `make sandbox` (examples_run_test.go).
// A block that cannot run against the sandbox is preceded by
//
//	<!-- docs-check: not runnable: <reason> -->
//
// and listed, with the same reason, in development.md's "Docs examples".

var notRunnableMarker = regexp.MustCompile(`^<!-- docs-check: not runnable: (.+?) -->$`)

// shellBlock is one ```shell block of a document.
type shellBlock struct {
	Doc  string // path relative to docs/
	Line int    // line of the opening fence
	// NotRunnable is the marker's reason ("" for a runnable block).
	NotRunnable string
	Commands    []shellCommand
	// Problems are lines that are neither commands nor comments.
	Problems []string
}

// shellCommand is one "$ " command, continuation lines included.
type shellCommand struct {
	Line int
	Text string
}

func (c shellCommand) String() string { return strings.ReplaceAll(c.Text, "\n", " ") }

// parseShellBlocks reads the ```shell blocks of a markdown document.
func parseShellBlocks(doc string, text string) ([]shellBlock, error) {
	var (
		blocks  []shellBlock
		cur     *shellBlock
		fence   string // the open fence of any block, "" outside
		pending string // reason of a marker on the previous line
		lineNo  int
		cont    bool // the previous command line ended in "\"
	)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence == "" {
			if m := notRunnableMarker.FindStringSubmatch(trimmed); m != nil {
				pending = m[1]
				continue
			}
			if strings.HasPrefix(trimmed, "```") {
				fence = "```"
				if strings.TrimPrefix(trimmed, "```") == "shell" {
					blocks = append(blocks, shellBlock{Doc: doc, Line: lineNo, NotRunnable: pending})
					cur = &blocks[len(blocks)-1]
				} else if pending != "" {
					return nil, fmt.Errorf("%s:%d: a not-runnable marker before a block that is not ```shell", doc, lineNo)
				}
				pending = ""
				continue
			}
			if pending != "" && trimmed != "" {
				return nil, fmt.Errorf("%s:%d: a not-runnable marker must come right before its ```shell block", doc, lineNo-1)
			}
			continue
		}
		if trimmed == fence {
			if cur != nil && cont {
				cur.Problems = append(cur.Problems, fmt.Sprintf("line %d: the last command ends in a backslash", lineNo-1))
			}
			fence, cur, cont = "", nil, false
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case cont:
			last := &cur.Commands[len(cur.Commands)-1]
			last.Text += "\n" + line
		case strings.HasPrefix(line, "$ "):
			cur.Commands = append(cur.Commands, shellCommand{Line: lineNo, Text: strings.TrimPrefix(line, "$ ")})
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			continue // blank or comment
		default:
			cur.Problems = append(cur.Problems, fmt.Sprintf("line %d: neither a \"$ \" command nor a comment: %q", lineNo, line))
			continue
		}
		cont = strings.HasSuffix(line, "\\")
	}
	if fence != "" {
		return nil, fmt.Errorf("%s: a code block opened is never closed", doc)
	}
	return blocks, sc.Err()
}

// docShellBlocks parses every markdown document under docs/.
func docShellBlocks(t *testing.T) []shellBlock {
	t.Helper()
	var all []shellBlock
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".md") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		blocks, err := parseShellBlocks(filepath.ToSlash(path), string(raw))
		all = append(all, blocks...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func TestParseShellBlocks(t *testing.T) {
	doc := "# T\n\n```shell\n$ vault write quay/x a=1 \\\n    b=2\n# a comment\n\n$ curl -sS x   # trailing\n```\n\n" +
		"```json\n$ not a command\n```\n\n" +
		"<!-- docs-check: not runnable: needs a real Quay -->\n```shell\n$ vault read quay/y\n```\n\n" +
		"```shell\nexport A=1\n$ vault read quay/z\n```\n"
	blocks, err := parseShellBlocks("t.md", doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 {
		t.Fatalf("want 3 shell blocks, got %+v", blocks)
	}
	want := []shellCommand{{4, "vault write quay/x a=1 \\\n    b=2"}, {8, "curl -sS x   # trailing"}}
	if !slices.Equal(blocks[0].Commands, want) || len(blocks[0].Problems) != 0 || blocks[0].NotRunnable != "" {
		t.Errorf("first block: %+v", blocks[0])
	}
	if blocks[1].NotRunnable != "needs a real Quay" || blocks[1].Line != 16 {
		t.Errorf("marked block: %+v", blocks[1])
	}
	if len(blocks[2].Problems) != 1 || !strings.Contains(blocks[2].Problems[0], "export A=1") {
		t.Errorf("a stray line is not reported: %+v", blocks[2])
	}

	for _, bad := range []string{
		"<!-- docs-check: not runnable: x -->\n```yaml\na: 1\n```\n",
		"<!-- docs-check: not runnable: x -->\ntext\n```shell\n$ true\n```\n",
		"```shell\n$ true\n",
	} {
		if _, err := parseShellBlocks("bad.md", bad); err == nil {
			t.Errorf("no error for:\n%s", bad)
		}
	}
	blocks, err = parseShellBlocks("c.md", "```shell\n$ vault read \\\n```\n")
	if err != nil || len(blocks[0].Problems) != 1 {
		t.Errorf("a dangling continuation is not reported: %+v %v", blocks, err)
	}
}

// Every ```shell block in docs/ is something `make docs-check` can run, or
// says why it cannot.
func TestDocs_ShellBlocksAreRunnableOrMarked(t *testing.T) {
	blocks := docShellBlocks(t)
	if len(blocks) < 20 {
		t.Fatalf("found only %d shell blocks in docs/: is the parser broken?", len(blocks))
	}
	for _, b := range blocks {
		if b.NotRunnable != "" {
			continue
		}
		for _, p := range b.Problems {
			t.Errorf("%s:%d: %s", b.Doc, b.Line, p)
		}
		if len(b.Commands) == 0 {
			t.Errorf("%s:%d: a ```shell block without a \"$ \" command (mark it not runnable, or use a plain block)", b.Doc, b.Line)
		}
		for _, c := range b.Commands {
			// Placeholders such as <lease id> are shell redirections.
			if regexp.MustCompile(`<[a-z][a-z _-]*>`).MatchString(c.Text) {
				t.Errorf("%s:%d: a placeholder cannot run: %s", b.Doc, c.Line, c)
			}
		}
	}
}

// development.md lists every example docs-check does not run, with the
// marker's reason, so the exceptions are reviewed in one place.
func TestDocs_NotRunnableListIsComplete(t *testing.T) {
	raw, err := os.ReadFile("development.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, found := strings.Cut(string(raw), "\n## Docs examples\n")
	if !found {
		t.Fatal(`development.md has no "## Docs examples" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\* \x60([^\x60]+)\x60: (.+)$`).FindAllStringSubmatch(section, -1) {
		listed[m[1]+": "+m[2]] = true
	}
	marked := map[string]bool{}
	for _, b := range docShellBlocks(t) {
		if b.NotRunnable != "" {
			key := b.Doc + ": " + b.NotRunnable
			marked[key] = true
			if !listed[key] {
				t.Errorf("development.md does not list the not-runnable example %s:%d (* `%s`: %s)", b.Doc, b.Line, b.Doc, b.NotRunnable)
			}
		}
	}
	for key := range listed {
		if !marked[key] {
			t.Errorf("development.md lists %q, which no marker in docs/ says", key)
		}
	}
}

// Credentials in CLI tables ("token  abc") and JSON ("token": "abc").
var secretFields = regexp.MustCompile(`(?m)("(?:token|password|auth|access_token|docker_config_json|client_secret)"\s*:\s*)"(?:[^"\\]|\\.)*"|^((?:token|password|auth|docker_config_json)\s+)\S.*$`)

// mask hides the sandbox's secrets and any credential field in out.
func mask(out string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= 8 {
			out = strings.ReplaceAll(out, s, "<masked>")
		}
	}
	return secretFields.ReplaceAllString(out, `$1$2<masked>`)
}

func TestMask(t *testing.T) {
	out := "Key      Value\ntoken    s3cr3t-t0ken\npassword pw\nusername acme+x\n" +
		`{"token": "abc\"def", "username": "u", "docker_config_json": "{\"auths\":{}}"}` + "\nsandbox-root-token-value"
	got := mask(out, []string{"sandbox-root-token-value", "short"})
	for _, leaked := range []string{"s3cr3t", "pw\n", "abc", "auths", "sandbox-root"} {
		if strings.Contains(got, leaked) {
			t.Errorf("%q survives masking:\n%s", leaked, got)
		}
	}
	for _, kept := range []string{"username acme+x", `"username": "u"`} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q was masked:\n%s", kept, got)
		}
	}
}
