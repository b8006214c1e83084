package main

// The docs are checked as code: every relative link (and its #anchor), every repository
// path named in them and every `rootwarden …` command in their shell blocks must exist
// and parse against the real command tree. Files: README.md, SECURITY.md, docs/*.md and
// every README.md under deploy/.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

const repoRoot = "../.."

func TestDocs(t *testing.T) {
	repoRoot := repoRoot
	if r := os.Getenv("ROOTWARDEN_DOCS_ROOT"); r != "" {
		repoRoot = r // another checkout's docs, e.g. an older commit's
	}
	files := docFiles(t, repoRoot)
	if len(files) < 10 && os.Getenv("ROOTWARDEN_DOCS_ROOT") == "" {
		t.Fatalf("only %d doc files found: %v", len(files), files)
	}
	commands := 0
	for _, f := range files {
		body, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		r := checkDoc(repoRoot, f, body, parseCommandLine)
		commands += r.commands
		for _, p := range r.problems {
			t.Errorf("%s:%d: %s", f, p.line, p.msg)
		}
	}
	if commands < 20 && os.Getenv("ROOTWARDEN_DOCS_ROOT") == "" {
		t.Errorf("only %d rootwarden commands found in the docs' shell blocks: is the parser broken?", commands)
	}
}

// The checker itself: each mistake a doc can make is caught, and what is right passes.
func TestDocCheckerCatchesMistakes(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"docs/a.md", "deploy/aws/member.yaml"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte("# A page\n\n## Second `part`: here\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, doc string
		bad       bool
	}{
		{"a link to a file that exists", "[a](docs/a.md)", false},
		{"a link to a file that does not exist", "[a](docs/nope.md)", true},
		{"an image that does not exist", "![x](docs/img/x.png)", true},
		{"a link to a heading that exists", "[a](docs/a.md#second-part-here)", false},
		{"a link to a heading that does not exist", "[a](docs/a.md#third)", true},
		{"a link to a heading of this page", "# Top\n[a](#top)", false},
		{"a web link is not checked", "[a](https://example.com/nope.md)", false},
		{"a repository path in code that exists", "see `deploy/aws/member.yaml`", false},
		{"a repository path in code that does not exist", "see `deploy/aws/member-role-policy.json`", true},
		{"a path in a shell block that does not exist", "```sh\naws cloudformation deploy --template-file deploy/aws/nope.yaml\n```", true},
		{"a link in an HTML comment is a note, not a link", "<!-- [a](docs/nope.md) -->", false},
		{"a command that parses", "```sh\n./rootwarden scan --org-role RootwardenReadOnly --json > out.json\n```", false},
		{"go run of the command", "```sh\ngo run ./cmd/rootwarden demo   # the story\n```", false},
		{"an unknown flag", "```sh\n./rootwarden scan --org-rol X\n```", true},
		{"an unknown command", "```sh\nrootwarden frobnicate\n```", true},
		{"a missing argument", "```sh\nrootwarden sim click 200000000001-1\n```", true},
		{"a bad duration", "```sh\nrootwarden sim slash status --wait 20\n```", true},
		{"a command after a pipe and env", "```sh\nX=1 rootwarden cases list --json | jq . && rootwarden cases show 1-1 --jsn\n```", true},
		{"a command continued on the next line", "```sh\nrootwarden sim submit-risk 1-1 \\\n  --reason \"a b\" --until \"$(date +%F)\"\n```", false},
		{"an inline command that parses", "run `rootwarden cases list --state open` to see them", false},
		{"an inline command with an unknown flag", "run `rootwarden cases list --stat open` to see them", true},
		{"an inline name of a command is not a command line", "`rootwarden cases show` and the log line `rootwarden started`", false},
		{"a command in another language's block is not one", "```yaml\nExecStart: rootwarden frobnicate\n```", false},
		{"a word rootwarden that is not the command", "```sh\nhelm install rootwarden deploy/aws/member.yaml --set x=1\n```", false},
		{"kubectl's deploy/NAME is not a path", "```sh\nkubectl -n rootwarden exec deploy/nats-box -- nats server report jetstream\n```", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkDoc(root, "README.md", []byte(tc.doc), parseCommandLine)
			if got := len(r.problems) > 0; got != tc.bad {
				t.Errorf("problems %v, want problems: %v", r.problems, tc.bad)
			}
		})
	}
}

// docFiles lists the checked docs, relative to root.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md", "SECURITY.md"}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		files = append(files, filepath.ToSlash(strings.TrimPrefix(d, root+string(filepath.Separator))))
	}
	err = filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "README.md" {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// parseCommandLine parses args (what follows `rootwarden`) against the real command
// tree: the subcommand, its flags and their values, and its positional arguments.
func parseCommandLine(args []string) error {
	root := newRoot(io.Discard, io.Discard)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	cmd.InitDefaultHelpFlag()
	cmd.InitDefaultVersionFlag()
	if err := cmd.ParseFlags(rest); err != nil {
		return fmt.Errorf("rootwarden %s: %w", cmd.Name(), err)
	}
	if help, _ := cmd.Flags().GetBool("help"); help {
		return nil
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		var u usageError
		if errors.As(err, &u) {
			return fmt.Errorf("rootwarden %s: %s", cmd.Name(), u.msg)
		}
		return fmt.Errorf("rootwarden %s: %w", cmd.Name(), err)
	}
	if cmd == root && len(cmd.Flags().Args()) > 0 {
		return fmt.Errorf("unknown command %q", cmd.Flags().Args()[0])
	}
	return nil
}

type docProblem struct {
	line int
	msg  string
}

type docReport struct {
	problems []docProblem
	commands int
}

var (
	htmlComment = regexp.MustCompile(`(?s)<!--.*?-->`)
	mdLink      = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	htmlRef     = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	codeSpan    = regexp.MustCompile("`([^`\n]+)`")
	repoPath    = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.*-]+)+/?$`)
	fence       = regexp.MustCompile("^\\s*(```|~~~)\\s*([A-Za-z0-9_-]*)")
	lineSuffix  = regexp.MustCompile(`:[0-9]+(-[0-9]+)?$`)
)

// checkDoc checks one Markdown file (path relative to root).
func checkDoc(root, path string, body []byte, cli func([]string) error) docReport {
	var r docReport
	// HTML comments are notes to maintainers: blank them, keeping the line count.
	body = htmlComment.ReplaceAllFunc(body, func(m []byte) []byte {
		return bytes.Map(func(c rune) rune {
			if c == '\n' {
				return c
			}
			return ' '
		}, m)
	})
	dir := filepath.Dir(path)
	anchors := map[string]map[string]bool{}
	headings := func(file string) map[string]bool {
		if h, ok := anchors[file]; ok {
			return h
		}
		b, err := os.ReadFile(filepath.Join(root, file))
		if file == path {
			b, err = body, nil
		}
		h := map[string]bool{}
		if err == nil {
			h = headingSlugs(b)
		}
		anchors[file] = h
		return h
	}
	bad := func(line int, format string, a ...any) {
		r.problems = append(r.problems, docProblem{line, fmt.Sprintf(format, a...)})
	}
	checkLink := func(line int, target string) {
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			return
		}
		file, frag, _ := strings.Cut(target, "#")
		if file == "" {
			file = path
		} else {
			file = filepath.ToSlash(filepath.Join(dir, file))
			if _, err := os.Stat(filepath.Join(root, file)); err != nil {
				bad(line, "link to %s: %s does not exist", target, file)
				return
			}
		}
		if frag != "" && strings.HasSuffix(file, ".md") && !headings(file)[frag] {
			bad(line, "link to %s: %s has no heading #%s", target, file, frag)
		}
	}
	checkPath := func(line int, tok string) {
		tok = strings.Trim(tok, `"'(),;:.`)
		tok = strings.TrimPrefix(strings.TrimPrefix(tok, "file://"), "./")
		tok = lineSuffix.ReplaceAllString(tok, "")
		if !repoPath.MatchString(tok) {
			return
		}
		first, _, _ := strings.Cut(tok, "/")
		if st, err := os.Stat(filepath.Join(root, first)); err != nil || !st.IsDir() {
			return // not a path in this repository (Root/Prod, owner/repo, …)
		}
		if strings.Contains(tok, "*") {
			if m, _ := filepath.Glob(filepath.Join(root, tok)); len(m) == 0 {
				bad(line, "%s matches no file of the repository", tok)
			}
			return
		}
		if _, err := os.Stat(filepath.Join(root, tok)); err != nil {
			bad(line, "%s does not exist in the repository", tok)
		}
	}

	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	inFence, shell := false, false
	var cont strings.Builder
	contLine := 0
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			if !inFence {
				inFence = true
				switch m[2] {
				case "", "sh", "bash", "shell", "console":
					shell = true
				default:
					shell = false
				}
			} else {
				inFence, shell = false, false
			}
			continue
		}
		if inFence {
			if !shell {
				continue
			}
			if cont.Len() == 0 {
				contLine = n
			}
			if strings.HasSuffix(line, `\`) {
				cont.WriteString(strings.TrimSuffix(line, `\`) + " ")
				continue
			}
			cont.WriteString(line)
			full := cont.String()
			cont.Reset()
			for _, seg := range shellSegments(strings.TrimPrefix(strings.TrimSpace(full), "$ ")) {
				for _, tok := range seg {
					if seg[0] != "kubectl" { // kubectl's deploy/NAME is a resource, not a path
						checkPath(contLine, tok)
					}
				}
				if args, ok := rootwardenArgs(seg); ok {
					r.commands++
					if err := cli(args); err != nil {
						bad(contLine, "`rootwarden %s`: %v", strings.Join(args, " "), err)
					}
				}
			}
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			checkLink(n, m[1])
		}
		for _, m := range htmlRef.FindAllStringSubmatch(line, -1) {
			checkLink(n, m[1])
		}
		for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
			fields := strings.Fields(m[1])
			if len(fields) > 0 && fields[0] == "kubectl" {
				continue // kubectl's deploy/NAME is a resource, not a path
			}
			for _, tok := range fields {
				checkPath(n, tok)
			}
			// An inline command with a flag is checked as a shell line is (without one it
			// is often a name: `rootwarden cases show`, or a log line: `rootwarden started`).
			for _, seg := range shellSegments(m[1]) {
				if args, ok := rootwardenArgs(seg); ok && slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-") }) {
					r.commands++
					if err := cli(args); err != nil {
						bad(n, "`rootwarden %s`: %v", strings.Join(args, " "), err)
					}
				}
			}
		}
	}
	return r
}

// rootwardenArgs returns the arguments of a rootwarden command line: `rootwarden …`,
// `./rootwarden …` or `go run ./cmd/rootwarden …`, after any VAR=value assignments.
func rootwardenArgs(seg []string) ([]string, bool) {
	i := 0
	for i < len(seg) && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(seg[i]) {
		i++
	}
	seg = seg[i:]
	switch {
	case len(seg) > 0 && (seg[0] == "rootwarden" || seg[0] == "./rootwarden"):
		seg = seg[1:]
	case len(seg) > 2 && seg[0] == "go" && seg[1] == "run" && seg[2] == "./cmd/rootwarden":
		seg = seg[3:]
	default:
		return nil, false
	}
	var args []string
	for _, a := range seg {
		if strings.HasPrefix(a, ">") || strings.HasPrefix(a, "<") || regexp.MustCompile(`^[0-9]*>`).MatchString(a) {
			break // a redirection ends the arguments
		}
		args = append(args, a)
	}
	return args, true
}

// shellSegments splits a shell line into simple commands (at |, ||, &&, ;, &, $( … ),
// <( … ) and parentheses) of words, honouring quotes and dropping a # comment.
func shellSegments(line string) [][]string {
	var segs [][]string
	var words []string
	var w strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	endSeg := func() {
		endWord()
		if len(words) > 0 {
			segs = append(segs, words)
		}
		words = nil
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(rs) && rs[j] != c {
				if c == '"' && rs[j] == '\\' && j+1 < len(rs) {
					j++
				}
				j++
			}
			w.WriteString(string(rs[i+1 : min(j, len(rs))]))
			inWord = true
			i = j
		case c == '\\' && i+1 < len(rs):
			w.WriteRune(rs[i+1])
			inWord = true
			i++
		case c == '#' && !inWord:
			endSeg()
			return segs
		case unicode.IsSpace(c):
			endWord()
		case c == '|' || c == ';' || c == '&' || c == '(' || c == ')':
			endSeg()
		case c == '$' && i+1 < len(rs) && rs[i+1] == '(':
			endSeg()
			i++
		case c == '<' && i+1 < len(rs) && rs[i+1] == '(':
			endSeg()
			i++
		default:
			w.WriteRune(c)
			inWord = true
		}
	}
	endSeg()
	return segs
}

// headingSlugs returns the anchors GitHub gives the Markdown headings of body.
func headingSlugs(body []byte) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(string(body), "\n") {
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		if text == "" || !strings.HasPrefix(line, strings.Repeat("#", len(line)-len(strings.TrimLeft(line, "#")))+" ") {
			continue
		}
		var b strings.Builder
		for _, c := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(c) || unicode.IsDigit(c) || c == '-' || c == '_':
				b.WriteRune(c)
			case c == ' ':
				b.WriteRune('-')
			}
		}
		slug := b.String()
		if k := seen[slug]; k > 0 {
			out[fmt.Sprintf("%s-%d", slug, k)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// The README's walk-through, pasted whole into bash in the repository's root, as a
// newcomer would: it builds ./rootwarden, starts the sim and run, clicks, deletes the
// key, accepts a risk, types /rootwarden and opens the App Home. Off by default (it
// uses the fixed ports 4566 and 8080, curl, jq and GNU date):
//
//	ROOTWARDEN_DOCS_RUN=1 go test ./cmd/rootwarden -run TestREADMEWalkThroughAsPasted -v
func TestREADMEWalkThroughAsPasted(t *testing.T) {
	if os.Getenv("ROOTWARDEN_DOCS_RUN") == "" {
		t.Skip("set ROOTWARDEN_DOCS_RUN=1 to run the README's walk-through in bash")
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "### Try `run` by hand")
	_, rest, ok2 := strings.Cut(rest, "```sh\n")
	block, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README has no shell block under \"Try `run` by hand\"")
	}
	// What the walk-through leaves in the repository (all git-ignored); keep what was there.
	var made []string
	for _, f := range []string{"rootwarden", "sim.env", "sim.log", "run.log", "rootwarden-data"} {
		if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
			made = append(made, filepath.Join(repoRoot, f))
		}
	}
	t.Cleanup(func() {
		for _, f := range made {
			os.RemoveAll(f)
		}
	})
	cmd := exec.Command("bash", "-c", block+"\nkill %2 %1; wait\n")
	cmd.Dir = repoRoot
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GOFLAGS=" + os.Getenv("GOFLAGS"),
		"GOCACHE=" + goEnv(t, "GOCACHE"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"), "GOPROXY=" + goEnv(t, "GOPROXY")}
	out, _ := cmd.CombinedOutput()
	t.Logf("output:\n%s", out)
	for _, want := range []string{
		"2 with root access keys", // scan's summary
		`clicked "Approve remediation" on case 200000000001-1 as U0SIMAPPROVER`,
		"ticketed", "RW-1", "deleted AKIA",
		`clicked "I deleted the keys" on case 200000000001-1 as U0SIMOTHER`,
		`submitted "Accept risk" for case 200000000002-1`,
		"*rootwarden status*", "1 risk accepted",
		"*Case `200000000001-1-", "*History*",
		"App Home of U0SIMAPPROVER", "[Revoke acceptance]",
		`"case_id":"200000000002-1-`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walk-through's output lacks %q", want)
		}
	}
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
